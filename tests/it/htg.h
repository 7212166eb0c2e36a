/*  htg.h -- integration-test support for the Telegram bridge (sy-telegram).
 *
 *  Three parts, each usable alone:
 *    - the fake Bot API (tests/fakes/telegram_fake.py) as a process under
 *      the harness: start it, queue updates, switch failures on, read back
 *      what it sent and every request it saw (its times are
 *      CLOCK_MONOTONIC seconds, the clock harness_now_ms() reads);
 *    - the bridge's settings (token file, api_url, store, short timeouts)
 *      and the bridge itself (bin/sy-telegram), started and restarted;
 *    - a fake front door: a raw test client offering the service
 *      `frontdoor` that acks every durable delivery at once and records
 *      each chat.message, and sends the answers (chat.reply, chat.token)
 *      to the bridge's service as the real front door would.  An operator
 *      client approves chats with telegram.approve.
 *
 *  Every wait is bounded and scaled by harness_slow().  Failing look-ups
 *  fail the test with a message saying which side looked wrong.
 *
 *  Ownership: htg_fake_start() and htg_fd_new() return structs freed by
 *  htg_fake_free() / htg_fd_free(); the processes and clients inside
 *  belong to the harness.  htg_sent_t lists own their strings until
 *  htg_sent_clear().
 */
#ifndef HTG_H
#define HTG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/it/harness.h"
#include "tests/it/hclient.h"

#define HTG_TOKEN "123456789:AAFakeTokenForTests-only_0123456789"

/* ------------------------------------------------------------ the fake */

typedef struct {
    hproc_t *proc;
    int      port;
    char     url[64];               /* http://127.0.0.1:PORT */
    char     token[96];
    char     log[HARNESS_PATH_MAX]; /* one JSON line per Bot API request */
} htg_fake_t;

/* Starts the fake with this token (NULL: HTG_TOKEN) and waits until it
   listens.  Fails the test if it does not come up. */
htg_fake_t *htg_fake_start(harness_t *h, const char *token);
void htg_fake_free(htg_fake_t **f_p);

/* One HTTP request to the fake (POST when post != NULL, as JSON).
   Returns the HTTP status (0: no answer); *body (may be NULL) gets the
   answer, caller frees. */
long htg_fake_http(const htg_fake_t *f, const char *path, const char *post,
                   char **body);

/* POST /_fake/mode; fails the test if refused. */
void htg_fake_mode(const htg_fake_t *f, const char *json);

/* POST /_fake/update with this JSON object; returns the update_id. */
uint64_t htg_fake_update(const htg_fake_t *f, const char *json);

/* A text message from user from_id in chat chat_id; returns update_id. */
uint64_t htg_fake_text(const htg_fake_t *f, int64_t chat_id, int64_t from_id,
                       const char *text);

/* POST /_fake/replay: serves update_id again. */
void htg_fake_replay(const htg_fake_t *f, uint64_t update_id);

/* GET path, its JSON converted to msgpack (caller frees); NULL on
   failure (printed). */
uint8_t *htg_fake_get(const htg_fake_t *f, const char *path, size_t *len);

/* A number of GET /_fake/stats at a dotted path ("requests.getUpdates",
   "refused.getUpdates", "confirmed_offset"); 0 when absent, -1 when the
   fake does not answer. */
long htg_fake_stat(const htg_fake_t *f, const char *path);

/* One accepted sendMessage / editMessageText. */
typedef struct {
    uint64_t seq;                   /* 1, 2, ... over all chats */
    char     method[24];
    int64_t  chat_id;
    int64_t  message_id;
    char    *text;                  /* as sent */
    char    *plain;                 /* after entity parsing */
    double   time;                  /* CLOCK_MONOTONIC seconds */
} htg_sent_t;

typedef struct {
    htg_sent_t *v;
    size_t      n;
} htg_sent_list_t;

/* What was sent to chat_id with seq > after.  Fails the test if the fake
   does not answer. */
void htg_fake_sent(const htg_fake_t *f, int64_t chat_id, uint64_t after,
                   htg_sent_list_t *out);
void htg_sent_clear(htg_sent_list_t *l);

/* The highest sent seq so far (over all chats): a mark for "after". */
uint64_t htg_fake_sent_mark(const htg_fake_t *f);

/* Waits until a message to chat_id after `after` holds needle in its
   plain text; its seq, or 0 if none came within timeout_ms. */
uint64_t htg_fake_wait_sent(const htg_fake_t *f, int64_t chat_id,
                            uint64_t after, const char *needle,
                            int timeout_ms);

/* ------------------------------------------------------------ the bridge */

/* True if bin/sy-telegram (in $SY_BIN_DIR) exists. */
bool htg_bridge_built(const harness_t *h);

/* Writes the token file (mode 0600) and the telegram/ settings:
   token_file, api_url (the fake), store (in the test dir), poll_timeout
   1s, retry_min 50ms, retry_max 500ms, edit_interval 1s. */
void htg_configure(harness_t *h, const htg_fake_t *f);

/* Starts bin/sy-telegram --config --endpoint (labels telegram,
   telegram-2, ...); if wait, until the broker lists the actor. */
hproc_t *htg_bridge_start(harness_t *h, bool wait);

/* ------------------------------------------------------------ front door */

/* One chat.message delivered to the fake front door. */
typedef struct {
    char     ref[64], key[160], user[64], addr[64], channel[32];
    char    *text;
    uint8_t *body;                  /* the whole body (attachments) */
    size_t   body_len;
    uint8_t  env_id[16];
    uint32_t attempt;
} htg_rec_t;

typedef struct {
    uint8_t corr[16];
    bool    ok;
    char    code[40];
} htg_receipt_t;

typedef struct {
    harness_t     *h;
    hclient_t     *c;               /* offers frontdoor */
    hclient_t     *op;              /* sends telegram.approve */
    htg_rec_t     *recs;
    size_t         n, cap;
    size_t         others;          /* other messages received */
    htg_receipt_t  receipts[64];
    size_t         nreceipts;
} htg_fd_t;

/* Connects the fake front door (and the operator client). */
htg_fd_t *htg_fd_new(harness_t *h);
void htg_fd_free(htg_fd_t **fd_p);

/* Receives and handles messages for ms milliseconds. */
void htg_fd_pump(htg_fd_t *fd, int ms);

/* Deliveries whose ref is ref (0, 1, or more: a duplicate). */
int htg_fd_count(const htg_fd_t *fd, const char *ref);
const htg_rec_t *htg_fd_find(const htg_fd_t *fd, const char *ref);

/* Pumps until ref has arrived, at most timeout_ms (scaled). */
bool htg_fd_wait(htg_fd_t *fd, const char *ref, int timeout_ms);

/* "tg:<update_id>" into out. */
const char *htg_ref(uint64_t update_id, char out[32]);

/* Sends chat.reply {text, user "tg:<chat>", addr "<chat>", ref, job if
   not NULL} to the service telegram; durable (waits for an ok receipt,
   fails the test otherwise) or not. */
void htg_fd_reply(htg_fd_t *fd, int64_t chat_id, const char *ref,
                  const uint8_t *job, const char *text, bool durable);

/* Sends chat.token {job, seq, text, user, addr, ref} to telegram. */
void htg_fd_token(htg_fd_t *fd, int64_t chat_id, const char *ref,
                  const uint8_t job[16], uint64_t seq, const char *text);

/* Sends telegram.approve {code} (deny: with deny true) and waits for the
   telegram.answer: its ok, the text into text (may be NULL).  Fails the
   test if no answer comes. */
bool htg_approve_code(htg_fd_t *fd, const char *code, bool deny,
                      char *text, size_t cap);

/* The pairing code in a message (the word after "approve "), or false. */
bool htg_code_in(const char *plain, char *code, size_t cap);

/* The whole pairing: a message from chat_id, the code the bridge sent
   back, telegram.approve with it.  Fails the test at any step. */
void htg_approve_chat(htg_fd_t *fd, const htg_fake_t *f, int64_t chat_id);

#endif
