/*  test_syerr.c -- every error code has its own name and text, names map
 *  back to codes, and detail codes map onto the right wire code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "schemas/syerr.h"

static const int wire_codes[] = {
    SY_ENO_SERVICE, SY_EBAD_ENVELOPE, SY_ETOO_LARGE, SY_EDENIED, SY_ERATE_LIMITED,
    SY_EQUEUE_FULL, SY_EDUPLICATE, SY_EEXPIRED, SY_EBAD_BODY, SY_EINTERNAL, SY_ETIMEOUT,
};
static const int decode_codes[] = {
    SY_ETRUNCATED, SY_ETRAILING, SY_ENOT_MAP, SY_ECOUNT, SY_EDEPTH, SY_EKEY_TYPE,
    SY_EUNKNOWN_FIELD, SY_EDUP_FIELD, SY_EFIELD_TYPE, SY_EFIELD_RANGE, SY_EMISSING,
    SY_EFIELD_CHARS, SY_EBAD_UTF8,
};
static const int header_codes[] = { SY_EVERSION, SY_EUNKNOWN_TYPE, SY_EFRAMES };
static const int local_codes[] = {
    SY_ENOMEM, SY_EIO, SY_EINVAL, SY_ECONFIG, SY_ENOSPACE, SY_ENOTFOUND, SY_ESTORE, SY_ECLOSED, SY_ECRYPTO,
};

#define N(a) (sizeof a / sizeof a[0])

/* All codes, gathered. */
static size_t all_codes(int *out)
{
    size_t n = 0;
    for (size_t i = 0; i < N(wire_codes); i++) out[n++] = wire_codes[i];
    for (size_t i = 0; i < N(decode_codes); i++) out[n++] = decode_codes[i];
    for (size_t i = 0; i < N(header_codes); i++) out[n++] = header_codes[i];
    for (size_t i = 0; i < N(local_codes); i++) out[n++] = local_codes[i];
    out[n++] = SY_ENOT_REGISTERED;
    return n;
}

static void test_distinct_names_and_texts(void **state)
{
    (void)state;
    int codes[64];
    size_t n = all_codes(codes);
    assert_int_equal(n, 37);
    for (size_t i = 0; i < n; i++) {
        const char *name = syerr_name(codes[i]);
        const char *text = syerr_text(codes[i]);
        assert_string_not_equal(name, "UNKNOWN");
        assert_string_not_equal(text, "unknown error");
        assert_true(strlen(text) > 3);
        for (const char *p = name; *p; p++)
            assert_true((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_');
        assert_int_equal(syerr_from_name(name), codes[i]);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(name, syerr_name(codes[j]));
            assert_string_not_equal(text, syerr_text(codes[j]));
        }
    }
}

static void test_wire_names(void **state)
{
    (void)state;
    static const struct { int code; const char *name; } fixed[] = {
        { SY_ENO_SERVICE, "NO_SERVICE" }, { SY_EBAD_ENVELOPE, "BAD_ENVELOPE" },
        { SY_ETOO_LARGE, "TOO_LARGE" }, { SY_EDENIED, "DENIED" },
        { SY_ERATE_LIMITED, "RATE_LIMITED" }, { SY_EQUEUE_FULL, "QUEUE_FULL" },
        { SY_EDUPLICATE, "DUPLICATE" }, { SY_EEXPIRED, "EXPIRED" },
        { SY_EBAD_BODY, "BAD_BODY" }, { SY_EINTERNAL, "INTERNAL" },
        { SY_ETIMEOUT, "TIMEOUT" }, { SY_EFIELD_TYPE, "FIELD_TYPE" },
        { SY_ENOT_REGISTERED, "NOT_REGISTERED" }, { SY_EFRAMES, "FRAMES" },
        { SY_EVERSION, "VERSION" },
    };
    for (size_t i = 0; i < N(fixed); i++)
        assert_string_equal(syerr_name(fixed[i].code), fixed[i].name);
}

static void test_wire_mapping(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(wire_codes); i++) {
        assert_true(wire_codes[i] <= -1 && wire_codes[i] >= -19);
        assert_int_equal(syerr_wire(wire_codes[i], 0), wire_codes[i]);
        assert_int_equal(syerr_wire(wire_codes[i], 1), wire_codes[i]);
    }
    for (size_t i = 0; i < N(decode_codes); i++) {
        assert_int_equal(syerr_wire(decode_codes[i], 0), SY_EBAD_ENVELOPE);
        assert_int_equal(syerr_wire(decode_codes[i], 1), SY_EBAD_BODY);
    }
    for (size_t i = 0; i < N(header_codes); i++) {
        assert_int_equal(syerr_wire(header_codes[i], 0), SY_EBAD_ENVELOPE);
        assert_int_equal(syerr_wire(header_codes[i], 1), SY_EBAD_ENVELOPE);
    }
    for (size_t i = 0; i < N(local_codes); i++)
        assert_int_equal(syerr_wire(local_codes[i], 0), SY_EINTERNAL);
    assert_int_equal(syerr_wire(SY_ENOT_REGISTERED, 0), SY_EDENIED);
    assert_int_equal(syerr_wire(-999, 0), SY_EINTERNAL);
}

static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(syerr_name(-999), "UNKNOWN");
    assert_string_equal(syerr_name(12), "UNKNOWN");
    assert_non_null(syerr_text(-999));
    assert_string_equal(syerr_name(SY_OK), "OK");
    assert_int_equal(syerr_from_name("NOPE"), 0);
    assert_int_equal(syerr_from_name("OK"), 0);
    assert_int_equal(syerr_from_name(""), 0);
    assert_int_equal(syerr_from_name(NULL), 0);
    assert_int_equal(syerr_from_name("no_service"), 0);   /* exact case */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_names_and_texts),
        cmocka_unit_test(test_wire_names),
        cmocka_unit_test(test_wire_mapping),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
