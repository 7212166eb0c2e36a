/*  envelope.h -- the envelope header: frame 1 of every switchyard message.
 *
 *  A message on the wire is two ZeroMQ frames: this header, a msgpack map
 *  with short keys, and the body, msgpack that the broker forwards without
 *  decoding.  docs/PROTOCOL.md is the normative description; this module is
 *  its implementation.
 *
 *  Decoding is strict and allocation-free: every key must be known, appear
 *  once and have the right type, size, range and characters; `v` must be a
 *  version we speak; id and type must be present.  Each failure returns its
 *  own detail code (see syerr.h) and, if asked, a readable message naming
 *  the field.
 *
 *  Ownership: envelope_t is a plain value with fixed-size fields; there is
 *  nothing to free.  Encoding writes into the caller's buffer.
 */
#ifndef ENVELOPE_H
#define ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_VERSION   1
#define ENVELOPE_ID_LEN    16     /* id and corr: exactly 16 bytes */
#define ENVELOPE_NAME_MAX  64     /* type, from, to, reply_to: bytes */
#define ENVELOPE_KEY_MAX   128    /* idempotency key: bytes */
#define ENVELOPE_PRIO_HIGH   0
#define ENVELOPE_PRIO_NORMAL 1
#define ENVELOPE_PRIO_LOW    2
/* Largest encoded header: every field at its maximum. */
#define ENVELOPE_MAX_ENCODED 512
/* ttl above this (30 days, ms) is refused as out of range. */
#define ENVELOPE_TTL_MAX   (30ULL * 24 * 3600 * 1000)
#define ENVELOPE_ATTEMPT_MAX 1000000u

/* Bits of envelope_t.present: which optional fields were on the wire or
   are to be encoded. */
enum {
    ENV_HAS_FROM     = 1u << 0,
    ENV_HAS_TO       = 1u << 1,
    ENV_HAS_REPLY_TO = 1u << 2,
    ENV_HAS_CORR     = 1u << 3,
    ENV_HAS_TS       = 1u << 4,
    ENV_HAS_TTL      = 1u << 5,
    ENV_HAS_PRIO     = 1u << 6,
    ENV_HAS_DURABLE  = 1u << 7,
    ENV_HAS_KEY      = 1u << 8,
    ENV_HAS_ATTEMPT  = 1u << 9,
};

typedef struct {
    uint32_t present;                 /* ENV_HAS_* bits */
    uint32_t v;                       /* "v"  required, == ENVELOPE_VERSION */
    uint8_t  id[ENVELOPE_ID_LEN];     /* "id" required, bin 16 */
    char     type[ENVELOPE_NAME_MAX + 1];     /* "type" required */
    char     from[ENVELOPE_NAME_MAX + 1];     /* "from" set by the broker */
    char     to[ENVELOPE_NAME_MAX + 1];       /* "to" service or @actor */
    char     reply_to[ENVELOPE_NAME_MAX + 1]; /* "reply_to" */
    uint8_t  corr[ENVELOPE_ID_LEN];   /* "corr" bin 16 */
    uint64_t ts;                      /* "ts" ms since the epoch */
    uint64_t ttl;                     /* "ttl" ms, 1 .. ENVELOPE_TTL_MAX */
    uint8_t  prio;                    /* "prio" 0..2, default 1 */
    bool     durable;                 /* "durable" */
    char     key[ENVELOPE_KEY_MAX + 1];       /* "key" idempotency key */
    uint32_t attempt;                 /* "attempt" set by the broker */
} envelope_t;

/* Sets *env to an empty header: v = ENVELOPE_VERSION, prio normal, no
   optional field present, id all zero. */
void envelope_init(envelope_t *env);

/* Decodes and validates a header frame.  Returns 0 or a detail code
   (SY_ETRUNCATED, SY_ENOT_MAP, SY_EFIELD_TYPE, ...).  If err != NULL a
   NUL-terminated message naming the field is written there (errlen >= 1).
   Never allocates; never reads outside buf[0..len). */
int envelope_decode(envelope_t *env, const uint8_t *buf, size_t len,
                    char *err, size_t errlen);

/* Encodes env into buf (capacity cap; ENVELOPE_MAX_ENCODED is always
   enough).  Only fields flagged in env->present are written, plus v, id
   and type.  Returns the encoded length (> 0), SY_ENOSPACE, or SY_EINVAL
   if env would not pass envelope_decode() (checked: a header we send is a
   header we would accept). */
int envelope_encode(const envelope_t *env, uint8_t *buf, size_t cap);

/* As envelope_encode(), without re-checking the characters of the string
   fields, for a header whose strings were all written by envelope_decode()
   or the envelope_set_*() setters (which check them) -- e.g. the broker
   forwarding a header it has just decoded, with `from` set by
   envelope_set_from().  Everything else is still checked (v, present
   bits, every string 1..max bytes and terminated inside its array, every
   number in range), so a struct filled some other way can never make it
   read out of bounds; it can only produce a header whose characters the
   receiver refuses.  Same results and bytes as envelope_encode() for such
   a header. */
int envelope_encode_trusted(const envelope_t *env, uint8_t *buf, size_t cap);

/* Field setters: copy s (NUL-terminated) and set the present bit.  Return
   0, or SY_EFIELD_RANGE / SY_EFIELD_CHARS if s is not a valid value for
   that field (the envelope is then unchanged). */
int envelope_set_type(envelope_t *env, const char *s);
int envelope_set_from(envelope_t *env, const char *s);
int envelope_set_to(envelope_t *env, const char *s);
int envelope_set_reply_to(envelope_t *env, const char *s);
int envelope_set_key(envelope_t *env, const char *s);

/* Character rules, exported for the broker and runtime:
   a name (from, to, reply_to, actor and service names) is 1..64 bytes of
   [A-Za-z0-9._:@-]; a type is 1..64 bytes of [a-z0-9._-] beginning with a
   letter; a key is 1..128 bytes of printable ASCII 0x21..0x7e. */
bool envelope_valid_name(const char *s, size_t len);
bool envelope_valid_type(const char *s, size_t len);
bool envelope_valid_key(const char *s, size_t len);

/* True when `to` addresses one actor directly ("@name") rather than a
   service. */
bool envelope_is_direct(const envelope_t *env);

/* Writes 32 lowercase hex digits and a NUL for a 16-byte id into out
   (which must hold 33 bytes). */
void envelope_id_hex(const uint8_t id[ENVELOPE_ID_LEN], char out[33]);

/* Parses 32 hex digits into id.  Returns 0 or SY_EINVAL. */
int envelope_id_parse(const char *hex, uint8_t id[ENVELOPE_ID_LEN]);

#endif
