/*  test_place_cancel.c -- the place and cancel queries of the real
 *  sy-broker (docs/DURABLE.md section 5), spoken to with hclient.
 *
 *  place: an empty queue (ready 0, workers 0); each message's state and
 *  1-based place in delivery order (priority, then FIFO); inflight once a
 *  worker took it, with workers counting the live actor; gone for an id
 *  the queue does not hold; a query without service is BAD_BODY MISSING.
 *
 *  cancel (curve off, every peer has security/default_role): with role
 *  actor (not admin) the sender cancels its ready message, a stranger is
 *  DENIED with a clear msg and nothing is removed, a peer offering the
 *  service named in the message's reply_to may cancel it, an inflight
 *  message is not cancelled, and a cancelled message is never delivered.
 *  Role client may ask place but not cancel (its send list); role
 *  operator (admin) may cancel anyone's message.
 *
 *  And a query that arrives in the same loop turn as durable sends gets a
 *  clean answer after their receipts (they share the broker's scratch
 *  buffer).
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
#include "hclient.h"
#include "hdur.h"
#include "hmp.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "place-cancel");
}

static void start(harness_t *h, const char *role)
{
    hdur_fast_config(h);
    harness_set(h, "security/default_role", role);
    harness_set(h, "acl/actor/offer", "*");
    harness_set(h, "broker/liveness", "30s");
    harness_set(h, "service/pc-jobs/lease", "30s");
    harness_broker_start(h);
}

/* A durable echo.request from c to `to`, reply_to (may be NULL), prio
   (-1: default); its id into id after an ok receipt. */
static void put(hclient_t *c, const char *to, const char *reply_to, int prio,
                uint8_t id[16])
{
    hsend_t s = { .to = to, .reply_to = reply_to, .durable = true,
                  .prio = prio < 0 ? 0 : prio, .has_prio = prio >= 0 };
    uint8_t sent[16];
    assert_int_equal(hclient_send_echo(c, &s, 1, "job", -1, sent), 0);
    hmsg_t m;
    int rc = hclient_recv_corr(c, sent, &m, 5000 * harness_slow());
    if (rc)
        fail_msg("no receipt for a durable send to %s: %s", to, syerr_name(rc));
    hdur_receipt_t r;
    if (!hdur_receipt_parse(&m, &r) || !r.ok || !r.has_id)
        fail_msg("durable send to %s refused: %s %s", to, r.code, r.msg);
    memcpy(id, r.id, 16);
    hmsg_clear(&m);
}

/* sy.query {what, service, id?}: the answer (or receipt) into m. */
static void query(hclient_t *c, const char *what, const char *service,
                  const uint8_t *id, hmsg_t *m)
{
    hquery_t q = { .what = what, .service = service, .id = id };
    int rc = hclient_query(c, &q, m, 5000 * harness_slow());
    if (rc)
        fail_msg("%s query: %s", what, syerr_name(rc));
}

/* The place answer's data: a field as a number (-1: absent). */
static long long num(const hmsg_t *m, const char *field)
{
    char path[64];
    uint64_t u;
    snprintf(path, sizeof path, "data.%s", field);
    return hmp_get_uint(m->body, m->body_len, path, &u) ? (long long) u : -1;
}

static const char *str(const hmsg_t *m, const char *field, char out[64])
{
    char path[64];
    snprintf(path, sizeof path, "data.%s", field);
    if (!hmp_get_str(m->body, m->body_len, path, out, 64))
        out[0] = '\0';
    return out;
}

/* Asks place and checks the answer is one. */
static void place(hclient_t *c, const char *service, const uint8_t *id, hmsg_t *m)
{
    query(c, "place", service, id, m);
    char what[64] = "";
    if (strcmp(m->hdr.type, "sy.answer") != 0
        || !hmp_get_str(m->body, m->body_len, "what", what, sizeof what)
        || strcmp(what, "place") != 0) {
        hmsg_print("not a place answer: ", m);
        fail();
    }
}

/* Asks cancel; true if it was answered (else m is the receipt). */
static bool cancel(hclient_t *c, const char *service, const uint8_t *id, hmsg_t *m)
{
    query(c, "cancel", service, id, m);
    return strcmp(m->hdr.type, "sy.answer") == 0;
}

static bool cancelled(const hmsg_t *m)
{
    bool b = false;
    if (!hmp_get_bool(m->body, m->body_len, "data.cancelled", &b))
        fail_msg("cancel answer without data.cancelled");
    return b;
}

/* ------------------------------------------------------------ place */

static void test_place(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    start(h, "actor");
    hclient_t *prod = harness_client(h, "pc-producer", NULL, 1);
    hmsg_t m;
    char s[64];

    place(prod, "pc-place", NULL, &m);
    assert_string_equal(str(&m, "service", s), "pc-place");
    assert_int_equal(num(&m, "workers"), 0);
    assert_int_equal(num(&m, "ready"), 0);
    assert_int_equal(num(&m, "place"), -1);
    hmsg_clear(&m);

    /* normal, normal, high, low: delivery order 3, 1, 2, 4 */
    uint8_t id[4][16];
    put(prod, "pc-place", NULL, -1, id[0]);
    put(prod, "pc-place", NULL, -1, id[1]);
    put(prod, "pc-place", NULL, 0, id[2]);
    put(prod, "pc-place", NULL, 2, id[3]);
    static const int want[4] = { 2, 3, 1, 4 };
    for (int i = 0; i < 4; i++) {
        place(prod, "pc-place", id[i], &m);
        assert_string_equal(str(&m, "state", s), "ready");
        assert_int_equal(num(&m, "place"), want[i]);
        assert_int_equal(num(&m, "ready"), 4);
        assert_int_equal(num(&m, "workers"), 0);
        hmsg_clear(&m);
    }

    /* a worker takes the first (the high one) */
    static const char *const svc[] = { "pc-place", NULL };
    hclient_t *w = harness_client(h, "pc-worker", svc, 1);
    hmsg_t d;
    assert_int_equal(hclient_recv_type(w, "echo.request", &d, 5000 * slow, NULL), 0);
    assert_memory_equal(d.hdr.id, id[2], 16);
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    place(prod, "pc-place", id[2], &m);
    assert_string_equal(str(&m, "state", s), "inflight");
    assert_int_equal(num(&m, "place"), -1);
    assert_int_equal(num(&m, "workers"), 1);
    assert_int_equal(num(&m, "ready"), 3);
    hmsg_clear(&m);
    place(prod, "pc-place", id[0], &m);
    assert_int_equal(num(&m, "place"), 1);
    hmsg_clear(&m);

    /* acked: gone; an id of another queue: gone */
    assert_int_equal(hclient_ack(w, d.hdr.id), 0);
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    place(prod, "pc-place", id[2], &m);
    assert_string_equal(str(&m, "state", s), "gone");
    hmsg_clear(&m);
    place(prod, "pc-other", id[0], &m);
    assert_string_equal(str(&m, "state", s), "gone");
    assert_int_equal(num(&m, "ready"), 0);
    hmsg_clear(&m);
    hmsg_clear(&d);

    /* no service: BAD_BODY MISSING */
    query(prod, "place", NULL, NULL, &m);
    char code[40], detail[40];
    assert_true(hmsg_receipt(&m, code, sizeof code, detail, sizeof detail));
    assert_string_equal(code, "BAD_BODY");
    assert_string_equal(detail, "MISSING");
    hmsg_clear(&m);
    harness_pass(h);
}

/* ------------------------------------------------------------ cancel */

static void test_cancel(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    start(h, "actor");
    hclient_t *router = harness_client(h, "pc-router", NULL, 1);
    hclient_t *mallory = harness_client(h, "pc-mallory", NULL, 1);
    static const char *const fd_svc[] = { "pc-frontdoor", NULL };
    hclient_t *fdoor = harness_client(h, "pc-frontdoor-1", fd_svc, 1);
    uint8_t a[16], b[16], c[16];
    put(router, "pc-jobs", "pc-frontdoor", -1, a);
    put(router, "pc-jobs", "pc-frontdoor", -1, b);
    put(router, "pc-jobs", NULL, -1, c);
    hmsg_t m;
    char s[64], code[40], detail[40];

    /* a stranger: DENIED, with a msg that says why; nothing removed */
    assert_false(cancel(mallory, "pc-jobs", a, &m));
    assert_true(hmsg_receipt(&m, code, sizeof code, detail, sizeof detail));
    assert_string_equal(code, "DENIED");
    char msg[200] = "";
    assert_true(hmp_get_str(m.body, m.body_len, "msg", msg, sizeof msg));
    if (!strstr(msg, "may not cancel"))
        fail_msg("DENIED msg does not say why: \"%s\"", msg);
    hmsg_clear(&m);
    place(router, "pc-jobs", a, &m);
    assert_string_equal(str(&m, "state", s), "ready");
    assert_int_equal(num(&m, "ready"), 3);
    hmsg_clear(&m);

    /* the sender cancels a */
    assert_true(cancel(router, "pc-jobs", a, &m));
    assert_true(cancelled(&m));
    assert_string_equal(str(&m, "state", s), "ready");
    hmsg_clear(&m);
    /* the reply_to service's actor cancels b; mallory may not touch c */
    assert_true(cancel(fdoor, "pc-jobs", b, &m));
    assert_true(cancelled(&m));
    hmsg_clear(&m);
    assert_false(cancel(fdoor, "pc-jobs", c, &m));   /* c has no reply_to */
    assert_true(hmsg_receipt(&m, code, sizeof code, detail, sizeof detail));
    assert_string_equal(code, "DENIED");
    hmsg_clear(&m);
    /* again: gone */
    assert_true(cancel(router, "pc-jobs", a, &m));
    assert_false(cancelled(&m));
    assert_string_equal(str(&m, "state", s), "gone");
    hmsg_clear(&m);

    /* a worker gets c only; c in flight is not cancelled */
    static const char *const svc[] = { "pc-jobs", NULL };
    hclient_t *w = harness_client(h, "pc-worker", svc, 4);
    hmsg_t d;
    assert_int_equal(hclient_recv_type(w, "echo.request", &d, 5000 * slow, NULL), 0);
    assert_memory_equal(d.hdr.id, c, 16);
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    assert_true(cancel(router, "pc-jobs", c, &m));
    assert_false(cancelled(&m));
    assert_string_equal(str(&m, "state", s), "inflight");
    hmsg_clear(&m);
    assert_int_equal(hclient_ack(w, d.hdr.id), 0);
    hmsg_clear(&d);
    /* the cancelled ones never come */
    int rc = hclient_recv_type(w, "echo.request", &d, 1000 * slow, NULL);
    if (rc != SY_ETIMEOUT) {
        hmsg_print("delivered after cancel: ", &d);
        fail();
    }
    place(router, "pc-jobs", NULL, &m);
    assert_int_equal(num(&m, "ready"), 0);
    assert_int_equal(num(&m, "workers"), 1);
    hmsg_clear(&m);

    /* a missing id: BAD_BODY MISSING */
    query(router, "cancel", "pc-jobs", NULL, &m);
    assert_true(hmsg_receipt(&m, code, sizeof code, detail, sizeof detail));
    assert_string_equal(code, "BAD_BODY");
    assert_string_equal(detail, "MISSING");
    hmsg_clear(&m);
    harness_pass(h);
}

/* Role client: place yes, cancel no (its send list). */
static void test_client_role(void **state)
{
    harness_t *h = *state;
    start(h, "client");
    hclient_t *phone = harness_client(h, "pc-phone", NULL, 1);
    hmsg_t m;
    char code[40], detail[40];
    place(phone, "inference", NULL, &m);
    assert_int_equal(num(&m, "ready"), 0);
    hmsg_clear(&m);
    uint8_t id[16] = { 1 };
    assert_false(cancel(phone, "inference", id, &m));
    assert_true(hmsg_receipt(&m, code, sizeof code, detail, sizeof detail));
    assert_string_equal(code, "DENIED");
    hmsg_clear(&m);
    harness_pass(h);
}

/* Role operator (admin): anyone's message. */
static void test_admin_role(void **state)
{
    harness_t *h = *state;
    start(h, "operator");
    hclient_t *prod = harness_client(h, "pc-prod", NULL, 1);
    hclient_t *ops = harness_client(h, "pc-ops", NULL, 1);
    uint8_t id[16];
    put(prod, "pc-admin", NULL, -1, id);
    hmsg_t m;
    char s[64];
    assert_true(cancel(ops, "pc-admin", id, &m));
    assert_true(cancelled(&m));
    assert_string_equal(str(&m, "state", s), "ready");
    hmsg_clear(&m);
    place(ops, "pc-admin", id, &m);
    assert_string_equal(str(&m, "state", s), "gone");
    assert_int_equal(num(&m, "ready"), 0);
    hmsg_clear(&m);
    harness_pass(h);
}

/* A query read in the same loop turn as durable sends: the batch's
   receipts go out first and the answer is a clean sy.answer (the
   receipts are built in the same scratch buffer as the answer). */
static void test_answer_after_receipts(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    start(h, "actor");
    hclient_t *c = harness_client(h, "pc-burst", NULL, 1);
    for (int round = 0; round < 5; round++) {
        uint8_t put_id[3][16], q_id[2][16];
        hsend_t s = { .to = "pc-burst-q", .durable = true };
        hmp_buf_t b;
        for (int i = 0; i < 3; i++)
            assert_int_equal(hclient_send_echo(c, &s, (uint64_t) i, "job", -1,
                                               put_id[i]), 0);
        for (int i = 0; i < 2; i++) {
            hmp_buf_init(&b);
            msgpack_pack_map(&b.pk, 2);
            hmp_str(&b, "what");
            hmp_str(&b, i ? "status" : "place");
            hmp_str(&b, "service");
            hmp_str(&b, "pc-burst-q");
            hsend_t qs = { .type = "sy.query" };
            assert_int_equal(hclient_send(c, &qs, (const uint8_t *) b.sb.data, b.sb.size,
                                          q_id[i]), 0);
            hmp_buf_clear(&b);
        }
        for (int i = 0; i < 3; i++) {
            hmsg_t m;
            assert_int_equal(hclient_recv_corr(c, put_id[i], &m, 5000 * slow), 0);
            hdur_receipt_t r;
            assert_true(hdur_receipt_parse(&m, &r));
            assert_true(r.ok);
            hmsg_clear(&m);
        }
        for (int i = 0; i < 2; i++) {
            hmsg_t m;
            char what[32] = "";
            assert_int_equal(hclient_recv_corr(c, q_id[i], &m, 5000 * slow), 0);
            assert_string_equal(m.hdr.type, "sy.answer");
            if (!hmp_get_str(m.body, m.body_len, "what", what, sizeof what)
                || strcmp(what, i ? "status" : "place") != 0) {
                hmsg_print("not a clean answer: ", &m);
                fail();
            }
            if (i == 0 && num(&m, "ready") < 3)
                fail_msg("place after 3 puts of the same turn: ready %lld",
                         num(&m, "ready"));
            hmsg_clear(&m);
        }
    }
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_place, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_client_role, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_admin_role, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_answer_after_receipts, setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
