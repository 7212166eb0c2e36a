/*  test_security_capture.c -- issue 3: nothing readable on the wire.
 *
 *  tcpdump captures the loopback traffic of the broker's port while a
 *  chat-like message with a distinctive plaintext goes through the real
 *  syctl -> sy-broker -> sy-echo -> sy-broker -> syctl, once as a plain
 *  request and once durably.  With security/curve on, the capture must
 *  hold packets (well above the pcap file header) and the ZMTP greetings
 *  naming the CURVE mechanism (so it did see our connections), but
 *  neither plaintext, nor even the message type (headers are encrypted
 *  too).  The control runs the same with CURVE off on another port and
 *  requires the plaintext to be in its capture: it proves the search can
 *  fail.
 *
 *  Needs root (or capture rights) and tcpdump (tools/install-deps.sh).
 *  Without root the tests are skipped with a printed reason; as root, a
 *  missing tcpdump or a refused capture fails with a clear message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hsec.h"

#define SECRET_PLAIN   "the-secret-launch-code-4711"
#define SECRET_DURABLE "the-secret-durable-code-4712"
#define PCAP_HEADER    24               /* bytes of a pcap file header */

static int setup(void **state)
{
    return harness_setup(state, "sec-capture");
}

/* The tcpdump binary: on PATH, else the usual sbin places.  false if
   there is none. */
static bool find_tcpdump(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/tcpdump", d);
        if (access(out, X_OK) == 0) return true;
    }
    return false;
}

/* True if this process may capture: skips (with the reason printed) when
   it is not root; fails when it is root but has no tcpdump. */
static bool capture_possible(harness_t *h, char *tcpdump, size_t cap)
{
    if (geteuid() != 0) {
        print_message("    [skip] the loopback capture needs root (tcpdump on lo); "
                      "running as uid %d\n", (int)geteuid());
        harness_pass(h);
        return false;
    }
    if (!find_tcpdump(tcpdump, cap))
        fail_msg("tcpdump is not installed (PATH, /usr/sbin): the capture check "
                 "cannot run; install it with tools/install-deps.sh");
    return true;
}

/* Starts tcpdump on lo for the broker's port, writing pcap to file, and
   waits (bounded) until it says it is listening. */
static hproc_t *capture_start(harness_t *h, const char *tcpdump, const char *file)
{
    const char *ep = harness_endpoint(h);
    const char *colon = strrchr(ep, ':');
    assert_non_null(colon);
    char filter[64];
    snprintf(filter, sizeof filter, "tcp port %s", colon + 1);
    /* -U --immediate-mode: every packet reaches the file as it comes
       (TPACKET_V3 would otherwise hold them in a block); -Z root: keep
       writing into the test's private directory. */
    char *argv[] = { (char *)tcpdump, "-i", "lo", "-n", "-U", "--immediate-mode",
                     "-Z", "root", "-w", (char *)file, filter, NULL };
    hproc_t *p = harness_spawn(h, "tcpdump", argv);
    assert_non_null(p);
    int64_t deadline = harness_now_ms() + 10000 * harness_slow();
    while (!hsec_wait_line(p->log, 50, "listening on", NULL)) {
        if (!harness_alive(h, p) || harness_now_ms() >= deadline) {
            size_t n;
            char *log = (char *)hsec_slurp(p->log, &n);
            fail_msg("tcpdump did not start capturing on lo (%s; capture not "
                     "permitted?):\n%s", harness_alive(h, p) ? "no \"listening on\" "
                     "within the bound" : "it exited", log ? log : "(no log)");
        }
    }
    if (access(file, F_OK) != 0)
        fail_msg("tcpdump says it is listening but made no file %s", file);
    harness_sleep_ms(300);              /* the ring is attached; give it a moment */
    return p;
}

/* Stops tcpdump with SIGINT (it then flushes and closes the file). */
static void capture_stop(harness_t *h, hproc_t *p)
{
    harness_sleep_ms(500);              /* the last packets reach the ring */
    harness_signal(h, p, SIGINT);
    if (!harness_wait_exit(h, p, 10000 * harness_slow()))
        fail_msg("tcpdump did not stop within %d ms of SIGINT", 10000 * harness_slow());
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        fail_msg("tcpdump ended with status 0x%x; see %s", p->status, p->log);
}

/* Sends the two messages through syctl (as `id`, NULL without CURVE):
   a request answered by sy-echo and a durable one.  Both must work. */
static void send_secrets(harness_t *h, const char *id)
{
    hrun_t r;
    int rc = hsec_syctl(h, &r, id, 15000, "send", "echo", "echo.request",
                        "{\"seq\":1,\"data\":\"" SECRET_PLAIN "\"}", NULL);
    if (rc != 0 || !strstr(r.out, SECRET_PLAIN))
        fail_msg("syctl send echo: exit %d, reply lacks the data\nstdout:\n%s\nstderr:\n%s",
                 rc, r.out, r.err);
    hrun_clear(&r);
    rc = hsec_syctl(h, &r, id, 15000, "send", "--durable", "echo", "echo.request",
                    "{\"seq\":2,\"data\":\"" SECRET_DURABLE "\"}", NULL);
    if (rc != 0 || !strstr(r.out, "id ") || !strstr(r.out, SECRET_DURABLE))
        fail_msg("syctl send --durable echo: exit %d, want a receipt and the reply\n"
                 "stdout:\n%s\nstderr:\n%s", rc, r.out, r.err);
    hrun_clear(&r);
}

/* Runs the whole exchange under a capture; *size, counts of the secrets,
   of the type name and of a mechanism name in the capture come back. */
typedef struct {
    long size;
    int  plain, durable, type, mechanism;
} capture_t;

static void run_captured(harness_t *h, bool curve, capture_t *out)
{
    char tcpdump[512], file[HARNESS_PATH_MAX];
    if (!capture_possible(h, tcpdump, sizeof tcpdump)) {
        skip();
        return;
    }
    snprintf(file, sizeof file, "%s/lo.pcap", harness_dir(h));
    if (curve) {
        harness_curve_enable(h);
        harness_identity(h, "op", "operator", true);
        harness_identity(h, "echo-1", "actor", true);
    }
    harness_broker_start(h);
    hproc_t *cap = capture_start(h, tcpdump, file);
    /* The echo connects while the capture runs: its greeting is seen. */
    if (curve) hsec_echo_start(h, "echo-1", "echo", true, NULL);
    else harness_echo_start(h, "echo-1", "echo", 4, true);
    send_secrets(h, curve ? "op" : NULL);
    capture_stop(h, cap);
    out->plain = hsec_file_count(file, SECRET_PLAIN, &out->size);
    out->durable = hsec_file_count(file, SECRET_DURABLE, NULL);
    out->type = hsec_file_count(file, "echo.request", NULL);
    out->mechanism = hsec_file_count(file, curve ? "CURVE" : "NULL", NULL);
    print_message("    capture (%s): %ld bytes; \"%s\" x%d, \"%s\" x%d, "
                  "\"echo.request\" x%d, mechanism name x%d\n",
                  curve ? "CURVE" : "plaintext", out->size, SECRET_PLAIN, out->plain,
                  SECRET_DURABLE, out->durable, out->type, out->mechanism);
    if (out->size <= 1000)
        fail_msg("the capture %s has %ld bytes: too small to hold the exchange "
                 "(pcap header alone is %d)", file, out->size, PCAP_HEADER);
}

static void test_curve_hides_plaintext(void **state)
{
    harness_t *h = *state;
    capture_t c = { 0 };
    run_captured(h, true, &c);
    if (c.mechanism == 0)
        fail_msg("the capture holds no ZMTP greeting naming CURVE: it did not see "
                 "our connections");
    if (c.plain || c.durable)
        fail_msg("plaintext on the wire with CURVE on: \"%s\" x%d, \"%s\" x%d",
                 SECRET_PLAIN, c.plain, SECRET_DURABLE, c.durable);
    if (c.type)
        fail_msg("the message type \"echo.request\" is readable on the wire "
                 "with CURVE on (x%d): headers are not encrypted", c.type);
    harness_pass(h);
}

static void test_plaintext_control(void **state)
{
    harness_t *h = *state;
    capture_t c = { 0 };
    run_captured(h, false, &c);
    /* Request and reply each carry the data: at least two copies. */
    if (c.plain < 2 || c.durable < 2)
        fail_msg("control: with CURVE off the capture should show the plaintext "
                 "(request and reply), but \"%s\" x%d, \"%s\" x%d: the search "
                 "cannot be trusted", SECRET_PLAIN, c.plain, SECRET_DURABLE, c.durable);
    if (c.type == 0)
        fail_msg("control: with CURVE off the type \"echo.request\" should be readable");
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_hides_plaintext, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_control, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
