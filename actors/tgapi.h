/*  tgapi.h -- the Telegram Bot API's wire, without any I/O.
 *
 *  sy-telegram (actors/telegram.c) does the HTTP; this module knows what
 *  goes into the requests and what comes out of the responses:
 *
 *    - reading a response: {ok, result, error_code, description,
 *      parameters: {retry_after}} (tgapi_resp_parse), and the updates of a
 *      getUpdates result (tgapi_updates_parse): for each update its
 *      update_id and, for a "message", the chat, the sender, the text (or
 *      caption) and descriptors of a photo (the largest size) or a
 *      document.  Anything else an update holds is ignored; an update that
 *      is not a message we can read is still returned (with is_message
 *      false) so that the caller moves its offset past it.
 *    - writing request bodies (JSON): getUpdates, sendMessage and
 *      editMessageText with parse_mode HTML.  The text is HTML-escaped
 *      (<, >, & become entities) so what an LLM wrote shows as written.
 *    - splitting a long text for Telegram's limit of 4096 characters per
 *      message, counted as Telegram counts them: UTF-16 code units of the
 *      text after entity parsing, i.e. of the raw text before escaping
 *      (so an escape never counts as more than one character, and a split
 *      never falls inside one: texts are split first, escaped after).
 *      tgapi_split_next() cuts at the last paragraph break before the
 *      limit, else the last line break, else the last sentence end, else
 *      the last space, else hard -- never inside a UTF-8 sequence (and so
 *      never between the two halves of a surrogate pair).
 *
 *  Hostile input: responses are read by converting the JSON to msgpack
 *  with common/json.c (strict, depth-limited) and walking it with the
 *  bounded reader schemas/mpread.h; strings are copied into fixed-size
 *  fields (cut at a UTF-8 boundary), texts are limited to
 *  TGAPI_TEXT_MAX bytes.  Nothing here logs, allocates beyond what it
 *  returns, or depends on anything but schemas/, common/json.c and libc
 *  (it is built into the fuzz target tests/fuzz/fuzz_tgapi.c).
 *
 *  Ownership: tgapi_updates_parse() fills an array the caller frees with
 *  tgapi_updates_free(); the body builders return a malloc'd
 *  NUL-terminated string the caller frees with free().
 */
#ifndef TGAPI_H
#define TGAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TGAPI_MSG_LIMIT     4096            /* UTF-16 units per message */
#define TGAPI_TEXT_MAX      (64 * 1024)     /* bytes of an update's text kept */
#define TGAPI_FILE_ID_MAX   255
#define TGAPI_MIME_MAX      127
#define TGAPI_NAME_MAX      255
#define TGAPI_DESC_MAX      255
#define TGAPI_USERNAME_MAX  64
#define TGAPI_MAX_ATTACH    2               /* a photo and a document */
#define TGAPI_MAX_UPDATES   1000            /* per response (Telegram: 100) */

/* ------------------------------------------------------------ responses */

typedef struct {
    bool     ok;                /* the response's "ok" */
    long     error_code;        /* its error_code (0: none) */
    char     description[TGAPI_DESC_MAX + 1];     /* "" if none */
    uint32_t retry_after;       /* parameters.retry_after, seconds; 0: none */
    bool     has_message_id;    /* result.message_id (sendMessage,
                                   editMessageText) */
    int64_t  message_id;
} tgapi_resp_t;

/* Reads a Bot API response body.  Returns 0 with *out filled (check
   out->ok), or SY_EINVAL (not JSON, or not an object with a boolean
   "ok"; err says what) or SY_ENOMEM. */
int tgapi_resp_parse(const char *body, size_t len, tgapi_resp_t *out,
                     char *err, size_t errlen);

/* True if the description is Telegram's "message is not modified" (an
   edit to the text the message already has: not an error). */
bool tgapi_not_modified(const tgapi_resp_t *r);

/* ------------------------------------------------------------ updates */

typedef struct {
    char     kind[16];          /* "photo" or "document" */
    char     file_id[TGAPI_FILE_ID_MAX + 1];
    char     mime[TGAPI_MIME_MAX + 1];          /* "" if none */
    char     name[TGAPI_NAME_MAX + 1];          /* "" if none (documents) */
    bool     has_size;
    uint64_t size;              /* bytes */
} tgapi_attach_t;

typedef struct {
    uint64_t update_id;
    bool     is_message;        /* a "message" with a chat we could read */
    int64_t  chat_id;
    char     chat_type[16];     /* private, group, supergroup, channel */
    bool     has_from;
    int64_t  from_id;
    bool     from_is_bot;
    char     username[TGAPI_USERNAME_MAX + 1];  /* from.username, "" if none */
    int64_t  message_id;
    char    *text;              /* text or caption, malloc'd, NUL-terminated;
                                   NULL if neither (an attachment alone) */
    size_t   text_len;
    bool     text_cut;          /* longer than TGAPI_TEXT_MAX: cut */
    tgapi_attach_t attach[TGAPI_MAX_ATTACH];
    size_t   nattach;
} tgapi_update_t;

typedef struct {
    tgapi_update_t *v;          /* in the order of the response */
    size_t          n;
} tgapi_updates_t;

/* Reads a getUpdates response into *out (n = 0 for none).  The response
   must be ok with an array result; each element needs an integer
   update_id >= 0 (elements without one are skipped: there is no offset to
   move past them).  Returns 0, SY_EINVAL (not a getUpdates success; err
   says why: use tgapi_resp_parse() for the error fields) or SY_ENOMEM.
   On failure *out is empty. */
int tgapi_updates_parse(const char *body, size_t len, tgapi_updates_t *out,
                        char *err, size_t errlen);

void tgapi_updates_free(tgapi_updates_t *u);

/* ------------------------------------------------------------ text */

/* UTF-16 code units of text[0..len) (a byte that is not valid UTF-8
   counts as one). */
size_t tgapi_utf16_len(const char *text, size_t len);

/* The byte length of the first piece of text[0..len) when it is split for
   a limit of `limit` UTF-16 units (>= 2): len itself when it all fits,
   else a cut as described at the top.  Returns 0 only for len 0. */
size_t tgapi_split_next(const char *text, size_t len, size_t limit);

/* The longest prefix of text[0..len), in bytes, of at most `limit` UTF-16
   units, ending at a code point boundary. */
size_t tgapi_prefix_units(const char *text, size_t len, size_t limit);

/* Appends the HTML-escaped text (& < > become &amp; &lt; &gt;) to out,
   capacity cap, NUL-terminated.  Returns the length written, or SY_ENOSPACE
   (nothing usable written) when it does not fit.  Bytes that are not valid
   UTF-8 become U+FFFD. */
long tgapi_html_escape(const char *text, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------ requests */

/* {"offset":N,"timeout":T,"allowed_updates":["message"]}.  NULL: no
   memory. */
char *tgapi_body_get_updates(uint64_t offset, uint32_t timeout_s);

/* sendMessage {"chat_id":..., "text": escaped, "parse_mode":"HTML"}.
   chat is the chat id as text: an integer is written as a JSON number,
   anything else (an @channel name) as a string.  NULL: no memory. */
char *tgapi_body_send(const char *chat, const char *text, size_t len);

/* editMessageText {"chat_id", "message_id", "text", "parse_mode"}. */
char *tgapi_body_edit(const char *chat, int64_t message_id, const char *text,
                      size_t len);

#endif
