/*  test_msgtypes.c -- the message-type table and body validation.
 *
 *  Good bodies are generated from the table itself (a value of each
 *  field's kind at the edge of its range), so a new type or field is
 *  covered without touching this file; then each field is broken in each
 *  way its kind can be broken.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/envelope.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

/* What to put for a field. */
typedef enum {
    P_GOOD_LO,     /* valid, at the bottom of the range */
    P_GOOD_HI,     /* valid, at the top of the range (capped for size) */
    P_NIL,
    P_WRONG,       /* a msgpack type the kind does not accept */
    P_BELOW,       /* one below the range */
    P_ABOVE,       /* one above the range */
    P_BAD_CHARS,   /* name with a space / str with bad UTF-8 */
    P_DEEP,        /* free-form value nested MSGTYPES_MAX_DEPTH deep */
    P_DEEP_OK,     /* nested one level less */
} put_t;

#define BIG_CAP (17u * 1024 * 1024)

static void pack_str_n(msgpack_packer *pk, const char *fill, size_t n)
{
    msgpack_pack_str(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_str_body(pk, fill, 1);
}

static void pack_bin_n(msgpack_packer *pk, size_t n)
{
    static uint8_t zeros[4096];
    msgpack_pack_bin(pk, n);
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        msgpack_pack_bin_body(pk, zeros, k);
        n -= k;
    }
}

static void pack_nested(msgpack_packer *pk, int levels)
{
    for (int i = 0; i < levels; i++)
        msgpack_pack_array(pk, 1);
    msgpack_pack_uint8(pk, 1);
}

/* Packs a value of field f as `how`; returns false if `how` does not
   apply to this field. */
static bool pack_field(msgpack_packer *pk, const msgfield_t *f, put_t how)
{
    uint64_t lo = f->min, hi = f->max;
    bool str = f->kind == MF_STR || f->kind == MF_NAME;
    bool free = f->kind == MF_MAP || f->kind == MF_ARRAY || f->kind == MF_ANY;
    switch (how) {
    case P_NIL:
        msgpack_pack_nil(pk);
        return true;
    case P_WRONG:
        if (f->kind == MF_ANY)
            return false;
        if (str || f->kind == MF_BIN || f->kind == MF_ID || f->kind == MF_STRS ||
            f->kind == MF_NAMES || f->kind == MF_MAP)
            msgpack_pack_uint8(pk, 1);
        else if (f->kind == MF_ARRAY)
            msgpack_pack_map(pk, 0);
        else if (f->kind == MF_BOOL)
            msgpack_pack_uint8(pk, 0);
        else
            pack_str_n(pk, "1", 1);
        return true;
    case P_DEEP:
    case P_DEEP_OK:
        if (!free)
            return false;
        /* the body map is depth 0, so the value itself is at depth 1 */
        if (f->kind == MF_MAP) {
            msgpack_pack_map(pk, 1);
            msgpack_pack_uint8(pk, 1);
            pack_nested(pk, MSGTYPES_MAX_DEPTH - (how == P_DEEP ? 1 : 2));
        } else {
            pack_nested(pk, MSGTYPES_MAX_DEPTH - (how == P_DEEP ? 0 : 1));
        }
        return true;
    case P_BAD_CHARS:
        if (f->kind == MF_NAME) {
            pack_str_n(pk, " ", lo > 0 ? lo : 1);
            return true;
        }
        if (f->kind == MF_STR && hi >= 2) {
            msgpack_pack_str_with_body(pk, "\xc0\xaf", 2);
            return true;
        }
        if (f->kind == MF_NAMES && hi >= 1) {
            msgpack_pack_array(pk, 1);
            pack_str_n(pk, "/", 1);
            return true;
        }
        return false;
    case P_BELOW:
    case P_ABOVE: {
        if (f->kind == MF_ID) {
            pack_bin_n(pk, how == P_BELOW ? 15 : 17);
            return true;
        }
        if (how == P_BELOW && lo == 0)
            return false;
        if (how == P_ABOVE && (hi == UINT64_MAX || hi >= BIG_CAP))
            return false;
        uint64_t n = how == P_BELOW ? lo - 1 : hi + 1;
        if (f->kind == MF_UINT)
            msgpack_pack_uint64(pk, n);
        else if (str)
            pack_str_n(pk, "a", n);
        else if (f->kind == MF_BIN)
            pack_bin_n(pk, n);
        else if (f->kind == MF_NAMES || f->kind == MF_STRS) {
            msgpack_pack_array(pk, n);
            for (uint64_t i = 0; i < n; i++)
                pack_str_n(pk, "a", 1);
        } else if (f->kind == MF_IDS) {
            msgpack_pack_array(pk, n);
            for (uint64_t i = 0; i < n; i++)
                pack_bin_n(pk, 16);
        } else
            return false;
        return true;
    }
    case P_GOOD_LO:
    case P_GOOD_HI: {
        uint64_t n = how == P_GOOD_LO ? lo : hi;
        switch (f->kind) {
        case MF_STR:   pack_str_n(pk, "a", n); break;
        case MF_NAME:  pack_str_n(pk, "a", n ? n : 1); break;
        case MF_UINT:  msgpack_pack_uint64(pk, n); break;
        case MF_INT:   msgpack_pack_int64(pk, how == P_GOOD_LO ? INT64_MIN : INT64_MAX); break;
        case MF_BOOL:  msgpack_pack_true(pk); break;
        case MF_FLOAT: msgpack_pack_double(pk, 2.5); break;
        case MF_BIN:   pack_bin_n(pk, n); break;
        case MF_ID:    pack_bin_n(pk, 16); break;
        case MF_STRS:
        case MF_NAMES:
            msgpack_pack_array(pk, n);
            for (uint64_t i = 0; i < n; i++)
                pack_str_n(pk, "s", f->kind == MF_NAMES ? 64 : f->item_max);
            break;
        case MF_IDS:
            msgpack_pack_array(pk, n);
            for (uint64_t i = 0; i < n; i++)
                pack_bin_n(pk, 16);
            break;
        case MF_MAP:   msgpack_pack_map(pk, 1); msgpack_pack_str_with_body(pk, "k", 1);
                       msgpack_pack_nil(pk); break;
        case MF_ARRAY: msgpack_pack_array(pk, 2); msgpack_pack_nil(pk); msgpack_pack_true(pk); break;
        case MF_ANY:
            if (how == P_GOOD_LO) msgpack_pack_nil(pk);
            else { msgpack_pack_map(pk, 1); msgpack_pack_str_with_body(pk, "x", 1);
                   msgpack_pack_array(pk, 1); msgpack_pack_float(pk, 1.0f); }
            break;
        }
        return true;
    }
    }
    return false;
}

/* A body for t: every field (or only required ones) as good_how, field
   `which` (index, or -1) as `how`, field `omit` left out. */
static bool make_body(msgpack_sbuffer *sb, const msgtype_t *t, bool only_req,
                      put_t good_how, long which, put_t how, long omit)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t n = 0;
    for (size_t i = 0; i < t->nfields; i++)
        if ((long)i != omit && (!only_req || t->fields[i].required || (long)i == which))
            n++;
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < t->nfields; i++) {
        const msgfield_t *f = &t->fields[i];
        if ((long)i == omit || (only_req && !f->required && (long)i != which))
            continue;
        msgpack_pack_str_with_body(&pk, f->name, strlen(f->name));
        if (!pack_field(&pk, f, (long)i == which ? how : good_how))
            return false;
    }
    return true;
}

static int validate(const msgtype_t *t, msgpack_sbuffer *sb, char *err, size_t errlen)
{
    return msgtypes_validate(t, (const uint8_t *)sb->data, sb->size, err, errlen);
}

/* ---------------------------------------------------------------- table */

static void test_table_sane(void **state)
{
    (void)state;
    size_t n = 0;
    const msgtype_t *all = msgtypes_all(&n);
    assert_true(n >= 17);
    for (size_t i = 0; i < n; i++) {
        const msgtype_t *t = &all[i];
        assert_true(envelope_valid_type(t->type, strlen(t->type)));
        assert_ptr_equal(msgtypes_find(t->type, strlen(t->type)), t);
        assert_true(t->doc && strlen(t->doc) > 10);
        assert_true(t->flow && strlen(t->flow) > 3);
        assert_true(t->nfields <= 64);
        assert_true(t->nfields == 0 || t->fields != NULL);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[j].type, t->type);
        for (size_t k = 0; k < t->nfields; k++) {
            const msgfield_t *f = &t->fields[k];
            assert_true(f->doc && strlen(f->doc) > 3);
            assert_true(f->min <= f->max || f->kind == MF_BOOL || f->kind == MF_ANY ||
                        f->kind == MF_MAP || f->kind == MF_ARRAY || f->kind == MF_INT ||
                        f->kind == MF_FLOAT);
            assert_ptr_equal(msgtypes_field(t, f->name), f);
            for (size_t j = 0; j < k; j++)
                assert_string_not_equal(t->fields[j].name, f->name);
        }
    }
    static const char *const control[] = {
        "sy.hello", "sy.welcome", "sy.ping", "sy.pong", "sy.credit", "sy.receipt",
        "sy.sub", "sy.unsub", "sy.event", "sy.query", "sy.answer", "sy.bye",
        "sy.ack", "sy.nack", "sy.lease", "echo.request", "echo.reply"
    };
    for (size_t i = 0; i < sizeof control / sizeof control[0]; i++)
        assert_non_null(msgtypes_find(control[i], strlen(control[i])));
}

/* msgtypes_find is a hand-made perfect hash (msgtypes.c): every name of
   the table must be found from a copy without terminator, its precomputed
   length must be right, and no near-miss of any name may be found.
   Each name is copied into a buffer of its exact size so that ASan sees
   any read past the given length. */
static void test_find_every_name_and_near_misses(void **state)
{
    (void)state;
    size_t n = 0;
    const msgtype_t *all = msgtypes_all(&n);
    for (size_t i = 0; i < n; i++) {
        const msgtype_t *t = &all[i];
        size_t len = strlen(t->type);
        assert_int_equal(t->typelen, len);
        char *exact = malloc(len);
        assert_non_null(exact);
        memcpy(exact, t->type, len);
        if (msgtypes_find(exact, len) != t)
            fail_msg("msgtypes_find misses %s: refill msgtypes_slot "
                     "(see the comment above it in msgtypes.c)", t->type);
        for (size_t k = 0; k < len; k++)            /* every prefix */
            assert_null(msgtypes_find(exact, k));
        for (size_t k = 0; k < len; k++) {          /* one byte changed */
            char keep = exact[k];
            static const char subst[] = { 'x', '.', '\0', '\x80' };
            for (size_t m = 0; m < sizeof subst; m++) {
                if (subst[m] == keep)
                    continue;
                exact[k] = subst[m];
                assert_null(msgtypes_find(exact, len));
            }
            exact[k] = keep ^ 0x20;                 /* case flipped */
            assert_null(msgtypes_find(exact, len));
            exact[k] = keep;
        }
        free(exact);
        char longer[128];                           /* longer by one */
        assert_true(len + 1 < sizeof longer);
        memcpy(longer, t->type, len);
        for (int c = 0; c < 256; c++) {
            longer[len] = (char) c;
            assert_null(msgtypes_find(longer, len + 1));
        }
    }
    assert_null(msgtypes_find("", 0));              /* empty */
    assert_null(msgtypes_find("x", 0));
    assert_null(msgtypes_find("sy.hell", 7));
    assert_null(msgtypes_find("sy.hellp", 8));
    assert_null(msgtypes_find("sy.pang", 7));
}

static void test_find(void **state)
{
    (void)state;
    assert_non_null(msgtypes_find("sy.hello", 8));
    assert_null(msgtypes_find("sy.hello", 7));
    assert_null(msgtypes_find("sy.hellox", 9));
    assert_non_null(msgtypes_find("sy.hellox", 8));   /* by length */
    assert_null(msgtypes_find("sy.hello\0\0\0", 11));
    assert_null(msgtypes_find("nope", 4));
    assert_null(msgtypes_find("", 0));
    assert_null(msgtypes_find(NULL, 3));
    const msgtype_t *t = msgtypes_find("sy.hello", 8);
    assert_non_null(msgtypes_field(t, "credit"));
    assert_null(msgtypes_field(t, "credits"));
    assert_null(msgtypes_field(NULL, "credit"));
    assert_int_equal(msgtypes_field(t, "credit")->kind, MF_UINT);
    assert_true(msgtypes_field(t, "name")->required);
    assert_false(msgtypes_field(t, "services")->required);
}

static void test_kind_names(void **state)
{
    (void)state;
    for (int a = MF_STR; a <= MF_ANY; a++) {
        const char *na = msgtypes_kind_name((msgfield_kind_t)a);
        assert_string_not_equal(na, "?");
        for (int b = MF_STR; b < a; b++)
            assert_string_not_equal(na, msgtypes_kind_name((msgfield_kind_t)b));
    }
    assert_string_equal(msgtypes_kind_name(MF_ID), "id");
    assert_string_equal(msgtypes_kind_name((msgfield_kind_t)99), "?");
}

/* ---------------------------------------------------------------- bodies */

static void test_every_type_good(void **state)
{
    (void)state;
    size_t n = 0;
    const msgtype_t *all = msgtypes_all(&n);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    for (size_t i = 0; i < n; i++) {
        const msgtype_t *t = &all[i];
        static const put_t goods[] = { P_GOOD_LO, P_GOOD_HI };
        for (int g = 0; g < 2; g++)
            for (int req = 0; req < 2; req++) {
                assert_true(make_body(&sb, t, req, goods[g], -1, P_GOOD_LO, -1));
                int rc = validate(t, &sb, err, sizeof err);
                if (rc)
                    print_error("%s: %s %s\n", t->type, syerr_name(rc), err);
                assert_int_equal(rc, 0);
            }
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_missing_required(void **state)
{
    (void)state;
    size_t n = 0, checked = 0;
    const msgtype_t *all = msgtypes_all(&n);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < all[i].nfields; k++) {
            const msgfield_t *f = &all[i].fields[k];
            assert_true(make_body(&sb, &all[i], false, P_GOOD_LO, -1, P_GOOD_LO, (long)k));
            int rc = validate(&all[i], &sb, err, sizeof err);
            assert_int_equal(rc, f->required ? SY_EMISSING : 0);
            if (f->required) {
                assert_non_null(strstr(err, f->name));
                checked++;
            }
        }
    assert_true(checked >= 15);
    msgpack_sbuffer_destroy(&sb);
}

/* Each way a field can be broken, for every field of every type. */
static void test_every_field_failures(void **state)
{
    (void)state;
    static const struct { put_t how; int want; } cases[] = {
        { P_NIL, SY_EFIELD_TYPE },
        { P_WRONG, SY_EFIELD_TYPE },
        { P_BELOW, SY_EFIELD_RANGE },
        { P_ABOVE, SY_EFIELD_RANGE },
        { P_BAD_CHARS, 0 /* depends on the kind */ },
        { P_DEEP, SY_EDEPTH },
        { P_DEEP_OK, 0 },
    };
    size_t n = 0, runs = 0;
    const msgtype_t *all = msgtypes_all(&n);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[256];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < all[i].nfields; k++)
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                const msgfield_t *f = &all[i].fields[k];
                if (!make_body(&sb, &all[i], true, P_GOOD_LO, (long)k, cases[c].how, -1))
                    continue;
                int want = cases[c].want;
                if (cases[c].how == P_BAD_CHARS)
                    want = f->kind == MF_STR ? SY_EBAD_UTF8 : SY_EFIELD_CHARS;
                if (cases[c].how == P_NIL && f->kind == MF_ANY)
                    want = 0;
                err[0] = '\0';
                int rc = validate(&all[i], &sb, err, sizeof err);
                if (rc != want)
                    print_error("%s.%s case %zu: got %s (%s), want %s\n", all[i].type,
                                f->name, c, syerr_name(rc), err, syerr_name(want));
                assert_int_equal(rc, want);
                if (want) {
                    assert_non_null(strstr(err, f->name));
                    assert_non_null(strstr(err, all[i].type));
                }
                runs++;
            }
    assert_true(runs > 100);
    msgpack_sbuffer_destroy(&sb);
}

static void test_structure(void **state)
{
    (void)state;
    const msgtype_t *t = msgtypes_find("sy.credit", 9);
    const msgtype_t *ping = msgtypes_find("sy.ping", 7);
    assert_non_null(t);
    struct { const char *b; size_t n; int want; } cases[] = {
        { "\x81\xa1n\x05", 4, 0 },
        { "\x81\xa1n\x05\xc0", 5, SY_ETRAILING },
        { "\x81\xa1n", 3, SY_ETRUNCATED },
        { "", 0, SY_ETRUNCATED },
        { "\x91\x05", 2, SY_ENOT_MAP },
        { "\xc0", 1, SY_ENOT_MAP },
        { "\x81\x01\x05", 3, SY_EKEY_TYPE },
        { "\x81\xc4\x01n\x05", 5, SY_EKEY_TYPE },
        { "\x82\xa1n\x05\xa1x\x05", 7, SY_EUNKNOWN_FIELD },
        { "\x82\xa1n\x05\xa1n\x06", 7, SY_EDUP_FIELD },
        { "\xdf\xff\xff\xff\xff", 5, SY_ECOUNT },
        { "\xdd\xff\xff\xff\xff", 5, SY_ECOUNT },
        { "\x81\xa1n\xc1", 4, SY_EFIELD_TYPE },
        /* a structural fault after a field error wins */
        { "\x82\xa1x\x05\xa1n\xdd\xff\xff\xff\xff", 11, SY_ECOUNT },
        { "\x81\xa1n\xd0\x05", 5, 0 },         /* int 8 holding 5 */
        { "\x81\xa1n\xd0\xfb", 5, SY_EFIELD_TYPE },   /* -5 */
        { "\x81\xa1n\xcb\x3f\xf0\0\0\0\0\0\0", 12, SY_EFIELD_TYPE }, /* 1.0 */
    };
    char err[200];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = msgtypes_validate(t, (const uint8_t *)cases[i].b, cases[i].n, err, sizeof err);
        if (rc != cases[i].want)
            print_error("case %zu: got %s (%s)\n", i, syerr_name(rc), err);
        assert_int_equal(rc, cases[i].want);
    }
    assert_int_equal(msgtypes_validate(ping, (const uint8_t *)"\x80", 1, err, sizeof err), 0);
    assert_int_equal(msgtypes_validate(ping, (const uint8_t *)"\x81\xa1n\x05", 4, err, sizeof err),
                     SY_EUNKNOWN_FIELD);
    assert_non_null(strstr(err, "\"n\""));
    assert_int_equal(msgtypes_validate(NULL, (const uint8_t *)"\x80", 1, err, sizeof err), SY_EINVAL);
    assert_int_equal(msgtypes_validate(ping, NULL, 1, err, sizeof err), SY_EINVAL);
    /* error buffer of one byte stays terminated */
    char tiny[2] = { 'x', 'x' };
    assert_int_equal(msgtypes_validate(ping, (const uint8_t *)"\x81\xa1n\x05", 4, tiny, 1),
                     SY_EUNKNOWN_FIELD);
    assert_int_equal(tiny[0], '\0');
    assert_int_equal(tiny[1], 'x');
}

/* Kinds the table does not use yet, through a local type. */
static void test_unused_kinds(void **state)
{
    (void)state;
    static const msgfield_t fields[] = {
        { "i", MF_INT, false, 0, 0, 0, "int" },
        { "f", MF_FLOAT, false, 0, 0, 0, "float" },
        { "s", MF_STRS, false, 1, 2, 3, "strs" },
        { "m", MF_MAP, false, 0, 0, 0, "map" },
        { "a", MF_ARRAY, false, 0, 0, 0, "array" },
    };
    static const msgtype_t t = { "test.kinds", "test", "kinds", fields, 5, 10 };
    struct { const char *b; size_t n; int want; } cases[] = {
        { "\x81\xa1i\xd3\x80\0\0\0\0\0\0\0", 12, 0 },
        { "\x81\xa1i\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 12, 0 },
        { "\x81\xa1i\xcf\x80\0\0\0\0\0\0\0", 12, SY_EFIELD_RANGE },
        { "\x81\xa1i\xca\0\0\0\0", 8, SY_EFIELD_TYPE },
        { "\x81\xa1" "f\xca\0\0\0\0", 8, 0 },
        { "\x81\xa1" "f\xff", 4, 0 },
        { "\x81\xa1" "f\x05", 4, 0 },
        { "\x81\xa1" "f\xc2", 4, SY_EFIELD_TYPE },
        { "\x81\xa1s\x91\xa3" "abc", 8, 0 },
        { "\x81\xa1s\x92\xa0\xa3" "abc", 9, 0 },
        { "\x81\xa1s\x91\xa4" "abcd", 9, SY_EFIELD_RANGE },
        { "\x81\xa1s\x90", 4, SY_EFIELD_RANGE },
        { "\x81\xa1s\x93\xa0\xa0\xa0", 7, SY_EFIELD_RANGE },
        { "\x81\xa1s\x91\x01", 5, SY_EFIELD_TYPE },
        { "\x81\xa1s\x91\xa2\xed\xa0", 7, SY_EBAD_UTF8 },
        { "\x81\xa1m\x80", 4, 0 },
        { "\x81\xa1m\x90", 4, SY_EFIELD_TYPE },
        { "\x81\xa1" "a\x90", 4, 0 },
        { "\x81\xa1" "a\x80", 4, SY_EFIELD_TYPE },
        { "\x81\xa1" "a\x91\xc1", 5, SY_EFIELD_TYPE },
    };
    char err[200];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = msgtypes_validate(&t, (const uint8_t *)cases[i].b, cases[i].n, err, sizeof err);
        if (rc != cases[i].want)
            print_error("case %zu: got %s (%s)\n", i, syerr_name(rc), err);
        assert_int_equal(rc, cases[i].want);
    }
}

/* ---------------------------------------------------------------- UTF-8 */

static void test_utf8(void **state)
{
    (void)state;
    static const char *const good[] = {
        "", "plain ascii", "caf\xc3\xa9", "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf", "\xed\x9f\xbf",
        "\xee\x80\x80", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80",
    };
    static const char *const bad[] = {
        "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\xff", "\xfe", "\x80", "\xbf", "\xe2\x82", "\xe2\x28\xa1",
        "\xc3", "a\xc3", "\xf0\x9f\x98", "\xf0\x9f\x28\x80", "\xc3\x28",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(msgtypes_utf8_valid((const uint8_t *)good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (msgtypes_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])))
            print_error("bad[%zu] accepted\n", i);
        assert_false(msgtypes_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])));
    }
    /* NUL is a valid code point in a msgpack string */
    assert_true(msgtypes_utf8_valid((const uint8_t *)"a\0b", 3));

    /* through a body */
    const msgtype_t *t = msgtypes_find("sy.bye", 6);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    char err[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "reason", 6);
        msgpack_pack_str_with_body(&pk, bad[i], strlen(bad[i]));
        assert_int_equal(validate(t, &sb, err, sizeof err), SY_EBAD_UTF8);
        assert_non_null(strstr(err, "reason"));
    }
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "reason", 6);
    msgpack_pack_str_with_body(&pk, good[3], strlen(good[3]));
    assert_int_equal(validate(t, &sb, err, sizeof err), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------------- doc */

static void test_markdown(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(msgtypes_markdown(f), 0);
    fclose(f);
    size_t n = 0;
    const msgtype_t *all = msgtypes_all(&n);
    char needle[128];
    for (size_t i = 0; i < n; i++) {
        snprintf(needle, sizeof needle, "### `%s`", all[i].type);
        assert_non_null(strstr(text, needle));
        assert_non_null(strstr(text, all[i].doc));
        for (size_t k = 0; k < all[i].nfields; k++) {
            snprintf(needle, sizeof needle, "| `%s` | %s |", all[i].fields[k].name,
                     msgtypes_kind_name(all[i].fields[k].kind));
            assert_non_null(strstr(text, needle));
            assert_non_null(strstr(text, all[i].fields[k].doc));
        }
    }
    assert_non_null(strstr(text, "| `credit` | uint | yes | 1..10000 |"));
    assert_non_null(strstr(text, "| `pad` | bin | no | 0..16777216 bytes |"));
    free(text);
    assert_int_equal(msgtypes_markdown(NULL), SY_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sane),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_find_every_name_and_near_misses),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_every_type_good),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_every_field_failures),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_unused_kinds),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_markdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
