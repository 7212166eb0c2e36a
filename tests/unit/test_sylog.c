/*  test_sylog.c -- the logger: line format, level filtering, one line per
 *  call, redaction.  Logs go to a temporary file that each test reads back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sylog.h"
#include "schemas/syerr.h"

typedef struct {
    char path[64];
} test_log_t;

static int test_sylog_setup(void **state)
{
    test_log_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->path, sizeof t->path, "/tmp/sy-test-sylog.XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    close(fd);
    *state = t;
    return 0;
}

static int test_sylog_teardown(void **state)
{
    test_log_t *t = *state;
    sylog_close();
    unlink(t->path);
    free(t);
    return 0;
}

/* Reads the whole log file into a malloc'd string. */
static char *test_sylog_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0 && size < (1L << 24));
    rewind(f);
    char *buf = calloc(1, (size_t) size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) size, f), (size_t) size);
    fclose(f);
    return buf;
}

static int test_sylog_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_format(void **state)
{
    test_log_t *t = *state;
    assert_int_equal(sylog_open("/usr/bin/sy-test", SYLOG_INFO, t->path), 0);
    sylog_info("actor %s joined (%d)", "echo-1", 42);
    sylog_close();

    char *got = test_sylog_slurp(t->path);
    regex_t re;
    char pattern[128];
    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "sy-test\\[%ld\\] INFO  actor echo-1 joined \\(42\\)\n$",
             (long) getpid());
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    if (regexec(&re, got, 0, NULL, 0) != 0)
        fail_msg("line does not match: [%s]", got);
    regfree(&re);
    free(got);
}

static void test_levels(void **state)
{
    test_log_t *t = *state;
    assert_int_equal(sylog_open("lv", SYLOG_WARN, t->path), 0);
    assert_int_equal(sylog_get_level(), SYLOG_WARN);
    sylog_debug("d-hidden");
    sylog_info("i-hidden");
    sylog_warn("w-shown");
    sylog_error("e-shown");
    sylog_set_level(SYLOG_DEBUG);
    sylog_debug("d-shown");
    sylog_close();

    char *got = test_sylog_slurp(t->path);
    assert_null(strstr(got, "hidden"));
    assert_non_null(strstr(got, " WARN  w-shown\n"));
    assert_non_null(strstr(got, " ERROR e-shown\n"));
    assert_non_null(strstr(got, " DEBUG d-shown\n"));
    assert_int_equal(test_sylog_count_lines(got), 3);
    free(got);
}

static void test_level_parse(void **state)
{
    (void) state;
    sylog_level_t l = SYLOG_ERROR;
    assert_int_equal(sylog_level_parse("debug", &l), 0);
    assert_int_equal(l, SYLOG_DEBUG);
    assert_int_equal(sylog_level_parse("warn", &l), 0);
    assert_int_equal(l, SYLOG_WARN);
    assert_int_equal(sylog_level_parse("ERROR", &l), 0);
    assert_int_equal(l, SYLOG_ERROR);
    assert_int_equal(sylog_level_parse("loud", &l), SY_EINVAL);
    assert_int_equal(sylog_level_parse(NULL, &l), SY_EINVAL);
}

/* A newline inside a message cannot make a second (forged) line, and a
   huge message is cut, still as one line. */
static void test_one_line_per_call(void **state)
{
    test_log_t *t = *state;
    assert_int_equal(sylog_open("ol", SYLOG_INFO, t->path), 0);
    sylog_info("first\nFAKE ERROR line");
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sylog_info("%s", big);
    sylog_close();

    char *got = test_sylog_slurp(t->path);
    assert_int_equal(test_sylog_count_lines(got), 2);
    assert_non_null(strstr(got, "first FAKE ERROR line\n"));
    assert_non_null(strstr(got, "xxx...\n"));
    free(got);
}

/* Several processes appending to one file: every line is whole. */
static void test_concurrent_processes(void **state)
{
    test_log_t *t = *state;
    enum { PROCS = 4, LINES = 200 };
    assert_int_equal(sylog_open("cc", SYLOG_INFO, t->path), 0);
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        kids[p] = fork();
        assert_true(kids[p] >= 0);
        if (kids[p] == 0) {
            char pad[300];
            memset(pad, 'a' + p, sizeof pad - 1);
            pad[sizeof pad - 1] = '\0';
            for (int i = 0; i < LINES; i++)
                sylog_info("<%s>", pad);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(kids[p], &st, 0), kids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    sylog_close();

    char *got = test_sylog_slurp(t->path);
    assert_int_equal(test_sylog_count_lines(got), PROCS * LINES);
    /* each line's payload is 299 copies of one letter between < and > */
    for (char *line = got; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char *lt = strchr(line, '<');
        assert_non_null(lt);
        assert_true(lt < nl);
        assert_int_equal(nl - lt, 301);
        for (char *c = lt + 1; c < nl - 1; c++)
            assert_int_equal(*c, lt[1]);
        assert_int_equal(nl[-1], '>');
        line = nl + 1;
    }
    free(got);
}

static void test_open_bad_path(void **state)
{
    (void) state;
    assert_int_equal(sylog_open("bad", SYLOG_ERROR, "/nonexistent-dir/x/y.log"),
                     SY_EIO);
    sylog_close();
}

static void test_redact_check(const char *in, const char *want)
{
    char out[256];
    sylog_redact(in, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("redact(%s) = %s, want %s", in, out, want);
}

static void test_redact(void **state)
{
    (void) state;
    test_redact_check("https://api.telegram.org/bot123:ABC-def/getUpdates?offset=5",
                      "https://api.telegram.org/bot***/getUpdates?offset=5");
    test_redact_check("https://api.telegram.org/bot123:ABC",
                      "https://api.telegram.org/bot***");
    test_redact_check("https://x/y?token=s3cret&a=1", "https://x/y?token=***&a=1");
    test_redact_check("https://x/y?a=1&key=s3cret", "https://x/y?a=1&key=***");
    test_redact_check("https://x/y?access_token=abc#frag", "https://x/y?access_token=***#frag");
    test_redact_check("https://x/y?api_KEY=abc;z=2", "https://x/y?api_KEY=***;z=2");
    test_redact_check("https://x/y?token=&a=1", "https://x/y?token=&a=1");
    test_redact_check("https://x/y?offset=5&monkey=banana", "https://x/y?offset=5&monkey=***");
    test_redact_check("http://127.0.0.1:11434/api/chat", "http://127.0.0.1:11434/api/chat");
    test_redact_check("/bot/", "/bot/");
    test_redact_check("", "");

    /* output that does not fit is cut and NUL-terminated */
    char small[12];
    memset(small, '#', sizeof small);
    sylog_redact("https://api.telegram.org/bot123/x", small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small, "https://api");
    sylog_redact("abc", small, 0);     /* cap 0: touches nothing */
    assert_int_equal(small[0], 'h');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, test_sylog_setup, test_sylog_teardown),
        cmocka_unit_test_setup_teardown(test_levels, test_sylog_setup, test_sylog_teardown),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test_setup_teardown(test_one_line_per_call, test_sylog_setup, test_sylog_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, test_sylog_setup, test_sylog_teardown),
        cmocka_unit_test(test_open_bad_path),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
