/*  test_durable_dlq.c -- what happens to durable messages that cannot be
 *  delivered normally (issue 4): poison messages, ttl expiry, duplicate
 *  keys, a full store, a corrupt store.
 *
 *  - Poison: sy-echo --poison nacks every delivery whose data holds the
 *    word; with service/poison/max_attempts = 3 the message is delivered
 *    exactly 3 times (attempts 1, 2, 3) and then sits in the DLQ with a
 *    reason; `syctl dlq ls --json` shows it; `syctl dlq retry ID` brings it
 *    back and a good sy-echo answers it (the sender gets the echo.reply).
 *  - ttl: a per-message ttl and a per-service default ttl both end in the
 *    DLQ with reason EXPIRED; a worker arriving later gets nothing of them,
 *    but does get a message whose ttl has not passed.
 *  - DUPLICATE: the same key again is answered DUPLICATE with the first id,
 *    also after a SIGKILL and restart of the broker, also through
 *    `syctl send --durable --key` (exit 5); only one message is delivered.
 *  - QUEUE_FULL: store/map_size = 1M, ~300-byte bodies until refused;
 *    the broker keeps serving non-durable requests and status; everything
 *    accepted is delivered; after the drain a durable send is accepted.
 *  - Corrupt store: garbage over data.mdb makes sy-broker exit non-zero
 *    with a message naming the store, and the file stays byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hids.h"
#include "hmp.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "durable-dlq");
}

static void base_config(harness_t *h)
{
    hdur_fast_config(h);
    /* Clients here sit idle while syctl runs: keep them registered. */
    harness_set(h, "broker/liveness", "30s");
}

/* A dead letter as listed by `syctl dlq ls --json` (converted to
   msgpack): the whole list, which the caller frees, and the item. */
typedef struct {
    uint8_t   *list;
    hmp_view_t item;
} dlq_entry_t;

static const char *json_str(const dlq_entry_t *e, const char *key, char *out, size_t cap)
{
    if (!hmp_get_str(e->item.buf, e->item.len, key, out, cap)) out[0] = 0;
    return out;
}

static double json_num(const dlq_entry_t *e, const char *key)
{
    double v;
    return hmp_get_num(e->item.buf, e->item.len, key, &v) ? v : -1;
}

/* Polls `syctl dlq ls --json` until it lists hex; fills *e (the caller
   frees e->list), or fails the test. */
static void wait_dead_letter(harness_t *h, const char *hex, int timeout_ms, dlq_entry_t *e)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int ec;
        size_t len = 0;
        e->list = hdur_syctl_json(h, &ec, &len, "dlq", "ls", NULL);
        int i = e->list && ec == 0 ? hmp_index_of(e->list, len, "", "id", hex) : -1;
        if (i >= 0) {
            char path[16];
            snprintf(path, sizeof path, "%d", i);
            e->item = hmp_sub(e->list, len, path);
            return;
        }
        free(e->list);
        if (harness_now_ms() >= deadline)
            fail_msg("syctl dlq ls --json does not list %s after %d ms (last exit %d)", hex,
                     timeout_ms, ec);
        harness_sleep_ms(100);
    }
}

/* ------------------------------------------------ poison */

static bool settled_empty(const hdur_counts_t *k, void *arg)
{
    (void)arg;
    return hdur_ready(k) == 0 && k->inflight == 0 && k->delayed == 0 && k->dead == 0;
}

static void test_poison_dead_lettered_then_retried(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_set(h, "service/poison/max_attempts", "3");
    harness_broker_start(h);
    char badlog[HARNESS_PATH_MAX], goodlog[HARNESS_PATH_MAX];
    snprintf(badlog, sizeof badlog, "%s/bad.deliveries", harness_dir(h));
    snprintf(goodlog, sizeof goodlog, "%s/good.deliveries", harness_dir(h));
    const char *bad_args[] = { "--log-deliveries", badlog, "--poison", "BAD", NULL };
    hproc_t *bad = harness_echo_start_ex(h, "bad", "poison", 1, true, bad_args);

    hclient_t *prod = harness_client(h, "poison-producer", NULL, 1);
    hdur_msg_t m = { .to = "poison", .prio = -1, .seq = 9, .data = "this is BAD input" };
    uint8_t id[16];
    hdur_put_ok(prod, &m, id);
    char hex[33];
    hdur_hex(id, hex);

    dlq_entry_t dl;
    wait_dead_letter(h, hex, 15000 * slow, &dl);
    char reason[256], service[64], type[64];
    json_str(&dl, "reason", reason, sizeof reason);
    json_str(&dl, "service", service, sizeof service);
    json_str(&dl, "type", type, sizeof type);
    print_message("dead letter %s: reason \"%s\", attempt %.0f, service %s, type %s\n", hex,
                  reason, json_num(&dl, "attempt"), service, type);
    if (!*reason || (!strstr(reason, "max attempts") && !strstr(reason, "poison")))
        fail_msg("dead letter reason \"%s\": want the max-attempts reason or the worker's", reason);
    assert_string_equal(service, "poison");
    assert_string_equal(type, "echo.request");
    assert_true(json_num(&dl, "attempt") == 3);
    free(dl.list);

    /* Exactly three deliveries, attempts 1, 2, 3. */
    for (int a = 1; a <= 3; a++) {
        char line[64];
        snprintf(line, sizeof line, "%s %d 9", hex, a);
        if (hdur_count_lines(badlog, line) != 1)
            fail_msg("%s: want one line \"%s\"", badlog, line);
    }
    if (hdur_count_lines(badlog, NULL) != 3)
        fail_msg("the poison worker got %d deliveries, want 3 (max_attempts)",
                 hdur_count_lines(badlog, NULL));
    hclient_t *admin = harness_client(h, "poison-admin", NULL, 1);
    hdur_counts_t k;
    assert_int_equal(hdur_counts(admin, "poison", &k, 5000 * slow), 0);
    if (hdur_ready(&k) || k.inflight || k.delayed || k.dead != 1)
        fail_msg("queues for poison: ready %" PRIu64 " inflight %" PRIu64 " delayed %" PRIu64
                 " dead %" PRIu64 " (want only 1 dead)", hdur_ready(&k), k.inflight,
                 k.delayed, k.dead);

    /* A good worker instead; the operator retries the dead letter. */
    harness_signal(h, bad, SIGTERM);
    assert_true(harness_wait_exit(h, bad, 5000 * slow));
    assert_true(harness_wait_actor(h, "bad", false, 5000 * slow));
    const char *good_args[] = { "--log-deliveries", goodlog, NULL };
    harness_echo_start_ex(h, "good", "poison", 1, true, good_args);
    hrun_t r;
    int ec = harness_syctl(h, &r, 10000, "dlq", "retry", hex, NULL);
    if (ec != 0) fail_msg("syctl dlq retry %s: exit %d\n%s%s", hex, ec, r.out, r.err);
    hrun_clear(&r);
    hmsg_t reply;
    int rc = hclient_recv_type(prod, "echo.reply", &reply, 10000 * slow, NULL);
    if (rc) fail_msg("no echo.reply after dlq retry (%s)", syerr_name(rc));
    uint64_t seq = 0;
    hdur_body_seq(&reply, &seq);
    char by[64] = "";
    hmp_get_str(reply.body, reply.body_len, "by", by, sizeof by);
    assert_int_equal(seq, 9);
    assert_string_equal(by, "good");
    hmsg_clear(&reply);
    char line[64];
    snprintf(line, sizeof line, "%s ", hex);
    assert_int_equal(hdur_count_lines(goodlog, line), 1);
    if (!hdur_wait_counts(admin, "poison", settled_empty, NULL, 5000 * slow, &k))
        fail_msg("after the retried message was answered: ready %" PRIu64 " inflight %" PRIu64
                 " delayed %" PRIu64 " dead %" PRIu64, hdur_ready(&k), k.inflight, k.delayed,
                 k.dead);
    harness_pass(h);
}

/* ------------------------------------------------ transient failures */

static void test_fail_every_retried_to_success(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    /* --fail-every counts deliveries, not messages: under an unlucky
       interleaving one message can land on the failing slot several times
       in a row.  This test is about retries succeeding, not the attempt
       limit (test_poison_dead_lettered_then_retried covers that), so the limit
       is put out of reach. */
    harness_set(h, "service/flaky/max_attempts", "50");
    harness_broker_start(h);
    char log[HARNESS_PATH_MAX];
    snprintf(log, sizeof log, "%s/flaky.deliveries", harness_dir(h));
    const char *args[] = { "--log-deliveries", log, "--fail-every", "3", NULL };
    harness_echo_start_ex(h, "flaky", "flaky", 2, true, args);
    hclient_t *prod = harness_client(h, "flaky-producer", NULL, 1);
    enum { N = 12 };
    hdur_msg_t ms[N];
    hdur_receipt_t rs[N];
    for (int i = 0; i < N; i++)
        ms[i] = (hdur_msg_t){ .to = "flaky", .prio = -1, .seq = (uint64_t)i };
    assert_int_equal(hdur_put_many(prod, ms, N, rs, 5000 * slow), 0);
    for (int i = 0; i < N; i++)
        if (!rs[i].ok) fail_msg("send %d refused: %s", i, rs[i].code);
    /* Every seq is answered although every third delivery is nacked. */
    int answered[N] = { 0 }, distinct = 0;
    int64_t deadline = harness_now_ms() + 20000 * slow;
    while (distinct < N && harness_now_ms() < deadline) {
        hmsg_t m;
        if (hclient_recv_type(prod, "echo.reply", &m, 1000, NULL) != 0) continue;
        uint64_t seq = N;
        hdur_body_seq(&m, &seq);
        if (seq < N && answered[seq]++ == 0) distinct++;
        hmsg_clear(&m);
    }
    int lines = hdur_count_lines(log, NULL);
    if (distinct < N)
        fail_msg("only %d of %d messages answered with sy-echo --fail-every 3 (%d deliveries)",
                 distinct, N, lines);
    int retried = 0;
    for (int a = 2; a <= 5; a++) {
        char needle[16];
        snprintf(needle, sizeof needle, " %d ", a);
        retried += hdur_count_lines(log, needle);
    }
    print_message("%d messages answered after %d deliveries (%d with attempt > 1)\n", N,
                  lines, retried);
    assert_true(lines >= N + N / 3);
    assert_true(retried >= N / 3);
    hclient_t *admin = harness_client(h, "flaky-admin", NULL, 1);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "flaky", settled_empty, NULL, 5000 * slow, &k))
        fail_msg("flaky queue not empty: ready %" PRIu64 " inflight %" PRIu64 " delayed %"
                 PRIu64 " dead %" PRIu64, hdur_ready(&k), k.inflight, k.delayed, k.dead);
    harness_pass(h);
}

/* ------------------------------------------------ ttl */

static void test_ttl_expiry_goes_to_dlq(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_set(h, "service/ttl2/ttl", "500ms");
    harness_broker_start(h);
    hclient_t *prod = harness_client(h, "ttl-producer", NULL, 1);
    uint8_t a[16], b[16], keep[16];
    hdur_msg_t ma = { .to = "ttl1", .prio = -1, .seq = 1, .ttl = 300 };
    hdur_msg_t mb = { .to = "ttl2", .prio = -1, .seq = 2 };
    hdur_msg_t mk = { .to = "ttl1", .prio = -1, .seq = 3, .ttl = 600000 };
    hdur_put_ok(prod, &ma, a);
    hdur_put_ok(prod, &mb, b);
    hdur_put_ok(prod, &mk, keep);
    char ha[33], hb[33];
    hdur_hex(a, ha);
    hdur_hex(b, hb);
    int64_t t0 = harness_now_ms();
    dlq_entry_t it;
    char got[256];
    wait_dead_letter(h, ha, 10000 * slow, &it);
    assert_string_equal(json_str(&it, "reason", got, sizeof got), "EXPIRED");
    assert_string_equal(json_str(&it, "service", got, sizeof got), "ttl1");
    free(it.list);
    wait_dead_letter(h, hb, 10000 * slow, &it);
    assert_string_equal(json_str(&it, "reason", got, sizeof got), "EXPIRED");
    assert_string_equal(json_str(&it, "service", got, sizeof got), "ttl2");
    free(it.list);
    print_message("both expired messages in the DLQ as EXPIRED within %lld ms\n",
                  (long long)(harness_now_ms() - t0));

    /* A worker for both services now gets only the live one. */
    static const char *const svc[] = { "ttl1", "ttl2", NULL };
    hclient_t *w = harness_client(h, "ttl-worker", svc, 10);
    hmsg_t m;
    int rc = hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL);
    if (rc) fail_msg("the message with a 10-minute ttl was not delivered (%s)", syerr_name(rc));
    if (memcmp(m.hdr.id, keep, 16) != 0) {
        hmsg_print("got: ", &m);
        fail_msg("an expired message was delivered");
    }
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    if (hclient_recv_type(w, "echo.request", &m, 1000 * slow, NULL) == 0) {
        hmsg_print("got: ", &m);
        fail_msg("an expired message was delivered");
    }
    hclient_t *admin = harness_client(h, "ttl-admin", NULL, 1);
    hdur_counts_t k1, k2;
    assert_int_equal(hdur_counts(admin, "ttl1", &k1, 5000 * slow), 0);
    assert_int_equal(hdur_counts(admin, "ttl2", &k2, 5000 * slow), 0);
    if (hdur_ready(&k1) || hdur_ready(&k2) || k1.dead != 1 || k2.dead != 1)
        fail_msg("queues: ttl1 ready %" PRIu64 " dead %" PRIu64 ", ttl2 ready %" PRIu64
                 " dead %" PRIu64 " (want 0/1 each)", hdur_ready(&k1), k1.dead,
                 hdur_ready(&k2), k2.dead);
    harness_pass(h);
}

/* ------------------------------------------------ duplicates */

static void expect_duplicate(hclient_t *c, const char *to, const char *key,
                             const uint8_t first[16], const char *when)
{
    hdur_msg_t m = { .to = to, .prio = -1, .seq = 99, .key = key };
    hdur_receipt_t r;
    int rc = hdur_put(c, &m, &r, 5000 * harness_slow());
    if (rc) fail_msg("%s: no receipt (%s)", when, syerr_name(rc));
    char want[33], got[33] = "-";
    hdur_hex(first, want);
    if (r.has_id) hdur_hex(r.id, got);
    if (r.ok || strcmp(r.code, "DUPLICATE") != 0 || !r.has_id || memcmp(r.id, first, 16) != 0)
        fail_msg("%s: key %s again: want ok:false DUPLICATE id %s, got ok:%d code %s id %s "
                 "msg %s", when, key, want, r.ok, r.code, got, r.msg);
}

static void test_duplicate_key_also_across_restart(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    hproc_t *broker = harness_broker_start(h);
    hclient_t *prod = harness_client(h, "dup-producer", NULL, 1);
    uint8_t first[16], other[16], scoped[16];
    hdur_msg_t m1 = { .to = "dup", .prio = -1, .seq = 1, .key = "order-17" };
    hdur_put_ok(prod, &m1, first);
    expect_duplicate(prod, "dup", "order-17", first, "same broker");
    hdur_msg_t m2 = { .to = "dup", .prio = -1, .seq = 2, .key = "order-18" };
    hdur_put_ok(prod, &m2, other);
    hdur_msg_t m3 = { .to = "dup-other", .prio = -1, .seq = 3, .key = "order-17" };
    hdur_put_ok(prod, &m3, scoped);      /* keys are scoped by service */

    harness_client_close(h, prod);
    harness_kill(h, broker);
    harness_broker_start(h);
    prod = harness_client(h, "dup-producer", NULL, 1);
    expect_duplicate(prod, "dup", "order-17", first, "after kill -9 and restart");

    /* The same through syctl. */
    char hex[33];
    hdur_hex(first, hex);
    hrun_t r;
    int ec = harness_syctl(h, &r, 10000, "send", "dup", "echo.request", "{\"seq\":5}",
                           "--durable", "--key", "order-17", "--no-wait", NULL);
    char want[64];
    snprintf(want, sizeof want, "DUPLICATE %s", hex);
    if (ec != 5 || !strstr(r.out, want))
        fail_msg("syctl send --durable --key order-17: want exit 5 and \"%s\", got exit %d\n"
                 "stdout: %s\nstderr: %s", want, ec, r.out, r.err);
    hrun_clear(&r);

    /* Only the two distinct keys of "dup" are delivered. */
    static const char *const svc[] = { "dup", NULL };
    hclient_t *w = harness_client(h, "dup-worker", svc, 10);
    int got = 0, got_first = 0, got_other = 0;
    hmsg_t m;
    while (hclient_recv_type(w, "echo.request", &m, (got < 2 ? 5000 : 1000) * slow, NULL) == 0) {
        got++;
        if (memcmp(m.hdr.id, first, 16) == 0) got_first++;
        else if (memcmp(m.hdr.id, other, 16) == 0) got_other++;
        else hmsg_print("unexpected delivery: ", &m);
        assert_int_equal(hclient_ack(w, m.hdr.id), 0);
        hmsg_clear(&m);
    }
    if (got != 2 || got_first != 1 || got_other != 1)
        fail_msg("deliveries of dup: %d in all, %d of the first key, %d of the second "
                 "(want 1 and 1)", got, got_first, got_other);
    harness_pass(h);
}

/* ------------------------------------------------ nack, purge, lease checks */

static bool one_delayed(const hdur_counts_t *k, void *arg)
{
    (void)arg;
    return k->delayed == 1 && hdur_ready(k) == 0 && k->inflight == 0;
}

static void test_nack_reason_delay_and_purge(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_broker_start(h);
    hclient_t *prod = harness_client(h, "nack-producer", NULL, 1);
    hclient_t *admin = harness_client(h, "nack-admin", NULL, 1);
    static const char *const svc[] = { "nackq", NULL };
    hclient_t *w = harness_client(h, "nack-worker", svc, 4);

    /* 1. nack {requeue:false, reason}: dead-lettered at once with it. */
    uint8_t a[16];
    hdur_msg_t ma = { .to = "nackq", .prio = -1, .seq = 1 };
    hdur_put_ok(prod, &ma, a);
    hmsg_t m;
    assert_int_equal(hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL), 0);
    assert_memory_equal(m.hdr.id, a, 16);
    hmsg_clear(&m);
    assert_int_equal(hclient_nack(w, a, "cannot parse the job", false, -1), 0);
    char ha[33];
    hdur_hex(a, ha);
    dlq_entry_t it;
    char got[256];
    wait_dead_letter(h, ha, 5000 * slow, &it);
    assert_string_equal(json_str(&it, "reason", got, sizeof got), "cannot parse the job");
    free(it.list);

    /* 2. nack {requeue:true, delay_ms:1500}: delayed, then back with
       attempt 2, not before the delay. */
    uint8_t b[16];
    hdur_msg_t mb = { .to = "nackq", .prio = -1, .seq = 2 };
    hdur_put_ok(prod, &mb, b);
    assert_int_equal(hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL), 0);
    assert_memory_equal(m.hdr.id, b, 16);
    assert_int_equal(m.hdr.attempt, 1);
    hmsg_clear(&m);
    int64_t t0 = harness_now_ms();
    assert_int_equal(hclient_nack(w, b, "try later", true, 1500), 0);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "nackq", one_delayed, NULL, 1000 * slow, &k))
        fail_msg("after nack with delay_ms 1500: ready %" PRIu64 " delayed %" PRIu64
                 " inflight %" PRIu64 " (want 1 delayed)", hdur_ready(&k), k.delayed,
                 k.inflight);
    int rc = hclient_recv_type(w, "echo.request", &m, 6000 * slow, NULL);
    int64_t after = harness_now_ms() - t0;
    if (rc) fail_msg("the nacked message did not come back within %d ms", 6000 * slow);
    assert_memory_equal(m.hdr.id, b, 16);
    if (m.hdr.attempt != 2) fail_msg("redelivery after nack: attempt %u, want 2", m.hdr.attempt);
    if (after < 1400) fail_msg("redelivered %lld ms after a nack with delay_ms 1500",
                               (long long)after);
    print_message("nacked with delay_ms 1500: back after %lld ms, attempt 2\n", (long long)after);
    assert_int_equal(hclient_ack(w, b), 0);
    hmsg_clear(&m);

    /* 3. A lease or nack for a message not held: EXPIRED receipt. */
    uint8_t lid[16];
    hsend_t ls = { .type = "sy.lease" };
    hmp_buf_t lb;
    hmp_buf_init(&lb);
    msgpack_pack_map(&lb.pk, 2);
    hmp_str(&lb, "id");
    msgpack_pack_bin(&lb.pk, 16);
    msgpack_pack_bin_body(&lb.pk, b, 16);
    hmp_str(&lb, "ms");
    msgpack_pack_uint32(&lb.pk, 5000);
    assert_int_equal(hclient_send(w, &ls, (const uint8_t *)lb.sb.data, lb.sb.size, lid), 0);
    hmp_buf_clear(&lb);
    rc = hclient_recv_corr(w, lid, &m, 5000 * slow);
    char code[40], detail[40];
    if (rc || !hmsg_receipt(&m, code, sizeof code, detail, sizeof detail)
        || strcmp(code, "EXPIRED") != 0)
        fail_msg("sy.lease for an acked message: want a receipt EXPIRED, got %s / %s",
                 rc ? syerr_name(rc) : m.hdr.type, rc ? "" : code);
    hmsg_clear(&m);

    /* 4. dlq purge of the service: the dead letter goes, nothing else. */
    uint8_t c[16];
    hdur_msg_t mc = { .to = "nackq", .prio = -1, .seq = 3 };
    hdur_put_ok(prod, &mc, c);
    assert_int_equal(hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL), 0);
    hmsg_clear(&m);          /* held, in flight */
    assert_int_equal(hdur_counts(admin, "nackq", &k, 5000 * slow), 0);
    if (k.dead != 1 || k.inflight != 1)
        fail_msg("before purge: dead %" PRIu64 " inflight %" PRIu64 " (want 1, 1)", k.dead,
                 k.inflight);
    hrun_t r;
    int ec = harness_syctl(h, &r, 10000, "dlq", "purge", "nackq", NULL);
    if (ec != 0) fail_msg("syctl dlq purge nackq: exit %d\n%s%s", ec, r.out, r.err);
    hrun_clear(&r);
    assert_int_equal(hdur_counts(admin, "nackq", &k, 5000 * slow), 0);
    if (k.dead != 0 || k.inflight != 1)
        fail_msg("after purge: dead %" PRIu64 " inflight %" PRIu64 " (want 0, 1: purge "
                 "touches dead letters only)", k.dead, k.inflight);
    assert_int_equal(hclient_ack(w, c), 0);
    harness_pass(h);
}

/* ------------------------------------------------ a full store */

#define FULL_MAX   20000
#define FULL_BATCH 32

static void test_queue_full_small_store(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_set(h, "store/map_size", "1M");
    hproc_t *broker = harness_broker_start(h);
    hclient_t *prod = harness_client(h, "full-producer", NULL, 1);
    hids_t *ok = hids_new();
    assert_non_null(ok);
    static hdur_msg_t ms[FULL_BATCH];
    static hdur_receipt_t rs[FULL_BATCH];
    int sent = 0, full = 0, other = 0;
    char other_code[40] = "";
    while (sent < FULL_MAX && !full) {
        for (int i = 0; i < FULL_BATCH; i++)
            ms[i] = (hdur_msg_t){ .to = "full", .prio = -1, .seq = (uint64_t)(sent + i),
                                  .pad = 280 };
        int rc = hdur_put_many(prod, ms, FULL_BATCH, rs, 10000 * slow);
        if (rc) fail_msg("receipts missing after %d sends (%s)", sent, syerr_name(rc));
        for (int i = 0; i < FULL_BATCH; i++) {
            if (rs[i].ok) {
                hid_item_t *it = hids_add(ok, rs[i].id, NULL);
                assert_non_null(it);
                it->seq = ms[i].seq;
            } else if (strcmp(rs[i].code, "QUEUE_FULL") == 0) {
                full++;
            } else {
                other++;
                snprintf(other_code, sizeof other_code, "%s", rs[i].code);
            }
        }
        sent += FULL_BATCH;
    }
    size_t accepted = hids_size(ok);
    print_message("store of 1M: %zu accepted, %d QUEUE_FULL, %d other refusals, %d sent\n",
                  accepted, full, other, sent);
    if (!full) fail_msg("no QUEUE_FULL after %d durable sends of ~300 bytes into a 1M store", sent);
    if (other) fail_msg("%d refusals other than QUEUE_FULL (e.g. %s)", other, other_code);
    assert_true(accepted > 100);
    assert_true(harness_alive(h, broker));

    /* The broker keeps serving: status, and a non-durable round trip. */
    harness_echo_start(h, "plain-echo", "echo", 4, true);
    hmsg_t m;
    int rc = hclient_request_echo(prod, "echo", 77, "still here", &m, 5000 * slow);
    if (rc || strcmp(m.hdr.type, "echo.reply") != 0) {
        if (!rc) hmsg_print("got: ", &m);
        fail_msg("a non-durable echo.request with the store full: %s", syerr_name(rc));
    }
    hmsg_clear(&m);

    /* Everything accepted is delivered (acks work with the store full). */
    static const char *const svc[] = { "full", NULL };
    hclient_t *w = harness_client(h, "full-worker", svc, 64);
    size_t delivered = 0, unknown = 0;
    while (delivered < accepted) {
        rc = hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL);
        if (rc) break;
        hid_item_t *it = hids_find(ok, m.hdr.id);
        if (!it) unknown++;
        else if (it->delivered++ == 0) delivered++;
        assert_int_equal(hclient_ack(w, m.hdr.id), 0);
        hmsg_clear(&m);
    }
    if (delivered != accepted || unknown)
        fail_msg("of %zu accepted, %zu delivered; %zu deliveries of ids never accepted",
                 accepted, delivered, unknown);
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);

    /* Drained: there is room again. */
    hdur_msg_t again = { .to = "full", .prio = -1, .seq = 1000000, .pad = 280 };
    hdur_receipt_t r;
    rc = hdur_put(prod, &again, &r, 5000 * slow);
    if (rc || !r.ok)
        fail_msg("after draining the full store a durable send is refused: %s %s %s",
                 rc ? syerr_name(rc) : "", r.code, r.msg);
    rc = hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);
    hids_destroy(&ok);
    harness_pass(h);
}

/* ------------------------------------------------ a corrupt store */

/* Starts sy-broker expecting it to refuse: returns its exit status. */
static int broker_refuses(harness_t *h, const char *label, hproc_t **pp)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "sy-broker", bin, sizeof bin);
    char *argv[] = { bin, "--config", (char *)harness_config(h), "--endpoint",
                     (char *)harness_endpoint(h), NULL };
    hproc_t *p = harness_spawn(h, label, argv);
    *pp = p;
    if (!harness_wait_exit(h, p, 10000 * harness_slow()))
        fail_msg("sy-broker started on a corrupt store and is still running after %d ms",
                 10000 * harness_slow());
    return p->status;
}

static void overwrite(const char *path, off_t from, size_t n, uint64_t seed)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) fail_msg("open %s", path);
    uint8_t buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        for (size_t i = 0; i < k; i++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            buf[i] = (uint8_t)seed;
        }
        if (pwrite(fd, buf, k, from) != (ssize_t)k) fail_msg("pwrite %s", path);
        from += (off_t)k;
        n -= k;
    }
    close(fd);
}

static void check_refused(harness_t *h, const char *data, const char *label)
{
    uint64_t h0, s0, h1, s1;
    assert_true(hdur_file_hash(data, &h0, &s0));
    hproc_t *p;
    int st = broker_refuses(h, label, &p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 0)
        fail_msg("%s: sy-broker on a corrupt store ended with status 0x%x, want a non-zero exit",
                 label, st);
    /* A clear message: names the store. */
    char store[HARNESS_PATH_MAX];
    snprintf(store, sizeof store, "%s/store", harness_dir(h));
    if (hdur_count_lines(p->log, store) < 1)
        fail_msg("%s: the broker's log does not name the store %s (see %s)", label, store, p->log);
    assert_true(hdur_file_hash(data, &h1, &s1));
    if (h0 != h1 || s0 != s1)
        fail_msg("%s: the broker changed the corrupt store file (size %" PRIu64 " -> %" PRIu64
                 ", hash %016" PRIx64 " -> %016" PRIx64 ")", label, s0, s1, h0, h1);
    print_message("%s: refused with exit %d, file unchanged (%" PRIu64 " bytes)\n", label,
                  WEXITSTATUS(st), s1);
}

static void test_corrupt_store_refused(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    hproc_t *broker = harness_broker_start(h);
    hclient_t *prod = harness_client(h, "corrupt-producer", NULL, 1);
    for (uint64_t i = 0; i < 5; i++) {
        hdur_msg_t m = { .to = "keep", .prio = -1, .seq = i };
        uint8_t id[16];
        hdur_put_ok(prod, &m, id);
    }
    harness_client_close(h, prod);
    harness_signal(h, broker, SIGTERM);
    assert_true(harness_wait_exit(h, broker, 10000 * slow));
    char data[HARNESS_PATH_MAX];
    snprintf(data, sizeof data, "%s/store/data.mdb", harness_dir(h));
    struct stat sb;
    if (stat(data, &sb) != 0) fail_msg("no %s after durable sends", data);

    /* 1. The first pages (both LMDB meta pages) overwritten. */
    overwrite(data, 0, 8192, 0x1234567ULL);
    check_refused(h, data, "broker-meta-garbage");
    /* 2. The whole file garbage. */
    overwrite(data, 0, (size_t)sb.st_size, 0x7654321ULL);
    check_refused(h, data, "broker-all-garbage");
    /* 3. Not an LMDB file at all: a short text file. */
    FILE *f = fopen(data, "w");
    assert_non_null(f);
    fputs("this is not a database\n", f);
    fclose(f);
    check_refused(h, data, "broker-text-file");
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_poison_dead_lettered_then_retried, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_fail_every_retried_to_success, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry_goes_to_dlq, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key_also_across_restart, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_nack_reason_delay_and_purge, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_small_store, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_store_refused, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
