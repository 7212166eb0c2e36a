/*  test_restart.c -- actors survive a broker killed with SIGKILL.
 *
 *  A broker and two sy-echo actors (services echo and echo2); the broker
 *  is SIGKILLed and started again on the same endpoint, three times.
 *  Each time both actors must come back by themselves (syctl status lists
 *  them again within a bound), stay the same processes, and answer a
 *  request through each of their services and by "@name".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hclient.h"
#include "hmp.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "restart");
}

/* One echo round trip to `to`, which must be answered by `by`. */
static void echo_through(hclient_t *c, const char *to, const char *by,
                         uint64_t seq, int round)
{
    hmsg_t m;
    int rc = hclient_request_echo(c, to, seq, "again", &m, 5000 * harness_slow());
    if (rc) fail_msg("round %d: no answer through %s: %s", round, to, syerr_name(rc));
    char got_by[ENVELOPE_NAME_MAX + 1] = "";
    uint64_t got_seq = 0;
    hmp_get_str(m.body, m.body_len, "by", got_by, sizeof got_by);
    hmp_get_uint(m.body, m.body_len, "seq", &got_seq);
    if (strcmp(m.hdr.type, "echo.reply") != 0 || strcmp(got_by, by) != 0 || got_seq != seq) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("round %d: through %s expected echo.reply seq %llu by %s", round, to,
                 (unsigned long long)seq, by);
    }
    hmsg_clear(&m);
}

/* Polls `syctl status` until it lists both actors.  Returns ms taken or
   fails the test. */
static int64_t wait_listed_by_syctl(harness_t *h, int bound_ms, int round)
{
    char syctl[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", syctl, sizeof syctl);
    char *argv[] = { syctl, "--config", (char *)harness_config(h), "status", NULL };
    int64_t t0 = harness_now_ms();
    char last[2048] = "";
    int last_rc = -1;
    while (harness_now_ms() - t0 < bound_ms) {
        hrun_t r;
        assert_int_equal(harness_run(h, argv, 10000 * harness_slow(), &r), 0);
        bool both = r.exit_code == 0 && strstr(r.out, "echo-a") && strstr(r.out, "echo-b");
        last_rc = r.exit_code;
        snprintf(last, sizeof last, "%s%s", r.out, r.err);
        hrun_clear(&r);
        if (both) return harness_now_ms() - t0;
        harness_sleep_ms(200);
    }
    fail_msg("round %d: syctl status does not list echo-a and echo-b %d ms after the "
             "broker restart; last exit %d, output:\n%s", round, bound_ms, last_rc, last);
    return -1;
}

static void test_broker_restart_three_times(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_set(h, "broker/heartbeat", "250ms");
    harness_set(h, "broker/liveness", "2000ms");
    harness_set(h, "actor/reconnect_max", "1000ms");
    hproc_t *broker = harness_broker_start(h);
    hproc_t *a = harness_echo_start(h, "echo-a", "echo", 1, true);
    hproc_t *b = harness_echo_start(h, "echo-b", "echo2", 1, true);
    pid_t pid_a = a->pid, pid_b = b->pid;

    hclient_t *c = harness_client(h, "alice-0", NULL, 1);
    echo_through(c, "echo", "echo-a", 1, 0);
    echo_through(c, "echo2", "echo-b", 2, 0);
    harness_client_close(h, c);

    /* Liveness (actor side) + the longest backoff + start-up, generously. */
    int bound = (harness_liveness_ms(h) + 1000 + 5000) * slow;
    for (int round = 1; round <= 3; round++) {
        harness_kill(h, broker);
        harness_sleep_ms(100 * round);   /* vary how long it is gone */
        broker = harness_broker_start(h);
        int64_t took = wait_listed_by_syctl(h, bound, round);
        print_message("round %d: both actors listed again %lld ms after restart\n",
                      round, (long long)took);
        if (!harness_alive(h, a) || !harness_alive(h, b) || a->pid != pid_a || b->pid != pid_b)
            fail_msg("round %d: an actor process died during the broker restart", round);
        char name[32];
        snprintf(name, sizeof name, "alice-%d", round);
        c = harness_client(h, name, NULL, 1);
        echo_through(c, "echo", "echo-a", (uint64_t)(10 * round + 1), round);
        echo_through(c, "echo2", "echo-b", (uint64_t)(10 * round + 2), round);
        echo_through(c, "@echo-a", "echo-a", (uint64_t)(10 * round + 3), round);
        echo_through(c, "@echo-b", "echo-b", (uint64_t)(10 * round + 4), round);
        harness_client_close(h, c);
    }
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_restart_three_times, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
