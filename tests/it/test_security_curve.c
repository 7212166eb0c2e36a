/*  test_security_curve.c -- issue 3 with the real binaries: a broker with
 *  CURVE on, devices made and admitted with the real `syctl keys new` and
 *  `syctl keys enroll`, sy-echo and syctl speaking CURVE with their
 *  certificates (docs/SECURITY.md).
 *
 *  What is checked:
 *    - an enrolled operator's syctl sends echo.request through an
 *      enrolled actor's sy-echo, and status lists the echo actor under its
 *      certificate's name;
 *    - an identity that was made but never enrolled is refused (syctl
 *      exit 1 with a message that says so) while the broker keeps serving;
 *    - `syctl keys revoke echo-1` cuts the running sy-echo off within a
 *      few seconds (status no longer lists it, a `syctl tail presence.`
 *      subscriber sees presence.leave {reason "revoked"}) without
 *      stopping the broker; enrolling it again brings the same sy-echo
 *      process back by itself (its runtime retries with backoff);
 *    - a client identity may not offer echo (sy-echo refused, and its log
 *      says why) and may not purge the DLQ (DENIED, exit 1), while its
 *      read-only status query works (so the refusals are about the role,
 *      not about enrollment).
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
#include "hsec.h"

static int setup(void **state)
{
    harness_t *h = harness_new("sec-curve");
    *state = h;
    if (!h) return -1;
    harness_curve_enable(h);
    return 0;
}

/* syctl --cert ID send echo echo.request {seq, data}; asserts exit 0 and
   a reply carrying the same seq and data, answered by `by`. */
static void send_echo_ok(harness_t *h, const char *id, int seq, const char *data,
                         const char *by)
{
    char body[256];
    snprintf(body, sizeof body, "{\"seq\":%d,\"data\":\"%s\"}", seq, data);
    hrun_t r;
    int rc = hsec_syctl(h, &r, id, 15000, "send", "echo", "echo.request", body, NULL);
    if (rc != 0)
        fail_msg("syctl --cert %s send echo: exit %d\nstdout:\n%s\nstderr:\n%s",
                 id, rc, r.out, r.err);
    size_t len = 0;
    uint8_t *j = hmp_from_json_in(r.out, &len);
    bool ok = hmp_echo_reply_has(j, len, (uint64_t)seq, data, by);
    free(j);
    if (!ok)
        fail_msg("syctl --cert %s send echo: reply lacks seq %d, data \"%s\", by \"%s\":\n%s",
                 id, seq, data, by, r.out);
    hrun_clear(&r);
}

static void test_enrolled_devices_work(void **state)
{
    harness_t *h = *state;
    harness_identity(h, "op", "operator", true);
    harness_identity(h, "echo-1", "actor", true);
    harness_identity(h, "stranger", "operator", false);     /* never enrolled */
    hproc_t *broker = harness_broker_start(h);
    hsec_echo_start(h, "echo-1", "echo", true, NULL);

    send_echo_ok(h, "op", 11, "over-curve", "echo-1");
    if (!hsec_status_lists(h, "op", "echo-1", "echo"))
        fail_msg("syctl status does not list echo-1 offering echo under its certificate name");

    /* The unenrolled identity: refused during the handshake. */
    hrun_t r;
    int rc = hsec_syctl(h, &r, "stranger", 15000, "--timeout", "3s", "status", NULL);
    if (rc != 1)
        fail_msg("syctl with an unenrolled certificate: exit %d, want 1 (refused)\n"
                 "stdout:\n%s\nstderr:\n%s", rc, r.out, r.err);
    if (!strstr(r.err, "refused") || !strstr(r.err, "stranger"))
        fail_msg("syctl with an unenrolled certificate does not say it was refused:\n%s", r.err);
    if (strstr(r.out, "ACTORS") || strstr(r.out, "echo-1"))
        fail_msg("syctl with an unenrolled certificate printed a status:\n%s", r.out);
    hrun_clear(&r);
    if (hsec_status_lists(h, "op", "stranger", NULL))
        fail_msg("the unenrolled identity is listed by the broker");

    /* CURVE on and no certificate at all: a configuration error. */
    rc = hsec_syctl(h, &r, NULL, 15000, "--timeout", "3s", "status", NULL);
    if (rc != 4 || !strstr(r.err, "certificate"))
        fail_msg("syctl without a certificate under CURVE: exit %d (want 4), stderr:\n%s",
                 rc, r.err);
    hrun_clear(&r);

    /* The broker carried on and still serves the operator. */
    assert_true(harness_alive(h, broker));
    send_echo_ok(h, "op", 12, "still-served", "echo-1");
    harness_pass(h);
}

static void test_revoke_cuts_off_and_reenroll_restores(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_identity(h, "op", "operator", true);
    harness_identity(h, "watch", "operator", true);
    harness_identity(h, "echo-1", "actor", true);
    hproc_t *broker = harness_broker_start(h);
    hproc_t *echo = hsec_echo_start(h, "echo-1", "echo", true, NULL);
    send_echo_ok(h, "op", 1, "before-revoke", "echo-1");

    /* A subscriber to presence events, under its own operator identity
       (one certificate is one device: a second connection with the same
       certificate would replace it). */
    char bin[HARNESS_PATH_MAX], cert[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    harness_identity_path(h, "watch", ".secret", cert, sizeof cert);
    char *targv[] = { bin, "--config", (char *)harness_config(h), "--cert", cert,
                      "tail", "presence.", NULL };
    hproc_t *tail = harness_spawn(h, "tail", targv);
    if (!harness_wait_actor(h, "watch", true, 10000 * slow))
        fail_msg("syctl tail (identity watch) never registered");
    harness_sleep_ms(200);              /* its sy.sub follows the welcome */

    hrun_t r;
    int64_t t0 = harness_now_ms();
    int rc = hsec_syctl(h, &r, NULL, 10000, "keys", "revoke", "echo-1", NULL);
    if (rc != 0)
        fail_msg("syctl keys revoke echo-1: exit %d\n%s%s", rc, r.out, r.err);
    hrun_clear(&r);

    if (!hsec_wait_status(h, "op", "echo-1", false, 5000 * slow))
        fail_msg("echo-1 is still listed %d ms after syctl keys revoke",
                 5000 * slow);
    int64_t cut_ms = harness_now_ms() - t0;
    if (!hsec_wait_line(tail->log, 5000 * slow, "\"presence.leave\"", "\"echo-1\"",
                        "\"revoked\"", NULL))
        fail_msg("the presence subscriber saw no presence.leave of echo-1 with "
                 "reason \"revoked\" (see %s)", tail->log);
    print_message("    echo-1 cut off %lld ms after syctl keys revoke\n", (long long)cut_ms);

    /* Revoked, not crashed: sy-echo keeps running and says why. */
    if (!harness_alive(h, echo))
        fail_msg("sy-echo exited after its certificate was revoked (it should retry)");
    if (!hsec_wait_line(echo->log, 3000 * slow, "echo-1", "revoked", NULL))
        fail_msg("sy-echo's log does not say its certificate was revoked");
    rc = hsec_syctl(h, &r, "op", 10000, "keys", "ls", "--json", NULL);
    if (rc != 0 || !strstr(r.out, "\"echo-1\"") || !strstr(r.out, "\"revoked\":true"))
        fail_msg("syctl keys ls --json does not show echo-1 revoked (exit %d):\n%s",
                 rc, r.out);
    hrun_clear(&r);

    /* The broker keeps serving the operator; echo has no provider now. */
    assert_true(harness_alive(h, broker));
    rc = hsec_syctl(h, &r, "op", 15000, "--timeout", "3s", "send", "echo",
                    "echo.request", "{\"seq\":2,\"data\":\"nobody\"}", NULL);
    if (rc != 1 || !strstr(r.err, "NO_SERVICE"))
        fail_msg("send to echo after the revoke: exit %d (want 1, NO_SERVICE)\n%s%s",
                 rc, r.out, r.err);
    hrun_clear(&r);
    /* Still refused a little later (its retries keep failing). */
    harness_sleep_ms(1500);
    if (hsec_status_lists(h, "op", "echo-1", NULL))
        fail_msg("echo-1 came back while revoked");

    /* Enrolled again: the same sy-echo comes back by itself. */
    harness_enroll(h, "echo-1");
    if (!hsec_wait_status(h, "op", "echo-1", true, 15000 * slow))
        fail_msg("echo-1 did not come back within %d ms of being enrolled again",
                 15000 * slow);
    if (!harness_alive(h, echo))
        fail_msg("the sy-echo process is not the one that was revoked");
    send_echo_ok(h, "op", 3, "after-reenroll", "echo-1");
    if (!hsec_wait_line(tail->log, 5000 * slow, "\"presence.join\"", "\"echo-1\"", NULL))
        fail_msg("the presence subscriber saw no presence.join of echo-1 after re-enrolling");
    harness_pass(h);
}

static void test_client_role_limits(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_identity(h, "op", "operator", true);
    harness_identity(h, "phone", "client", true);
    harness_broker_start(h);

    /* A client offers nothing: sy-echo with the phone's certificate. */
    hproc_t *echo = hsec_echo_start(h, "phone", "echo", false, NULL);
    if (!hsec_wait_line(echo->log, 10000 * slow, "refused", "DENIED",
                        "may not offer echo", NULL))
        fail_msg("sy-echo with a client certificate does not log that it was "
                 "refused (may not offer echo); see %s", echo->log);
    if (hsec_status_lists(h, "op", "phone", NULL))
        fail_msg("the client identity offering echo is listed by the broker");

    /* Read-only queries are allowed: the phone is enrolled. */
    hrun_t r;
    int rc = hsec_syctl(h, &r, "phone", 15000, "status", NULL);
    if (rc != 0)
        fail_msg("syctl --cert phone status: exit %d, want 0\n%s%s", rc, r.out, r.err);
    hrun_clear(&r);

    /* Administration is not. */
    rc = hsec_syctl(h, &r, "phone", 15000, "dlq", "purge", "--all", NULL);
    if (rc != 1 || !strstr(r.err, "DENIED"))
        fail_msg("syctl --cert phone dlq purge --all: exit %d (want 1, DENIED)\n"
                 "stdout:\n%s\nstderr:\n%s", rc, r.out, r.err);
    hrun_clear(&r);
    rc = hsec_syctl(h, &r, "op", 15000, "dlq", "purge", "--all", NULL);
    if (rc != 0)
        fail_msg("syctl --cert op dlq purge --all: exit %d, want 0 (the operator may)\n%s%s",
                 rc, r.out, r.err);
    hrun_clear(&r);

    if (!harness_alive(h, echo))
        fail_msg("sy-echo with a refused certificate exited (it should keep retrying)");
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enrolled_devices_work, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_revoke_cuts_off_and_reenroll_restores,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_client_role_limits, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
