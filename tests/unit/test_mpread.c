/*  test_mpread.c -- the bounded msgpack reader: every encoding, every
 *  truncation, container counts against the bytes left, depth limits, and
 *  agreement with msgpack-c's packer on a generated stream of values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <string.h>

#include "schemas/mpread.h"
#include "schemas/syerr.h"

static int read1(const uint8_t *b, size_t n, mpval_t *v, size_t *used)
{
    mpread_t r;
    mpread_init(&r, b, n);
    int rc = mpread_next(&r, v);
    if (used) *used = n - mpread_left(&r);
    return rc;
}

typedef struct {
    const char *bytes;
    size_t      len;
    mp_kind_t   kind;
    uint64_t    u;
    int64_t     i;
    uint32_t    n;      /* STR/BIN/EXT/container length */
} enc_t;

static const enc_t encodings[] = {
    { "\x00", 1, MP_UINT, 0, 0, 0 },
    { "\x7f", 1, MP_UINT, 127, 127, 0 },
    { "\xcc\xff", 2, MP_UINT, 255, 255, 0 },
    { "\xcd\x01\x00", 3, MP_UINT, 256, 256, 0 },
    { "\xce\xff\xff\xff\xff", 5, MP_UINT, 0xffffffffu, 0xffffffffll, 0 },
    { "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, MP_UINT, UINT64_MAX, INT64_MAX, 0 },
    { "\xff", 1, MP_INT, 0, -1, 0 },
    { "\xe0", 1, MP_INT, 0, -32, 0 },
    { "\xd0\x80", 2, MP_INT, 0, -128, 0 },
    { "\xd0\x05", 2, MP_INT, 5, 5, 0 },
    { "\xd1\x80\x00", 3, MP_INT, 0, -32768, 0 },
    { "\xd2\x80\x00\x00\x00", 5, MP_INT, 0, INT32_MIN, 0 },
    { "\xd2\x00\x00\x01\x00", 5, MP_INT, 256, 256, 0 },
    { "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, MP_INT, 0, INT64_MIN, 0 },
    { "\xd3\x7f\xff\xff\xff\xff\xff\xff\xff", 9, MP_INT, INT64_MAX, INT64_MAX, 0 },
    { "\xc0", 1, MP_NIL, 0, 0, 0 },
    { "\xc2", 1, MP_BOOL, 0, 0, 0 },
    { "\xc3", 1, MP_BOOL, 1, 0, 0 },
    { "\xa0", 1, MP_STR, 0, 0, 0 },
    { "\xa3" "abc", 4, MP_STR, 0, 0, 3 },
    { "\xd9\x02" "ab", 4, MP_STR, 0, 0, 2 },
    { "\xda\x00\x02" "ab", 5, MP_STR, 0, 0, 2 },
    { "\xdb\x00\x00\x00\x02" "ab", 7, MP_STR, 0, 0, 2 },
    { "\xc4\x01" "x", 3, MP_BIN, 0, 0, 1 },
    { "\xc5\x00\x01" "x", 4, MP_BIN, 0, 0, 1 },
    { "\xc6\x00\x00\x00\x01" "x", 6, MP_BIN, 0, 0, 1 },
    { "\xd4\x07" "x", 3, MP_EXT, 0, 0, 1 },
    { "\xd5\x07" "xy", 4, MP_EXT, 0, 0, 2 },
    { "\xd6\x07" "wxyz", 6, MP_EXT, 0, 0, 4 },
    { "\xd7\x07" "12345678", 10, MP_EXT, 0, 0, 8 },
    { "\xd8\x07" "1234567812345678", 18, MP_EXT, 0, 0, 16 },
    { "\xc7\x01\x07" "x", 4, MP_EXT, 0, 0, 1 },
    { "\xc8\x00\x01\x07" "x", 5, MP_EXT, 0, 0, 1 },
    { "\xc9\x00\x00\x00\x01\x07" "x", 7, MP_EXT, 0, 0, 1 },
    { "\xca\x3f\xc0\x00\x00", 5, MP_FLOAT, 0, 0, 0 },
    { "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9, MP_FLOAT, 0, 0, 0 },
    { "\x90", 1, MP_ARRAY, 0, 0, 0 },
    { "\x80", 1, MP_MAP, 0, 0, 0 },
    { "\xdc\x00\x00", 3, MP_ARRAY, 0, 0, 0 },
    { "\xdd\x00\x00\x00\x00", 5, MP_ARRAY, 0, 0, 0 },
    { "\xde\x00\x00", 3, MP_MAP, 0, 0, 0 },
    { "\xdf\x00\x00\x00\x00", 5, MP_MAP, 0, 0, 0 },
};
#define NENC (sizeof encodings / sizeof encodings[0])

static void test_every_encoding(void **state)
{
    (void)state;
    for (size_t k = 0; k < NENC; k++) {
        const enc_t *e = &encodings[k];
        mpval_t v;
        size_t used;
        assert_int_equal(read1((const uint8_t *)e->bytes, e->len, &v, &used), 0);
        assert_int_equal(used, e->len);
        assert_int_equal(v.kind, e->kind);
        switch (e->kind) {
        case MP_UINT:
            assert_true(v.u == e->u);
            assert_true(v.i == e->i);
            break;
        case MP_INT: {
            assert_true(v.i == e->i);
            uint64_t u;
            assert_int_equal(mpval_as_uint(&v, &u), e->i >= 0);
            if (e->i >= 0) assert_true(u == e->u && v.u == e->u);
            break;
        }
        case MP_BOOL: assert_int_equal(v.b, e->u); break;
        case MP_FLOAT: assert_true(v.f == 1.5); break;
        case MP_STR: case MP_BIN: case MP_EXT:
            assert_int_equal(v.len, e->n);
            assert_ptr_equal(v.ptr, (const uint8_t *)e->bytes + e->len - e->n);
            if (e->kind == MP_EXT) assert_int_equal(v.ext_type, 7);
            break;
        default:
            assert_int_equal(v.len, 0);
            break;
        }
        assert_int_equal(mpread_check((const uint8_t *)e->bytes, e->len, 1), 0);
    }
}

/* Every proper prefix of every encoding is TRUNCATED, and the reader does
   not move. */
static void test_truncated(void **state)
{
    (void)state;
    for (size_t k = 0; k < NENC; k++) {
        const enc_t *e = &encodings[k];
        for (size_t cut = 0; cut < e->len; cut++) {
            mpread_t r;
            mpval_t v;
            mpread_init(&r, (const uint8_t *)e->bytes, cut);
            assert_int_equal(mpread_next(&r, &v), SY_ETRUNCATED);
            assert_int_equal(mpread_left(&r), cut);
            assert_int_equal(mpread_check((const uint8_t *)e->bytes, cut, 4), SY_ETRUNCATED);
        }
    }
    mpval_t v;
    assert_int_equal(read1(NULL, 0, &v, NULL), SY_ETRUNCATED);
    /* a length that points past the end */
    assert_int_equal(read1((const uint8_t *)"\xdb\xff\xff\xff\xff" "ab", 7, &v, NULL), SY_ETRUNCATED);
    assert_int_equal(read1((const uint8_t *)"\xc6\x80\x00\x00\x00", 5, &v, NULL), SY_ETRUNCATED);
}

static void test_reserved_byte(void **state)
{
    (void)state;
    mpval_t v;
    size_t used;
    assert_int_equal(read1((const uint8_t *)"\xc1", 1, &v, &used), SY_EFIELD_TYPE);
    assert_int_equal(used, 0);
    assert_int_equal(mpread_check((const uint8_t *)"\x92\x01\xc1", 3, 4), SY_EFIELD_TYPE);
}

static void test_count(void **state)
{
    (void)state;
    mpval_t v;
    assert_int_equal(read1((const uint8_t *)"\xdd\xff\xff\xff\xff", 5, &v, NULL), SY_ECOUNT);
    assert_int_equal(read1((const uint8_t *)"\xdf\xff\xff\xff\xff", 5, &v, NULL), SY_ECOUNT);
    assert_int_equal(read1((const uint8_t *)"\xdc\x00\x03\x01\x02", 5, &v, NULL), SY_ECOUNT);
    assert_int_equal(read1((const uint8_t *)"\xdc\x00\x03\x01\x02\x03", 6, &v, NULL), 0);
    assert_int_equal(v.len, 3);
    /* a map of n pairs needs 2n bytes */
    assert_int_equal(read1((const uint8_t *)"\x82\x01\x02\x03", 4, &v, NULL), SY_ECOUNT);
    assert_int_equal(read1((const uint8_t *)"\x82\x01\x02\x03\x04", 5, &v, NULL), 0);
    assert_int_equal(read1((const uint8_t *)"\x9f", 1, &v, NULL), SY_ECOUNT);
    /* inner counts are checked too */
    assert_int_equal(mpread_check((const uint8_t *)"\x92\xdd\x00\x01\x00\x00\x01", 7, 4), SY_ECOUNT);
}

static void test_depth(void **state)
{
    (void)state;
    uint8_t b[200];
    /* n nested arrays around a 1 */
    for (int n = 0; n <= 40; n++) {
        memset(b, 0x91, (size_t)n);
        b[n] = 0x01;
        int want_max = n <= MPREAD_MAX_DEPTH ? 0 : SY_EDEPTH;
        assert_int_equal(mpread_check(b, (size_t)n + 1, MPREAD_MAX_DEPTH), want_max);
        assert_int_equal(mpread_check(b, (size_t)n + 1, 1000), want_max);   /* capped */
        assert_int_equal(mpread_check(b, (size_t)n + 1, 5), n <= 5 ? 0 : SY_EDEPTH);
        mpread_t r;
        mpval_t v;
        mpread_init(&r, b, (size_t)n + 1);
        assert_int_equal(mpread_next(&r, &v), 0);
        assert_int_equal(mpread_skip(&r, &v, 0), want_max);
    }
    assert_int_equal(mpread_check((const uint8_t *)"\x01", 1, 0), 0);
    assert_int_equal(mpread_check((const uint8_t *)"\x90", 1, 0), SY_EDEPTH);
    assert_int_equal(mpread_check((const uint8_t *)"\x90", 1, 1), 0);
    /* depth of v itself counts: a container at depth 31 may hold scalars
       only under MPREAD_MAX_DEPTH */
    mpread_t r;
    mpval_t v;
    mpread_init(&r, (const uint8_t *)"\x91\x91\x01", 3);
    assert_int_equal(mpread_next(&r, &v), 0);
    assert_int_equal(mpread_skip(&r, &v, MPREAD_MAX_DEPTH - 1), SY_EDEPTH);
    mpread_init(&r, (const uint8_t *)"\x91\x91\x01", 3);
    assert_int_equal(mpread_next(&r, &v), 0);
    assert_int_equal(mpread_skip(&r, &v, MPREAD_MAX_DEPTH - 2), 0);
    assert_int_equal(mpread_left(&r), 0);
    /* maps count as well */
    assert_int_equal(mpread_check((const uint8_t *)"\x81\x01\x81\x01\x81\x01\x01", 7, 3), 0);
    assert_int_equal(mpread_check((const uint8_t *)"\x81\x01\x81\x01\x81\x01\x01", 7, 2), SY_EDEPTH);
    assert_int_equal(mpread_check((const uint8_t *)"\x81\x91\x01\x01", 4, 1), SY_EDEPTH);
}

/* Deep hostile input of 64 KiB: refused, without recursion. */
static void test_deep_hostile(void **state)
{
    (void)state;
    static uint8_t b[65536];
    memset(b, 0x91, sizeof b);
    assert_int_equal(mpread_check(b, sizeof b, MPREAD_MAX_DEPTH), SY_EDEPTH);
    memset(b, 0xdc, sizeof b);   /* array16 of 0xdcdc items, nested */
    assert_int_equal(mpread_check(b, sizeof b, MPREAD_MAX_DEPTH), SY_EDEPTH);
}

static void test_trailing(void **state)
{
    (void)state;
    assert_int_equal(mpread_check((const uint8_t *)"\x01\x02", 2, 4), SY_ETRAILING);
    assert_int_equal(mpread_check((const uint8_t *)"\x91\x01\xc0", 3, 4), SY_ETRAILING);
    assert_int_equal(mpread_check((const uint8_t *)"\x91\x01", 2, 4), 0);
}

static void test_skip_scalar_and_nested(void **state)
{
    (void)state;
    /* [ {"a": [1, "x"]}, bin(2), 3 ] then 0x07 */
    const uint8_t b[] = { 0x93, 0x81, 0xa1, 'a', 0x92, 0x01, 0xa1, 'x',
                          0xc4, 0x02, 0xff, 0xff, 0x03, 0x07 };
    mpread_t r;
    mpval_t v;
    mpread_init(&r, b, sizeof b);
    assert_int_equal(mpread_next(&r, &v), 0);
    assert_int_equal(mpread_skip(&r, &v, 0), 0);
    assert_int_equal(mpread_left(&r), 1);
    assert_int_equal(mpread_next(&r, &v), 0);
    assert_int_equal(v.u, 7);
    assert_int_equal(mpread_skip(&r, &v, 0), 0);   /* scalar: no-op */
    assert_int_equal(mpread_left(&r), 0);
    /* truncated inside */
    mpread_init(&r, b, 9);
    assert_int_equal(mpread_next(&r, &v), 0);
    assert_int_equal(mpread_skip(&r, &v, 0), SY_ETRUNCATED);
}

static void test_helpers(void **state)
{
    (void)state;
    mpval_t v;
    uint64_t u = 99;
    assert_int_equal(read1((const uint8_t *)"\xa3" "abc", 4, &v, NULL), 0);
    assert_true(mpval_str_eq(&v, "abc"));
    assert_false(mpval_str_eq(&v, "ab"));
    assert_false(mpval_str_eq(&v, "abcd"));
    assert_false(mpval_str_eq(&v, NULL));
    assert_false(mpval_as_uint(&v, &u));
    assert_int_equal(read1((const uint8_t *)"\xa0", 1, &v, NULL), 0);
    assert_true(mpval_str_eq(&v, ""));
    assert_int_equal(read1((const uint8_t *)"\xc4\x03" "abc", 5, &v, NULL), 0);
    assert_false(mpval_str_eq(&v, "abc"));   /* bin is not str */
    assert_int_equal(read1((const uint8_t *)"\xd1\x01\x00", 3, &v, NULL), 0);
    assert_true(mpval_as_uint(&v, &u));
    assert_int_equal(u, 256);
    assert_int_equal(read1((const uint8_t *)"\xd0\xff", 2, &v, NULL), 0);
    assert_false(mpval_as_uint(&v, &u));
    assert_int_equal(read1((const uint8_t *)"\xca\x3f\x80\x00\x00", 5, &v, NULL), 0);
    assert_false(mpval_as_uint(&v, &u));
}

static void test_map_find(void **state)
{
    (void)state;
    /* {"a": [1, 2], 5: "x", "bb": {"c": 1}, "d": 9} */
    const uint8_t b[] = { 0x84, 0xa1, 'a', 0x92, 0x01, 0x02, 0x05, 0xa1, 'x',
                          0xa2, 'b', 'b', 0x81, 0xa1, 'c', 0x01, 0xa1, 'd', 0x09 };
    mpread_t r, at;
    mpval_t m, v;
    mpread_init(&r, b, sizeof b);
    assert_int_equal(mpread_next(&r, &m), 0);
    const uint8_t *before = r.p;
    assert_int_equal(mpread_map_find(&r, &m, "d", &v, NULL), 0);
    assert_int_equal(v.u, 9);
    assert_ptr_equal(r.p, before);
    assert_int_equal(mpread_map_find(&r, &m, "bb", &v, &at), 0);
    assert_int_equal(v.kind, MP_MAP);
    assert_int_equal(mpread_map_find(&at, &v, "c", &v, NULL), 0);
    assert_int_equal(v.u, 1);
    assert_int_equal(mpread_map_find(&r, &m, "a", &v, &at), 0);
    assert_int_equal(v.kind, MP_ARRAY);
    assert_int_equal(v.len, 2);
    assert_int_equal(mpread_next(&at, &v), 0);
    assert_int_equal(v.u, 1);
    assert_int_equal(mpread_map_find(&r, &m, "x", &v, NULL), SY_ENOTFOUND);
    assert_int_equal(mpread_map_find(&r, &m, "", &v, NULL), SY_ENOTFOUND);
    /* not a map; a truncated map */
    mpval_t arr = { .kind = MP_ARRAY, .len = 0 };
    assert_int_equal(mpread_map_find(&r, &arr, "a", &v, NULL), SY_ENOT_MAP);
    mpread_init(&r, b, 12);   /* ends before the value of "bb" */
    assert_int_equal(mpread_next(&r, &m), 0);
    assert_int_equal(mpread_map_find(&r, &m, "d", &v, NULL), SY_ETRUNCATED);
    assert_int_equal(mpread_map_find(&r, &m, "a", &v, NULL), 0);
}

/* A deterministic stream of values packed by msgpack-c, read back. */
static void test_agrees_with_msgpack_c(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    enum { N = 3000 };
    static uint64_t vals[N];
    static int kinds[N];
    char text[300];
    memset(text, 'q', sizeof text);
    for (int i = 0; i < N; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        kinds[i] = (int)(x % 5);
        int shift = (int)((x >> 8) % 64);
        vals[i] = x >> shift;
        switch (kinds[i]) {
        case 0: msgpack_pack_uint64(&pk, vals[i]); break;
        case 1: msgpack_pack_int64(&pk, -(int64_t)(vals[i] >> 1) - 1); break;
        case 2: vals[i] %= 300; msgpack_pack_str(&pk, vals[i]); msgpack_pack_str_body(&pk, text, vals[i]); break;
        case 3: vals[i] %= 300; msgpack_pack_bin(&pk, vals[i]); msgpack_pack_bin_body(&pk, text, vals[i]); break;
        default:
            vals[i] %= 20;
            msgpack_pack_array(&pk, vals[i]);
            for (uint64_t k = 0; k < vals[i]; k++)
                msgpack_pack_double(&pk, (double)k);
            break;
        }
    }
    mpread_t r;
    mpread_init(&r, (const uint8_t *)sb.data, sb.size);
    for (int i = 0; i < N; i++) {
        mpval_t v;
        assert_int_equal(mpread_next(&r, &v), 0);
        switch (kinds[i]) {
        case 0: { uint64_t u; assert_true(mpval_as_uint(&v, &u)); assert_true(u == vals[i]); break; }
        case 1: assert_int_equal(v.kind, MP_INT); assert_true(v.i == -(int64_t)(vals[i] >> 1) - 1); break;
        case 2: assert_int_equal(v.kind, MP_STR); assert_int_equal(v.len, vals[i]); break;
        case 3: assert_int_equal(v.kind, MP_BIN); assert_int_equal(v.len, vals[i]); break;
        default:
            assert_int_equal(v.kind, MP_ARRAY);
            assert_int_equal(v.len, vals[i]);
            for (uint64_t k = 0; k < vals[i]; k++) {
                mpval_t f;
                assert_int_equal(mpread_next(&r, &f), 0);
                assert_int_equal(f.kind, MP_FLOAT);
                assert_true(f.f == (double)k);
            }
        }
    }
    assert_int_equal(mpread_left(&r), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* The two helpers error messages use. */
static void test_names_for_messages(void **state)
{
    (void)state;
    assert_string_equal(mpval_kind_name(MP_NIL), "nil");
    assert_string_equal(mpval_kind_name(MP_STR), "str");
    assert_string_equal(mpval_kind_name(MP_MAP), "map");
    assert_string_equal(mpval_kind_name(MP_EXT), "ext");
    assert_string_equal(mpval_kind_name((mp_kind_t)99), "?");
    const uint8_t key[] = { 0xa6, 'a', '\n', '"', 0x7f, 0xc3, 'z' };
    mpval_t v;
    assert_int_equal(read1(key, sizeof key, &v, NULL), 0);
    char out[16];
    memset(out, 'x', sizeof out);
    mpval_printable(&v, out, sizeof out);
    assert_string_equal(out, "a????z");
    mpval_printable(&v, out, 3);              /* cut to cap - 1 */
    assert_string_equal(out, "a?");
    mpval_printable(&v, out, 1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_encoding),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_reserved_byte),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_deep_hostile),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_skip_scalar_and_nested),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_map_find),
        cmocka_unit_test(test_agrees_with_msgpack_c),
        cmocka_unit_test(test_names_for_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
