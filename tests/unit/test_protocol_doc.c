/*  test_protocol_doc.c -- docs/PROTOCOL.md cannot drift from the code.
 *
 *  The blocks between the GENERATED markers must be byte for byte what
 *  `sy-schema --markdown` and `sy-schema --hexdump` print now (run
 *  `make docs` to refresh them).  Tests run from the repository root;
 *  SY_BIN_DIR says where the variant's binaries are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_MAX (1024 * 1024)

/* Reads all of f into a NUL-terminated malloc'd buffer. */
static char *slurp(FILE *f)
{
    char *buf = malloc(DOC_MAX + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, DOC_MAX, f);
    buf[n] = '\0';
    return buf;
}

static char *run_schema(const char *flag)
{
    const char *dir = getenv("SY_BIN_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/sy-schema' %s", dir && *dir ? dir : "bin", flag);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = slurp(p);
    assert_int_equal(pclose(p), 0);
    assert_true(strlen(out) > 100);
    return out;
}

/* The text between "<!-- BEGIN GENERATED name -->\n" and
   "<!-- END GENERATED name -->", copied. */
static char *section(const char *doc, const char *name)
{
    char begin[128], end[128];
    snprintf(begin, sizeof begin, "<!-- BEGIN GENERATED %s -->\n", name);
    snprintf(end, sizeof end, "<!-- END GENERATED %s -->", name);
    const char *b = strstr(doc, begin);
    assert_non_null(b);
    assert_null(strstr(b + 1, begin));   /* exactly one */
    b += strlen(begin);
    const char *e = strstr(b, end);
    assert_non_null(e);
    char *s = strndup(b, (size_t)(e - b));
    assert_non_null(s);
    return s;
}

static char *read_doc(void)
{
    FILE *f = fopen("docs/PROTOCOL.md", "r");
    assert_non_null(f);
    char *doc = slurp(f);
    fclose(f);
    return doc;
}

static void check(const char *name, const char *flag)
{
    char *doc = read_doc();
    char *want = run_schema(flag);
    char *have = section(doc, name);
    if (strcmp(want, have) != 0)
        print_error("docs/PROTOCOL.md: the generated %s section is out of date; "
                    "run `make docs`\n", name);
    assert_string_equal(have, want);
    free(have);
    free(want);
    free(doc);
}

static void test_msgtypes_section(void **state)
{
    (void)state;
    check("msgtypes", "--markdown");
}

static void test_hexdump_section(void **state)
{
    (void)state;
    check("hexdump", "--hexdump");
}

/* The doc names every wire and detail code of syerr.h's list. */
static void test_error_codes_documented(void **state)
{
    (void)state;
    static const char *const names[] = {
        "NO_SERVICE", "BAD_ENVELOPE", "TOO_LARGE", "DENIED", "RATE_LIMITED",
        "QUEUE_FULL", "DUPLICATE", "EXPIRED", "BAD_BODY", "INTERNAL", "TIMEOUT",
        "TRUNCATED", "TRAILING", "NOT_MAP", "COUNT", "DEPTH", "KEY_TYPE",
        "UNKNOWN_FIELD", "DUP_FIELD", "FIELD_TYPE", "FIELD_RANGE", "MISSING",
        "VERSION", "UNKNOWN_TYPE", "FIELD_CHARS", "FRAMES", "BAD_UTF8", "NOT_REGISTERED",
    };
    char *doc = read_doc();
    char row[64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(row, sizeof row, "\n| %s |", names[i]);
        if (!strstr(doc, row))
            print_error("docs/PROTOCOL.md has no table row for %s\n", names[i]);
        assert_non_null(strstr(doc, row));
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgtypes_section),
        cmocka_unit_test(test_hexdump_section),
        cmocka_unit_test(test_error_codes_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
