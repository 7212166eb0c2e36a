/*  rules.h -- how sy-router classifies a chat request (docs/CHAT.md).
 *
 *  The rules come from the configuration, never from the code: phrase
 *  lists router/scheduled, router/heavy and router/light, the attachment
 *  patterns router/heavy_attachments and the fallback router/default.  A
 *  phrase is added by editing the file; nothing is recompiled.
 *
 *  Lists are comma separated; spaces around an item are trimmed and empty
 *  items ignored ("a, ,b," is {a, b}).  An item must be valid UTF-8
 *  without control characters or '"', at most RULES_ITEM_MAX bytes, at
 *  most RULES_ITEMS_MAX items per list; an attachment pattern is a kind
 *  or MIME type (letters, digits, . _ + - /) with an optional trailing *
 *  (a prefix).  Anything else is SY_ECONFIG with a message naming the
 *  setting.
 *
 *  Classification, first match wins:
 *    1. a router/scheduled phrase                  -> SCHEDULED
 *    2. a router/heavy phrase, then an attachment whose kind or mime
 *       matches router/heavy_attachments           -> HEAVY
 *    3. a router/light phrase                      -> LIGHT
 *    4. router/default
 *  Within a list the first phrase of the list that occurs wins.  Phrases
 *  are substrings of the text compared case-insensitively for ASCII
 *  letters only; other bytes (Korean, in UTF-8) compare exactly, which
 *  for valid UTF-8 can only match whole characters.
 *
 *  The result's `why` is for people: `phrase "분석해줘" (router/heavy)`,
 *  `attachment photo (router/heavy_attachments)`, `no rule matched
 *  (router/default)`.  Bytes of an attachment's kind or mime that are not
 *  printable ASCII show as '?'.
 *
 *  Pure: no I/O, no logging, no global state.  A rules_t is immutable
 *  after rules_new() and may be shared by readers.
 *
 *  Ownership: rules_new() returns a rules_t the caller frees with
 *  rules_destroy(); it keeps its own copies of the configured strings.
 */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"

#define RULES_ITEM_MAX  128     /* bytes of one phrase or pattern */
#define RULES_ITEMS_MAX 256     /* items of one list */
#define RULES_WHY_MAX   256     /* bytes of a `why`, NUL included */

/* The order is router/default's enum order (heavy|light|scheduled). */
typedef enum {
    RULES_HEAVY = 0,
    RULES_LIGHT = 1,
    RULES_SCHEDULED = 2,
} rules_class_t;

typedef struct {
    rules_class_t cls;
    char          why[RULES_WHY_MAX];
} rules_result_t;

typedef struct _rules_t rules_t;

/* Reads the router/ settings of cfg.  Returns 0 with *out set, SY_ECONFIG
   (a line naming the setting in err) or SY_ENOMEM. */
int rules_new(const config_t *cfg, rules_t **out, char *err, size_t errlen);

/* As rules_new() from the raw setting values (for tests and tools);
   dflt is the class of router/default. */
int rules_new_from(const char *heavy, const char *light, const char *scheduled,
                   const char *heavy_attachments, rules_class_t dflt,
                   rules_t **out, char *err, size_t errlen);

void rules_destroy(rules_t **self_p);

/* Classifies text (len bytes, need not be NUL-terminated; NULL with len
   0 is the empty text) with its attachments: a msgpack array of maps
   {kind, mime, ...} (attachments NULL or att_len 0: none; items that are
   not maps, and kind / mime values that are not strings, are ignored).
   Returns 0 with *out filled, SY_EINVAL (NULL arguments), SY_EBAD_BODY
   (attachments not one well-formed array) or SY_ENOMEM. */
int rules_classify(const rules_t *self, const char *text, size_t len,
                   const uint8_t *attachments, size_t att_len,
                   rules_result_t *out);

/* "HEAVY", "LIGHT", "SCHEDULED" (static; "?" for a value not in the
   enum). */
const char *rules_class_name(rules_class_t cls);

#endif
