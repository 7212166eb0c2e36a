/*  test_routing.c -- routing through the real sy-broker and sy-echo.
 *
 *  Request and reply with matching corr and body; `from` set by the broker
 *  whatever the sender wrote; a fair share between two actors of one
 *  service; credit respected (never more deliveries outstanding than the
 *  actor's credit, seen from the spacing of replies); direct "@name"
 *  addressing, which uses no credit; reply_to.
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
    return harness_setup(state, "routing");
}

/* Sends echo.request {seq, data, delay_ms} to `to`; id in id_out. */
static void send_echo(hclient_t *c, const char *to, uint64_t seq,
                      const char *data, int64_t delay_ms, uint8_t id_out[16])
{
    hsend_t s = { .to = to };
    assert_int_equal(hclient_send_echo(c, &s, seq, data, delay_ms, id_out), 0);
}

/* Checks that m is the echo.reply to request `id` with seq and data,
   answered by `by`. */
static void check_echo_reply(const hmsg_t *m, const uint8_t id[16],
                             uint64_t seq, const char *data, const char *by)
{
    if (strcmp(m->hdr.type, "echo.reply") != 0) {
        hmsg_print("unexpected: ", m);
        fail_msg("expected echo.reply, got %s", m->hdr.type);
    }
    assert_true(m->hdr.present & ENV_HAS_CORR);
    assert_memory_equal(m->hdr.corr, id, 16);
    uint64_t got_seq = 0;
    char got_data[256] = "", got_by[ENVELOPE_NAME_MAX + 1] = "";
    assert_true(hmp_get_uint(m->body, m->body_len, "seq", &got_seq));
    assert_true(hmp_get_str(m->body, m->body_len, "data", got_data, sizeof got_data));
    assert_true(hmp_get_str(m->body, m->body_len, "by", got_by, sizeof got_by));
    assert_int_equal(got_seq, seq);
    assert_string_equal(got_data, data);
    if (by) assert_string_equal(got_by, by);
}

static void test_request_reply_and_from(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);

    /* The header claims to be from "mallory": the broker must replace it
       with "alice", or the reply would go to @mallory and never arrive. */
    hsend_t s = { .to = "echo", .from = "mallory" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(alice, &s, 1, "hello", -1, id), 0);

    hmsg_t m;
    int rc = hclient_recv_corr(alice, id, &m, 5000 * slow);
    if (rc) fail_msg("no answer to echo.request (with a fake from) within %d ms: %s",
                     5000 * slow, syerr_name(rc));
    check_echo_reply(&m, id, 1, "hello", "echo-1");
    assert_true(m.hdr.present & ENV_HAS_FROM);
    assert_string_equal(m.hdr.from, "echo-1");
    assert_true(m.hdr.present & ENV_HAS_TO);
    assert_string_equal(m.hdr.to, "@alice");
    hmsg_clear(&m);

    /* Several in a row, each answered with its own corr and seq. */
    for (uint64_t i = 10; i < 15; i++) {
        char data[32];
        snprintf(data, sizeof data, "msg-%llu", (unsigned long long)i);
        send_echo(alice, "echo", i, data, -1, id);
        rc = hclient_recv_corr(alice, id, &m, 5000 * slow);
        if (rc) fail_msg("request %llu: no reply (%s)", (unsigned long long)i, syerr_name(rc));
        check_echo_reply(&m, id, i, data, "echo-1");
        hmsg_clear(&m);
    }
    harness_pass(h);
}

static void test_from_set_by_broker_on_direct(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hclient_t *bob = harness_client(h, "bob", NULL, 1);

    hsend_t s = { .to = "@bob", .from = "carol" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(alice, &s, 3, "to bob", -1, id), 0);

    hmsg_t m;
    int rc = hclient_recv_type(bob, "echo.request", &m, 5000 * slow, NULL);
    if (rc) fail_msg("bob got nothing from alice's direct message: %s", syerr_name(rc));
    assert_true(m.hdr.present & ENV_HAS_FROM);
    if (strcmp(m.hdr.from, "alice") != 0)
        fail_msg("`from` is \"%s\", expected \"alice\" (the sender wrote \"carol\")",
                 m.hdr.from);
    assert_memory_equal(m.hdr.id, id, 16);
    uint64_t seq = 0;
    assert_true(hmp_get_uint(m.body, m.body_len, "seq", &seq));
    assert_int_equal(seq, 3);
    hmsg_clear(&m);
    harness_pass(h);
}

static void test_fair_share_and_credit(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    enum { N = 20, DELAY = 200, CREDIT = 2 };
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", CREDIT, true);
    harness_echo_start(h, "echo-2", "echo", CREDIT, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);

    uint8_t ids[N][16];
    int64_t start = harness_now_ms();
    for (int i = 0; i < N; i++)
        send_echo(c, "echo", (uint64_t)i, "share", DELAY, ids[i]);

    int by1 = 0, by2 = 0, got = 0;
    bool seen[N] = { false };
    int64_t deadline = start + 20000 * slow;
    while (got < N && harness_now_ms() < deadline) {
        hmsg_t m;
        int rc = hclient_recv(c, &m, (int)(deadline - harness_now_ms()));
        if (rc) break;
        uint64_t seq = 0;
        char by[ENVELOPE_NAME_MAX + 1] = "";
        if (strcmp(m.hdr.type, "echo.reply") != 0
            || !hmp_get_uint(m.body, m.body_len, "seq", &seq) || seq >= N) {
            hmsg_print("unexpected: ", &m);
            fail_msg("unexpected message while collecting replies");
        }
        assert_memory_equal(m.hdr.corr, ids[seq], 16);
        if (seen[seq]) fail_msg("reply to seq %llu came twice", (unsigned long long)seq);
        seen[seq] = true;
        hmp_get_str(m.body, m.body_len, "by", by, sizeof by);
        if (strcmp(by, "echo-1") == 0) by1++;
        else if (strcmp(by, "echo-2") == 0) by2++;
        else fail_msg("reply by unknown actor \"%s\"", by);
        got++;
        hmsg_clear(&m);
    }
    int64_t elapsed = harness_now_ms() - start;
    print_message("fair share: echo-1 %d, echo-2 %d, %d replies in %lld ms\n",
                  by1, by2, got, (long long)elapsed);
    if (got != N) fail_msg("only %d of %d replies arrived", got, N);
    /* Same speed, same credit: each should take about half. */
    if (by1 < 7 || by2 < 7)
        fail_msg("unfair share: echo-1 answered %d, echo-2 %d of %d", by1, by2, N);
    /* At most 2 x CREDIT in flight, each held DELAY ms: N requests need at
       least N / (2 x CREDIT) x DELAY ms.  Faster means credit was ignored. */
    int64_t floor_ms = (int64_t)N / (2 * CREDIT) * DELAY;
    if (elapsed < floor_ms * 9 / 10)
        fail_msg("%d replies in %lld ms: faster than credit %d per actor allows "
                 "(at least %lld ms)", N, (long long)elapsed, CREDIT, (long long)floor_ms);
    harness_pass(h);
}

/* credit_left of actor `name` in a status answer, or -1. */
static int64_t status_credit_left(const hmsg_t *m, const char *name)
{
    int n = hmp_count(m->body, m->body_len, "data.actors");
    for (int i = 0; i < n; i++) {
        char path[64], got[ENVELOPE_NAME_MAX + 1];
        uint64_t left;
        snprintf(path, sizeof path, "data.actors.%d.name", i);
        if (!hmp_get_str(m->body, m->body_len, path, got, sizeof got) || strcmp(got, name))
            continue;
        snprintf(path, sizeof path, "data.actors.%d.credit_left", i);
        return hmp_get_uint(m->body, m->body_len, path, &left) ? (int64_t)left : -1;
    }
    return -1;
}

static void test_credit_one_serialises(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    enum { N = 5, DELAY = 300 };
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);
    hclient_t *op = harness_client(h, "operator", NULL, 1);

    uint8_t ids[N][16];
    int64_t start = harness_now_ms();
    for (int i = 0; i < N; i++)
        send_echo(c, "echo", (uint64_t)i, "one", DELAY, ids[i]);

    /* While it works, the broker must show its one credit as used. */
    hmsg_t st;
    int64_t left = -1;
    for (int tries = 0; tries < 20 && left != 0; tries++) {
        assert_int_equal(hclient_status(op, &st, 3000 * slow), 0);
        left = status_credit_left(&st, "echo-1");
        hmsg_clear(&st);
        if (left > 1) fail_msg("echo-1 has credit 1 but status says credit_left %lld",
                               (long long)left);
        if (left != 0) harness_sleep_ms(20);
    }
    if (left != 0) fail_msg("status never showed echo-1 busy (credit_left %lld)",
                            (long long)left);

    int64_t at[N];
    for (int i = 0; i < N; i++) {
        hmsg_t m;
        int rc = hclient_recv(c, &m, 10000 * slow);
        if (rc) fail_msg("reply %d of %d missing: %s", i + 1, N, syerr_name(rc));
        /* One at a time from one queue: replies come in order. */
        check_echo_reply(&m, ids[i], (uint64_t)i, "one", "echo-1");
        at[i] = m.at_ms;
        hmsg_clear(&m);
    }
    print_message("replies at +%lld +%lld +%lld +%lld +%lld ms\n",
                  (long long)(at[0] - start), (long long)(at[1] - start),
                  (long long)(at[2] - start), (long long)(at[3] - start),
                  (long long)(at[4] - start));
    /* With credit 1 the next request reaches the actor only after the
       previous reply: consecutive replies are >= DELAY apart (less a
       margin for the reply's own trip). */
    for (int i = 1; i < N; i++)
        if (at[i] - at[i - 1] < DELAY - 60)
            fail_msg("replies %d and %d only %lld ms apart: more than 1 delivery "
                     "outstanding for an actor of credit 1", i - 1, i,
                     (long long)(at[i] - at[i - 1]));
    harness_pass(h);
}

static void test_direct_addressing(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    harness_echo_start(h, "echo-2", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);

    uint8_t id[16];
    hmsg_t m;
    for (int i = 0; i < 6; i++) {
        const char *who = (i % 3 == 0) ? "echo-1" : "echo-2";
        char to[80];
        snprintf(to, sizeof to, "@%s", who);
        send_echo(c, to, (uint64_t)i, "direct", -1, id);
        int rc = hclient_recv_corr(c, id, &m, 5000 * slow);
        if (rc) fail_msg("no reply from %s: %s", to, syerr_name(rc));
        check_echo_reply(&m, id, (uint64_t)i, "direct", who);
        hmsg_clear(&m);
    }

    /* Direct delivery uses no credit: both actors (credit 1) are busy with
       slow service requests and a third waits for credit, yet a direct
       request is answered first. */
    uint8_t slow_id[16], fast_id[16];
    for (int i = 0; i < 3; i++)
        send_echo(c, "echo", (uint64_t)(100 + i), "slow", 1500, slow_id);
    harness_sleep_ms(100);
    send_echo(c, "@echo-1", 110, "fast", -1, fast_id);
    int rc = hclient_recv(c, &m, 5000 * slow);
    if (rc) fail_msg("no reply to the direct request: %s", syerr_name(rc));
    uint64_t seq = 0;
    hmp_get_uint(m.body, m.body_len, "seq", &seq);
    if (seq != 110) {
        hmsg_print("first reply: ", &m);
        fail_msg("the direct request (seq 110) waited for credit: first reply is seq %llu",
                 (unsigned long long)seq);
    }
    check_echo_reply(&m, fast_id, 110, "fast", "echo-1");
    hmsg_clear(&m);
    for (int i = 0; i < 3; i++) {       /* the slow ones */
        rc = hclient_recv_type(c, "echo.reply", &m, 10000 * slow, NULL);
        if (rc) fail_msg("slow reply %d missing: %s", i, syerr_name(rc));
        hmsg_clear(&m);
    }

    /* An actor that is not there: NO_SERVICE with corr = the request. */
    send_echo(c, "@nobody", 5, "x", -1, id);
    rc = hclient_recv_corr(c, id, &m, 5000 * slow);
    if (rc) fail_msg("no receipt for @nobody: %s", syerr_name(rc));
    char code[40], detail[40];
    if (!hmsg_receipt(&m, code, sizeof code, detail, sizeof detail)) {
        hmsg_print("got: ", &m);
        fail_msg("expected sy.receipt NO_SERVICE for @nobody");
    }
    assert_string_equal(code, "NO_SERVICE");
    bool ok = true;
    assert_true(hmp_get_bool(m.body, m.body_len, "ok", &ok));
    assert_false(ok);
    hmsg_clear(&m);
    harness_pass(h);
}

static void test_reply_to(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hclient_t *bob = harness_client(h, "bob", NULL, 1);

    hsend_t s = { .to = "echo", .reply_to = "@bob" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(alice, &s, 9, "for bob", -1, id), 0);

    hmsg_t m;
    int rc = hclient_recv_type(bob, "echo.reply", &m, 5000 * slow, NULL);
    if (rc) fail_msg("bob (reply_to) got no echo.reply: %s", syerr_name(rc));
    check_echo_reply(&m, id, 9, "for bob", "echo-1");
    assert_string_equal(m.hdr.from, "echo-1");
    hmsg_clear(&m);

    /* Alice gets nothing: no reply, no receipt. */
    rc = hclient_recv(alice, &m, 500 * slow);
    if (rc == 0) {
        hmsg_print("alice got: ", &m);
        hmsg_clear(&m);
        fail_msg("the sender got a message although reply_to named bob");
    }
    harness_pass(h);
}

static void test_ipc_endpoint(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_use_ipc(h);
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);
    uint8_t id[16];
    send_echo(c, "echo", 42, "over ipc", -1, id);
    hmsg_t m;
    int rc = hclient_recv_corr(c, id, &m, 5000 * slow);
    if (rc) fail_msg("no reply over %s: %s", harness_endpoint(h), syerr_name(rc));
    check_echo_reply(&m, id, 42, "over ipc", "echo-1");
    hmsg_clear(&m);
    harness_pass(h);
}

/* Waits for the receipt answering id and checks its code. */
static void expect_code(hclient_t *c, const uint8_t id[16], const char *code,
                        const char *what)
{
    hmsg_t m;
    int rc = hclient_recv_corr(c, id, &m, 10000 * harness_slow());
    if (rc) fail_msg("%s: no answer (expected %s): %s", what, code, syerr_name(rc));
    char got[40], detail[40];
    if (!hmsg_receipt(&m, got, sizeof got, detail, sizeof detail) || strcmp(got, code)) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("%s: expected a %s receipt", what, code);
    }
    hmsg_clear(&m);
}

static void test_queue_full_and_expired(void **state)
{
    harness_t *h = *state;
    harness_set(h, "broker/queue_max", "3");
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);
    uint8_t busy[16], q[3][16], over[16];
    send_echo(c, "echo", 1, "busy", 1500, busy);     /* takes the one credit */
    harness_sleep_ms(100);
    for (int i = 0; i < 3; i++)                       /* fill the queue */
        send_echo(c, "echo", (uint64_t)(10 + i), "queued", -1, q[i]);
    send_echo(c, "echo", 99, "one too many", -1, over);
    expect_code(c, over, "QUEUE_FULL", "4th waiting message with queue_max 3");
    /* The three waiting ones are still delivered, in order. */
    hmsg_t m;
    assert_int_equal(hclient_recv_corr(c, busy, &m, 10000 * harness_slow()), 0);
    hmsg_clear(&m);
    for (int i = 0; i < 3; i++) {
        int rc = hclient_recv(c, &m, 10000 * harness_slow());
        if (rc) fail_msg("queued request %d never answered: %s", i, syerr_name(rc));
        check_echo_reply(&m, q[i], (uint64_t)(10 + i), "queued", "echo-1");
        hmsg_clear(&m);
    }

    /* A waiting message whose ttl passes is answered EXPIRED. */
    send_echo(c, "echo", 2, "busy", 1500, busy);
    harness_sleep_ms(100);
    hsend_t s = { .to = "echo", .ttl = 300 };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(c, &s, 3, "short-lived", -1, id), 0);
    expect_code(c, id, "EXPIRED", "ttl 300 ms while the only actor is busy 1.5 s");
    harness_pass(h);
}

static void test_waiting_get_no_service_when_actor_dies(void **state)
{
    harness_t *h = *state;
    harness_set(h, "broker/liveness", "1500ms");
    harness_broker_start(h);
    hproc_t *echo = harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);
    uint8_t busy[16], waiting[2][16];
    send_echo(c, "echo", 1, "busy", 5000, busy);
    harness_sleep_ms(100);
    send_echo(c, "echo", 2, "w", -1, waiting[0]);
    send_echo(c, "echo", 3, "w", -1, waiting[1]);
    harness_sleep_ms(100);
    harness_kill(h, echo);
    /* After liveness the last actor of echo is gone: waiting -> NO_SERVICE. */
    expect_code(c, waiting[0], "NO_SERVICE", "waiting message, last actor gone");
    expect_code(c, waiting[1], "NO_SERVICE", "waiting message, last actor gone");
    harness_pass(h);
}

static void test_events_between_peers(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_broker_start(h);
    hclient_t *pub = harness_client(h, "pub", NULL, 1);
    hclient_t *sub = harness_client(h, "sub", NULL, 1);
    hclient_t *other = harness_client(h, "other", NULL, 1);
    assert_int_equal(hclient_sub(sub, "weather."), 0);
    assert_int_equal(hclient_sub(other, "sports."), 0);
    assert_int_equal(hclient_sync(sub, 5000 * slow), 0);
    assert_int_equal(hclient_sync(other, 5000 * slow), 0);

    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 2);
    hmp_str(&b, "topic");
    hmp_str(&b, "weather.seoul");
    hmp_str(&b, "data");
    hmp_str(&b, "rain");
    hsend_t s = { .type = "sy.event", .from = "fake" };
    assert_int_equal(hclient_send(pub, &s, (const uint8_t *)b.sb.data, b.sb.size, NULL), 0);
    hmp_buf_clear(&b);

    hmsg_t m;
    int rc = hclient_recv_type(sub, "sy.event", &m, 5000 * slow, NULL);
    if (rc) fail_msg("subscriber of weather. got no event: %s", syerr_name(rc));
    char topic[64] = "", data[64] = "";
    hmp_get_str(m.body, m.body_len, "topic", topic, sizeof topic);
    hmp_get_str(m.body, m.body_len, "data", data, sizeof data);
    assert_string_equal(topic, "weather.seoul");
    assert_string_equal(data, "rain");
    assert_string_equal(m.hdr.from, "pub");
    hmsg_clear(&m);
    rc = hclient_recv_type(other, "sy.event", &m, 300 * slow, NULL);
    if (rc == 0) {
        hmsg_print("other got: ", &m);
        hmsg_clear(&m);
        fail_msg("a subscriber of sports. got a weather. event");
    }
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_reply_and_from, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_from_set_by_broker_on_direct, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_fair_share_and_credit, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_credit_one_serialises, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_direct_addressing, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_reply_to, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_ipc_endpoint, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_and_expired, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_waiting_get_no_service_when_actor_dies, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_events_between_peers, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
