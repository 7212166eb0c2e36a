/*  envelope.c -- encode and strictly decode the envelope header.
 *
 *  Decoding walks the header map once with mpread (no allocation): each key
 *  is recognised by its length and bytes, checked against a "seen" bit set
 *  for duplicates, and its value checked for type, range and characters
 *  before it is copied into the fixed-size fields of envelope_t.  The
 *  success path does nothing else (no second pass, no formatting).  It is
 *  on the broker's hot path (several decodes per durable message), so the
 *  common encodings of a header's values (fixstr, bin 8, uint, bool) are
 *  read inline; any other byte, and any value that would not fit the bytes
 *  left, goes to mpread_next(), so the results are mpread's in every case.
 *  Characters are checked with one table lookup per byte.
 *
 *  Error precedence is made independent of key order on the failure path
 *  only: when a field-level error is found, the whole frame is checked for
 *  structure (truncation, counts, depth, trailing bytes) and then for a
 *  `v` we do not speak, and those win.  So a malformed frame is always
 *  TRUNCATED/COUNT/..., and a version-2 header is always VERSION even if
 *  it carries fields version 1 does not know.
 *
 *  Encoding refuses a header that the decoder would refuse, then writes the
 *  msgpack bytes straight into the caller's buffer in two passes: the first
 *  checks every field and adds up the exact size (so nothing is written
 *  unless it all fits), the second writes the precomputed key bytes and the
 *  values, in the encodings msgpack-c's packer would choose (the unit tests
 *  compare with it).  The broker's re-encode of a header it has just
 *  decoded skips only the character checks (envelope_encode_trusted): they
 *  cannot have changed, and the bounds that keep memory safe are checked
 *  either way.
 */
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <string.h>

/* Nesting the structural check tolerates inside a header (a valid header
   has none; this only decides DEPTH against FIELD_TYPE in messages). */
#define ENVELOPE_MAX_DEPTH 8
/* ts must fit the 6 bytes of time in an id. */
#define ENVELOPE_TS_MAX ((1ULL << 48) - 1)

/* Fields, in encoding order; the index is also the "seen" bit. */
typedef enum {
    EF_V, EF_ID, EF_TYPE, EF_FROM, EF_TO, EF_REPLY_TO, EF_CORR, EF_TS,
    EF_TTL, EF_PRIO, EF_DURABLE, EF_KEY, EF_ATTEMPT, EF_COUNT, EF_UNKNOWN
} envelope_field_t;

/* Each key as msgpack bytes: a fixstr header, then the name (so the name
   alone, NUL-terminated, starts at the second byte). */
static const char *const envelope_key_bytes[EF_COUNT] = {
    "\xa1" "v", "\xa2" "id", "\xa4" "type", "\xa4" "from", "\xa2" "to",
    "\xa8" "reply_to", "\xa4" "corr", "\xa2" "ts", "\xa3" "ttl",
    "\xa4" "prio", "\xa7" "durable", "\xa3" "key", "\xa7" "attempt"
};

/* The field's name, for messages. */
static const char *envelope_field_name(envelope_field_t f)
{
    return envelope_key_bytes[f] + 1;
}

/* The ENV_HAS_* bit of each field, 0 for v, id, type. */
static const uint32_t envelope_field_bit[EF_COUNT] = {
    0, 0, 0, ENV_HAS_FROM, ENV_HAS_TO, ENV_HAS_REPLY_TO, ENV_HAS_CORR,
    ENV_HAS_TS, ENV_HAS_TTL, ENV_HAS_PRIO, ENV_HAS_DURABLE, ENV_HAS_KEY,
    ENV_HAS_ATTEMPT
};

/* ---------------------------------------------------------------- chars */

/* Character classes, one bit each: may appear in a name, in a type (after
   its first letter), in a key.  One table lookup per byte instead of a
   chain of range tests; tests/unit/test_envelope.c checks every byte
   against the rules written out in envelope.h. */
enum { ENV_CN = 1, ENV_CT = 2, ENV_CK = 4 };

#define K_  ENV_CK
#define NK  (ENV_CN | ENV_CK)
#define NTK (ENV_CN | ENV_CT | ENV_CK)
static const uint8_t envelope_cclass[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 0, K_, K_, K_, K_, K_, K_, K_, K_, K_, K_, K_, K_, NTK, NTK, K_,
    /* 0x30 */ NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NK, K_, K_, K_, K_, K_,
    /* 0x40 */ NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK,
    /* 0x50 */ NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, NK, K_, K_, K_, K_, NTK,
    /* 0x60 */ K_, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK,
    /* 0x70 */ NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, NTK, K_, K_, K_, K_, 0,
    /* 0x80 .. 0xff: none */
};
#undef K_
#undef NK
#undef NTK

/* True if every one of the len bytes at s has class bit cls.  No early
   exit, four bytes a round: a load and an AND per byte. */
static bool envelope_chars(const char *s, size_t len, unsigned cls)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned acc = cls;
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        acc &= envelope_cclass[u[i]] & envelope_cclass[u[i + 1]] &
               envelope_cclass[u[i + 2]] & envelope_cclass[u[i + 3]];
    for (; i < len; i++)
        acc &= envelope_cclass[u[i]];
    return acc != 0;
}

bool envelope_valid_name(const char *s, size_t len)
{
    return s && len >= 1 && len <= ENVELOPE_NAME_MAX &&
           envelope_chars(s, len, ENV_CN);
}

bool envelope_valid_type(const char *s, size_t len)
{
    return s && len >= 1 && len <= ENVELOPE_NAME_MAX &&
           s[0] >= 'a' && s[0] <= 'z' && envelope_chars(s, len, ENV_CT);
}

bool envelope_valid_key(const char *s, size_t len)
{
    return s && len >= 1 && len <= ENVELOPE_KEY_MAX &&
           envelope_chars(s, len, ENV_CK);
}

/* ---------------------------------------------------------------- basics */

void envelope_init(envelope_t *env)
{
    memset(env, 0, sizeof *env);
    env->v = ENVELOPE_VERSION;
    env->prio = ENVELOPE_PRIO_NORMAL;
}

bool envelope_is_direct(const envelope_t *env)
{
    return (env->present & ENV_HAS_TO) && env->to[0] == '@';
}

void envelope_id_hex(const uint8_t id[ENVELOPE_ID_LEN], char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ENVELOPE_ID_LEN; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 0x0f];
    }
    out[32] = '\0';
}

static int envelope_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int envelope_id_parse(const char *hex, uint8_t id[ENVELOPE_ID_LEN])
{
    if (!hex || strnlen(hex, 33) != 32)
        return SY_EINVAL;
    uint8_t tmp[ENVELOPE_ID_LEN];
    for (int i = 0; i < ENVELOPE_ID_LEN; i++) {
        int hi = envelope_hexval(hex[2 * i]);
        int lo = envelope_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SY_EINVAL;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(id, tmp, sizeof tmp);
    return 0;
}

/* ---------------------------------------------------------------- setters */

typedef bool (*envelope_check_fn)(const char *s, size_t len);

/* Validates s against check (max bytes) and copies it into dst. */
static int envelope_set(envelope_t *env, char *dst, size_t max,
                        envelope_check_fn check, const char *s, uint32_t bit)
{
    if (!s)
        return SY_EFIELD_RANGE;
    size_t len = strnlen(s, max + 1);
    if (len < 1 || len > max)
        return SY_EFIELD_RANGE;
    if (!check(s, len))
        return SY_EFIELD_CHARS;
    memcpy(dst, s, len);
    dst[len] = '\0';
    env->present |= bit;
    return 0;
}

int envelope_set_type(envelope_t *env, const char *s)
{
    return envelope_set(env, env->type, ENVELOPE_NAME_MAX,
                        envelope_valid_type, s, 0);
}

int envelope_set_from(envelope_t *env, const char *s)
{
    return envelope_set(env, env->from, ENVELOPE_NAME_MAX,
                        envelope_valid_name, s, ENV_HAS_FROM);
}

int envelope_set_to(envelope_t *env, const char *s)
{
    return envelope_set(env, env->to, ENVELOPE_NAME_MAX,
                        envelope_valid_name, s, ENV_HAS_TO);
}

int envelope_set_reply_to(envelope_t *env, const char *s)
{
    return envelope_set(env, env->reply_to, ENVELOPE_NAME_MAX,
                        envelope_valid_name, s, ENV_HAS_REPLY_TO);
}

int envelope_set_key(envelope_t *env, const char *s)
{
    return envelope_set(env, env->key, ENVELOPE_KEY_MAX,
                        envelope_valid_key, s, ENV_HAS_KEY);
}

/* ---------------------------------------------------------------- decode */

/* Big-endian unsigned of n (1, 2, 4 or 8) bytes. */
static uint64_t envelope_be(const uint8_t *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[i];
    return x;
}

/* mpread_next() with the encodings of a valid header read inline: fixstr
   (every key, short strings), bin 8 (ids), positive fixint and uint 8..64
   (numbers), bool.  Any other byte, and any of these whose bytes are not
   all in the buffer, is left to mpread_next(), so the value read (or the
   error) is always mpread's.  (ptr and len are not cleared for a number or
   a bool: nothing reads them for those kinds.) */
static inline int envelope_next(mpread_t *r, mpval_t *v)
{
    const uint8_t *p = r->p;
    size_t left = (size_t)(r->end - p);
    if (left == 0)
        return mpread_next(r, v);
    uint8_t b = p[0];
    size_t n;
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1fu;
        if (n < left) {
            v->kind = MP_STR;
            v->ptr = p + 1;
            v->len = (uint32_t)n;
            r->p = p + 1 + n;
            return 0;
        }
    } else if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
        n = b <= 0x7f ? 0 : (size_t)1 << (b - 0xcc);
        if (n < left) {
            uint64_t u = n ? envelope_be(p + 1, n) : b;
            v->kind = MP_UINT;
            v->u = u;
            v->i = u <= (uint64_t)INT64_MAX ? (int64_t)u : INT64_MAX;
            r->p = p + 1 + n;
            return 0;
        }
    } else if (b == 0xc4) {
        if (left >= 2 && p[1] <= left - 2) {
            v->kind = MP_BIN;
            v->ptr = p + 2;
            v->len = p[1];
            r->p = p + 2 + p[1];
            return 0;
        }
    } else if (b == 0xc2 || b == 0xc3) {
        v->kind = MP_BOOL;
        v->b = b == 0xc3;
        r->p = p + 1;
        return 0;
    }
    return mpread_next(r, v);
}

static envelope_field_t envelope_field_of(const mpval_t *k)
{
    const char *s = (const char *)k->ptr;
    switch (k->len) {
    case 1: if (s[0] == 'v') return EF_V; break;
    case 2:
        if (!memcmp(s, "id", 2)) return EF_ID;
        if (!memcmp(s, "to", 2)) return EF_TO;
        if (!memcmp(s, "ts", 2)) return EF_TS;
        break;
    case 3:
        if (!memcmp(s, "ttl", 3)) return EF_TTL;
        if (!memcmp(s, "key", 3)) return EF_KEY;
        break;
    case 4:
        if (!memcmp(s, "type", 4)) return EF_TYPE;
        if (!memcmp(s, "from", 4)) return EF_FROM;
        if (!memcmp(s, "corr", 4)) return EF_CORR;
        if (!memcmp(s, "prio", 4)) return EF_PRIO;
        break;
    case 7:
        if (!memcmp(s, "durable", 7)) return EF_DURABLE;
        if (!memcmp(s, "attempt", 7)) return EF_ATTEMPT;
        break;
    case 8:
        if (!memcmp(s, "reply_to", 8)) return EF_REPLY_TO;
        break;
    default: break;
    }
    return EF_UNKNOWN;
}

typedef struct {
    char  *err;
    size_t errlen;
} envelope_errbuf_t;

static int envelope_type_err(const envelope_errbuf_t *e, envelope_field_t f,
                             const mpval_t *v, const char *want)
{
    return syerr_fmt(e->err, e->errlen, SY_EFIELD_TYPE,
                     "field \"%s\": expected %s, got %s",
                     envelope_field_name(f), want, mpval_kind_name(v->kind));
}

/* A uint field within [lo, hi]. */
static int envelope_get_uint(const envelope_errbuf_t *e, envelope_field_t f,
                             const mpval_t *v, uint64_t lo, uint64_t hi,
                             uint64_t *out)
{
    if (v->kind == MP_UINT)
        *out = v->u;
    else if (!mpval_as_uint(v, out))
        return envelope_type_err(e, f, v, "uint");
    if (*out < lo || *out > hi)
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_RANGE,
                         "field \"%s\": %llu out of range %llu..%llu",
                         envelope_field_name(f), (unsigned long long)*out,
                         (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

static int envelope_get_id(const envelope_errbuf_t *e, envelope_field_t f,
                           const mpval_t *v, uint8_t out[ENVELOPE_ID_LEN])
{
    if (v->kind != MP_BIN)
        return envelope_type_err(e, f, v, "bin 16");
    if (v->len != ENVELOPE_ID_LEN)
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_RANGE,
                         "field \"%s\": %u bytes, must be 16",
                         envelope_field_name(f), (unsigned)v->len);
    memcpy(out, v->ptr, ENVELOPE_ID_LEN);
    return 0;
}

/* A str field of 1..max bytes whose bytes all have class cls (a type:
   ENV_CT and a first letter a-z), copied NUL-terminated into out. */
static int envelope_get_str(const envelope_errbuf_t *e, envelope_field_t f,
                            const mpval_t *v, size_t max, unsigned cls, char *out)
{
    if (v->kind != MP_STR)
        return envelope_type_err(e, f, v, "str");
    if (v->len < 1 || v->len > max)
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_RANGE,
                         "field \"%s\": %u bytes, allowed 1..%zu",
                         envelope_field_name(f), (unsigned)v->len, max);
    const char *s = (const char *)v->ptr;
    if (!envelope_chars(s, v->len, cls) ||
        (cls == ENV_CT && (s[0] < 'a' || s[0] > 'z')))
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_CHARS,
                         "field \"%s\": characters not allowed",
                         envelope_field_name(f));
    memcpy(out, s, v->len);
    out[v->len] = '\0';
    return 0;
}

/* Checks one field's value and stores it. */
static int envelope_store(envelope_t *env, const envelope_errbuf_t *e,
                          envelope_field_t f, const mpval_t *v)
{
    uint64_t u;
    int rc;
    switch (f) {
    case EF_V:
        if (!mpval_as_uint(v, &u))
            return envelope_type_err(e, f, v, "uint");
        if (u != ENVELOPE_VERSION)
            return syerr_fmt(e->err, e->errlen, SY_EVERSION,
                             "field \"v\": version %llu, only 1 is spoken",
                             (unsigned long long)u);
        env->v = (uint32_t)u;
        return 0;
    case EF_ID:
        return envelope_get_id(e, f, v, env->id);
    case EF_CORR:
        return envelope_get_id(e, f, v, env->corr);
    case EF_TYPE:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, ENV_CT, env->type);
    case EF_FROM:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, ENV_CN, env->from);
    case EF_TO:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, ENV_CN, env->to);
    case EF_REPLY_TO:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, ENV_CN, env->reply_to);
    case EF_KEY:
        return envelope_get_str(e, f, v, ENVELOPE_KEY_MAX, ENV_CK, env->key);
    case EF_TS:
        return envelope_get_uint(e, f, v, 0, ENVELOPE_TS_MAX, &env->ts);
    case EF_TTL:
        return envelope_get_uint(e, f, v, 1, ENVELOPE_TTL_MAX, &env->ttl);
    case EF_PRIO:
        rc = envelope_get_uint(e, f, v, ENVELOPE_PRIO_HIGH, ENVELOPE_PRIO_LOW, &u);
        env->prio = (uint8_t)u;
        return rc;
    case EF_ATTEMPT:
        rc = envelope_get_uint(e, f, v, 0, ENVELOPE_ATTEMPT_MAX, &u);
        env->attempt = (uint32_t)u;
        return rc;
    case EF_DURABLE:
        if (v->kind != MP_BOOL)
            return envelope_type_err(e, f, v, "bool");
        env->durable = v->b;
        return 0;
    default:
        return SY_EINVAL;
    }
}

static int envelope_struct_err(const envelope_errbuf_t *e, int rc)
{
    return syerr_fmt(e->err, e->errlen, rc, "header: %s", syerr_text(rc));
}

/* The single pass: returns 0 or the first error met. */
static int envelope_decode_pass(envelope_t *env, const uint8_t *buf, size_t len,
                                const envelope_errbuf_t *e)
{
    mpread_t r;
    mpval_t m, k, v;
    mpread_init(&r, buf, len);
    int rc = mpread_next(&r, &m);
    if (rc)
        return envelope_struct_err(e, rc);
    if (m.kind != MP_MAP)
        return syerr_fmt(e->err, e->errlen, SY_ENOT_MAP,
                         "header: expected a map, got %s", mpval_kind_name(m.kind));
    uint32_t seen = 0;
    for (uint32_t i = 0; i < m.len; i++) {
        if ((rc = envelope_next(&r, &k)))
            return envelope_struct_err(e, rc);
        if (k.kind != MP_STR)
            return syerr_fmt(e->err, e->errlen, SY_EKEY_TYPE,
                             "header: key %u is %s, not str", (unsigned)i,
                             mpval_kind_name(k.kind));
        envelope_field_t f = envelope_field_of(&k);
        if (f == EF_UNKNOWN) {
            char name[40];
            mpval_printable(&k, name, sizeof name);
            return syerr_fmt(e->err, e->errlen, SY_EUNKNOWN_FIELD,
                             "header: unknown field \"%s\"", name);
        }
        if (seen & (1u << f))
            return syerr_fmt(e->err, e->errlen, SY_EDUP_FIELD,
                             "field \"%s\": appears twice", envelope_field_name(f));
        seen |= 1u << f;
        if ((rc = envelope_next(&r, &v)))
            return envelope_struct_err(e, rc);
        if ((rc = envelope_store(env, e, f, &v)))
            return rc;
        env->present |= envelope_field_bit[f];
    }
    if (mpread_left(&r) > 0)
        return envelope_struct_err(e, SY_ETRAILING);
    static const envelope_field_t required[] = { EF_V, EF_ID, EF_TYPE };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!(seen & (1u << required[i])))
            return syerr_fmt(e->err, e->errlen, SY_EMISSING,
                             "field \"%s\": required", envelope_field_name(required[i]));
    return 0;
}

/* Failure path only: structure, then version, win over field errors. */
static int envelope_precedence(const uint8_t *buf, size_t len,
                               const envelope_errbuf_t *e, int rc)
{
    int s = mpread_check(buf, len, ENVELOPE_MAX_DEPTH);
    if (s)
        return envelope_struct_err(e, s);
    if (rc == SY_EVERSION)
        return rc;
    mpread_t r, at;
    mpval_t m, v;
    uint64_t u;
    mpread_init(&r, buf, len);
    if (mpread_next(&r, &m) == 0 && m.kind == MP_MAP &&
        mpread_map_find(&r, &m, "v", &v, &at) == 0 &&
        mpval_as_uint(&v, &u) && u != ENVELOPE_VERSION)
        return syerr_fmt(e->err, e->errlen, SY_EVERSION,
                         "field \"v\": version %llu, only 1 is spoken",
                         (unsigned long long)u);
    return rc;
}

int envelope_decode(envelope_t *env, const uint8_t *buf, size_t len,
                    char *err, size_t errlen)
{
    envelope_errbuf_t e = { err, errlen };
    if (err && errlen > 0)
        err[0] = '\0';
    envelope_init(env);
    if (!buf && len > 0)
        return syerr_fmt(err, errlen, SY_EINVAL, "header: no buffer");
    if (len > ENVELOPE_MAX_ENCODED)
        return syerr_fmt(err, errlen, SY_EFIELD_RANGE,
                         "header: %zu bytes, more than %d",
                         len, ENVELOPE_MAX_ENCODED);
    int rc = envelope_decode_pass(env, buf, len, &e);
    if (rc && rc != SY_ETRUNCATED && rc != SY_ECOUNT && rc != SY_ETRAILING &&
        rc != SY_EDEPTH)
        rc = envelope_precedence(buf, len, &e, rc);
    return rc;
}

/* ---------------------------------------------------------------- encode */

/* Lengths of the string fields of a header that passed envelope_sizes():
   each 1..max, 0 when the field is absent. */
typedef struct {
    size_t type, from, to, reply_to, key;
} envelope_lens_t;

/* Length of a string field of 1..max bytes NUL-terminated within its
   array (strnlen never reads past max + 1 bytes), whose characters pass
   check (not looked at when check is NULL); 0 if it is not one. */
static size_t envelope_str_len(const char *s, size_t max, envelope_check_fn check)
{
    size_t n = strnlen(s, max + 1);
    if (n < 1 || n > max || (check && !check(s, n)))
        return 0;
    return n;
}

/* Bytes of a str of n <= 255 bytes (fixstr or str 8, as msgpack-c packs). */
static size_t envelope_str_size(size_t n)
{
    return (n < 32 ? 1 : 2) + n;
}

/* Bytes of a uint in msgpack-c's encoding (the smallest). */
static size_t envelope_uint_size(uint64_t u)
{
    return u < 0x80 ? 1 : u <= 0xff ? 2 : u <= 0xffff ? 3 :
           u <= 0xffffffffu ? 5 : 9;
}

/* Bytes of the present optional string fields, keys and values: 0 when
   absent, SIZE_MAX when present but not a valid field. */
static size_t envelope_opt_str(uint32_t p, uint32_t bit, size_t keylen,
                               const char *s, size_t max,
                               envelope_check_fn check, size_t *len)
{
    *len = 0;
    if (!(p & bit))
        return 0;
    *len = envelope_str_len(s, max, check);
    return *len ? keylen + envelope_str_size(*len) : SIZE_MAX;
}

/* Would envelope_decode() accept env's fields?  If so returns the exact
   encoded size and the string lengths in *l; else 0.  With chars false the
   characters of the strings are taken as checked (envelope_encode_trusted);
   everything else still is: no string is read past its array and no
   number leaves its range, whoever filled the struct. */
static size_t envelope_sizes(const envelope_t *env, bool chars, envelope_lens_t *l)
{
    uint32_t p = env->present;
    envelope_check_fn name = chars ? envelope_valid_name : NULL;
    if (env->v != ENVELOPE_VERSION || (p & ~(uint32_t)((ENV_HAS_ATTEMPT << 1) - 1)))
        return 0;
    l->type = envelope_str_len(env->type, ENVELOPE_NAME_MAX,
                               chars ? envelope_valid_type : NULL);
    if (!l->type)
        return 0;
    /* map header, "v" 1, "id" bin 16, "type" */
    size_t size = 1 + 3 + (3 + 2 + ENVELOPE_ID_LEN) + 5 + envelope_str_size(l->type);
    size_t s[4];
    s[0] = envelope_opt_str(p, ENV_HAS_FROM, 5, env->from, ENVELOPE_NAME_MAX, name, &l->from);
    s[1] = envelope_opt_str(p, ENV_HAS_TO, 3, env->to, ENVELOPE_NAME_MAX, name, &l->to);
    s[2] = envelope_opt_str(p, ENV_HAS_REPLY_TO, 9, env->reply_to, ENVELOPE_NAME_MAX,
                            name, &l->reply_to);
    s[3] = envelope_opt_str(p, ENV_HAS_KEY, 4, env->key, ENVELOPE_KEY_MAX,
                            chars ? envelope_valid_key : NULL, &l->key);
    for (int i = 0; i < 4; i++) {
        if (s[i] == SIZE_MAX)
            return 0;
        size += s[i];
    }
    if ((p & ENV_HAS_TS) && env->ts > ENVELOPE_TS_MAX)
        return 0;
    if ((p & ENV_HAS_TTL) && (env->ttl < 1 || env->ttl > ENVELOPE_TTL_MAX))
        return 0;
    if ((p & ENV_HAS_PRIO) && env->prio > ENVELOPE_PRIO_LOW)
        return 0;
    if ((p & ENV_HAS_ATTEMPT) && env->attempt > ENVELOPE_ATTEMPT_MAX)
        return 0;
    if (p & ENV_HAS_CORR)    size += 5 + 2 + ENVELOPE_ID_LEN;
    if (p & ENV_HAS_TS)      size += 3 + envelope_uint_size(env->ts);
    if (p & ENV_HAS_TTL)     size += 4 + envelope_uint_size(env->ttl);
    if (p & ENV_HAS_PRIO)    size += 5 + 1;
    if (p & ENV_HAS_DURABLE) size += 8 + 1;
    if (p & ENV_HAS_ATTEMPT) size += 8 + envelope_uint_size(env->attempt);
    return size;
}

/* Writes the bytes of a string literal (constant size: plain stores). */
#define ENVELOPE_PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* u in n bytes, big-endian. */
static uint8_t *envelope_put_be(uint8_t *p, uint64_t u, int n)
{
    for (int i = n - 1; i >= 0; i--, u >>= 8)
        p[i] = (uint8_t)u;
    return p + n;
}

/* A uint, in envelope_uint_size(u) bytes. */
static uint8_t *envelope_put_uint(uint8_t *p, uint64_t u)
{
    if (u < 0x80) {
        *p = (uint8_t)u;
        return p + 1;
    }
    if (u <= 0xff) { *p = 0xcc; return envelope_put_be(p + 1, u, 1); }
    if (u <= 0xffff) { *p = 0xcd; return envelope_put_be(p + 1, u, 2); }
    if (u <= 0xffffffffu) { *p = 0xce; return envelope_put_be(p + 1, u, 4); }
    *p = 0xcf;
    return envelope_put_be(p + 1, u, 8);
}

/* A str of n <= 255 bytes, in envelope_str_size(n) bytes. */
static uint8_t *envelope_put_str(uint8_t *p, const char *s, size_t n)
{
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    }
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *envelope_put_id(uint8_t *p, const uint8_t id[ENVELOPE_ID_LEN])
{
    p = ENVELOPE_PUT(p, "\xc4\x10");
    memcpy(p, id, ENVELOPE_ID_LEN);
    return p + ENVELOPE_ID_LEN;
}

/* The second pass: env's bytes, in field order, from buf on. */
static uint8_t *envelope_put_fields(uint8_t *p, const envelope_t *env,
                                    const envelope_lens_t *l)
{
    uint32_t pr = env->present;
    unsigned n = 3;
    for (uint32_t bits = pr; bits; bits &= bits - 1)
        n++;
    *p++ = (uint8_t)(0x80 | n);   /* n <= 13: always a fixmap */
    p = ENVELOPE_PUT(p, "\xa1" "v\x01");
    p = envelope_put_id(ENVELOPE_PUT(p, "\xa2" "id"), env->id);
    p = envelope_put_str(ENVELOPE_PUT(p, "\xa4" "type"), env->type, l->type);
    if (pr & ENV_HAS_FROM)
        p = envelope_put_str(ENVELOPE_PUT(p, "\xa4" "from"), env->from, l->from);
    if (pr & ENV_HAS_TO)
        p = envelope_put_str(ENVELOPE_PUT(p, "\xa2" "to"), env->to, l->to);
    if (pr & ENV_HAS_REPLY_TO)
        p = envelope_put_str(ENVELOPE_PUT(p, "\xa8" "reply_to"), env->reply_to, l->reply_to);
    if (pr & ENV_HAS_CORR)
        p = envelope_put_id(ENVELOPE_PUT(p, "\xa4" "corr"), env->corr);
    if (pr & ENV_HAS_TS)
        p = envelope_put_uint(ENVELOPE_PUT(p, "\xa2" "ts"), env->ts);
    if (pr & ENV_HAS_TTL)
        p = envelope_put_uint(ENVELOPE_PUT(p, "\xa3" "ttl"), env->ttl);
    if (pr & ENV_HAS_PRIO)
        p = envelope_put_uint(ENVELOPE_PUT(p, "\xa4" "prio"), env->prio);
    if (pr & ENV_HAS_DURABLE) {
        p = ENVELOPE_PUT(p, "\xa7" "durable");
        *p++ = env->durable ? 0xc3 : 0xc2;
    }
    if (pr & ENV_HAS_KEY)
        p = envelope_put_str(ENVELOPE_PUT(p, "\xa3" "key"), env->key, l->key);
    if (pr & ENV_HAS_ATTEMPT)
        p = envelope_put_uint(ENVELOPE_PUT(p, "\xa7" "attempt"), env->attempt);
    return p;
}

static int envelope_encode_with(const envelope_t *env, uint8_t *buf, size_t cap,
                                bool chars)
{
    if (!env || !buf)
        return SY_EINVAL;
    envelope_lens_t l;
    size_t size = envelope_sizes(env, chars, &l);
    if (size == 0)
        return SY_EINVAL;
    if (size > cap)
        return SY_ENOSPACE;
    if (size > ENVELOPE_MAX_ENCODED)
        return SY_EINVAL;   /* every field near its maximum at once */
    uint8_t *end = envelope_put_fields(buf, env, &l);
    return (int)(end - buf);   /* == size: both passes follow the same fields */
}

int envelope_encode(const envelope_t *env, uint8_t *buf, size_t cap)
{
    return envelope_encode_with(env, buf, cap, true);
}

int envelope_encode_trusted(const envelope_t *env, uint8_t *buf, size_t cap)
{
    return envelope_encode_with(env, buf, cap, false);
}
