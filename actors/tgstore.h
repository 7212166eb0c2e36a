/*  tgstore.h -- sy-telegram's store: the update offset, the chats it knows
 *  and their pairing codes, in one LMDB environment.
 *
 *  Records:
 *    offset   the next update_id to ask Telegram for (getUpdates offset):
 *             every update below it has been handled (forwarded to the
 *             front door with a receipt, or deliberately dropped).  It
 *             only moves forward.
 *    chats    one per Telegram chat that ever wrote, keyed by the chat id
 *             as text: its state (pending, allowed, denied), the user who
 *             first wrote, since when (ms), for a pending chat its code,
 *             when the code expires and when it was last reminded.
 *    codes    pairing code -> chat id, for the pending chats.
 *
 *  Pairing codes are TGSTORE_CODE_LEN characters from an alphabet
 *  without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B), drawn with
 *  libsodium's randombytes, unique among pending chats.  A pending chat's
 *  code is valid until its expiry; after that a new message from the chat
 *  gets a new code (tgstore_pair).
 *
 *  What is durable when: every call that changes the store is one LMDB
 *  write transaction committed with a full sync before it returns 0, so
 *  what it wrote survives kill -9 and a machine crash.
 *
 *  Format and damage: a "format" record in the meta database says the
 *  layout's version (TGSTORE_FORMAT_VERSION).  tgstore_open() refuses,
 *  with SY_ESTORE and one line naming the directory and the reason, a
 *  data.mdb that is not LMDB or is damaged, an LMDB file that is not a
 *  telegram store, and another format version.  A refused store is never
 *  recreated or overwritten: move it away to start afresh (the bridge then
 *  forgets its offset, which makes Telegram serve the updates of the last
 *  24 hours again, and the chats, which must be paired again).
 *
 *  Nothing here is secret (chat ids, user ids, codes that only work for
 *  the operator's syctl), so nothing is sealed.
 *
 *  Threads: a tgstore_t belongs to one thread.
 *  Ownership: tgstore_open() returns a store closed with
 *  tgstore_destroy(); tgstore_list() fills an array the caller frees with
 *  free().
 */
#ifndef TGSTORE_H
#define TGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TGSTORE_FORMAT_VERSION 1
#define TGSTORE_CODE_LEN       6
#define TGSTORE_CHAT_MAX       32          /* bytes of a chat id as text */
#define TGSTORE_USER_MAX       128

typedef struct _tgstore_t tgstore_t;

typedef enum {
    TGSTORE_PENDING = 0,
    TGSTORE_ALLOWED = 1,
    TGSTORE_DENIED = 2,
} tgstore_state_t;

typedef struct {
    char            chat[TGSTORE_CHAT_MAX + 1];     /* chat id as text */
    tgstore_state_t state;
    char            user[TGSTORE_USER_MAX + 1];     /* who first wrote */
    char            code[TGSTORE_CODE_LEN + 1];     /* pending: its code */
    uint64_t        since_ms;   /* first message (pending), or decision */
    uint64_t        expires_ms; /* pending: the code's end */
    uint64_t        reminded_ms;/* pending: last reply sent to the chat */
} tgstore_chat_t;

typedef struct {
    const char *dir;            /* the store's directory (made 0700) */
    uint64_t    map_size;       /* 0: 16 MiB */
} tgstore_opts_t;

/* Opens (on first use makes) the store.  Returns 0 with *out, or
   SY_ESTORE / SY_ENOMEM / SY_EINVAL with one line in err. */
int tgstore_open(const tgstore_opts_t *opts, tgstore_t **out, char *err,
                 size_t errlen);

/* Closes the store; NULLs *self_p.  NULL-safe. */
void tgstore_destroy(tgstore_t **self_p);

/* The persisted offset (0 when none yet). */
int tgstore_offset(tgstore_t *self, uint64_t *offset);

/* Moves the offset to `offset` if that is above the persisted one (a
   lower value changes nothing and returns 0). */
int tgstore_offset_set(tgstore_t *self, uint64_t offset);

/* The chat's record.  Returns 0, SY_ENOTFOUND or an error. */
int tgstore_chat_get(tgstore_t *self, const char *chat, tgstore_chat_t *out);

/* A message from a chat that is not allowed: if the chat is unknown, or
   pending with an expired code, makes it pending with a fresh code valid
   ttl_ms from now, user as its user, and sets *fresh.  An allowed or
   denied chat, or a pending one whose code is still valid, is left as it
   is (*fresh false).  The record into *out.  Returns 0 or an error. */
int tgstore_pair(tgstore_t *self, const char *chat, const char *user,
                 uint64_t now_ms, uint64_t ttl_ms, tgstore_chat_t *out,
                 bool *fresh);

/* Records that the pending chat was reminded at now_ms.  Returns 0,
   SY_ENOTFOUND or an error. */
int tgstore_reminded(tgstore_t *self, const char *chat, uint64_t now_ms);

/* The operator's decision on a pairing: `what` is a pending chat's code
   (any case), or a known chat's id (to allow or deny a chat already
   decided).  allow true: the chat becomes allowed, false: denied; its
   code is void.  The chat's record (after) into *out.  Returns 0,
   SY_ENOTFOUND (no such code or chat), SY_EEXPIRED (the code's time ran
   out: the chat gets a new one with its next message) or an error. */
int tgstore_decide(tgstore_t *self, const char *what, bool allow,
                   uint64_t now_ms, tgstore_chat_t *out);

/* Every chat, in key order, into *out (malloc'd; NULL when *n is 0).
   Returns 0 or an error. */
int tgstore_list(tgstore_t *self, tgstore_chat_t **out, size_t *n);

/* "pending" / "allowed" / "denied". */
const char *tgstore_state_name(tgstore_state_t state);

#endif
