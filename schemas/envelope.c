/*  envelope.c -- encode and strictly decode the envelope header.
 *
 *  Decoding walks the header map once with mpread (no allocation): each key
 *  is recognised by its length and bytes, checked against a "seen" bit set
 *  for duplicates, and its value checked for type, range and characters
 *  before it is copied into the fixed-size fields of envelope_t.  The
 *  success path does nothing else (no second pass, no formatting).
 *
 *  Error precedence is made independent of key order on the failure path
 *  only: when a field-level error is found, the whole frame is checked for
 *  structure (truncation, counts, depth, trailing bytes) and then for a
 *  `v` we do not speak, and those win.  So a malformed frame is always
 *  TRUNCATED/COUNT/..., and a version-2 header is always VERSION even if
 *  it carries fields version 1 does not know.
 *
 *  Encoding uses msgpack-c's packer with a write callback into the caller's
 *  buffer, and refuses a header that the decoder would refuse.  The
 *  broker's re-encode of a header it has just decoded skips only the
 *  character checks (envelope_encode_trusted): they cannot have changed,
 *  and the bounds that keep memory safe are checked either way.
 */
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <msgpack.h>
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

static const char *const envelope_field_names[EF_COUNT] = {
    "v", "id", "type", "from", "to", "reply_to", "corr", "ts", "ttl",
    "prio", "durable", "key", "attempt"
};

/* ---------------------------------------------------------------- chars */

static bool envelope_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
           c == '@' || c == '-';
}

static bool envelope_type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool envelope_valid_name(const char *s, size_t len)
{
    if (!s || len < 1 || len > ENVELOPE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!envelope_name_char((unsigned char)s[i]))
            return false;
    return true;
}

bool envelope_valid_type(const char *s, size_t len)
{
    if (!s || len < 1 || len > ENVELOPE_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!envelope_type_char((unsigned char)s[i]))
            return false;
    return true;
}

bool envelope_valid_key(const char *s, size_t len)
{
    if (!s || len < 1 || len > ENVELOPE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
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
                     envelope_field_names[f], want, mpval_kind_name(v->kind));
}

/* A uint field within [lo, hi]. */
static int envelope_get_uint(const envelope_errbuf_t *e, envelope_field_t f,
                             const mpval_t *v, uint64_t lo, uint64_t hi,
                             uint64_t *out)
{
    if (!mpval_as_uint(v, out))
        return envelope_type_err(e, f, v, "uint");
    if (*out < lo || *out > hi)
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_RANGE,
                         "field \"%s\": %llu out of range %llu..%llu",
                         envelope_field_names[f], (unsigned long long)*out,
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
                         envelope_field_names[f], (unsigned)v->len);
    memcpy(out, v->ptr, ENVELOPE_ID_LEN);
    return 0;
}

static int envelope_get_str(const envelope_errbuf_t *e, envelope_field_t f,
                            const mpval_t *v, size_t max,
                            envelope_check_fn check, char *out)
{
    if (v->kind != MP_STR)
        return envelope_type_err(e, f, v, "str");
    if (v->len < 1 || v->len > max)
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_RANGE,
                         "field \"%s\": %u bytes, allowed 1..%zu",
                         envelope_field_names[f], (unsigned)v->len, max);
    if (!check((const char *)v->ptr, v->len))
        return syerr_fmt(e->err, e->errlen, SY_EFIELD_CHARS,
                         "field \"%s\": characters not allowed",
                         envelope_field_names[f]);
    memcpy(out, v->ptr, v->len);
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
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, envelope_valid_type, env->type);
    case EF_FROM:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, envelope_valid_name, env->from);
    case EF_TO:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, envelope_valid_name, env->to);
    case EF_REPLY_TO:
        return envelope_get_str(e, f, v, ENVELOPE_NAME_MAX, envelope_valid_name, env->reply_to);
    case EF_KEY:
        return envelope_get_str(e, f, v, ENVELOPE_KEY_MAX, envelope_valid_key, env->key);
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

/* The ENV_HAS_* bit of a field, 0 for v, id, type. */
static uint32_t envelope_present_bit(envelope_field_t f)
{
    switch (f) {
    case EF_FROM:     return ENV_HAS_FROM;
    case EF_TO:       return ENV_HAS_TO;
    case EF_REPLY_TO: return ENV_HAS_REPLY_TO;
    case EF_CORR:     return ENV_HAS_CORR;
    case EF_TS:       return ENV_HAS_TS;
    case EF_TTL:      return ENV_HAS_TTL;
    case EF_PRIO:     return ENV_HAS_PRIO;
    case EF_DURABLE:  return ENV_HAS_DURABLE;
    case EF_KEY:      return ENV_HAS_KEY;
    case EF_ATTEMPT:  return ENV_HAS_ATTEMPT;
    default:          return 0;
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
        if ((rc = mpread_next(&r, &k)))
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
                             "field \"%s\": appears twice", envelope_field_names[f]);
        seen |= 1u << f;
        if ((rc = mpread_next(&r, &v)))
            return envelope_struct_err(e, rc);
        if ((rc = envelope_store(env, e, f, &v)))
            return rc;
        env->present |= envelope_present_bit(f);
    }
    if (mpread_left(&r) > 0)
        return envelope_struct_err(e, SY_ETRAILING);
    static const envelope_field_t required[] = { EF_V, EF_ID, EF_TYPE };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!(seen & (1u << required[i])))
            return syerr_fmt(e->err, e->errlen, SY_EMISSING,
                             "field \"%s\": required", envelope_field_names[required[i]]);
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

typedef struct {
    uint8_t *buf;
    size_t   cap;
    size_t   len;
} envelope_sink_t;

static int envelope_sink_write(void *data, const char *p, size_t n)
{
    envelope_sink_t *s = data;
    if (n > s->cap - s->len)
        return -1;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Length of a NUL-terminated fixed field, max+1 if unterminated. */
static size_t envelope_flen(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

/* A string field of 1..max bytes, NUL-terminated within its array, whose
   characters pass check (not looked at when check is NULL). */
static bool envelope_ok_str(const char *s, size_t max, envelope_check_fn check)
{
    size_t n = envelope_flen(s, max);
    return n >= 1 && n <= max && (!check || check(s, n));
}

/* Would envelope_decode() accept env's fields?  With chars false the
   characters of the strings are taken as checked (envelope_encode_trusted);
   everything else still is: no string is read past its array and no
   number leaves its range, whoever filled the struct. */
static bool envelope_encodable(const envelope_t *env, bool chars)
{
    uint32_t p = env->present;
    envelope_check_fn name = chars ? envelope_valid_name : NULL;
    if (env->v != ENVELOPE_VERSION)
        return false;
    if (p & ~(uint32_t)((ENV_HAS_ATTEMPT << 1) - 1))
        return false;
    if (!envelope_ok_str(env->type, ENVELOPE_NAME_MAX, chars ? envelope_valid_type : NULL))
        return false;
    if ((p & ENV_HAS_FROM) && !envelope_ok_str(env->from, ENVELOPE_NAME_MAX, name))
        return false;
    if ((p & ENV_HAS_TO) && !envelope_ok_str(env->to, ENVELOPE_NAME_MAX, name))
        return false;
    if ((p & ENV_HAS_REPLY_TO) && !envelope_ok_str(env->reply_to, ENVELOPE_NAME_MAX, name))
        return false;
    if ((p & ENV_HAS_KEY) &&
        !envelope_ok_str(env->key, ENVELOPE_KEY_MAX, chars ? envelope_valid_key : NULL))
        return false;
    if ((p & ENV_HAS_TS) && env->ts > ENVELOPE_TS_MAX)
        return false;
    if ((p & ENV_HAS_TTL) && (env->ttl < 1 || env->ttl > ENVELOPE_TTL_MAX))
        return false;
    if ((p & ENV_HAS_PRIO) && env->prio > ENVELOPE_PRIO_LOW)
        return false;
    if ((p & ENV_HAS_ATTEMPT) && env->attempt > ENVELOPE_ATTEMPT_MAX)
        return false;
    return true;
}

static int envelope_pack_key(msgpack_packer *pk, envelope_field_t f)
{
    const char *k = envelope_field_names[f];
    size_t n = strlen(k);
    int rc = msgpack_pack_str(pk, n);
    return rc ? rc : msgpack_pack_str_body(pk, k, n);
}

static int envelope_pack_str(msgpack_packer *pk, envelope_field_t f, const char *s)
{
    size_t n = strlen(s);   /* bounded: checked by envelope_encodable() */
    int rc = envelope_pack_key(pk, f);
    if (!rc) rc = msgpack_pack_str(pk, n);
    if (!rc) rc = msgpack_pack_str_body(pk, s, n);
    return rc;
}

static int envelope_pack_id(msgpack_packer *pk, envelope_field_t f, const uint8_t *id)
{
    int rc = envelope_pack_key(pk, f);
    if (!rc) rc = msgpack_pack_bin(pk, ENVELOPE_ID_LEN);
    if (!rc) rc = msgpack_pack_bin_body(pk, id, ENVELOPE_ID_LEN);
    return rc;
}

static int envelope_pack_uint(msgpack_packer *pk, envelope_field_t f, uint64_t u)
{
    int rc = envelope_pack_key(pk, f);
    return rc ? rc : msgpack_pack_uint64(pk, u);
}

static int envelope_pack_fields(msgpack_packer *pk, const envelope_t *env)
{
    uint32_t p = env->present;
    int rc = 0;
    if (!rc) rc = envelope_pack_uint(pk, EF_V, env->v);
    if (!rc) rc = envelope_pack_id(pk, EF_ID, env->id);
    if (!rc) rc = envelope_pack_str(pk, EF_TYPE, env->type);
    if (!rc && (p & ENV_HAS_FROM)) rc = envelope_pack_str(pk, EF_FROM, env->from);
    if (!rc && (p & ENV_HAS_TO)) rc = envelope_pack_str(pk, EF_TO, env->to);
    if (!rc && (p & ENV_HAS_REPLY_TO)) rc = envelope_pack_str(pk, EF_REPLY_TO, env->reply_to);
    if (!rc && (p & ENV_HAS_CORR)) rc = envelope_pack_id(pk, EF_CORR, env->corr);
    if (!rc && (p & ENV_HAS_TS)) rc = envelope_pack_uint(pk, EF_TS, env->ts);
    if (!rc && (p & ENV_HAS_TTL)) rc = envelope_pack_uint(pk, EF_TTL, env->ttl);
    if (!rc && (p & ENV_HAS_PRIO)) rc = envelope_pack_uint(pk, EF_PRIO, env->prio);
    if (!rc && (p & ENV_HAS_DURABLE)) {
        rc = envelope_pack_key(pk, EF_DURABLE);
        if (!rc) rc = env->durable ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    if (!rc && (p & ENV_HAS_KEY)) rc = envelope_pack_str(pk, EF_KEY, env->key);
    if (!rc && (p & ENV_HAS_ATTEMPT)) rc = envelope_pack_uint(pk, EF_ATTEMPT, env->attempt);
    return rc;
}

static int envelope_encode_with(const envelope_t *env, uint8_t *buf, size_t cap,
                                bool chars)
{
    if (!env || !buf)
        return SY_EINVAL;
    if (!envelope_encodable(env, chars))
        return SY_EINVAL;
    uint32_t n = 3;
    for (uint32_t bits = env->present; bits; bits &= bits - 1)
        n++;
    envelope_sink_t sink = { buf, cap, 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, envelope_sink_write);
    int rc = msgpack_pack_map(&pk, n);
    if (!rc)
        rc = envelope_pack_fields(&pk, env);
    if (rc)
        return SY_ENOSPACE;
    if (sink.len > ENVELOPE_MAX_ENCODED)
        return SY_EINVAL;   /* every field near its maximum at once */
    return (int)sink.len;
}

int envelope_encode(const envelope_t *env, uint8_t *buf, size_t cap)
{
    return envelope_encode_with(env, buf, cap, true);
}

int envelope_encode_trusted(const envelope_t *env, uint8_t *buf, size_t cap)
{
    return envelope_encode_with(env, buf, cap, false);
}
