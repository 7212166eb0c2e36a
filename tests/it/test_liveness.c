/*  test_liveness.c -- presence and liveness with the real binaries.
 *
 *  A subscriber on "presence." sees presence.join when sy-echo starts; an
 *  sy-echo frozen with SIGSTOP goes silent with its connection still open
 *  and must be declared gone (presence.leave, reason "expired") within the
 *  liveness plus slack; one killed with SIGKILL closes its connection and
 *  is declared gone at once (reason "disconnected"), far inside the
 *  liveness; an
 *  sy-echo stopped with SIGTERM says bye and leaves at once (reason
 *  "bye"); syctl status lists the actors with their ages, and its --json
 *  output parses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hclient.h"
#include "hmp.h"
#include "common/json.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "liveness");
}

/* Waits for sy.event with `topic` about actor `name`; other events are
   skipped.  Returns 0 with the event in *m, or SY_ETIMEOUT. */
static int wait_presence(hclient_t *c, const char *topic, const char *name,
                         hmsg_t *m, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return SY_ETIMEOUT;
        int rc = hclient_recv_type(c, "sy.event", m, (int)left, NULL);
        if (rc) return rc;
        char t[80] = "", n[ENVELOPE_NAME_MAX + 1] = "";
        hmp_get_str(m->body, m->body_len, "topic", t, sizeof t);
        hmp_get_str(m->body, m->body_len, "data.name", n, sizeof n);
        if (strcmp(t, topic) == 0 && strcmp(n, name) == 0) return 0;
        hmsg_print("  (other event) ", m);
        hmsg_clear(m);
    }
}

/* Receives on c for ms milliseconds (so c keeps its heartbeat); fails if
   a presence.leave for `name` comes meanwhile. */
static void idle(hclient_t *c, const char *name, int ms)
{
    int64_t deadline = harness_now_ms() + ms;
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return;
        hmsg_t m;
        if (hclient_recv(c, &m, (int)left) != 0) continue;
        char t[80] = "", n[ENVELOPE_NAME_MAX + 1] = "";
        hmp_get_str(m.body, m.body_len, "topic", t, sizeof t);
        hmp_get_str(m.body, m.body_len, "data.name", n, sizeof n);
        bool left_early = strcmp(t, "presence.leave") == 0 && strcmp(n, name) == 0;
        hmsg_print("  (while idle) ", &m);
        hmsg_clear(&m);
        if (left_early) fail_msg("%s was declared gone while alive", name);
    }
}

/* A client subscribed to presence.*, with the subscription in effect. */
static hclient_t *watcher(harness_t *h)
{
    hclient_t *w = harness_client(h, "watcher", NULL, 1);
    assert_int_equal(hclient_sub(w, "presence."), 0);
    int rc = hclient_sync(w, 5000 * harness_slow());
    if (rc) fail_msg("no sy.pong for sy.ping: %s", syerr_name(rc));
    return w;
}

static void test_join_then_expired_on_sigstop(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_set(h, "broker/heartbeat", "250ms");
    harness_set(h, "broker/liveness", "2000ms");
    int liveness = harness_liveness_ms(h);
    harness_broker_start(h);
    hclient_t *w = watcher(h);

    hproc_t *echo = harness_echo_start(h, "echo-1", "echo", 3, false);
    hmsg_t m;
    int rc = wait_presence(w, "presence.join", "echo-1", &m, 10000 * slow);
    if (rc) fail_msg("no presence.join for echo-1 within %d ms", 10000 * slow);
    char svc[64] = "";
    uint64_t credit = 0;
    if (!hmp_get_str(m.body, m.body_len, "data.services.0", svc, sizeof svc)
        || !hmp_get_uint(m.body, m.body_len, "data.credit", &credit)) {
        hmsg_print("join: ", &m);
        fail_msg("presence.join lacks data.services / data.credit");
    }
    assert_string_equal(svc, "echo");
    assert_int_equal(credit, 3);
    hmsg_clear(&m);

    /* Let it live through a few heartbeats: a live actor is not expired
       (the watcher keeps receiving, so it keeps pinging too). */
    idle(w, "echo-1", 3 * liveness / 2);
    assert_true(harness_alive(h, echo));

    /* Frozen, not dead: the connection stays open, only liveness can
       tell. */
    harness_signal(h, echo, SIGSTOP);
    int64_t t0 = harness_now_ms();
    int bound = liveness + 1500 * slow;
    rc = wait_presence(w, "presence.leave", "echo-1", &m, bound + 2000);
    int64_t took = harness_now_ms() - t0;
    if (rc) fail_msg("no presence.leave for echo-1 within %d ms of SIGSTOP", bound + 2000);
    char reason[64] = "";
    hmp_get_str(m.body, m.body_len, "data.reason", reason, sizeof reason);
    hmsg_clear(&m);
    print_message("SIGSTOPped actor declared gone after %lld ms (liveness %d)\n",
                  (long long)took, liveness);
    assert_string_equal(reason, "expired");
    if (took < liveness / 2)
        fail_msg("declared gone %lld ms after SIGSTOP, before the liveness of %d ms "
                 "could have run out", (long long)took, liveness);
    if (took > bound)
        fail_msg("declared gone %lld ms after SIGSTOP, liveness is %d ms",
                 (long long)took, liveness);
    if (!harness_wait_actor(h, "echo-1", false, 2000 * slow))
        fail_msg("status still lists echo-1 after its presence.leave");
    harness_kill(h, echo);
    harness_pass(h);
}

static void test_sigkill_disconnected_at_once(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_set(h, "broker/heartbeat", "1s");
    harness_set(h, "broker/liveness", "30s");
    harness_broker_start(h);
    hclient_t *w = watcher(h);

    hproc_t *echo = harness_echo_start(h, "echo-1", "echo", 3, false);
    hmsg_t m;
    int rc = wait_presence(w, "presence.join", "echo-1", &m, 10000 * slow);
    if (rc) fail_msg("no presence.join for echo-1 within %d ms", 10000 * slow);
    hmsg_clear(&m);

    harness_kill(h, echo);
    int64_t t0 = harness_now_ms();
    int bound = 3000 * slow;          /* a tenth of the liveness, or less */
    rc = wait_presence(w, "presence.leave", "echo-1", &m, bound);
    int64_t took = harness_now_ms() - t0;
    if (rc) fail_msg("no presence.leave for echo-1 within %d ms of SIGKILL "
                     "(liveness is 30 s: the closed connection was not noticed)", bound);
    char reason[64] = "";
    hmp_get_str(m.body, m.body_len, "data.reason", reason, sizeof reason);
    hmsg_clear(&m);
    print_message("SIGKILLed actor declared gone after %lld ms (liveness 30000)\n",
                  (long long)took);
    assert_string_equal(reason, "disconnected");
    harness_pass(h);
}

static void test_sigterm_says_bye(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_set(h, "broker/liveness", "5000ms");
    harness_broker_start(h);
    hclient_t *w = watcher(h);
    hproc_t *echo = harness_echo_start(h, "echo-1", "echo", 1, false);
    hmsg_t m;
    int rc = wait_presence(w, "presence.join", "echo-1", &m, 10000 * slow);
    if (rc) fail_msg("no presence.join for echo-1");
    hmsg_clear(&m);
    /* Let echo-1 see its sy.welcome too (the join is the broker's view). */
    idle(w, "echo-1", 500);

    harness_signal(h, echo, SIGTERM);
    int64_t t0 = harness_now_ms();
    /* "At once": well before the 5 s liveness could explain it. */
    int bound = 1000 * slow;
    rc = wait_presence(w, "presence.leave", "echo-1", &m, 8000 * slow);
    int64_t took = harness_now_ms() - t0;
    if (rc) fail_msg("no presence.leave for echo-1 after SIGTERM");
    char reason[64] = "";
    hmp_get_str(m.body, m.body_len, "data.reason", reason, sizeof reason);
    hmsg_clear(&m);
    print_message("SIGTERMed actor left after %lld ms, reason %s\n", (long long)took, reason);
    assert_string_equal(reason, "bye");
    if (took > bound)
        fail_msg("leave came %lld ms after SIGTERM (bound %d ms)", (long long)took, bound);
    if (!harness_wait_exit(h, echo, 5000 * slow))
        fail_msg("sy-echo still running 5 s after SIGTERM");
    if (!WIFEXITED(echo->status) || WEXITSTATUS(echo->status) != 0)
        fail_msg("sy-echo did not exit 0 on SIGTERM (status 0x%x)", echo->status);
    harness_pass(h);
}

/* The item of the array at v whose "name" is name (buf NULL if none). */
static hmp_view_t by_name(hmp_view_t v, const char *name)
{
    int i = hmp_index_of(v.buf, v.len, "", "name", name);
    char path[16];
    snprintf(path, sizeof path, "%d", i);
    return i >= 0 ? hmp_sub(v.buf, v.len, path) : (hmp_view_t){ NULL, 0 };
}

/* True if the first line of text that starts with name ends in an age
   token: digits (maybe with a '.') followed by ms, s, m or h. */
static bool row_has_age(const char *text, const char *name)
{
    for (const char *line = text; line && *line; ) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *s = line;
        while (*s == ' ') s++;
        if (strncmp(s, name, strlen(name)) == 0 && s[strlen(name)] == ' ') {
            while (len && (line[len - 1] == ' ' || line[len - 1] == '\r')) len--;
            size_t start = len;
            while (start && line[start - 1] != ' ') start--;
            const char *tok = line + start;
            size_t tl = len - start, digits = 0;
            while (digits < tl && ((tok[digits] >= '0' && tok[digits] <= '9') || tok[digits] == '.'))
                digits++;
            const char *unit = tok + digits;
            size_t ul = tl - digits;
            return digits > 0 && ((ul == 2 && strncmp(unit, "ms", 2) == 0)
                   || (ul == 1 && (*unit == 's' || *unit == 'm' || *unit == 'h')));
        }
        line = nl ? nl + 1 : NULL;
    }
    return false;
}

static void test_syctl_status(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 2, true);
    harness_echo_start(h, "echo-2", "other", 1, true);
    harness_sleep_ms(600);

    char syctl[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", syctl, sizeof syctl);
    char *cfg = (char *)harness_config(h);

    hrun_t r;
    char *argv1[] = { syctl, "--config", cfg, "status", NULL };
    assert_int_equal(harness_run(h, argv1, 10000 * slow, &r), 0);
    if (r.exit_code != 0)
        fail_msg("syctl status exited %d\nstdout:\n%s\nstderr:\n%s", r.exit_code, r.out, r.err);
    if (!strstr(r.out, "echo-1") || !strstr(r.out, "echo-2"))
        fail_msg("syctl status does not list both actors:\n%s", r.out);
    /* Each actor's row ends with its age ("850ms", "1.2s", ...). */
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "echo-2" : "echo-1";
        if (!row_has_age(r.out, name))
            fail_msg("syctl status: the row of %s shows no age:\n%s", name, r.out);
    }
    hrun_clear(&r);

    char *argv2[] = { syctl, "--config", cfg, "status", "--json", NULL };
    assert_int_equal(harness_run(h, argv2, 10000 * slow, &r), 0);
    if (r.exit_code != 0)
        fail_msg("syctl status --json exited %d\nstderr:\n%s", r.exit_code, r.err);
    uint8_t *j = NULL;
    size_t len = 0;
    json_err_t err;
    if (json_to_msgpack(r.out, strlen(r.out), NULL, &j, &len, &err) != 0)
        fail_msg("syctl status --json: not JSON (%s):\n%s", err.msg, r.out);
    hmp_view_t actors = hmp_find(j, len, "actors");
    mpval_t top;
    if (hmp_get(actors.buf, actors.len, "", &top) || top.kind != MP_ARRAY) {
        free(j);
        fail_msg("syctl status --json has no \"actors\" array:\n%s", r.out);
    }
    const char *names[] = { "echo-1", "echo-2" };
    for (int i = 0; i < 2; i++) {
        hmp_view_t a = by_name(actors, names[i]);
        if (!a.buf) { free(j); fail_msg("%s not in actors:\n%s", names[i], r.out); }
        double age, up;
        if (!hmp_get_num(a.buf, a.len, "age_ms", &age) || !hmp_get_num(a.buf, a.len, "up_ms", &up)) {
            free(j);
            fail_msg("%s lacks numeric age_ms / up_ms:\n%s", names[i], r.out);
        }
        /* Heard from recently (heartbeats), up for at least our sleep. */
        if (age < 0 || age > harness_liveness_ms(h) || up < 500 || up < age) {
            free(j);
            fail_msg("%s: implausible age_ms %.0f / up_ms %.0f (liveness %d, up >= 500 expected)",
                     names[i], age, up, harness_liveness_ms(h));
        }
    }
    hmp_view_t a1 = by_name(actors, "echo-1");
    double credit;
    if (!hmp_get_num(a1.buf, a1.len, "credit", &credit) || credit != 2) {
        free(j);
        fail_msg("echo-1's credit should be 2:\n%s", r.out);
    }
    free(j);
    hrun_clear(&r);
    harness_pass(h);
}

static void test_name_takeover(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    hclient_t *w = watcher(h);
    hclient_t *a = harness_client(h, "dup", NULL, 1);
    hmsg_t m;
    if (wait_presence(w, "presence.join", "dup", &m, 5000 * slow))
        fail_msg("no presence.join for the first dup");
    hmsg_clear(&m);
    hclient_t *b = harness_client(h, "dup", NULL, 1);
    int rc = wait_presence(w, "presence.leave", "dup", &m, 5000 * slow);
    if (rc) fail_msg("no presence.leave for the replaced connection");
    char reason[64] = "";
    hmp_get_str(m.body, m.body_len, "data.reason", reason, sizeof reason);
    hmsg_clear(&m);
    assert_string_equal(reason, "replaced");

    /* @dup now reaches the new connection only. */
    hsend_t s = { .to = "@dup" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(w, &s, 1, "to the new dup", -1, id), 0);
    rc = hclient_recv_type(b, "echo.request", &m, 5000 * slow, NULL);
    if (rc) fail_msg("the new dup got nothing: %s", syerr_name(rc));
    assert_memory_equal(m.hdr.id, id, 16);
    hmsg_clear(&m);

    /* The old connection is no longer known: DENIED / NOT_REGISTERED. */
    hsend_t s2 = { .to = "@watcher" };
    assert_int_equal(hclient_send_echo(a, &s2, 2, "from the old dup", -1, id), 0);
    rc = hclient_recv_corr(a, id, &m, 5000 * slow);
    if (rc) fail_msg("the replaced connection got no answer: %s", syerr_name(rc));
    char code[40], detail[40];
    if (!hmsg_receipt(&m, code, sizeof code, detail, sizeof detail)
        || strcmp(code, "DENIED") || strcmp(detail, "NOT_REGISTERED")) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("a message from the replaced connection must be DENIED/NOT_REGISTERED");
    }
    hmsg_clear(&m);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_then_expired_on_sigstop, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_disconnected_at_once, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_says_bye, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_syctl_status, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_name_takeover, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
