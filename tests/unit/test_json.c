/*  test_json.c -- JSON <-> msgpack conversion used by syctl (tools/json.c).
 *
 *  Round trips (JSON -> msgpack -> JSON gives the canonical text back),
 *  exact msgpack bytes for the integer / float / string encodings, every
 *  escape including surrogate pairs, errors with their byte offsets, the
 *  depth limit on both sides, hex for MF_ID / MF_BIN fields through the
 *  message table, and the printer on every msgpack kind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "common/json.h"

/* JSON -> msgpack -> JSON; the result must equal `want`. */
static void roundtrip(const char *in, const char *want)
{
    uint8_t *mp = NULL;
    size_t n = 0;
    json_err_t err;
    int rc = json_to_msgpack(in, strlen(in), NULL, &mp, &n, &err);
    if (rc)
        fail_msg("parse of %s failed: %s", in, err.msg);
    char *out = NULL;
    assert_int_equal(json_from_msgpack(mp, n, &out), 0);
    assert_string_equal(out, want);
    free(out);
    free(mp);
}

/* JSON -> msgpack must give exactly these bytes. */
static void bytes_are(const char *in, const uint8_t *want, size_t wlen)
{
    uint8_t *mp = NULL;
    size_t n = 0;
    assert_int_equal(json_to_msgpack(in, strlen(in), NULL, &mp, &n, NULL), 0);
    assert_int_equal(n, wlen);
    assert_memory_equal(mp, want, wlen);
    free(mp);
}

static void parse_fails(const char *in, int code, size_t offset)
{
    uint8_t *mp = (uint8_t *) 1;
    size_t n = 7;
    json_err_t err;
    int rc = json_to_msgpack(in, strlen(in), NULL, &mp, &n, &err);
    if (rc != code || err.offset != offset)
        fail_msg("%s: want %s at %zu, got %s at %zu (%s)", in,
                 syerr_name(code), offset, syerr_name(rc), err.offset,
                 err.msg);
    assert_null(mp);
    assert_int_equal(n, 0);
    char want[32];
    snprintf(want, sizeof want, "offset %zu: ", offset);
    assert_non_null(strstr(err.msg, want));
}

static void test_roundtrip_basic(void **state)
{
    (void) state;
    roundtrip("{}", "{}");
    roundtrip("[]", "[]");
    roundtrip(" { \"a\" : 1 , \"b\" : [ true , false , null ] } ",
              "{\"a\":1,\"b\":[true,false,null]}");
    roundtrip("-5", "-5");
    roundtrip("0", "0");
    roundtrip("-0", "0");
    roundtrip("18446744073709551615", "18446744073709551615");
    roundtrip("-9223372036854775808", "-9223372036854775808");
    roundtrip("1.5", "1.5");
    roundtrip("0.1", "0.1");
    roundtrip("1e3", "1000.0");
    roundtrip("-2.5E-3", "-0.0025");
    roundtrip("\"h\\u00e9llo\"", "\"h\xc3\xa9llo\"");
    roundtrip("[[[[1]]],{\"x\":{\"y\":\"z\"}}]", "[[[[1]]],{\"x\":{\"y\":\"z\"}}]");
    /* too large for 64 bits: a float */
    roundtrip("18446744073709551616", "1.8446744073709552e+19");
}

static void test_integer_encodings(void **state)
{
    (void) state;
    bytes_are("127", (const uint8_t[]) { 0x7f }, 1);
    bytes_are("128", (const uint8_t[]) { 0xcc, 0x80 }, 2);
    bytes_are("65536", (const uint8_t[]) { 0xce, 0, 1, 0, 0 }, 5);
    bytes_are("-1", (const uint8_t[]) { 0xff }, 1);
    bytes_are("-33", (const uint8_t[]) { 0xd0, 0xdf }, 2);
    bytes_are("-129", (const uint8_t[]) { 0xd1, 0xff, 0x7f }, 3);
    bytes_are("1.0", (const uint8_t[]) { 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 }, 9);
    bytes_are("\"ab\"", (const uint8_t[]) { 0xa2, 'a', 'b' }, 3);
    bytes_are("{\"a\":[]}", (const uint8_t[]) { 0x81, 0xa1, 'a', 0x90 }, 4);
}

static void test_big_containers(void **state)
{
    (void) state;
    /* 20 items: array 16 header; 70000 items: array 32 header */
    char *txt = malloc(70000 * 2 + 3);
    assert_non_null(txt);
    size_t sizes[] = { 20, 70000 };
    for (int k = 0; k < 2; k++) {
        size_t n = sizes[k], p = 0;
        txt[p++] = '[';
        for (size_t i = 0; i < n; i++) {
            txt[p++] = '0';
            if (i + 1 < n)
                txt[p++] = ',';
        }
        txt[p++] = ']';
        txt[p] = 0;
        uint8_t *mp;
        size_t len;
        assert_int_equal(json_to_msgpack(txt, p, NULL, &mp, &len, NULL), 0);
        assert_int_equal(mp[0], k == 0 ? 0xdc : 0xdd);
        assert_int_equal(len, n + (k == 0 ? 3 : 5));
        char *out;
        assert_int_equal(json_from_msgpack(mp, len, &out), 0);
        assert_string_equal(out, txt);
        free(out);
        free(mp);
    }
    free(txt);
}

static void test_escapes(void **state)
{
    (void) state;
    roundtrip("\"a\\\"b\\\\c\\/d\"", "\"a\\\"b\\\\c/d\"");
    roundtrip("\"\\b\\f\\n\\r\\t\"", "\"\\b\\f\\n\\r\\t\"");
    roundtrip("\"\\u0001\\u001f\"", "\"\\u0001\\u001f\"");
    roundtrip("\"\\u0041\"", "\"A\"");
    /* surrogate pair: U+1F600 -> F0 9F 98 80 */
    roundtrip("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    bytes_are("\"\\uD83D\\uDE00\"",
              (const uint8_t[]) { 0xa4, 0xf0, 0x9f, 0x98, 0x80 }, 5);
    /* raw UTF-8 (Korean) passes through */
    roundtrip("\"\xec\x95\x88\xeb\x85\x95\"", "\"\xec\x95\x88\xeb\x85\x95\"");
    bytes_are("\"\\u20ac\"", (const uint8_t[]) { 0xa3, 0xe2, 0x82, 0xac }, 4);
}

static void test_errors_with_offsets(void **state)
{
    (void) state;
    parse_fails("", SY_EINVAL, 0);
    parse_fails("   ", SY_EINVAL, 3);
    parse_fails("{\"a\" 1}", SY_EINVAL, 5);
    parse_fails("{\"a\":1,}", SY_EINVAL, 7);
    parse_fails("[1 2]", SY_EINVAL, 3);
    parse_fails("[1,", SY_EINVAL, 3);
    parse_fails("{\"a\":1", SY_EINVAL, 6);
    parse_fails("tru", SY_EINVAL, 0);
    parse_fails("nul", SY_EINVAL, 0);
    parse_fails("01", SY_EINVAL, 1);
    parse_fails("1.", SY_EINVAL, 2);
    parse_fails("1e", SY_EINVAL, 2);
    parse_fails("-", SY_EINVAL, 1);
    parse_fails("+1", SY_EINVAL, 0);
    parse_fails("1 2", SY_EINVAL, 2);
    parse_fails("\"abc", SY_EINVAL, 4);
    parse_fails("\"a\nb\"", SY_EINVAL, 2);
    parse_fails("\"\\x\"", SY_EINVAL, 1);
    parse_fails("\"\\u12g4\"", SY_EINVAL, 5);
    parse_fails("\"\\u12\"", SY_EINVAL, 3);
    parse_fails("  \"\\ud83d\"", SY_EINVAL, 3);
    parse_fails("\"\\ud83d\\u0041\"", SY_EINVAL, 7);
    parse_fails("\"\\ude00\"", SY_EINVAL, 1);
    parse_fails("\"ab\xff\"", SY_EBAD_UTF8, 3);
    parse_fails("\"\xc0\xaf\"", SY_EBAD_UTF8, 1);       /* overlong */
    parse_fails("\"\xed\xa0\x80\"", SY_EBAD_UTF8, 1);   /* surrogate */
    parse_fails("{1:2}", SY_EINVAL, 1);
    parse_fails("1e999", SY_EINVAL, 0);
}

static void test_depth_limit(void **state)
{
    (void) state;
    char txt[2 * (JSON_MAX_DEPTH + 2) + 1];
    /* exactly JSON_MAX_DEPTH nested arrays are fine */
    size_t p = 0;
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        txt[p++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        txt[p++] = ']';
    txt[p] = 0;
    uint8_t *mp;
    size_t n;
    assert_int_equal(json_to_msgpack(txt, p, NULL, &mp, &n, NULL), 0);
    char *out;
    assert_int_equal(json_from_msgpack(mp, n, &out), 0);
    assert_string_equal(out, txt);
    free(out);
    free(mp);
    /* one more is refused, at the offset of the deepest bracket */
    p = 0;
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        txt[p++] = '[';
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        txt[p++] = ']';
    txt[p] = 0;
    parse_fails(txt, SY_EDEPTH, JSON_MAX_DEPTH);

    /* msgpack nested deeper than the printer allows */
    uint8_t deep[MPREAD_MAX_DEPTH + 3];
    memset(deep, 0x91, sizeof deep);     /* array of 1, nested */
    deep[sizeof deep - 1] = 0x01;
    assert_int_not_equal(json_from_msgpack(deep, sizeof deep, &out), 0);
    assert_null(out);
}

static void test_hex_fields(void **state)
{
    (void) state;
    const msgtype_t *t = msgtypes_find("sy.query", 8);
    assert_non_null(t);
    const char *in = "{\"what\":\"peek\",\"id\":\"000102030405060708090a0b0c0d0eFF\"}";
    uint8_t *mp;
    size_t n;
    json_err_t err;
    assert_int_equal(json_to_msgpack(in, strlen(in), t, &mp, &n, &err), 0);
    /* the body is valid for the type: id became bin 16 */
    assert_int_equal(msgtypes_validate(t, mp, n, NULL, 0), 0);
    const uint8_t want_id[] = { 0xc4, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                11, 12, 13, 14, 0xff };
    assert_true(n >= sizeof want_id);
    assert_memory_equal(mp + n - sizeof want_id, want_id, sizeof want_id);
    char *out;
    assert_int_equal(json_from_msgpack(mp, n, &out), 0);
    assert_string_equal(out, "{\"what\":\"peek\",\"id\":\"000102030405060708090a0b0c0d0eff\"}");
    free(out);
    free(mp);

    /* without the table the same text stays a string and fails validation */
    assert_int_equal(json_to_msgpack(in, strlen(in), NULL, &mp, &n, NULL), 0);
    assert_int_not_equal(msgtypes_validate(t, mp, n, NULL, 0), 0);
    free(mp);

    /* bin field of echo.request; nested "pad" keys are not hex */
    const msgtype_t *e = msgtypes_find("echo.request", 12);
    assert_non_null(e);
    const char *in2 = "{\"seq\":1,\"pad\":\"abcd\",\"data\":{\"pad\":\"abcd\"}}";
    assert_int_equal(json_to_msgpack(in2, strlen(in2), e, &mp, &n, NULL), 0);
    assert_int_equal(msgtypes_validate(e, mp, n, NULL, 0), 0);
    assert_int_equal(json_from_msgpack(mp, n, &out), 0);
    assert_string_equal(out, "{\"seq\":1,\"pad\":\"abcd\",\"data\":{\"pad\":\"abcd\"}}");
    free(out);
    free(mp);

    /* bad hex is an error at the string's offset */
    const char *bad = "{\"pad\":\"abc\"}";
    mp = NULL;
    assert_int_equal(json_to_msgpack(bad, strlen(bad), e, &mp, &n, &err), SY_EINVAL);
    assert_int_equal(err.offset, 7);
    assert_null(mp);
    bad = "{\"pad\":\"zz\"}";
    assert_int_equal(json_to_msgpack(bad, strlen(bad), e, &mp, &n, &err), SY_EINVAL);
    assert_int_equal(err.offset, 7);
}

static void printed_as(const uint8_t *mp, size_t n, const char *want)
{
    char *out = NULL;
    int rc = json_from_msgpack(mp, n, &out);
    if (rc)
        fail_msg("print failed: %s", syerr_name(rc));
    assert_string_equal(out, want);
    free(out);
}

static void test_print_every_kind(void **state)
{
    (void) state;
    printed_as((const uint8_t[]) { 0xc0 }, 1, "null");
    printed_as((const uint8_t[]) { 0xc3 }, 1, "true");
    printed_as((const uint8_t[]) { 0xc2 }, 1, "false");
    printed_as((const uint8_t[]) { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff }, 9, "18446744073709551615");
    printed_as((const uint8_t[]) { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 9,
               "-9223372036854775808");
    printed_as((const uint8_t[]) { 0xca, 0x3f, 0xc0, 0, 0 }, 5, "1.5");
    printed_as((const uint8_t[]) { 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1 }, 9,
               "null");                                   /* NaN */
    printed_as((const uint8_t[]) { 0xc4, 3, 0x00, 0xab, 0xff }, 5,
               "\"00abff\"");
    printed_as((const uint8_t[]) { 0xd4, 5, 0x7e }, 3,
               "{\"ext\":5,\"hex\":\"7e\"}");
    printed_as((const uint8_t[]) { 0xc7, 2, 0xfe, 1, 2 }, 5,
               "{\"ext\":-2,\"hex\":\"0102\"}");
    /* control chars, DEL, quote, backslash, invalid UTF-8 */
    printed_as((const uint8_t[]) { 0xa6, 0x01, 0x7f, '"', '\\', 0xff, 'x' }, 7,
               "\"\\u0001\\u007f\\\"\\\\\\ufffdx\"");
    /* non-string keys are written as strings */
    printed_as((const uint8_t[]) { 0x82, 0x01, 0xa1, 'a', 0xc0, 0x02 }, 6,
               "{\"1\":\"a\",\"null\":2}");
    printed_as((const uint8_t[]) { 0x81, 0xc4, 1, 0xab, 0x90 }, 5,
               "{\"\\\"ab\\\"\":[]}");
}

static void test_print_refuses_bad_msgpack(void **state)
{
    (void) state;
    char *out = (char *) 1;
    /* hostile count: array of 2^32-1 items in 5 bytes */
    assert_int_equal(json_from_msgpack((const uint8_t[]) { 0xdd, 0xff, 0xff,
                                                           0xff, 0xff }, 5, &out),
                     SY_ECOUNT);
    assert_null(out);
    assert_int_equal(json_from_msgpack((const uint8_t[]) { 0xa5, 'a' }, 2, &out),
                     SY_ETRUNCATED);
    assert_int_equal(json_from_msgpack((const uint8_t[]) { 0x01, 0x02 }, 2, &out),
                     SY_ETRAILING);
    assert_int_equal(json_from_msgpack((const uint8_t[]) { 0xc1 }, 1, &out),
                     SY_EFIELD_TYPE);
    assert_int_not_equal(json_from_msgpack(NULL, 0, &out), 0);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_basic),
        cmocka_unit_test(test_integer_encodings),
        cmocka_unit_test(test_big_containers),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_errors_with_offsets),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_hex_fields),
        cmocka_unit_test(test_print_every_kind),
        cmocka_unit_test(test_print_refuses_bad_msgpack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
