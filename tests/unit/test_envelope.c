/*  test_envelope.c -- envelope header codec: round trips, and one crafted
 *  input for every detail code envelope_decode() can return.
 *
 *  Inputs are built with msgpack-c's packer from small key/value lists, so
 *  each test says in one line which field is wrong and how.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

typedef enum {
    V_NIL, V_UINT, V_NEG, V_STR, V_BIN, V_BOOL, V_FLOAT, V_ARRAY, V_MAP, V_RAW
} vk_t;

typedef struct {
    const char *key;   /* NULL: a key of the uint 7, not a string */
    vk_t        kind;
    uint64_t    u;     /* UINT value; BIN length; BOOL value */
    const char *s;     /* STR / RAW bytes */
    size_t      len;   /* STR / RAW length (0 for STR: strlen) */
} kv_t;

static const uint8_t test_id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void pack_val(msgpack_packer *pk, msgpack_sbuffer *sb, const kv_t *kv)
{
    switch (kv->kind) {
    case V_NIL:   msgpack_pack_nil(pk); break;
    case V_UINT:  msgpack_pack_uint64(pk, kv->u); break;
    case V_NEG:   msgpack_pack_int64(pk, -(int64_t)kv->u); break;
    case V_STR: {
        size_t n = kv->len ? kv->len : strlen(kv->s);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, kv->s, n);
        break;
    }
    case V_BIN: {
        uint8_t b[600];
        memset(b, 0xab, sizeof b);
        if (kv->u == 16) memcpy(b, test_id, 16);
        msgpack_pack_bin(pk, kv->u);
        msgpack_pack_bin_body(pk, b, kv->u);
        break;
    }
    case V_BOOL:  kv->u ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case V_FLOAT: msgpack_pack_double(pk, 1.5); break;
    case V_ARRAY: msgpack_pack_array(pk, 1); msgpack_pack_uint8(pk, 1); break;
    case V_MAP:   msgpack_pack_map(pk, 0); break;
    case V_RAW:   msgpack_sbuffer_write(sb, kv->s, kv->len); break;
    }
}

/* Packs a map of the base fields (v, id, type) minus `omit`, with the
   extra pairs appended (an extra pair whose key is a base key replaces
   it).  Returns the length in out. */
static size_t build(uint8_t *out, size_t cap, const char *omit,
                    const kv_t *extra, size_t nextra)
{
    const kv_t base[] = {
        { "v", V_UINT, 1, NULL, 0 },
        { "id", V_BIN, 16, NULL, 0 },
        { "type", V_STR, 0, "echo.request", 0 },
    };
    const kv_t *all[16];
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        bool skip = omit && strcmp(omit, base[i].key) == 0;
        for (size_t j = 0; j < nextra; j++)
            if (extra[j].key && strcmp(extra[j].key, base[i].key) == 0)
                skip = true;
        if (!skip) all[n++] = &base[i];
    }
    for (size_t j = 0; j < nextra; j++) all[n++] = &extra[j];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->key) {
            msgpack_pack_str(&pk, strlen(all[i]->key));
            msgpack_pack_str_body(&pk, all[i]->key, strlen(all[i]->key));
        } else {
            msgpack_pack_uint8(&pk, 7);
        }
        pack_val(&pk, &sb, all[i]);
    }
    assert_true(sb.size <= cap);
    memcpy(out, sb.data, sb.size);
    size_t len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static int decode1(const kv_t *kv, const char *omit, char *err, size_t errlen)
{
    uint8_t buf[2048];
    envelope_t env;
    size_t n = build(buf, sizeof buf, omit, kv, kv ? 1 : 0);
    return envelope_decode(&env, buf, n, err, errlen);
}

static void expect1(const kv_t kv, int want, const char *name)
{
    char err[256];
    int rc = decode1(&kv, NULL, err, sizeof err);
    if (rc != want)
        print_error("field %s kind %d: got %s (%s), want %s\n", kv.key ? kv.key : "(int)",
                    (int)kv.kind, syerr_name(rc), err, syerr_name(want));
    assert_int_equal(rc, want);
    if (name)
        assert_non_null(strstr(err, name));
}

static void full_env(envelope_t *e)
{
    envelope_init(e);
    memcpy(e->id, test_id, 16);
    assert_int_equal(envelope_set_type(e, "chat.request"), 0);
    assert_int_equal(envelope_set_from(e, "frontdoor-1"), 0);
    assert_int_equal(envelope_set_to(e, "inference"), 0);
    assert_int_equal(envelope_set_reply_to(e, "@frontdoor-1"), 0);
    assert_int_equal(envelope_set_key(e, "tg:12345:678"), 0);
    for (int i = 0; i < 16; i++) e->corr[i] = (uint8_t)(0xf0 - i);
    e->ts = 1763754000123ULL;
    e->ttl = 60000;
    e->prio = ENVELOPE_PRIO_LOW;
    e->durable = true;
    e->attempt = 3;
    e->present |= ENV_HAS_CORR | ENV_HAS_TS | ENV_HAS_TTL | ENV_HAS_PRIO |
                  ENV_HAS_DURABLE | ENV_HAS_ATTEMPT;
}

/* ---------------------------------------------------------------- round trips */

static void test_round_trip_all(void **state)
{
    (void)state;
    envelope_t e, d;
    full_env(&e);
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&e, buf, sizeof buf);
    assert_true(n > 0);
    char err[128] = "x";
    assert_int_equal(envelope_decode(&d, buf, (size_t)n, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(d.present, e.present);
    assert_int_equal(d.v, 1);
    assert_memory_equal(d.id, e.id, 16);
    assert_string_equal(d.type, "chat.request");
    assert_string_equal(d.from, "frontdoor-1");
    assert_string_equal(d.to, "inference");
    assert_string_equal(d.reply_to, "@frontdoor-1");
    assert_memory_equal(d.corr, e.corr, 16);
    assert_int_equal(d.ts, 1763754000123ULL);
    assert_int_equal(d.ttl, 60000);
    assert_int_equal(d.prio, 2);
    assert_true(d.durable);
    assert_string_equal(d.key, "tg:12345:678");
    assert_int_equal(d.attempt, 3);
    assert_memory_equal(&d, &e, sizeof d);
}

static void test_round_trip_minimal(void **state)
{
    (void)state;
    envelope_t e, d;
    envelope_init(&e);
    memcpy(e.id, test_id, 16);
    assert_int_equal(envelope_set_type(&e, "sy.ping"), 0);
    uint8_t buf[64];
    int n = envelope_encode(&e, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[0], 0x83);   /* fixmap of v, id, type */
    assert_int_equal(envelope_decode(&d, buf, (size_t)n, NULL, 0), 0);
    assert_int_equal(d.present, 0);
    assert_int_equal(d.prio, ENVELOPE_PRIO_NORMAL);
    assert_string_equal(d.type, "sy.ping");
    assert_memory_equal(&d, &e, sizeof d);
}

/* Every optional field alone, so a field's present bit and value cannot
   depend on another's. */
static void test_round_trip_each_field(void **state)
{
    (void)state;
    envelope_t full;
    full_env(&full);
    for (int bit = 0; bit < 10; bit++) {
        envelope_t e = full, d;
        e.present = 1u << bit;
        uint8_t buf[ENVELOPE_MAX_ENCODED];
        int n = envelope_encode(&e, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(envelope_decode(&d, buf, (size_t)n, NULL, 0), 0);
        assert_int_equal(d.present, 1u << bit);
        assert_string_equal(d.type, e.type);
    }
}

static void test_key_order(void **state)
{
    (void)state;
    static const char *const order[] = {
        "v", "id", "type", "from", "to", "reply_to", "corr", "ts", "ttl",
        "prio", "durable", "key", "attempt"
    };
    envelope_t e;
    full_env(&e);
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&e, buf, sizeof buf);
    assert_true(n > 0);
    mpread_t r;
    mpval_t m, k, v;
    mpread_init(&r, buf, (size_t)n);
    assert_int_equal(mpread_next(&r, &m), 0);
    assert_int_equal(m.kind, MP_MAP);
    assert_int_equal(m.len, 13);
    for (size_t i = 0; i < 13; i++) {
        assert_int_equal(mpread_next(&r, &k), 0);
        assert_true(mpval_str_eq(&k, order[i]));
        assert_int_equal(mpread_next(&r, &v), 0);
    }
    assert_int_equal(mpread_left(&r), 0);
}

/* Positive values in int 8/16/32/64 encodings, and non-minimal uint. */
static void test_signed_encodings(void **state)
{
    (void)state;
    static const char *const raws[] = {
        "\xd0\x01", "\xd1\x00\x01", "\xd2\x00\x00\x00\x01",
        "\xd3\x00\x00\x00\x00\x00\x00\x00\x01", "\xcc\x01", "\xcf\x00\x00\x00\x00\x00\x00\x00\x01"
    };
    static const size_t lens[] = { 2, 3, 5, 9, 2, 9 };
    for (size_t i = 0; i < 6; i++) {
        kv_t kv[3] = {
            { "v", V_RAW, 0, raws[i], lens[i] },
            { "prio", V_RAW, 0, raws[i], lens[i] },
            { "ttl", V_RAW, 0, raws[i], lens[i] },
        };
        uint8_t buf[256];
        envelope_t env;
        size_t n = build(buf, sizeof buf, NULL, kv, 3);
        assert_int_equal(envelope_decode(&env, buf, n, NULL, 0), 0);
        assert_int_equal(env.v, 1);
        assert_int_equal(env.prio, 1);
        assert_int_equal(env.ttl, 1);
    }
    /* and a negative one is a type error for a uint field */
    expect1((kv_t){ "prio", V_NEG, 1, NULL, 0 }, SY_EFIELD_TYPE, "prio");
}

static void test_any_order(void **state)
{
    (void)state;
    /* type first, then to, then v and id last */
    const kv_t kv[4] = {
        { "type", V_STR, 0, "echo.reply", 0 },
        { "to", V_STR, 0, "@x", 0 },
        { "id", V_BIN, 16, NULL, 0 },
        { "v", V_UINT, 1, NULL, 0 },
    };
    uint8_t buf[256];
    envelope_t env;
    size_t n = build(buf, sizeof buf, NULL, kv, 4);
    assert_int_equal(envelope_decode(&env, buf, n, NULL, 0), 0);
    assert_string_equal(env.type, "echo.reply");
    assert_true(envelope_is_direct(&env));
    assert_memory_equal(env.id, test_id, 16);
}

/* ---------------------------------------------------------------- structure */

static void test_truncated(void **state)
{
    (void)state;
    envelope_t e, d;
    full_env(&e);
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&e, buf, sizeof buf);
    assert_true(n > 30);
    char err[128];
    assert_int_equal(envelope_decode(&d, buf, 0, err, sizeof err), SY_ETRUNCATED);
    assert_int_equal(envelope_decode(&d, buf, (size_t)n - 1, err, sizeof err), SY_ETRUNCATED);
    for (int cut = 1; cut < n; cut++) {
        int rc = envelope_decode(&d, buf, (size_t)cut, err, sizeof err);
        assert_true(rc == SY_ETRUNCATED || rc == SY_ECOUNT);
    }
}

static void test_trailing(void **state)
{
    (void)state;
    uint8_t buf[256];
    envelope_t env;
    char err[128];
    size_t n = build(buf, sizeof buf, NULL, NULL, 0);
    assert_int_equal(envelope_decode(&env, buf, n, err, sizeof err), 0);
    buf[n] = 0xc0;
    assert_int_equal(envelope_decode(&env, buf, n + 1, err, sizeof err), SY_ETRAILING);
}

static void test_not_map(void **state)
{
    (void)state;
    envelope_t env;
    const uint8_t arr[] = { 0x91, 0x01 };
    const uint8_t num[] = { 0x01 };
    const uint8_t str[] = { 0xa1, 'v' };
    assert_int_equal(envelope_decode(&env, arr, sizeof arr, NULL, 0), SY_ENOT_MAP);
    assert_int_equal(envelope_decode(&env, num, sizeof num, NULL, 0), SY_ENOT_MAP);
    assert_int_equal(envelope_decode(&env, str, sizeof str, NULL, 0), SY_ENOT_MAP);
}

static void test_count(void **state)
{
    (void)state;
    envelope_t env;
    const uint8_t a32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    const uint8_t m32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02 };
    const uint8_t m16[] = { 0xde, 0x00, 0x04, 0xa1, 'v', 0x01 };
    const uint8_t fix[] = { 0x83, 0xa1, 'v', 0x01 };
    assert_int_equal(envelope_decode(&env, a32, sizeof a32, NULL, 0), SY_ECOUNT);
    assert_int_equal(envelope_decode(&env, m32, sizeof m32, NULL, 0), SY_ECOUNT);
    assert_int_equal(envelope_decode(&env, m16, sizeof m16, NULL, 0), SY_ECOUNT);
    assert_int_equal(envelope_decode(&env, fix, sizeof fix, NULL, 0), SY_ECOUNT);
}

static void test_depth(void **state)
{
    (void)state;
    char raw[40];
    for (int i = 0; i < 20; i++) raw[i] = (char)0x91;
    raw[20] = 0x01;
    char err[128];
    kv_t kv = { "ttl", V_RAW, 0, raw, 21 };
    assert_int_equal(decode1(&kv, NULL, err, sizeof err), SY_EDEPTH);
    /* shallow container: a plain type error */
    expect1((kv_t){ "ttl", V_ARRAY, 0, NULL, 0 }, SY_EFIELD_TYPE, "ttl");
}

static void test_key_type(void **state)
{
    (void)state;
    expect1((kv_t){ NULL, V_UINT, 1, NULL, 0 }, SY_EKEY_TYPE, "key");
}

static void test_unknown_field(void **state)
{
    (void)state;
    expect1((kv_t){ "colour", V_UINT, 1, NULL, 0 }, SY_EUNKNOWN_FIELD, "colour");
    expect1((kv_t){ "V", V_UINT, 1, NULL, 0 }, SY_EUNKNOWN_FIELD, "\"V\"");
    expect1((kv_t){ "ttl2", V_UINT, 1, NULL, 0 }, SY_EUNKNOWN_FIELD, "ttl2");
    /* hostile key bytes are not echoed raw */
    char err[256];
    kv_t kv = { "a\nb\"\x01", V_UINT, 1, NULL, 0 };
    assert_int_equal(decode1(&kv, NULL, err, sizeof err), SY_EUNKNOWN_FIELD);
    assert_null(strchr(err + 1, '\n'));
}

static void test_dup_field(void **state)
{
    (void)state;
    const kv_t kv[2] = { { "to", V_STR, 0, "a", 0 }, { "to", V_STR, 0, "b", 0 } };
    uint8_t buf[256];
    envelope_t env;
    char err[128];
    size_t n = build(buf, sizeof buf, NULL, kv, 2);
    assert_int_equal(envelope_decode(&env, buf, n, err, sizeof err), SY_EDUP_FIELD);
    assert_non_null(strstr(err, "\"to\""));
    /* a base field twice */
    const kv_t kv2[2] = { { "v", V_UINT, 1, NULL, 0 }, { "v", V_UINT, 1, NULL, 0 } };
    n = build(buf, sizeof buf, NULL, kv2, 2);
    assert_int_equal(envelope_decode(&env, buf, n, err, sizeof err), SY_EDUP_FIELD);
}

static void test_wrong_type_every_field(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "v", "id", "type", "from", "to", "reply_to", "corr", "ts", "ttl",
        "prio", "durable", "key", "attempt"
    };
    for (size_t i = 0; i < 13; i++) {
        expect1((kv_t){ fields[i], V_NIL, 0, NULL, 0 }, SY_EFIELD_TYPE, fields[i]);
        expect1((kv_t){ fields[i], V_FLOAT, 0, NULL, 0 }, SY_EFIELD_TYPE, fields[i]);
        expect1((kv_t){ fields[i], V_MAP, 0, NULL, 0 }, SY_EFIELD_TYPE, fields[i]);
    }
    /* the near misses: str for bin, bin for str, uint for bool, str for uint */
    expect1((kv_t){ "id", V_STR, 0, "0123456789abcdef", 0 }, SY_EFIELD_TYPE, "id");
    expect1((kv_t){ "corr", V_STR, 0, "0123456789abcdef", 0 }, SY_EFIELD_TYPE, "corr");
    expect1((kv_t){ "type", V_BIN, 4, NULL, 0 }, SY_EFIELD_TYPE, "type");
    expect1((kv_t){ "key", V_BIN, 4, NULL, 0 }, SY_EFIELD_TYPE, "key");
    expect1((kv_t){ "to", V_UINT, 4, NULL, 0 }, SY_EFIELD_TYPE, "to");
    expect1((kv_t){ "durable", V_UINT, 1, NULL, 0 }, SY_EFIELD_TYPE, "durable");
    expect1((kv_t){ "ts", V_STR, 0, "1", 0 }, SY_EFIELD_TYPE, "ts");
    expect1((kv_t){ "attempt", V_BOOL, 1, NULL, 0 }, SY_EFIELD_TYPE, "attempt");
    expect1((kv_t){ "v", V_NEG, 1, NULL, 0 }, SY_EFIELD_TYPE, "v");
    expect1((kv_t){ "ttl", V_NEG, 5, NULL, 0 }, SY_EFIELD_TYPE, "ttl");
    /* reserved byte 0xc1 as a value */
    expect1((kv_t){ "ttl", V_RAW, 0, "\xc1", 1 }, SY_EFIELD_TYPE, NULL);
}

static void test_range_every_field(void **state)
{
    (void)state;
    char big[200];
    memset(big, 'a', sizeof big);
    expect1((kv_t){ "id", V_BIN, 15, NULL, 0 }, SY_EFIELD_RANGE, "id");
    expect1((kv_t){ "id", V_BIN, 17, NULL, 0 }, SY_EFIELD_RANGE, "id");
    expect1((kv_t){ "id", V_BIN, 0, NULL, 0 }, SY_EFIELD_RANGE, "id");
    expect1((kv_t){ "corr", V_BIN, 15, NULL, 0 }, SY_EFIELD_RANGE, "corr");
    expect1((kv_t){ "corr", V_BIN, 32, NULL, 0 }, SY_EFIELD_RANGE, "corr");
    static const char *const names[] = { "type", "from", "to", "reply_to" };
    for (size_t i = 0; i < 4; i++) {
        expect1((kv_t){ names[i], V_RAW, 0, "\xa0", 1 }, SY_EFIELD_RANGE, names[i]);
        expect1((kv_t){ names[i], V_STR, 0, big, 65 }, SY_EFIELD_RANGE, names[i]);
        expect1((kv_t){ names[i], V_STR, 0, big, 64 }, 0, NULL);
    }
    expect1((kv_t){ "key", V_RAW, 0, "\xa0", 1 }, SY_EFIELD_RANGE, "key");
    expect1((kv_t){ "key", V_STR, 0, big, 129 }, SY_EFIELD_RANGE, "key");
    expect1((kv_t){ "key", V_STR, 0, big, 128 }, 0, NULL);
    expect1((kv_t){ "ts", V_UINT, 1ULL << 48, NULL, 0 }, SY_EFIELD_RANGE, "ts");
    expect1((kv_t){ "ts", V_UINT, (1ULL << 48) - 1, NULL, 0 }, 0, NULL);
    expect1((kv_t){ "ts", V_UINT, 0, NULL, 0 }, 0, NULL);
    expect1((kv_t){ "ttl", V_UINT, 0, NULL, 0 }, SY_EFIELD_RANGE, "ttl");
    expect1((kv_t){ "ttl", V_UINT, ENVELOPE_TTL_MAX + 1, NULL, 0 }, SY_EFIELD_RANGE, "ttl");
    expect1((kv_t){ "ttl", V_UINT, UINT64_MAX, NULL, 0 }, SY_EFIELD_RANGE, "ttl");
    expect1((kv_t){ "ttl", V_UINT, ENVELOPE_TTL_MAX, NULL, 0 }, 0, NULL);
    expect1((kv_t){ "prio", V_UINT, 3, NULL, 0 }, SY_EFIELD_RANGE, "prio");
    expect1((kv_t){ "prio", V_UINT, 256, NULL, 0 }, SY_EFIELD_RANGE, "prio");
    expect1((kv_t){ "prio", V_UINT, 0, NULL, 0 }, 0, NULL);
    expect1((kv_t){ "attempt", V_UINT, ENVELOPE_ATTEMPT_MAX + 1ULL, NULL, 0 }, SY_EFIELD_RANGE, "attempt");
    expect1((kv_t){ "attempt", V_UINT, 1ULL << 32, NULL, 0 }, SY_EFIELD_RANGE, "attempt");
    expect1((kv_t){ "attempt", V_UINT, ENVELOPE_ATTEMPT_MAX, NULL, 0 }, 0, NULL);
    /* the whole header over 512 bytes */
    uint8_t buf[600];
    memset(buf, 0, sizeof buf);
    envelope_t env;
    char err[128];
    assert_int_equal(envelope_decode(&env, buf, ENVELOPE_MAX_ENCODED + 1, err, sizeof err),
                     SY_EFIELD_RANGE);
    assert_non_null(strstr(err, "512"));
}

static void test_bad_chars(void **state)
{
    (void)state;
    static const char *const bad_types[] = {
        "Echo", "1echo", "echo request", "echo@x", ".echo", "echo\x01", "\xc3\xa9"
    };
    for (size_t i = 0; i < 7; i++)
        expect1((kv_t){ "type", V_STR, 0, bad_types[i], 0 }, SY_EFIELD_CHARS, "type");
    static const char *const bad_names[] = { "a b", "a/b", "caf\xc3\xa9", "x\ty", "a,b" };
    static const char *const fields[] = { "from", "to", "reply_to" };
    for (size_t f = 0; f < 3; f++)
        for (size_t i = 0; i < 5; i++)
            expect1((kv_t){ fields[f], V_STR, 0, bad_names[i], 0 }, SY_EFIELD_CHARS, fields[f]);
    expect1((kv_t){ "to", V_STR, 0, "a\0b", 3 }, SY_EFIELD_CHARS, "to");
    expect1((kv_t){ "key", V_STR, 0, "a b", 0 }, SY_EFIELD_CHARS, "key");
    expect1((kv_t){ "key", V_STR, 0, "a\x7f", 0 }, SY_EFIELD_CHARS, "key");
    expect1((kv_t){ "key", V_STR, 0, "\xff", 0 }, SY_EFIELD_CHARS, "key");
    expect1((kv_t){ "to", V_STR, 0, "Svc.A_b:c@d-1", 0 }, 0, NULL);
    expect1((kv_t){ "key", V_STR, 0, "!~{}\"'", 0 }, 0, NULL);
}

static void test_missing(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(decode1(NULL, "id", err, sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "\"id\""));
    assert_int_equal(decode1(NULL, "type", err, sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "\"type\""));
    assert_int_equal(decode1(NULL, "v", err, sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "\"v\""));
    envelope_t env;
    const uint8_t empty[] = { 0x80 };
    assert_int_equal(envelope_decode(&env, empty, 1, NULL, 0), SY_EMISSING);
}

static void test_version(void **state)
{
    (void)state;
    expect1((kv_t){ "v", V_UINT, 2, NULL, 0 }, SY_EVERSION, "version 2");
    expect1((kv_t){ "v", V_UINT, 0, NULL, 0 }, SY_EVERSION, "\"v\"");
    /* a version-2 header with a field version 1 does not know, and the
       unknown field before v: still VERSION */
    const kv_t kv[2] = { { "newfield", V_UINT, 1, NULL, 0 }, { "v", V_UINT, 2, NULL, 0 } };
    uint8_t buf[256];
    envelope_t env;
    char err[128];
    size_t n = build(buf, sizeof buf, NULL, kv, 2);
    assert_int_equal(envelope_decode(&env, buf, n, err, sizeof err), SY_EVERSION);
    /* but a structural fault wins over the version */
    buf[n] = 0;
    assert_int_equal(envelope_decode(&env, buf, n + 1, err, sizeof err), SY_ETRAILING);
}

static void test_small_err_buffer(void **state)
{
    (void)state;
    char err[4] = { 'x', 'x', 'x', 'x' };
    kv_t kv = { "colour", V_UINT, 1, NULL, 0 };
    assert_int_equal(decode1(&kv, NULL, err, 1), SY_EUNKNOWN_FIELD);
    assert_int_equal(err[0], '\0');
    assert_int_equal(err[1], 'x');
    assert_int_equal(decode1(&kv, NULL, err, 3), SY_EUNKNOWN_FIELD);
    assert_int_equal(err[2], '\0');
    assert_int_equal(err[3], 'x');
}

/* ---------------------------------------------------------------- encode */

static void test_encode_refuses_invalid(void **state)
{
    (void)state;
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    envelope_t good, e;
    full_env(&good);
    assert_true(envelope_encode(&good, buf, sizeof buf) > 0);

    e = good; e.type[0] = '\0';
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.type[0] = 'C';
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; memset(e.to, 'a', sizeof e.to);          /* unterminated */
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; strcpy(e.from, "a b");
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.reply_to[0] = '\0';
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; strcpy(e.key, "a b");
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.ttl = 0;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.ttl = ENVELOPE_TTL_MAX + 1;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.prio = 3;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.attempt = ENVELOPE_ATTEMPT_MAX + 1;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.ts = 1ULL << 48;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.v = 2;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.present |= 1u << 20;
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    /* an invalid field that is not flagged present is not looked at */
    e = good; e.present &= ~(uint32_t)ENV_HAS_TTL; e.ttl = 0;
    assert_true(envelope_encode(&e, buf, sizeof buf) > 0);
    assert_int_equal(envelope_encode(NULL, buf, sizeof buf), SY_EINVAL);
    assert_int_equal(envelope_encode(&good, NULL, sizeof buf), SY_EINVAL);
}

static void test_encode_small_buffer(void **state)
{
    (void)state;
    envelope_t e;
    full_env(&e);
    uint8_t buf[ENVELOPE_MAX_ENCODED], ref[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&e, ref, sizeof ref);
    assert_true(n > 0);
    for (int cap = 0; cap < n; cap++) {
        memset(buf, 0x5a, sizeof buf);
        assert_int_equal(envelope_encode(&e, buf, (size_t)cap), SY_ENOSPACE);
        for (size_t i = (size_t)cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0x5a);   /* nothing past cap */
    }
    assert_int_equal(envelope_encode(&e, buf, (size_t)n), n);
    assert_memory_equal(buf, ref, (size_t)n);
}

/* Every field at its maximum does not fit 512 bytes; the encoder refuses
   what the decoder would refuse.  A realistic large header fits. */
static void test_encode_max_sizes(void **state)
{
    (void)state;
    envelope_t e, d;
    full_env(&e);
    memset(e.from, 'f', 64); e.from[64] = '\0';
    memset(e.to, 't', 64); e.to[64] = '\0';
    memset(e.reply_to, 'r', 64); e.reply_to[64] = '\0';
    memset(e.type, 'y', 64); e.type[64] = '\0';
    memset(e.key, 'k', 128); e.key[128] = '\0';
    e.ts = (1ULL << 48) - 1;
    e.ttl = ENVELOPE_TTL_MAX;
    e.attempt = ENVELOPE_ATTEMPT_MAX;
    uint8_t buf[1024];
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    e.key[120] = '\0';
    int n = envelope_encode(&e, buf, sizeof buf);
    assert_true(n > 500 && n <= ENVELOPE_MAX_ENCODED);
    assert_int_equal(envelope_decode(&d, buf, (size_t)n, NULL, 0), 0);
    assert_memory_equal(&d, &e, offsetof(envelope_t, key));
    assert_string_equal(d.key, e.key);
}

/* The broker's re-encode: same bytes as envelope_encode() for a header
   from the decoder or the setters; only the characters go unchecked,
   never a bound that keeps memory safe. */
static void test_encode_trusted(void **state)
{
    (void)state;
    uint8_t ref[ENVELOPE_MAX_ENCODED], buf[ENVELOPE_MAX_ENCODED];
    envelope_t good, e, d;
    full_env(&good);
    int n = envelope_encode(&good, ref, sizeof ref);
    assert_true(n > 0);
    assert_int_equal(envelope_encode_trusted(&good, buf, sizeof buf), n);
    assert_memory_equal(buf, ref, (size_t)n);
    assert_int_equal(envelope_decode(&d, ref, (size_t)n, NULL, 0), 0);
    assert_int_equal(envelope_set_from(&d, "broker-stamped"), 0);
    n = envelope_encode(&d, ref, sizeof ref);
    assert_true(n > 0);
    assert_int_equal(envelope_encode_trusted(&d, buf, sizeof buf), n);
    assert_memory_equal(buf, ref, (size_t)n);

    e = good; memset(e.to, 'a', sizeof e.to);          /* unterminated */
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; memset(e.key, 'k', sizeof e.key);
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.type[0] = '\0';
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.reply_to[0] = '\0';
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.ttl = 0;
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.prio = 3;
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.attempt = ENVELOPE_ATTEMPT_MAX + 1;
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.v = 2;
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    e = good; e.present |= 1u << 20;
    assert_int_equal(envelope_encode_trusted(&e, buf, sizeof buf), SY_EINVAL);
    assert_int_equal(envelope_encode_trusted(&good, buf, 10), SY_ENOSPACE);
    assert_int_equal(envelope_encode_trusted(NULL, buf, sizeof buf), SY_EINVAL);
    assert_int_equal(envelope_encode_trusted(&good, NULL, sizeof buf), SY_EINVAL);
    /* what it takes on trust: characters (the full encoder refuses these) */
    e = good; strcpy(e.from, "a b");
    assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
    assert_true(envelope_encode_trusted(&e, buf, sizeof buf) > 0);
}

/* The reference encoding: msgpack-c's packer, fields in protocol order.
   The encoder writes bytes itself; this is what keeps its wire format. */
static size_t ref_encode(const envelope_t *e, uint8_t *out, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint32_t n = 3;
    for (uint32_t b = e->present; b; b &= b - 1) n++;
    msgpack_pack_map(&pk, n);
#define KEY(k) (msgpack_pack_str(&pk, strlen(k)), msgpack_pack_str_body(&pk, k, strlen(k)))
#define STR(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
#define BIN(b) (msgpack_pack_bin(&pk, 16), msgpack_pack_bin_body(&pk, b, 16))
    KEY("v"); msgpack_pack_uint64(&pk, e->v);
    KEY("id"); BIN(e->id);
    KEY("type"); STR(e->type);
    if (e->present & ENV_HAS_FROM) { KEY("from"); STR(e->from); }
    if (e->present & ENV_HAS_TO) { KEY("to"); STR(e->to); }
    if (e->present & ENV_HAS_REPLY_TO) { KEY("reply_to"); STR(e->reply_to); }
    if (e->present & ENV_HAS_CORR) { KEY("corr"); BIN(e->corr); }
    if (e->present & ENV_HAS_TS) { KEY("ts"); msgpack_pack_uint64(&pk, e->ts); }
    if (e->present & ENV_HAS_TTL) { KEY("ttl"); msgpack_pack_uint64(&pk, e->ttl); }
    if (e->present & ENV_HAS_PRIO) { KEY("prio"); msgpack_pack_uint64(&pk, e->prio); }
    if (e->present & ENV_HAS_DURABLE) {
        KEY("durable");
        e->durable ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    }
    if (e->present & ENV_HAS_KEY) { KEY("key"); STR(e->key); }
    if (e->present & ENV_HAS_ATTEMPT) { KEY("attempt"); msgpack_pack_uint64(&pk, e->attempt); }
#undef KEY
#undef STR
#undef BIN
    assert_true(sb.size <= cap);
    memcpy(out, sb.data, sb.size);
    size_t len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return len;
}

/* Encodes e both ways, compares with the reference bytes, and decodes
   back to e itself. */
static void check_encodings(const envelope_t *e)
{
    uint8_t ref[1024], buf[ENVELOPE_MAX_ENCODED], tbuf[ENVELOPE_MAX_ENCODED];
    size_t rn = ref_encode(e, ref, sizeof ref);
    int n = envelope_encode(e, buf, sizeof buf);
    if (n < 0 || (size_t)n != rn || memcmp(buf, ref, rn) != 0)
        print_error("present 0x%x: encode %d bytes, reference %zu\n",
                    (unsigned)e->present, n, rn);
    assert_int_equal(n, (int)rn);
    assert_memory_equal(buf, ref, rn);
    assert_int_equal(envelope_encode_trusted(e, tbuf, sizeof tbuf), n);
    assert_memory_equal(tbuf, ref, rn);
    envelope_t d;
    char err[128];
    assert_int_equal(envelope_decode(&d, tbuf, (size_t)n, err, sizeof err), 0);
    assert_memory_equal(&d, e, sizeof d);
}

/* Zeroes each string array past its NUL, as decode leaves it. */
static void tidy(char *s, size_t size)
{
    size_t n = strnlen(s, size);
    memset(s + n, 0, size - n);
}

/* Every combination of optional fields, with two sets of values that
   between them take every encoding the encoder writes: fixstr and str 8,
   every uint width, true and false.  encode, encode_trusted and msgpack-c
   give the same bytes, and they decode to the same envelope. */
static void test_encode_every_combination(void **state)
{
    (void)state;
    envelope_t full, big;
    full_env(&full);                 /* short strings, ts in 8 bytes */
    full.prio = 0;
    full.durable = false;
    full.ttl = 5;                    /* fixint */
    full.attempt = 200;              /* uint 8 */
    full_env(&big);                  /* 32+ byte strings: str 8 */
    assert_int_equal(envelope_set_type(&big, "a.type.of.exactly.32.bytes.long0"), 0);
    assert_int_equal(envelope_set_from(&big, "F.from-name:with@all_the.chars_0123456789"), 0);
    assert_int_equal(envelope_set_to(&big, "svc.with.name.of.31.bytes.long1"), 0);
    assert_int_equal(envelope_set_reply_to(&big, "@reply"), 0);
    assert_int_equal(envelope_set_key(&big, "k!~{}\"'0123456789012345678901234567890"), 0);
    assert_int_equal(strlen(big.type), 32);   /* str 8 */
    assert_int_equal(strlen(big.to), 31);     /* the longest fixstr */
    big.ts = 0x1234;                 /* uint 16 */
    big.ttl = 0x10000;               /* uint 32 */
    big.attempt = ENVELOPE_ATTEMPT_MAX;
    tidy(big.type, sizeof big.type);
    tidy(big.from, sizeof big.from);
    tidy(big.to, sizeof big.to);
    tidy(big.reply_to, sizeof big.reply_to);
    tidy(big.key, sizeof big.key);
    const envelope_t *bases[2] = { &full, &big };
    for (int b = 0; b < 2; b++)
        for (uint32_t p = 0; p < (ENV_HAS_ATTEMPT << 1); p++) {
            envelope_t e = *bases[b];
            e.present = p;
            /* an absent field is zero after decode: clear it here too */
            if (!(p & ENV_HAS_FROM)) memset(e.from, 0, sizeof e.from);
            if (!(p & ENV_HAS_TO)) memset(e.to, 0, sizeof e.to);
            if (!(p & ENV_HAS_REPLY_TO)) memset(e.reply_to, 0, sizeof e.reply_to);
            if (!(p & ENV_HAS_KEY)) memset(e.key, 0, sizeof e.key);
            if (!(p & ENV_HAS_CORR)) memset(e.corr, 0, sizeof e.corr);
            if (!(p & ENV_HAS_TS)) e.ts = 0;
            if (!(p & ENV_HAS_TTL)) e.ttl = 0;
            if (!(p & ENV_HAS_PRIO)) e.prio = ENVELOPE_PRIO_NORMAL;
            if (!(p & ENV_HAS_DURABLE)) e.durable = false;
            if (!(p & ENV_HAS_ATTEMPT)) e.attempt = 0;
            check_encodings(&e);
        }
    /* each uint width at its edges, in each uint field */
    static const uint64_t edges[] = {
        0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffffULL,
        0x100000000ULL, (1ULL << 48) - 1
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        envelope_t e = full;
        e.ts = edges[i];
        e.ttl = edges[i] >= 1 && edges[i] <= ENVELOPE_TTL_MAX ? edges[i] : 1;
        e.attempt = edges[i] <= ENVELOPE_ATTEMPT_MAX ? (uint32_t)edges[i] : 7;
        e.prio = edges[i] <= ENVELOPE_PRIO_LOW ? (uint8_t)edges[i] : 1;
        check_encodings(&e);
    }
}

/* The untrusted encoder checks every character of every string field,
   whatever its position (the check reads four bytes a round). */
static void test_encode_refuses_bad_chars_anywhere(void **state)
{
    (void)state;
    envelope_t good;
    full_env(&good);
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    for (size_t len = 1; len <= ENVELOPE_NAME_MAX; len++)
        for (size_t at = 0; at < len; at++) {
            envelope_t e = good;
            memset(e.from, 'a', len); e.from[len] = '\0';
            memset(e.to, 'b', len); e.to[len] = '\0';
            memset(e.reply_to, 'c', len); e.reply_to[len] = '\0';
            memset(e.type, 'd', len); e.type[len] = '\0';
            memset(e.key, 'e', len); e.key[len] = '\0';
            assert_true(envelope_encode(&e, buf, sizeof buf) > 0);
            char *fields[5] = { e.from, e.to, e.reply_to, e.type, e.key };
            for (int f = 0; f < 5; f++) {
                char keep = fields[f][at];
                fields[f][at] = ' ';
                assert_int_equal(envelope_encode(&e, buf, sizeof buf), SY_EINVAL);
                assert_true(envelope_encode_trusted(&e, buf, sizeof buf) > 0);
                fields[f][at] = keep;
            }
        }
}

/* The character table against the rules of envelope.h, byte by byte;
   and the decoder agrees with envelope_valid_*() for every byte. */
static void test_char_rules_every_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        bool digit = c >= '0' && c <= '9';
        bool name = lower || upper || digit || (c && strchr("._:@-", c));
        bool type = lower || digit || (c && strchr("._-", c));
        bool key = c >= 0x21 && c <= 0x7e;
        char one[1] = { (char)c };
        char two[2] = { 'a', (char)c };
        char six[6] = { 'a', 'b', 'c', 'd', 'e', (char)c };   /* the tail round */
        assert_int_equal(envelope_valid_name(one, 1), name);
        assert_int_equal(envelope_valid_name(six + 1, 5), name);
        assert_int_equal(envelope_valid_type(one, 1), lower);
        assert_int_equal(envelope_valid_type(two, 2), type);
        assert_int_equal(envelope_valid_type(six, 6), type);
        assert_int_equal(envelope_valid_key(one, 1), key);
        assert_int_equal(envelope_valid_key(six, 6), key);
        expect1((kv_t){ "to", V_STR, 0, six + 1, 5 }, name ? 0 : SY_EFIELD_CHARS, NULL);
        expect1((kv_t){ "type", V_STR, 0, two, 2 }, type ? 0 : SY_EFIELD_CHARS, NULL);
        expect1((kv_t){ "type", V_STR, 0, one, 1 }, lower ? 0 : SY_EFIELD_CHARS, NULL);
        expect1((kv_t){ "key", V_STR, 0, six, 6 }, key ? 0 : SY_EFIELD_CHARS, NULL);
    }
}

/* Valid values in encodings the decoder does not read inline (str 8/16
   for short strings, bin 16/32, int and uint 16 for small numbers) decode
   to the same envelope as the canonical ones. */
static void test_decode_other_encodings(void **state)
{
    (void)state;
    uint8_t id16[19] = { 0xc5, 0x00, 0x10 };
    memcpy(id16 + 3, test_id, 16);
    uint8_t id32[21] = { 0xc6, 0x00, 0x00, 0x00, 0x10 };
    memcpy(id32 + 5, test_id, 16);
    const kv_t kv[7] = {
        { "v", V_RAW, 0, "\xd0\x01", 2 },
        { "id", V_RAW, 0, (const char *)id16, sizeof id16 },
        { "type", V_RAW, 0, "\xd9\x03" "a.b", 5 },
        { "to", V_RAW, 0, "\xda\x00\x03" "svc", 6 },
        { "corr", V_RAW, 0, (const char *)id32, sizeof id32 },
        { "prio", V_RAW, 0, "\xcd\x00\x02", 3 },
        { "durable", V_BOOL, 1, NULL, 0 },
    };
    uint8_t buf[256];
    envelope_t env, want;
    size_t n = build(buf, sizeof buf, NULL, kv, 7);
    assert_int_equal(envelope_decode(&env, buf, n, NULL, 0), 0);
    envelope_init(&want);
    memcpy(want.id, test_id, 16);
    memcpy(want.corr, test_id, 16);
    assert_int_equal(envelope_set_type(&want, "a.b"), 0);
    assert_int_equal(envelope_set_to(&want, "svc"), 0);
    want.prio = 2;
    want.durable = true;
    want.present |= ENV_HAS_CORR | ENV_HAS_PRIO | ENV_HAS_DURABLE;
    assert_memory_equal(&env, &want, sizeof env);
    /* and every cut of it is a structural error, never a field error */
    for (size_t cut = 0; cut < n; cut++) {
        int rc = envelope_decode(&env, buf, cut, NULL, 0);
        assert_true(rc == SY_ETRUNCATED || rc == SY_ECOUNT);
    }
}

/* Sizes: a header that does not fit cap is ENOSPACE with nothing written
   past cap, for the trusted encoder too; one over 512 bytes is EINVAL
   only when cap could hold it. */
static void test_encode_sizes_trusted(void **state)
{
    (void)state;
    envelope_t e;
    full_env(&e);
    uint8_t buf[1024], ref[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode_trusted(&e, ref, sizeof ref);
    assert_true(n > 0);
    for (int cap = 0; cap < n; cap++) {
        memset(buf, 0x5a, sizeof buf);
        assert_int_equal(envelope_encode_trusted(&e, buf, (size_t)cap), SY_ENOSPACE);
        for (size_t i = (size_t)cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0x5a);
    }
    memset(e.from, 'f', 64); e.from[64] = '\0';
    memset(e.to, 't', 64); e.to[64] = '\0';
    memset(e.reply_to, 'r', 64); e.reply_to[64] = '\0';
    memset(e.type, 'y', 64); e.type[64] = '\0';
    memset(e.key, 'k', 128); e.key[128] = '\0';
    e.ttl = ENVELOPE_TTL_MAX;
    e.attempt = ENVELOPE_ATTEMPT_MAX;
    e.ts = (1ULL << 48) - 1;
    size_t full = ref_encode(&e, buf, sizeof buf);
    assert_true(full > ENVELOPE_MAX_ENCODED);
    assert_int_equal(envelope_encode_trusted(&e, buf, ENVELOPE_MAX_ENCODED), SY_ENOSPACE);
    assert_int_equal(envelope_encode_trusted(&e, buf, full - 1), SY_ENOSPACE);
    assert_int_equal(envelope_encode_trusted(&e, buf, full), SY_EINVAL);
    assert_int_equal(envelope_encode(&e, buf, full), SY_EINVAL);
}

/* ---------------------------------------------------------------- helpers */

static void test_setters(void **state)
{
    (void)state;
    envelope_t e;
    envelope_init(&e);
    char big[200];
    memset(big, 'a', sizeof big); big[65] = '\0';
    assert_int_equal(envelope_set_to(&e, big), SY_EFIELD_RANGE);
    assert_int_equal(envelope_set_to(&e, ""), SY_EFIELD_RANGE);
    assert_int_equal(envelope_set_to(&e, NULL), SY_EFIELD_RANGE);
    assert_int_equal(envelope_set_to(&e, "a b"), SY_EFIELD_CHARS);
    assert_int_equal(e.present, 0);
    assert_string_equal(e.to, "");
    assert_int_equal(envelope_set_type(&e, "Echo"), SY_EFIELD_CHARS);
    assert_int_equal(envelope_set_key(&e, "k y"), SY_EFIELD_CHARS);
    big[129] = '\0'; memset(big, 'a', 129);
    assert_int_equal(envelope_set_key(&e, big), SY_EFIELD_RANGE);
    big[128] = '\0';
    assert_int_equal(envelope_set_key(&e, big), 0);
    assert_int_equal(e.present, ENV_HAS_KEY);
    assert_int_equal(envelope_set_to(&e, "echo"), 0);
    assert_false(envelope_is_direct(&e));
    assert_int_equal(envelope_set_to(&e, "@echo-1"), 0);
    assert_true(envelope_is_direct(&e));
    assert_int_equal(envelope_set_from(&e, "me"), 0);
    assert_int_equal(envelope_set_reply_to(&e, "@me"), 0);
    assert_int_equal(e.present, ENV_HAS_KEY | ENV_HAS_TO | ENV_HAS_FROM | ENV_HAS_REPLY_TO);
    assert_true(envelope_valid_type("a", 1));
    assert_false(envelope_valid_type("a", 0));
    assert_true(envelope_valid_name("@", 1));
    assert_false(envelope_valid_key("a\x80", 2));
}

static void test_id_hex(void **state)
{
    (void)state;
    char hex[33];
    uint8_t back[16];
    envelope_id_hex(test_id, hex);
    assert_string_equal(hex, "0102030405060708090a0b0c0d0e0f10");
    assert_int_equal(envelope_id_parse(hex, back), 0);
    assert_memory_equal(back, test_id, 16);
    assert_int_equal(envelope_id_parse("0102030405060708090A0B0C0D0E0F10", back), 0);
    assert_memory_equal(back, test_id, 16);
    memset(back, 0, 16);
    assert_int_equal(envelope_id_parse("0102030405060708090a0b0c0d0e0f1", back), SY_EINVAL);
    assert_int_equal(envelope_id_parse("0102030405060708090a0b0c0d0e0f100", back), SY_EINVAL);
    assert_int_equal(envelope_id_parse("0102030405060708090a0b0c0d0e0fxx", back), SY_EINVAL);
    assert_int_equal(envelope_id_parse(NULL, back), SY_EINVAL);
    for (int i = 0; i < 16; i++) assert_int_equal(back[i], 0);   /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_round_trip_each_field),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_signed_encodings),
        cmocka_unit_test(test_any_order),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_not_map),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_key_type),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_dup_field),
        cmocka_unit_test(test_wrong_type_every_field),
        cmocka_unit_test(test_range_every_field),
        cmocka_unit_test(test_bad_chars),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_encode_small_buffer),
        cmocka_unit_test(test_encode_max_sizes),
        cmocka_unit_test(test_encode_trusted),
        cmocka_unit_test(test_encode_every_combination),
        cmocka_unit_test(test_encode_refuses_bad_chars_anywhere),
        cmocka_unit_test(test_char_rules_every_byte),
        cmocka_unit_test(test_decode_other_encodings),
        cmocka_unit_test(test_encode_sizes_trusted),
        cmocka_unit_test(test_setters),
        cmocka_unit_test(test_id_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
