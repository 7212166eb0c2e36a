/*  test_durable_deliver.c -- how durable messages reach workers (issue 4).
 *
 *  - A worker absent for the whole stream (and a broker SIGKILLed and
 *    restarted in between), then started with credit C: it receives every
 *    message, in priority order then FIFO, with attempt 1, and never more
 *    than C unacked at once; it gets exactly C (or what is left) whenever
 *    it stops acking.
 *  - A worker that dies holding a lease (sy-echo --die-after 1, lease 60 s):
 *    the message goes to another worker with attempt 2 within the broker's
 *    liveness plus slack, far before the lease.  A raw client that vanishes
 *    with a delivery: back to the queue (ready 1, in flight 0).  One that
 *    says sy.bye: back at once.
 *  - The lease: 1 s lease, sy-echo holding 3 s without extending: the
 *    message is redelivered (attempt 2) to another worker; holding 4 s
 *    while extending every 300 ms: no redelivery, one reply, queue empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hmp.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "durable-deliver");
}

/* Sends one durable echo.request and checks the receipt is ok. */
static void put_one(hclient_t *c, const char *to, uint64_t seq, uint8_t id[16])
{
    hdur_msg_t m = { .to = to, .prio = -1, .seq = seq };
    hdur_put_ok(c, &m, id);
}

/* Waits for one durable delivery on c; fails the test if none. */
static void expect_delivery(hclient_t *c, int timeout_ms, hmsg_t *m, const char *what)
{
    int rc = hclient_recv_type(c, "echo.request", m, timeout_ms, NULL);
    if (rc) fail_msg("%s: no delivery within %d ms (%s)", what, timeout_ms, syerr_name(rc));
    if (!hdur_is_delivery(m)) {
        hmsg_print("not a durable delivery: ", m);
        fail_msg("%s: delivery without durable=true and attempt", what);
    }
}

/* ------------------------------------------------ absent worker, order */

#define ORDER_N      300
#define ORDER_CREDIT 7

static void test_absent_worker_gets_all_in_order_within_credit(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    hdur_fast_config(h);
    hproc_t *broker = harness_broker_start(h);
    hclient_t *prod = harness_client(h, "order-producer", NULL, 1);

    /* The stream: prio by a fixed pseudo-random pattern, seq increasing. */
    static hdur_msg_t msgs[ORDER_N];
    static hdur_receipt_t rs[ORDER_N];
    uint64_t per[3] = { 0, 0, 0 }, x = 88172645463325252ULL;
    for (int i = 0; i < ORDER_N; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        msgs[i] = (hdur_msg_t){ .to = "order", .prio = (int)(x % 3), .seq = (uint64_t)i };
        per[msgs[i].prio]++;
    }
    int rc = hdur_put_many(prod, msgs, ORDER_N, rs, 10000 * slow);
    assert_int_equal(rc, 0);
    for (int i = 0; i < ORDER_N; i++)
        if (!rs[i].ok) fail_msg("send %d refused: %s %s", i, rs[i].code, rs[i].msg);

    /* The broker goes down and comes back while the worker is away. */
    harness_client_close(h, prod);
    harness_kill(h, broker);
    harness_broker_start(h);
    hclient_t *admin = harness_client(h, "order-admin", NULL, 1);
    hdur_counts_t k;
    assert_int_equal(hdur_counts(admin, "order", &k, 5000 * slow), 0);
    if (!k.found || k.ready[0] != per[0] || k.ready[1] != per[1] || k.ready[2] != per[2]
        || k.inflight != 0)
        fail_msg("queues after restart: found %d ready %" PRIu64 "/%" PRIu64 "/%" PRIu64
                 " inflight %" PRIu64 "; sent %" PRIu64 "/%" PRIu64 "/%" PRIu64, k.found,
                 k.ready[0], k.ready[1], k.ready[2], k.inflight, per[0], per[1], per[2]);

    /* The worker arrives.  Take until it stops, check, ack a random
       number of the outstanding ones, repeat. */
    static const char *const svc[] = { "order", NULL };
    hclient_t *w = harness_client(h, "order-worker", svc, ORDER_CREDIT);
    uint8_t out_ids[ORDER_CREDIT * 4][16];
    int outstanding = 0, got = 0, max_out = 0, rounds = 0;
    int last_prio = -1;
    int64_t last_seq = -1;
    while (got < ORDER_N) {
        hmsg_t m;
        /* With the credit used up, a short wait shows any delivery beyond
           it (a burst comes at once); short of it, wait longer. */
        int want_now = ORDER_N - (got - outstanding);
        if (want_now > ORDER_CREDIT) want_now = ORDER_CREDIT;
        rc = hclient_recv(w, &m, outstanding >= want_now ? 40 * slow : 2000 * slow);
        if (rc == 0) {
            if (strcmp(m.hdr.type, "echo.request") != 0) {
                hmsg_print("worker got: ", &m);
                hmsg_clear(&m);
                continue;
            }
            uint64_t seq = UINT64_MAX;
            hdur_body_seq(&m, &seq);
            if (!hdur_is_delivery(&m) || m.hdr.attempt != 1)
                fail_msg("delivery seq %" PRIu64 ": durable %d attempt %u (want 1)", seq,
                         m.hdr.durable, m.hdr.attempt);
            if (seq >= ORDER_N) fail_msg("delivery with seq %" PRIu64 " never sent", seq);
            int prio = msgs[seq].prio;
            if ((m.hdr.present & ENV_HAS_PRIO) && m.hdr.prio != prio)
                fail_msg("seq %" PRIu64 " sent with prio %d delivered with prio %u", seq,
                         prio, m.hdr.prio);
            if (prio < last_prio || (prio == last_prio && (int64_t)seq <= last_seq))
                fail_msg("order broken: delivery %d is prio %d seq %" PRIu64 " after prio %d "
                         "seq %lld (want priority order, then FIFO)", got, prio, seq,
                         last_prio, (long long)last_seq);
            last_prio = prio;
            last_seq = (int64_t)seq;
            if (outstanding >= ORDER_CREDIT)
                fail_msg("credit exceeded: delivery %d arrived with %d unacked already "
                         "(credit %d)", got, outstanding, ORDER_CREDIT);
            memcpy(out_ids[outstanding++], m.hdr.id, 16);
            if (outstanding > max_out) max_out = outstanding;
            got++;
            hmsg_clear(&m);
            continue;
        }
        /* Quiet: the broker must have filled the credit. */
        int want = ORDER_N - (got - outstanding);
        if (want > ORDER_CREDIT) want = ORDER_CREDIT;
        if (outstanding != want)
            fail_msg("worker stalled: %d outstanding of credit %d, %d delivered of %d",
                     outstanding, ORDER_CREDIT, got, ORDER_N);
        int n = 1 + (int)((unsigned)(rounds * 7 + 3) % (unsigned)outstanding);
        for (int i = 0; i < n; i++) assert_int_equal(hclient_ack(w, out_ids[i]), 0);
        memmove(out_ids, out_ids[n], (size_t)(outstanding - n) * 16);
        outstanding -= n;
        rounds++;
    }
    for (int i = 0; i < outstanding; i++) assert_int_equal(hclient_ack(w, out_ids[i]), 0);
    print_message("%d deliveries in order, at most %d outstanding (credit %d), %d rounds\n",
                  got, max_out, ORDER_CREDIT, rounds);
    /* Nothing more comes, and the queue is empty. */
    hmsg_t extra;
    if (hclient_recv_type(w, "echo.request", &extra, 500 * slow, NULL) == 0) {
        hmsg_print("extra delivery: ", &extra);
        fail_msg("a delivery after all %d were acked", ORDER_N);
    }
    harness_client_close(h, admin);     /* idle all along: expired by now */
    admin = harness_client(h, "order-admin2", NULL, 1);
    assert_int_equal(hdur_counts(admin, "order", &k, 5000 * slow), 0);
    if (hdur_ready(&k) || k.inflight || k.dead)
        fail_msg("queue not empty after all acks: ready %" PRIu64 " inflight %" PRIu64
                 " dead %" PRIu64, hdur_ready(&k), k.inflight, k.dead);
    harness_pass(h);
}

/* ------------------------------------------------ a worker dies */

static bool back_in_queue(const hdur_counts_t *k, void *arg)
{
    uint64_t want = *(uint64_t *)arg;
    return k->inflight == 0 && hdur_ready(k) == want;
}

static void test_worker_dies_holding_lease(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    hdur_fast_config(h);
    harness_set(h, "service/jobs/lease", "60s");
    harness_broker_start(h);
    char log[HARNESS_PATH_MAX];
    snprintf(log, sizeof log, "%s/dier.deliveries", harness_dir(h));
    const char *extra[] = { "--log-deliveries", log, "--die-after", "1", NULL };
    hproc_t *dier = harness_echo_start_ex(h, "dier", "jobs", 1, true, extra);

    hclient_t *prod = harness_client(h, "die-producer", NULL, 1);
    uint8_t id[16];
    put_one(prod, "jobs", 41, id);
    if (!harness_wait_exit(h, dier, 10000 * slow))
        fail_msg("sy-echo --die-after 1 did not exit after its first delivery");
    int64_t died = harness_now_ms();
    if (!WIFEXITED(dier->status) || WEXITSTATUS(dier->status) != 1)
        fail_msg("sy-echo --die-after 1 ended with status 0x%x, want exit 1", dier->status);
    char hex[33], line[128];
    snprintf(line, sizeof line, "%s 1 41", hdur_hex(id, hex));
    if (hdur_count_lines(log, line) != 1)
        fail_msg("%s does not hold the line \"%s\" (the delivery before dying)", log, line);

    /* Another worker: it must get the message long before 60 s. */
    static const char *const svc[] = { "jobs", NULL };
    hclient_t *w = harness_client(h, "survivor", svc, 1);
    int bound = harness_liveness_ms(h) + 3000 * slow;
    hmsg_t m;
    expect_delivery(w, bound, &m, "redelivery after the holder died");
    int64_t took = harness_now_ms() - died;
    uint64_t seq = 0;
    hdur_body_seq(&m, &seq);
    if (memcmp(m.hdr.id, id, 16) != 0 || seq != 41 || m.hdr.attempt != 2) {
        hmsg_print("got: ", &m);
        fail_msg("redelivery: want id %s seq 41 attempt 2, got attempt %u seq %" PRIu64, hex,
                 m.hdr.attempt, seq);
    }
    print_message("redelivered to another worker %lld ms after the holder died "
                  "(lease 60 s, liveness %d ms)\n", (long long)took, harness_liveness_ms(h));
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    /* The ack must reach the broker before the socket closes (linger 0). */
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    hclient_t *admin = harness_client(h, "die-admin", NULL, 1);
    uint64_t zero = 0;
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "jobs", back_in_queue, &zero, 2000 * slow, &k))
        fail_msg("acked (and the broker answered a ping after the ack), yet the queue "
                 "shows ready %" PRIu64 " inflight %" PRIu64 " dead %" PRIu64,
                 hdur_ready(&k), k.inflight, k.dead);
    /* Leave with sy.bye so the next message cannot be offered to a closed
       socket first (which counts as an attempt). */
    hsend_t bye = { .type = "sy.bye" };
    assert_int_equal(hclient_send(w, &bye, NULL, 0, NULL), 0);
    assert_true(harness_wait_actor(h, "survivor", false, 5000 * slow));
    harness_client_close(h, w);

    /* A raw client that vanishes (no bye): back to the queue. */
    hclient_t *v = harness_client(h, "vanisher", svc, 1);
    /* The producer sat idle through the liveness wait: a fresh session. */
    harness_client_close(h, prod);
    prod = harness_client(h, "die-producer2", NULL, 1);
    put_one(prod, "jobs", 42, id);
    expect_delivery(v, 5000 * slow, &m, "delivery to the vanishing worker");
    assert_int_equal(m.hdr.attempt, 1);
    hmsg_clear(&m);
    harness_client_close(h, v);
    int64_t gone = harness_now_ms();
    uint64_t one = 1;
    if (!hdur_wait_counts(admin, "jobs", back_in_queue, &one, bound, &k))
        fail_msg("%d ms after its holder vanished the message is not back: ready %" PRIu64
                 " inflight %" PRIu64, bound, hdur_ready(&k), k.inflight);
    print_message("back in the queue %lld ms after the holder vanished\n",
                  (long long)(harness_now_ms() - gone));

    /* One that says sy.bye: back at once (no liveness to wait for). */
    hclient_t *b = harness_client(h, "byer", svc, 1);
    expect_delivery(b, 5000 * slow, &m, "delivery to the worker that says bye");
    if (m.hdr.attempt != 2) fail_msg("want attempt 2, got %u", m.hdr.attempt);
    hmsg_clear(&m);
    assert_int_equal(hclient_send(b, &bye, NULL, 0, NULL), 0);
    int64_t said = harness_now_ms();
    if (!hdur_wait_counts(admin, "jobs", back_in_queue, &one, 1500 * slow, &k))
        fail_msg("1500 ms after its holder said sy.bye the message is not back: ready %"
                 PRIu64 " inflight %" PRIu64, hdur_ready(&k), k.inflight);
    print_message("back in the queue %lld ms after the holder said bye\n",
                  (long long)(harness_now_ms() - said));
    harness_client_close(h, b);
    w = harness_client(h, "finisher", svc, 1);
    expect_delivery(w, 5000 * slow, &m, "delivery after bye");
    if (m.hdr.attempt != 3) fail_msg("want attempt 3, got %u", m.hdr.attempt);
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    harness_pass(h);
}

/* ------------------------------------------------ leases */

/* sy-echo holds the delivery hold_ms (extending every extend_ms if > 0);
   a second worker arrives once the first has the message.  Returns
   whether the second got it (and checks what it got). */
static bool lease_case(harness_t *h, const char *hold_ms, const char *extend_ms,
                       int watch_ms, int64_t *redelivered_after)
{
    int slow = harness_slow();
    hdur_fast_config(h);
    harness_set(h, "service/jobs/lease", "1s");
    harness_broker_start(h);
    char log[HARNESS_PATH_MAX];
    snprintf(log, sizeof log, "%s/holder.deliveries", harness_dir(h));
    const char *extra_hold[] = { "--log-deliveries", log, "--hold-ms", hold_ms, NULL };
    const char *extra_ext[] = { "--log-deliveries", log, "--hold-ms", hold_ms,
                                "--extend-ms", extend_ms, NULL };
    harness_echo_start_ex(h, "holder", "jobs", 1, true, extend_ms ? extra_ext : extra_hold);
    hclient_t *prod = harness_client(h, "lease-producer", NULL, 1);
    uint8_t id[16];
    put_one(prod, "jobs", 7, id);
    int64_t t0 = harness_now_ms();
    while (hdur_count_lines(log, NULL) < 1) {
        if (harness_now_ms() - t0 > 5000 * slow)
            fail_msg("sy-echo holder logged no delivery within %d ms", 5000 * slow);
        harness_sleep_ms(10);
    }
    int64_t delivered = harness_now_ms();
    static const char *const svc[] = { "jobs", NULL };
    hclient_t *w = harness_client(h, "second", svc, 1);
    hmsg_t m;
    int rc = hclient_recv_type(w, "echo.request", &m, watch_ms, NULL);
    if (rc != 0) return false;
    *redelivered_after = harness_now_ms() - delivered;
    uint64_t seq = 0;
    hdur_body_seq(&m, &seq);
    if (memcmp(m.hdr.id, id, 16) != 0 || seq != 7 || m.hdr.attempt != 2) {
        hmsg_print("got: ", &m);
        fail_msg("redelivery after the lease ran out: want seq 7 attempt 2, got attempt %u",
                 m.hdr.attempt);
    }
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    return true;
}

static bool all_empty(const hdur_counts_t *k, void *arg)
{
    (void)arg;
    return hdur_ready(k) == 0 && k->inflight == 0 && k->delayed == 0 && k->dead == 0;
}

static void test_lease_runs_out_redelivers(void **state)
{
    harness_t *h = *state;
    int64_t after = 0;
    /* Control for the next test: without extending, a 1 s lease runs out
       while sy-echo holds the message 3 s. */
    if (!lease_case(h, "3000", NULL, 2500 * harness_slow(), &after))
        fail_msg("lease 1 s, holder holds 3 s without extending: no redelivery to the "
                 "second worker within %d ms", 2500 * harness_slow());
    print_message("redelivered %lld ms after the first delivery (lease 1 s)\n",
                  (long long)after);
    /* The holder's late ack must not bring anything back; all settles. */
    hclient_t *admin = harness_client(h, "lease-admin", NULL, 1);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "jobs", all_empty, NULL, 5000 * harness_slow(), &k))
        fail_msg("queue not empty after the redelivery was acked: ready %" PRIu64
                 " inflight %" PRIu64 " delayed %" PRIu64 " dead %" PRIu64, hdur_ready(&k),
                 k.inflight, k.delayed, k.dead);
    harness_pass(h);
}

static void test_lease_extended_no_redelivery(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    int64_t after = 0;
    /* Holds 4 s (4 leases), extending every 300 ms: watched 5 s. */
    if (lease_case(h, "4000", "300", 5000, &after))
        fail_msg("redelivered %lld ms after the first delivery although the holder extended "
                 "its lease every 300 ms", (long long)after);
    char log[HARNESS_PATH_MAX];
    snprintf(log, sizeof log, "%s/holder.deliveries", harness_dir(h));
    if (hdur_count_lines(log, NULL) != 1)
        fail_msg("the holder logged %d deliveries, want 1", hdur_count_lines(log, NULL));
    hclient_t *admin = harness_client(h, "lease-admin", NULL, 1);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "jobs", all_empty, NULL, 3000 * slow, &k))
        fail_msg("after the holder finished, the queue is not empty: ready %" PRIu64
                 " inflight %" PRIu64 " delayed %" PRIu64 " dead %" PRIu64, hdur_ready(&k),
                 k.inflight, k.delayed, k.dead);
    harness_pass(h);
}

/* ------------------------------------------------ in flight at a restart */

static void test_inflight_at_restart_comes_back(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    hdur_fast_config(h);
    harness_set(h, "service/jobs/lease", "60s");
    hproc_t *broker = harness_broker_start(h);
    hclient_t *prod = harness_client(h, "rs-producer", NULL, 1);
    static const char *const svc[] = { "jobs", NULL };
    hclient_t *w = harness_client(h, "rs-worker", svc, 1);
    uint8_t id[16];
    put_one(prod, "jobs", 5, id);
    hmsg_t m;
    expect_delivery(w, 5000 * slow, &m, "first delivery");
    assert_int_equal(m.hdr.attempt, 1);
    hmsg_clear(&m);

    /* A durable message to one actor (@name) is refused. */
    hsend_t direct = { .type = "echo.request", .to = "@rs-worker", .durable = true };
    uint8_t did[16];
    assert_int_equal(hclient_send(prod, &direct, NULL, 0, did), 0);
    int rc = hclient_recv_corr(prod, did, &m, 5000 * slow);
    char code[40], detail[40];
    if (rc || !hmsg_receipt(&m, code, sizeof code, detail, sizeof detail)
        || strcmp(code, "BAD_ENVELOPE") != 0)
        fail_msg("durable to @name: want a BAD_ENVELOPE receipt, got %s %s",
                 rc ? syerr_name(rc) : m.hdr.type, rc ? "" : code);
    hmsg_clear(&m);

    /* kill -9 with the message in flight (lease 60 s): after the restart
       it is delivered again at once, attempt 2. */
    harness_client_close(h, w);
    harness_client_close(h, prod);
    harness_kill(h, broker);
    harness_broker_start(h);
    w = harness_client(h, "rs-worker", svc, 1);
    expect_delivery(w, 5000 * slow, &m, "delivery after restart");
    uint64_t seq = 0;
    hdur_body_seq(&m, &seq);
    if (memcmp(m.hdr.id, id, 16) != 0 || seq != 5 || m.hdr.attempt != 2)
        fail_msg("after restart: want the same id, seq 5, attempt 2; got seq %" PRIu64
                 " attempt %u", seq, m.hdr.attempt);
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    harness_pass(h);
}

/* ------------------------------------------------ acks of several ids */

/* Sends sy.ack with a body of n ids of id_len bytes each (id_len 16:
   well formed), plus an "id" too when both is true. */
static void ack_ids(hclient_t *c, uint8_t (*ids)[16], size_t n, size_t id_len, bool both)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, both ? 2 : 1);
    hmp_str(&b, "ids");
    msgpack_pack_array(&b.pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_bin(&b.pk, id_len);
        msgpack_pack_bin_body(&b.pk, ids[i], id_len);
    }
    if (both) {
        hmp_str(&b, "id");
        msgpack_pack_bin(&b.pk, 16);
        msgpack_pack_bin_body(&b.pk, ids[0], 16);
    }
    hsend_t s = { .type = "sy.ack" };
    assert_int_equal(hclient_send(c, &s, (const uint8_t *)b.sb.data, b.sb.size, NULL), 0);
    hmp_buf_clear(&b);
}

/* A refusal of the worker's last sy.ack must come, naming the problem. */
static void expect_refused(hclient_t *w, const char *what)
{
    hmsg_t m;
    if (hclient_recv_type(w, "sy.receipt", &m, 5000 * harness_slow(), NULL) != 0)
        fail_msg("%s: no refusal", what);
    hdur_receipt_t r;
    assert_true(hdur_receipt_parse(&m, &r));
    if (r.ok || strcmp(r.code, "BAD_BODY") != 0)
        fail_msg("%s: want BAD_BODY, got ok=%d code %s", what, r.ok, r.code);
    print_message("%s: refused %s\n", what, r.code);
    hmsg_clear(&m);
}

static void test_ack_of_several_ids(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    hdur_fast_config(h);
    harness_broker_start(h);
    hclient_t *prod = harness_client(h, "many-producer", NULL, 1);
    enum { CREDIT = 3, N = 6 };
    uint8_t put[N][16];
    for (int i = 0; i < N; i++)
        put_one(prod, "batch", (uint64_t)i, put[i]);
    static const char *const svc[] = { "batch", NULL };
    hclient_t *w = harness_client(h, "many-worker", svc, CREDIT);
    uint8_t got[N][16];
    for (int i = 0; i < CREDIT; i++) {
        hmsg_t m;
        expect_delivery(w, 5000 * slow, &m, "first deliveries");
        memcpy(got[i], m.hdr.id, 16);
        hmsg_clear(&m);
    }
    /* never more than the credit: nothing else comes before an ack */
    hmsg_t extra;
    if (hclient_recv_type(w, "echo.request", &extra, 300, NULL) == 0)
        fail_msg("a 4th delivery with credit %d and no ack", CREDIT);
    /* malformed acks are refused and settle nothing */
    ack_ids(w, got, CREDIT, 15, false);
    expect_refused(w, "ids with a 15-byte item");
    ack_ids(w, got, CREDIT, 16, true);
    expect_refused(w, "both id and ids");
    ack_ids(w, got, 0, 16, false);
    expect_refused(w, "ids empty");
    if (hclient_recv_type(w, "echo.request", &extra, 300, NULL) == 0)
        fail_msg("a refused ack gave credit back");
    /* one ack of three ids: three credits back, the next three come */
    ack_ids(w, got, CREDIT, 16, false);
    for (int i = CREDIT; i < N; i++) {
        hmsg_t m;
        expect_delivery(w, 5000 * slow, &m, "deliveries after one sy.ack of 3 ids");
        memcpy(got[i], m.hdr.id, 16);
        hmsg_clear(&m);
    }
    ack_ids(w, got + CREDIT, N - CREDIT, 16, false);
    /* every message was delivered once, in order, and all are settled */
    for (int i = 0; i < N; i++)
        if (memcmp(got[i], put[i], 16) != 0)
            fail_msg("delivery %d is not the %d-th message put", i, i);
    hclient_t *admin = harness_client(h, "many-admin", NULL, 1);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "batch", all_empty, NULL, 5000 * slow, &k))
        fail_msg("after acks of all ids: ready %" PRIu64 " inflight %" PRIu64 " dead %" PRIu64,
                 hdur_ready(&k), k.inflight, k.dead);
    harness_pass(h);
}

/* ------------------------------------------------ gathered receipts */

/* A producer that says batch_receipts gets the ok receipts of a commit
   as sy.receipt {ok, ids} without corr: every id it sent exactly once, in
   the order sent; a refusal still comes alone with its corr. */
static void test_batch_receipts(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    hdur_fast_config(h);
    harness_broker_start(h);
    hclient_t *p = hclient_new(harness_endpoint(h), "gather-producer");
    assert_non_null(p);
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    hmp_str(&b, "name");
    hmp_str(&b, "gather-producer");
    hmp_str(&b, "credit");
    msgpack_pack_uint32(&b.pk, 1);
    hmp_str(&b, "batch_receipts");
    msgpack_pack_true(&b.pk);
    hsend_t hs = { .type = "sy.hello" };
    uint8_t hello_id[16];
    assert_int_equal(hclient_send(p, &hs, (const uint8_t *)b.sb.data, b.sb.size, hello_id), 0);
    hmp_buf_clear(&b);
    hmsg_t m;
    assert_int_equal(hclient_recv_corr(p, hello_id, &m, 5000 * slow), 0);
    assert_string_equal(m.hdr.type, "sy.welcome");
    hmsg_clear(&m);
    enum { N = 50 };
    uint8_t sent[N][16];
    for (int i = 0; i < N; i++) {
        hdur_msg_t dm = { .to = "gathered", .prio = -1, .seq = (uint64_t)i };
        assert_int_equal(hdur_send(p, &dm, sent[i]), 0);
    }
    /* and one the broker refuses: a durable message to one actor */
    hdur_msg_t bad = { .to = "@nobody", .prio = -1, .seq = 99 };
    uint8_t bad_id[16];
    assert_int_equal(hdur_send(p, &bad, bad_id), 0);
    int got = 0, gathered = 0, refusals = 0;
    int64_t deadline = harness_now_ms() + 10000 * slow;
    while ((got < N || refusals < 1) && harness_now_ms() < deadline) {
        if (hclient_recv_type(p, "sy.receipt", &m, 1000, NULL) != 0)
            continue;
        bool ok = false;
        hmp_get_bool(m.body, m.body_len, "ok", &ok);
        if (!ok) {
            if (!(m.hdr.present & ENV_HAS_CORR) || memcmp(m.hdr.corr, bad_id, 16) != 0)
                fail_msg("a refusal that does not answer the bad send");
            refusals++;
        } else if (!(m.hdr.present & ENV_HAS_CORR)) {
            uint8_t ids[N][16];
            size_t nids = 0;
            if (!hmp_get_ids(m.body, m.body_len, "ids", ids, N, &nids))
                fail_msg("an ok receipt without corr and without (at most %d) ids", N);
            for (size_t i = 0; i < nids; i++, got++) {
                if (got >= N || memcmp(ids[i], sent[got], 16) != 0)
                    fail_msg("gathered receipt: id %zu is not send %d", i, got);
            }
            gathered++;
        } else {
            if (got >= N || memcmp(m.hdr.corr, sent[got], 16) != 0)
                fail_msg("a single ok receipt out of order");
            got++;
        }
        hmsg_clear(&m);
    }
    print_message("%d sends answered by %d gathered receipt(s); %d refusal(s)\n", got,
                  gathered, refusals);
    if (got != N || refusals != 1 || gathered < 1)
        fail_msg("want %d ids in >= 1 gathered receipt and 1 refusal; got %d in %d, %d",
                 N, got, gathered, refusals);
    hclient_destroy(&p);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent_worker_gets_all_in_order_within_credit,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_worker_dies_holding_lease, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_lease_runs_out_redelivers, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_lease_extended_no_redelivery, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_at_restart_comes_back, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_ack_of_several_ids, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_batch_receipts, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
