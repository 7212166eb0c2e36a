/*  test_syctl.c -- the operator tool against a real broker.
 *
 *  syctl send prints the reply as JSON and exits 0; an error answer
 *  (NO_SERVICE) is printed and exits 1; usage errors exit 2; no broker
 *  exits 3 within --timeout; a broken configuration exits 4 and names the
 *  line; syctl tail prints live events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hmp.h"

static int setup(void **state)
{
    return harness_setup(state, "syctl");
}

/* Runs syctl with the harness config and the given arguments (NULL
   terminated, at most 10). */
static void syctl(harness_t *h, hrun_t *r, int timeout_ms, ...)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    char *argv[16] = { bin, "--config", (char *)harness_config(h) };
    int n = 3;
    va_list ap;
    va_start(ap, timeout_ms);
    char *a;
    while (n < 14 && (a = va_arg(ap, char *)) != NULL) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(harness_run(h, argv, timeout_ms, r), 0);
    if (r->timed_out) fail_msg("syctl %s did not finish within %d ms", argv[3], timeout_ms);
}

static void test_send_prints_reply(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hrun_t r;
    syctl(h, &r, 15000 * slow, "send", "echo", "echo.request", "{\"seq\":7,\"data\":\"hi\"}", NULL);
    if (r.exit_code != 0)
        fail_msg("syctl send exited %d\nstdout:\n%s\nstderr:\n%s", r.exit_code, r.out, r.err);
    size_t len = 0;
    uint8_t *j = hmp_from_json_in(r.out, &len);
    if (!j) fail_msg("syctl send printed no JSON:\n%s", r.out);
    bool ok = hmp_echo_reply_has(j, len, 7, "hi", "echo-1");
    free(j);
    if (!ok) fail_msg("syctl send: reply JSON lacks seq 7, data \"hi\", by \"echo-1\":\n%s", r.out);
    hrun_clear(&r);
    harness_pass(h);
}

static void test_send_no_service(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    hrun_t r;
    syctl(h, &r, 15000 * slow, "send", "nosuch", "echo.request", "{\"seq\":1}", NULL);
    if (r.exit_code != 1 || (!strstr(r.out, "NO_SERVICE") && !strstr(r.err, "NO_SERVICE")))
        fail_msg("syctl send to an unknown service: exit %d (expected 1 and NO_SERVICE)\n"
                 "stdout:\n%s\nstderr:\n%s", r.exit_code, r.out, r.err);
    hrun_clear(&r);
    harness_pass(h);
}

static void test_usage_errors(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    static const char *const cases[][5] = {
        { NULL },                                       /* no command */
        { "frobnicate", NULL },                         /* unknown command */
        { "send", "echo", NULL },                       /* missing arguments */
        { "send", "echo", "echo.request", "{\"seq\":", NULL },   /* bad JSON */
        { "send", "echo", "echo.request", "{\"seq\":\"x\"}", NULL }, /* body invalid */
        { "status", "--bogus-flag", NULL },             /* unknown option */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hrun_t r;
        syctl(h, &r, 15000 * slow, cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
        if (r.exit_code != 2)
            fail_msg("case %zu (%s %s ...): exit %d, expected 2 (usage)\nstdout:\n%s\nstderr:\n%s",
                     i, cases[i][0] ? cases[i][0] : "(none)",
                     cases[i][0] && cases[i][1] ? cases[i][1] : "",
                     r.exit_code, r.out, r.err);
        if (!*r.err && !*r.out) fail_msg("case %zu: usage error without a message", i);
        hrun_clear(&r);
    }
    harness_pass(h);
}

static void test_no_broker(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    /* No broker started: nothing listens on the endpoint. */
    static const char *const cmds[][4] = {
        { "status", NULL },
        { "send", "echo", "echo.request", "{\"seq\":1}" },
    };
    for (size_t i = 0; i < 2; i++) {
        hrun_t r;
        syctl(h, &r, 20000 * slow, "--timeout", "1s", cmds[i][0], cmds[i][1], cmds[i][2],
              cmds[i][3], NULL);
        print_message("no broker, syctl %s: exit %d after %lld ms\n", cmds[i][0],
                      r.exit_code, (long long)r.elapsed_ms);
        if (r.exit_code != 3)
            fail_msg("syctl %s without a broker: exit %d, expected 3\nstderr:\n%s",
                     cmds[i][0], r.exit_code, r.err);
        if (r.elapsed_ms > 1000 + 3000 * slow)
            fail_msg("syctl %s took %lld ms with --timeout 1s", cmds[i][0],
                     (long long)r.elapsed_ms);
        hrun_clear(&r);
    }
    harness_pass(h);
}

/* Writes a config file whose line `bad_line` is broken; returns its path. */
static void write_cfg(harness_t *h, const char *name, const char *text,
                      char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", harness_dir(h), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_broken_config(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    static const struct { const char *name, *text; int line; } cases[] = {
        { "bad-duration.cfg",
          "#   line 1: a comment\n"
          "broker\n"
          "    heartbeat = \"fast\"\n", 3 },
        { "unknown-key.cfg",
          "broker\n"
          "    heartbeat = 1s\n"
          "    liveness = 5s\n"
          "    no_such_setting = 1\n", 4 },
        { "bad-size.cfg",
          "log\n"
          "    level = info\n"
          "broker\n"
          "    max_msg = \"lots\"\n", 4 },
    };
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[HARNESS_PATH_MAX];
        write_cfg(h, cases[i].name, cases[i].text, path, sizeof path);
        char *argv[] = { bin, "--config", path, "status", NULL };
        hrun_t r;
        assert_int_equal(harness_run(h, argv, 15000 * slow, &r), 0);
        char want[HARNESS_PATH_MAX + 16];
        snprintf(want, sizeof want, "%s:%d", path, cases[i].line);
        if (r.exit_code != 4 || !strstr(r.err, want))
            fail_msg("%s: exit %d (expected 4), stderr should name \"%s\":\n%s",
                     cases[i].name, r.exit_code, want, r.err);
        hrun_clear(&r);
    }
    harness_pass(h);
}

static void test_tail_prints_events(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    char *argv[] = { bin, "--config", (char *)harness_config(h), "--timeout", "30s",
                     "tail", "presence.join", "--count", "1", NULL };
    hproc_t *tail = harness_spawn(h, "tail", argv);
    /* syctl connects as syctl-<pid>: wait until it is registered (and so
       subscribed: the sub follows its hello on the same connection). */
    char name[64];
    snprintf(name, sizeof name, "syctl-%d", (int)tail->pid);
    if (!harness_wait_actor(h, name, true, 10000 * slow))
        fail_msg("syctl tail never registered as %s", name);
    harness_sleep_ms(200);
    harness_echo_start(h, "echo-7", "echo", 1, false);
    if (!harness_wait_exit(h, tail, 10000 * slow))
        fail_msg("syctl tail --count 1 did not exit after the echo joined");
    if (!WIFEXITED(tail->status) || WEXITSTATUS(tail->status) != 0)
        fail_msg("syctl tail ended with status 0x%x", tail->status);
    FILE *f = fopen(tail->log, "r");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (!strstr(buf, "presence.join") || !strstr(buf, "echo-7"))
        fail_msg("syctl tail output lacks the presence.join of echo-7:\n%s", buf);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send_prints_reply, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_send_no_service, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_no_broker, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_broken_config, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_tail_prints_events, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
