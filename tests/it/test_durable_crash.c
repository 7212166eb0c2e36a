/*  test_durable_crash.c -- kill -9 of the broker loses nothing that had a
 *  receipt (issue 4: "the point of the product").
 *
 *  One producer pipelines durable echo.requests (seq 0, 1, 2, ...) to the
 *  service "jobs" with a window of WINDOW sends in flight and records the
 *  id of every one that got sy.receipt {ok:true, id}.  One worker (our own
 *  client, so it sees attempt and id exactly) takes deliveries of "jobs"
 *  and acks each.  The broker runs with store/sync = full (the default),
 *  and is killed with SIGKILL at KILLS_STREAM random points of the stream
 *  (random receipt counts, plus a random delay so the kill lands between
 *  loop turns too) and once more in the middle of the final drain, while
 *  deliveries are in flight.  After each restart both clients reconnect
 *  (a new socket, sy.hello again) and go on; sends that were in flight
 *  without a receipt have an unknown fate and are not counted either way.
 *
 *  At the end: lost = ids with an ok receipt never delivered (must be 0);
 *  duplicates = deliveries beyond the first of an id (printed, allowed:
 *  the contract is at-least-once; acks not yet committed at a crash come
 *  back); a delivery of an id we never sent, or whose body's seq is not
 *  the one we sent under that id, fails the test; so does any receipt
 *  with ok:false.  Finally the broker's own view must agree: nothing
 *  ready, nothing in flight, nothing dead for "jobs".
 *
 *  The seed is printed; SY_IT_SEED=<n> repeats a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hids.h"
#include "hmp.h"
#include "schemas/syerr.h"

#define SERVICE       "jobs"
#define TARGET        10000     /* receipts ok before the stream stops */
#define MAX_SENDS     20000     /* bound on sends */
#define WINDOW        256       /* sends without a receipt yet */
#define CREDIT        64        /* the worker's credit */
#define KILLS_STREAM  4         /* kills during the stream */

/* Item flags in the `sent` set. */
enum { F_PENDING = 1, F_RECEIPT_OK = 2, F_UNKNOWN = 4 };

typedef struct {
    harness_t *h;
    hproc_t   *broker;
    hclient_t *prod, *work, *admin;
    hids_t    *sent;            /* every id we sent: seq, flags, deliveries */
    uint64_t   rng;
    uint64_t   next_seq;
    int        pending;         /* sends without a receipt (this broker) */
    int        receipts_ok, refused, unknown;
    uint64_t   deliveries, phantom, seq_mismatch, not_durable;
    int        kills;
    int64_t    last_progress_ms;
} crash_t;

static int setup(void **state)
{
    return harness_setup(state, "durable-crash");
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void crash_connect(crash_t *t)
{
    static const char *const services[] = { SERVICE, NULL };
    t->prod = harness_client(t->h, "crash-producer", NULL, 1);
    t->work = harness_client(t->h, "crash-worker", services, CREDIT);
    t->admin = harness_client(t->h, "crash-admin", NULL, 1);
}

static void crash_disconnect(crash_t *t)
{
    harness_client_close(t->h, t->prod);
    harness_client_close(t->h, t->work);
    harness_client_close(t->h, t->admin);
    t->prod = t->work = t->admin = NULL;
}

/* SIGKILL, a random pause, start again, reconnect.  Sends still waiting
   for a receipt become "unknown": they may or may not have been stored. */
static void crash_kill(crash_t *t, const char *when)
{
    harness_kill(t->h, t->broker);
    t->kills++;
    int pending = t->pending;
    for (size_t i = 0; i < hids_size(t->sent); i++) {
        hid_item_t *it = hids_at(t->sent, i);
        if (it->flags & F_PENDING) {
            it->flags = (it->flags & ~(uint32_t)F_PENDING) | F_UNKNOWN;
            t->unknown++;
        }
    }
    t->pending = 0;
    crash_disconnect(t);
    harness_sleep_ms((int)(rng_next(&t->rng) % 300));
    int64_t t0 = harness_now_ms();
    t->broker = harness_broker_start(t->h);
    crash_connect(t);
    print_message("kill %d (%s): %d receipts ok so far, %d sends without receipt, "
                  "%" PRIu64 " deliveries; broker back and clients welcomed in %lld ms\n",
                  t->kills, when, t->receipts_ok, pending, t->deliveries,
                  (long long)(harness_now_ms() - t0));
    t->last_progress_ms = harness_now_ms();
}

static void crash_send_some(crash_t *t)
{
    while (t->pending < WINDOW && t->next_seq < MAX_SENDS
           && t->receipts_ok + t->pending < TARGET) {
        hdur_msg_t m = { .to = SERVICE, .prio = -1, .seq = t->next_seq };
        uint8_t id[16];
        int rc = hdur_send(t->prod, &m, id);
        if (rc) fail_msg("durable send seq %" PRIu64 " failed locally: %s",
                         t->next_seq, syerr_name(rc));
        hid_item_t *it = hids_add(t->sent, id, NULL);
        assert_non_null(it);
        it->seq = t->next_seq++;
        it->flags = F_PENDING;
        t->pending++;
    }
}

static void crash_on_receipt(crash_t *t, const hmsg_t *m)
{
    hdur_receipt_t r;
    if (!hdur_receipt_parse(m, &r) || !(m->hdr.present & ENV_HAS_CORR)) {
        hmsg_print("producer got an unexpected message: ", m);
        return;
    }
    hid_item_t *it = hids_find(t->sent, m->hdr.corr);
    if (!it || !(it->flags & F_PENDING)) {
        hmsg_print("receipt for no pending send: ", m);
        t->refused++;
        return;
    }
    it->flags &= ~(uint32_t)F_PENDING;
    t->pending--;
    if (!r.ok) {
        if (t->refused < 5) hmsg_print("durable send refused: ", m);
        t->refused++;
        return;
    }
    if (!r.has_id || memcmp(r.id, it->id, 16) != 0) {
        /* The protocol names the stored id; we deliver by it, so it must
           be the one the delivery will carry.  Keep both ids findable. */
        if (!r.has_id) { hmsg_print("ok receipt without id: ", m); t->refused++; return; }
        uint64_t seq = it->seq;
        hid_item_t *alias = hids_add(t->sent, r.id, NULL);
        assert_non_null(alias);
        alias->seq = seq;
        alias->flags = F_RECEIPT_OK;
    } else {
        it->flags |= F_RECEIPT_OK;
    }
    t->receipts_ok++;
    t->last_progress_ms = harness_now_ms();
}

static void crash_on_delivery(crash_t *t, const hmsg_t *m)
{
    if (strcmp(m->hdr.type, "echo.request") != 0) {
        hmsg_print("worker got an unexpected message: ", m);
        return;
    }
    if (!hdur_is_delivery(m)) {
        if (t->not_durable++ < 5) hmsg_print("delivery without durable/attempt: ", m);
    }
    hid_item_t *it = hids_find(t->sent, m->hdr.id);
    uint64_t seq = UINT64_MAX;
    hdur_body_seq(m, &seq);
    if (!it) {
        if (t->phantom++ < 5) hmsg_print("delivery of an id never sent: ", m);
    } else {
        if (it->seq != seq && t->seq_mismatch++ < 5) {
            char hex[33];
            fprintf(stderr, "id %s sent with seq %" PRIu64 " delivered with seq %" PRIu64 "\n",
                    hdur_hex(it->id, hex), it->seq, seq);
        }
        it->delivered++;
        it->last_attempt = m->hdr.attempt;
    }
    t->deliveries++;
    t->last_progress_ms = harness_now_ms();
    int rc = hclient_ack(t->work, m->hdr.id);
    if (rc) fail_msg("ack failed locally: %s", syerr_name(rc));
}

/* Reads what is waiting on both sockets (bounded per call). */
static void crash_pump(crash_t *t, int wait_ms)
{
    hmsg_t m;
    for (int i = 0; i < 4 * WINDOW; i++) {
        if (hclient_recv(t->prod, &m, i == 0 ? wait_ms : 1) != 0) break;
        crash_on_receipt(t, &m);
        hmsg_clear(&m);
    }
    for (int i = 0; i < 4 * CREDIT; i++) {
        if (hclient_recv(t->work, &m, 1) != 0) break;
        crash_on_delivery(t, &m);
        hmsg_clear(&m);
    }
}

/* Ids with an ok receipt not delivered yet. */
static int crash_missing(const crash_t *t)
{
    int n = 0;
    for (size_t i = 0; i < hids_size(t->sent); i++) {
        const hid_item_t *it = hids_at(t->sent, i);
        if ((it->flags & F_RECEIPT_OK) && it->delivered == 0) n++;
    }
    return n;
}

static bool queue_empty(const hdur_counts_t *k, void *arg)
{
    (void)arg;
    return hdur_ready(k) == 0 && k->inflight == 0 && k->delayed == 0;
}

static void test_kill9_during_durable_stream(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_set_timeout(h, 110);
    harness_set(h, "store/sync", "full");
    harness_set(h, "log/level", "info");
    harness_set(h, "ratelimit/rate", "1000000");
    harness_set(h, "ratelimit/burst", "10000000");
    crash_t t;
    memset(&t, 0, sizeof t);
    t.h = h;
    const char *seed_env = getenv("SY_IT_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10)
                             : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    if (!seed) seed = 1;
    t.rng = seed;
    print_message("seed %" PRIu64 " (SY_IT_SEED=%" PRIu64 " repeats this run)\n", seed, seed);
    t.sent = hids_new();
    assert_non_null(t.sent);

    /* Kill points: random receipt counts, spread over the stream. */
    int kill_at[KILLS_STREAM];
    int span = (TARGET - 1000) / KILLS_STREAM;
    for (int k = 0; k < KILLS_STREAM; k++)
        kill_at[k] = 500 + k * span + (int)(rng_next(&t.rng) % (uint64_t)(span - 200));
    print_message("kills at receipt counts %d %d %d %d, then one during the drain\n",
                  kill_at[0], kill_at[1], kill_at[2], kill_at[3]);

    t.broker = harness_broker_start(h);
    crash_connect(&t);
    t.last_progress_ms = harness_now_ms();
    int next_kill = 0;
    int stall_ms = 15000 * slow;
    int64_t t0 = harness_now_ms();

    /* The stream. */
    while (t.receipts_ok < TARGET || t.pending > 0) {
        crash_send_some(&t);
        if (next_kill < KILLS_STREAM && t.receipts_ok >= kill_at[next_kill]) {
            /* A window of sends is on its way: kill in the middle of it,
               0..3 ms after the last send. */
            harness_sleep_ms((int)(rng_next(&t.rng) % 4));
            crash_kill(&t, "stream");
            next_kill++;
            continue;
        }
        crash_pump(&t, 5);
        if (harness_now_ms() - t.last_progress_ms > stall_ms)
            fail_msg("no receipt and no delivery for %d ms: %d receipts ok, %d pending, "
                     "%d refused, next seq %" PRIu64, stall_ms, t.receipts_ok, t.pending,
                     t.refused, t.next_seq);
        if (t.next_seq >= MAX_SENDS && t.pending == 0) break;
    }
    int64_t stream_ms = harness_now_ms() - t0;
    print_message("stream: %" PRIu64 " sends, %d receipts ok, %d refused, %d unknown "
                  "(in flight at a kill), %lld ms\n", t.next_seq, t.receipts_ok, t.refused,
                  t.unknown, (long long)stream_ms);
    assert_true(t.receipts_ok >= TARGET);

    /* The drain, with one more kill half-way, while deliveries are out. */
    int missing0 = crash_missing(&t);
    bool drain_killed = false;
    t.last_progress_ms = harness_now_ms();
    while (crash_missing(&t) > 0) {
        if (!drain_killed && crash_missing(&t) <= missing0 / 2) {
            crash_kill(&t, "drain");
            drain_killed = true;
        }
        crash_pump(&t, 20);
        if (harness_now_ms() - t.last_progress_ms > stall_ms) break;
    }
    if (!drain_killed) crash_kill(&t, "after the drain");
    /* Whatever the last kill put back comes again: take it too.  The
       admin client sat idle through the drain: a fresh session. */
    harness_client_close(h, t.admin);
    t.admin = harness_client(h, "crash-admin2", NULL, 1);
    hdur_counts_t last;
    int64_t settle = harness_now_ms() + 10000 * slow;
    bool empty = false;
    while (!empty && harness_now_ms() < settle) {
        crash_pump(&t, 50);
        empty = hdur_counts(t.admin, SERVICE, &last, 2000 * slow) == 0 && queue_empty(&last, NULL);
    }

    int lost = crash_missing(&t);
    uint64_t dups = 0, dup_ids = 0, unknown_delivered = 0;
    for (size_t i = 0; i < hids_size(t.sent); i++) {
        const hid_item_t *it = hids_at(t.sent, i);
        if (it->delivered > 1) { dups += it->delivered - 1; dup_ids++; }
        if ((it->flags & F_UNKNOWN) && it->delivered) unknown_delivered++;
    }
    print_message("result: %d receipts ok, LOST %d, duplicates %" PRIu64 " (of %" PRIu64
                  " ids), %" PRIu64 " deliveries in all, %" PRIu64 " of %d unknown sends "
                  "delivered, %d kills, %d refused, %" PRIu64 " phantom, %" PRIu64
                  " seq mismatches, %" PRIu64 " without durable/attempt\n",
                  t.receipts_ok, lost, dups, dup_ids, t.deliveries, unknown_delivered,
                  t.unknown, t.kills, t.refused, t.phantom, t.seq_mismatch, t.not_durable);
    if (lost) {
        int shown = 0;
        for (size_t i = 0; i < hids_size(t.sent) && shown < 10; i++) {
            const hid_item_t *it = hids_at(t.sent, i);
            if ((it->flags & F_RECEIPT_OK) && it->delivered == 0) {
                char hex[33];
                fprintf(stderr, "  lost: id %s seq %" PRIu64 "\n", hdur_hex(it->id, hex), it->seq);
                shown++;
            }
        }
        fprintf(stderr, "  broker view of %s: found %d ready %" PRIu64 "/%" PRIu64 "/%" PRIu64
                " inflight %" PRIu64 " delayed %" PRIu64 " dead %" PRIu64 "\n", SERVICE,
                last.found, last.ready[0], last.ready[1], last.ready[2], last.inflight,
                last.delayed, last.dead);
    }
    assert_int_equal(lost, 0);
    assert_int_equal(t.refused, 0);
    assert_true(t.phantom == 0);
    assert_true(t.seq_mismatch == 0);
    assert_true(t.not_durable == 0);
    if (!empty || last.dead != 0)
        fail_msg("after the drain the broker still reports for %s: ready %" PRIu64 "/%" PRIu64
                 "/%" PRIu64 " inflight %" PRIu64 " delayed %" PRIu64 " dead %" PRIu64,
                 SERVICE, last.ready[0], last.ready[1], last.ready[2], last.inflight,
                 last.delayed, last.dead);
    hids_destroy(&t.sent);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_during_durable_stream, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
