/*  test_store.c -- unit tests of broker/store.c, the durable queue store.
 *
 *  Every test works in its own temporary directory and passes time in
 *  explicitly (the store never reads a clock), so leases, delays, ttls and
 *  dedup windows are tested without sleeping.  The crash test forks a
 *  child that commits in a loop and is killed with SIGKILL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/store.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000ULL       /* a fixed "now", ms */

typedef struct {
    char     dir[64];
    store_t *store;
} fx_t;

static void fx_open_opts(fx_t *fx, store_opts_t *o)
{
    char err[256];
    o->dir = fx->dir;
    int rc = store_open(o, &fx->store, err, sizeof(err));
    if (rc)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, 0);
}

static void fx_open(fx_t *fx)
{
    store_opts_t o = { .sync = STORE_SYNC_NONE };
    fx_open_opts(fx, &o);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(tutil_tmpdir(fx->dir, sizeof fx->dir, "store"), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    store_destroy(&fx->store);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* An id whose time part is ms and whose tail is seq. */
static void mkid(uint8_t id[16], uint64_t ms, uint32_t seq)
{
    memset(id, 0, 16);
    for (int i = 5; i >= 0; i--) { id[i] = (uint8_t) ms; ms >>= 8; }
    id[12] = (uint8_t) (seq >> 24); id[13] = (uint8_t) (seq >> 16);
    id[14] = (uint8_t) (seq >> 8);  id[15] = (uint8_t) seq;
}

static uint32_t idseq(const uint8_t id[16])
{
    return (uint32_t) id[12] << 24 | (uint32_t) id[13] << 16
         | (uint32_t) id[14] << 8 | id[15];
}

/* Puts one message in its own batch; returns store_put's result. */
static int put1(store_t *s, const char *svc, uint8_t prio, uint32_t seq,
                uint64_t now, uint64_t ttl_deadline, const char *key,
                uint8_t first[16])
{
    uint8_t id[16];
    char hdr[32], body[32];
    mkid(id, now, seq);
    snprintf(hdr, sizeof(hdr), "H%u", seq);
    snprintf(body, sizeof(body), "body-%u", seq);
    store_put_t p = {
        .service = svc, .prio = prio, .id = id,
        .header = (const uint8_t *) hdr, .header_len = strlen(hdr),
        .body = (const uint8_t *) body, .body_len = strlen(body),
        .ttl_deadline = ttl_deadline, .key = key,
    };
    store_txn_t *x;
    assert_int_equal(store_txn_begin(s, now, &x), 0);
    int rc = store_put(x, &p, first);
    assert_int_equal(store_txn_commit(&x), 0);
    assert_null(x);
    return rc;
}

/* Takes at most one message; returns its seq, or -1 if none. */
static long take1(store_t *s, const char *svc, const char *holder,
                  uint64_t lease, uint64_t now, store_msg_t *keep)
{
    store_msg_t m;
    size_t n = 9;
    assert_int_equal(store_take(s, svc, holder, 1, lease, now, &m, &n), 0);
    if (n == 0)
        return -1;
    assert_int_equal(n, 1);
    long seq = idseq(m.id);
    char want[32];
    snprintf(want, sizeof(want), "body-%ld", seq);
    assert_int_equal(m.body_len, strlen(want));
    assert_memory_equal(m.body, want, m.body_len);
    if (keep)
        *keep = m;
    else
        store_msg_clear(&m);
    return seq;
}

/* Puts messages seq first .. first + n - 1 on svc, priority 1, at T0,
   each in its own batch. */
static void put_seq(fx_t *fx, const char *svc, uint32_t first, uint32_t n)
{
    for (uint32_t i = first; i < first + n; i++)
        assert_int_equal(put1(fx->store, svc, 1, i, T0, 0, NULL, NULL), 0);
}

static store_counts_t counts(store_t *s, const char *svc)
{
    store_counts_t c;
    assert_int_equal(store_counts(s, svc, &c), 0);
    return c;
}

/* ------------------------------------------------------------ tests */

static void test_fifo_and_priority(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    /* seq 1..9, prio cycling 1,0,2: delivery must be prio 0 first, each
       priority in seq (id) order. */
    for (uint32_t i = 1; i <= 9; i++)
        assert_int_equal(put1(fx->store, "svc", (uint8_t) (2 - (i % 3)), i,
                              T0 + i, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "other", 0, 100, T0, 0, NULL, NULL), 0);
    store_counts_t c = counts(fx->store, "svc");
    assert_int_equal(c.ready[0], 3);
    assert_int_equal(c.ready[1], 3);
    assert_int_equal(c.ready[2], 3);
    assert_int_equal(c.oldest_ms, T0 + 1);
    long want[] = { 2, 5, 8, 1, 4, 7, 3, 6, 9 };
    for (size_t i = 0; i < 9; i++) {
        store_msg_t m;
        long seq = take1(fx->store, "svc", "w1", 1000, T0 + 100, &m);
        assert_int_equal(seq, want[i]);
        assert_int_equal(m.attempt, 1);
        assert_int_equal(m.enqueued_ms, T0 + (uint64_t) seq); /* its put */
        char h[32];
        snprintf(h, sizeof(h), "H%ld", seq);
        assert_int_equal(m.header_len, strlen(h));
        assert_memory_equal(m.header, h, m.header_len);
        assert_int_equal(store_ack(fx->store, m.id, "w1"), 0);
        assert_int_equal(store_ack(fx->store, m.id, "w1"), SY_ENOTFOUND);
        store_msg_clear(&m);
    }
    assert_int_equal(take1(fx->store, "svc", "w1", 1000, T0 + 100, NULL), -1);
    c = counts(fx->store, "svc");
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2] + c.inflight, 0);
    assert_int_equal(c.oldest_ms, 0);
    assert_int_equal(counts(fx->store, "other").ready[0], 1);
}

static void test_group_commit_1000(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    /* other calls are refused while the batch is open */
    size_t n;
    store_msg_t m;
    assert_int_equal(store_take(fx->store, "q", "w", 1, 10, T0, &m, &n),
                     SY_EINVAL);
    uint8_t body[200];
    memset(body, 'b', sizeof(body));
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t id[16];
        mkid(id, T0, i);
        store_put_t p = { .service = "q", .prio = 1, .id = id,
                          .header = body, .header_len = 10,
                          .body = body, .body_len = sizeof(body) };
        assert_int_equal(store_put(x, &p, NULL), 0);
    }
    assert_int_equal(store_txn_count(x), 1000);
    assert_int_equal(store_txn_commit(&x), 0);
    assert_int_equal(counts(fx->store, "q").ready[1], 1000);
    store_msg_t pk[5];
    assert_int_equal(store_peek(fx->store, "q", 5, pk, &n), 0);
    assert_int_equal(n, 5);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(idseq(pk[i].id), i);
        assert_int_equal(pk[i].body_len, sizeof(body));
        store_msg_clear(&pk[i]);
    }
    /* peek does not consume */
    assert_int_equal(counts(fx->store, "q").ready[1], 1000);
    store_msg_t many[64];
    assert_int_equal(store_take(fx->store, "q", "w", 64, 10, T0, many, &n), 0);
    assert_int_equal(n, 64);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(idseq(many[i].id), i);
        store_msg_clear(&many[i]);
    }
    assert_int_equal(counts(fx->store, "q").inflight, 64);
}

static void test_abort_stores_nothing(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    uint8_t id[16];
    mkid(id, T0, 1);
    store_put_t p = { .service = "q", .prio = 0, .id = id,
                      .body = (const uint8_t *) "x", .body_len = 1 };
    assert_int_equal(store_put(x, &p, NULL), 0);
    store_txn_abort(&x);
    assert_null(x);
    assert_int_equal(counts(fx->store, "q").ready[0], 0);
    /* bad arguments */
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    p.prio = 3;
    assert_int_equal(store_put(x, &p, NULL), SY_EINVAL);
    p.prio = 0; p.service = "";
    assert_int_equal(store_put(x, &p, NULL), SY_EINVAL);
    store_txn_abort(&x);
}

static void test_dedup(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .dedup_window_ms = 60000 };
    fx_open_opts(fx, &o);
    uint8_t first[16], id1[16];
    mkid(id1, T0, 1);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, "k1", first), 0);
    memset(first, 0, 16);
    assert_int_equal(put1(fx->store, "q", 1, 2, T0 + 10, 0, "k1", first),
                     SY_EDUPLICATE);
    /* the duplicate id is the first message's, whose put time was T0 */
    assert_memory_equal(first, id1, 16);
    assert_int_equal(counts(fx->store, "q").ready[1], 1);
    /* the same key for another service is another key */
    assert_int_equal(put1(fx->store, "r", 1, 3, T0 + 10, 0, "k1", NULL), 0);
    /* the same id twice is a duplicate too */
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, first),
                     SY_EDUPLICATE);
    assert_memory_equal(first, id1, 16);
    /* two puts with one key in one batch */
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0 + 20, &x), 0);
    uint8_t a[16], b[16];
    mkid(a, T0 + 20, 10);
    mkid(b, T0 + 20, 11);
    store_put_t p = { .service = "q", .prio = 1, .id = a, .key = "k2" };
    assert_int_equal(store_put(x, &p, NULL), 0);
    p.id = b;
    assert_int_equal(store_put(x, &p, first), SY_EDUPLICATE);
    assert_memory_equal(first, a, 16);
    assert_int_equal(store_txn_commit(&x), 0);
    /* survives a reopen */
    store_destroy(&fx->store);
    fx_open_opts(fx, &o);
    assert_int_equal(put1(fx->store, "q", 1, 4, T0 + 59999, 0, "k1", first),
                     SY_EDUPLICATE);
    assert_memory_equal(first, id1, 16);
    /* the window closes 60 s after the first put */
    assert_int_equal(put1(fx->store, "q", 1, 5, T0 + 60000, 0, "k1", first),
                     0);
    assert_int_equal(put1(fx->store, "q", 1, 6, T0 + 60001, 0, "k1", first),
                     SY_EDUPLICATE);
    uint8_t id5[16];
    mkid(id5, T0 + 60000, 5);
    assert_memory_equal(first, id5, 16);
    /* pruning on later commits leaves the live record alone */
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(put1(fx->store, "q", 1, 100 + i, T0 + 100000 + i, 0,
                              NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "q", 1, 7, T0 + 110000, 0, "k1", NULL),
                     SY_EDUPLICATE);
}

static int put_big(store_t *s, store_txn_t *x, uint32_t seq, size_t len)
{
    static uint8_t body[8192];
    memset(body, (int) (seq & 0xff), len);
    uint8_t id[16];
    mkid(id, T0, seq);
    char want[32];
    snprintf(want, sizeof(want), "body-%u", seq);
    memcpy(body, want, strlen(want));
    (void) s;
    store_put_t p = { .service = "q", .prio = 1, .id = id,
                      .body = body, .body_len = len };
    return store_put(x, &p, NULL);
}

static void test_queue_full(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .map_size = 1 << 20 };
    fx_open_opts(fx, &o);
    uint32_t seq = 0, accepted = 0;
    int full = 0;
    for (int batch = 0; batch < 200 && !full; batch++) {
        store_txn_t *x;
        assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
        uint32_t ok = 0;
        for (int i = 0; i < 10; i++) {
            int rc = put_big(fx->store, x, seq++, 3000);
            if (rc == SY_EQUEUE_FULL) {
                full = 1;
                continue;
            }
            assert_int_equal(rc, 0);
            ok++;
        }
        assert_int_equal(store_txn_commit(&x), 0);
        accepted += ok;
    }
    assert_true(full);
    assert_true(accepted > 50);
    assert_int_equal(counts(fx->store, "q").ready[1], accepted);
    /* every accepted put survives a reopen */
    store_destroy(&fx->store);
    fx_open_opts(fx, &o);
    assert_int_equal(counts(fx->store, "q").ready[1], accepted);
    /* take and ack half: room comes back */
    for (uint32_t i = 0; i < accepted / 2; i++) {
        store_msg_t m;
        size_t got = 0;
        assert_int_equal(store_take(fx->store, "q", "w", 1, 1000, T0, &m,
                                    &got), 0);
        assert_int_equal(got, 1);
        assert_int_equal(m.body_len, 3000);
        assert_int_equal(idseq(m.id), i);
        assert_int_equal(store_ack(fx->store, m.id, NULL), 0);
        store_msg_clear(&m);
    }
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    assert_int_equal(put_big(fx->store, x, 100000, 3000), 0);
    assert_int_equal(store_txn_commit(&x), 0);
    assert_int_equal(counts(fx->store, "q").ready[1],
                     accepted - accepted / 2 + 1);
}

/* Without the reserve LMDB itself runs out of pages (MDB_MAP_FULL) inside
   a put: that put is undone alone and the batch's earlier puts stay in the
   batch.  Whether the batch then commits depends on the pages LMDB needs
   at commit; either way the store holds exactly the committed batches. */
static void test_map_full_nested(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .map_size = 1 << 20,
                       .reserve_pct = STORE_RESERVE_NONE };
    fx_open_opts(fx, &o);
    uint32_t seq = 0, in_batch = 0, committed = 0;
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rc = put_big(fx->store, x, seq++, 3000);
        in_batch += rc == 0;
    }
    assert_int_equal(rc, SY_EQUEUE_FULL);       /* a put, not the commit */
    assert_true(in_batch > 100);
    /* a smaller put after the failed one still works in the same batch */
    rc = put_big(fx->store, x, seq++, 10);
    assert_true(rc == 0 || rc == SY_EQUEUE_FULL);
    in_batch += rc == 0;
    assert_int_equal(store_txn_count(x), in_batch);
    int crc = store_txn_commit(&x);
    assert_true(crc == 0 || crc == SY_EQUEUE_FULL);
    if (crc == 0)
        committed = in_batch;
    assert_int_equal(counts(fx->store, "q").ready[1], committed);
    store_destroy(&fx->store);
    fx_open_opts(fx, &o);
    assert_int_equal(counts(fx->store, "q").ready[1], committed);
    print_message("map full without reserve: %u puts fit in one batch, "
                  "commit %s\n", in_batch, crc == 0 ? "ok" : "QUEUE_FULL");
}

static void test_lease_expiry_and_extend(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 2);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w1", 1000, T0, &m), 1);
    size_t n = 9;
    assert_int_equal(store_expire_leases(fx->store, T0 + 999, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 1000, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(counts(fx->store, "q").ready[1], 2);
    /* a late ack from the old holder is refused */
    assert_int_equal(store_ack(fx->store, m.id, "w1"), SY_ENOTFOUND);
    store_msg_clear(&m);
    /* redelivered first (its id is oldest), attempt + 1 */
    assert_int_equal(take1(fx->store, "q", "w2", 1000, T0 + 2000, &m), 1);
    assert_int_equal(m.attempt, 2);
    assert_int_equal(m.lease_deadline, T0 + 3000);
    /* extend moves the deadline */
    assert_int_equal(store_extend(fx->store, m.id, "w2", 5000, T0 + 2500), 0);
    assert_int_equal(store_extend(fx->store, m.id, "w1", 5000, T0 + 2500),
                     SY_ENOTFOUND);
    assert_int_equal(store_expire_leases(fx->store, T0 + 3000, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 7499, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 7500, 100, &n), 0);
    assert_int_equal(n, 1);
    store_msg_clear(&m);
}

static void test_nack(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, NULL), 0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 1);
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 5000,
                                T0 + 100), 0);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.delayed, 1);
    assert_int_equal(c.inflight, 0);
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 5099, NULL), -1);
    store_msg_clear(&m);
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 5100, &m), 1);
    assert_int_equal(m.attempt, 2);
    /* nack to the dead-letter queue with a reason */
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad input", false, 0,
                                T0 + 6000), 0);
    c = counts(fx->store, "q");
    assert_int_equal(c.dead, 1);
    assert_int_equal(c.ready[1] + c.delayed + c.inflight, 0);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, m.id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_string_equal(info.reason, "bad input");
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 0, T0),
                     SY_ENOTFOUND);
    store_msg_clear(&m);
}

static void test_max_attempts(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .max_attempts = 2 };
    fx_open_opts(fx, &o);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, NULL), 0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 1);
    assert_int_equal(store_nack(fx->store, m.id, NULL, NULL, true, 0, T0), 0);
    store_msg_clear(&m);
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 1);
    assert_int_equal(m.attempt, 2);
    /* second lease runs out: attempts used up */
    size_t n;
    assert_int_equal(store_expire_leases(fx->store, T0 + 1000, 10, &n), 0);
    assert_int_equal(n, 1);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, m.id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_string_equal(info.reason, STORE_REASON_MAX_ATTEMPTS);
    assert_int_equal(info.attempt, 2);
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 2000, NULL), -1);
    store_msg_clear(&m);
}

/* Per-service max attempts: "one" allows a single delivery, the others
   the store's default. */
static uint32_t attempts_of(const char *service, void *arg)
{
    (void) arg;
    return strcmp(service, "one") == 0 ? 1 : 0;
}

static void test_max_attempts_per_service(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .max_attempts = 3,
                       .attempts_fn = attempts_of };
    fx_open_opts(fx, &o);
    assert_int_equal(put1(fx->store, "one", 1, 1, T0, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "many", 1, 2, T0, 0, NULL, NULL), 0);
    store_msg_t a, b;
    assert_int_equal(take1(fx->store, "one", "w", 1000, T0, &a), 1);
    assert_int_equal(take1(fx->store, "many", "w", 1000, T0, &b), 2);
    size_t n;
    assert_int_equal(store_release_holder(fx->store, "w", &n), 0);
    assert_int_equal(n, 2);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, a.id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_string_equal(info.reason, STORE_REASON_MAX_ATTEMPTS);
    assert_int_equal(store_get_info(fx->store, b.id, &info), 0);
    assert_int_equal(info.state, STORE_READY);
    store_msg_clear(&a);
    store_msg_clear(&b);
}

/* store_ack_each checks each id against its own holder, in one commit. */
static void test_ack_each(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 3);
    store_msg_t m[3];
    assert_int_equal(take1(fx->store, "q", "w1", 1000, T0, &m[0]), 1);
    assert_int_equal(take1(fx->store, "q", "w2", 1000, T0, &m[1]), 2);
    assert_int_equal(take1(fx->store, "q", "w1", 1000, T0, &m[2]), 3);
    uint8_t ids[3][16];
    for (int i = 0; i < 3; i++)
        memcpy(ids[i], m[i].id, 16);
    /* the third is acked by the wrong holder: a late ack, not a failure */
    const char *holders[3] = { "w1", "w2", "w2" };
    int rcs[3] = { 9, 9, 9 };
    assert_int_equal(store_ack_each(fx->store, (const uint8_t (*)[16]) ids, holders, 3, rcs), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], SY_ENOTFOUND);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.inflight, 1);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, m[0].id, &info), SY_ENOTFOUND);
    for (int i = 0; i < 3; i++)
        store_msg_clear(&m[i]);
}

/* store_get copies a message in any state, here a dead letter. */
static void test_get_any_state(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    assert_int_equal(put1(fx->store, "q", 2, 7, T0, 0, NULL, NULL), 0);
    store_msg_t m, g;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 7);
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad", false, 0, T0), 0);
    assert_int_equal(store_get(fx->store, m.id, &g), 0);
    assert_int_equal(g.header_len, 2);
    assert_memory_equal(g.header, "H7", 2);
    assert_int_equal(g.body_len, 6);
    assert_memory_equal(g.body, "body-7", 6);
    assert_int_equal(g.prio, 2);
    assert_int_equal(g.attempt, 1);
    store_msg_clear(&g);
    uint8_t none[16];
    mkid(none, T0, 99);
    assert_int_equal(store_get(fx->store, none, &g), SY_ENOTFOUND);
    store_msg_clear(&m);
}

static void test_ttl(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, T0 + 100, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "q", 1, 2, T0, T0 + 500, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "q", 1, 3, T0, 0, NULL, NULL), 0);
    size_t n = 9;
    assert_int_equal(store_expire_ttl(fx->store, T0 + 99, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_ttl(fx->store, T0 + 100, 10, &n), 0);
    assert_int_equal(n, 1);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.dead, 1);
    assert_int_equal(c.ready[1], 2);
    /* take never hands out an expired message: it dead-letters it */
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 600, NULL), 3);
    c = counts(fx->store, "q");
    assert_int_equal(c.dead, 2);
    uint8_t id[16];
    mkid(id, T0, 2);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, id, &info), 0);
    assert_string_equal(info.reason, STORE_REASON_EXPIRED);
    /* an in-flight message whose ttl passed is dead-lettered when it
       comes back */
    assert_int_equal(put1(fx->store, "q", 1, 4, T0, T0 + 2000, NULL, NULL),
                     0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 5000, T0 + 1000, &m), 4);
    assert_int_equal(store_expire_ttl(fx->store, T0 + 3000, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 0,
                                T0 + 3000), 0);
    assert_int_equal(store_get_info(fx->store, m.id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_string_equal(info.reason, STORE_REASON_EXPIRED);
    store_msg_clear(&m);
}

/* Takes across many pages and chunks (ready entries are deleted by the
   cursor that reads them): order, ttl dead letters, counters and the ttl
   index stay exact; acks (lease deleted by its cursor) empty the store. */
static void test_take_ack_many_pages(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    enum { N = 1500 };
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    uint32_t expired = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint8_t id[16];
        mkid(id, T0, i);
        uint64_t ttl = i % 7 == 0 ? T0 + 10 : i % 5 == 0 ? T0 + 100000 : 0;
        expired += i % 7 == 0;
        char body[32];
        snprintf(body, sizeof(body), "body-%u", i);
        store_put_t p = { .service = "q", .prio = (uint8_t) (i % 3),
            .id = id, .body = (const uint8_t *) body,
            .body_len = strlen(body), .ttl_deadline = ttl };
        assert_int_equal(store_put(x, &p, NULL), 0);
    }
    assert_int_equal(store_txn_commit(&x), 0);
    static store_msg_t m[N];
    static uint8_t ids[N][16];
    size_t got = 0, n = 0;
    long last = -1;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(store_take(fx->store, "q", "w", 600, 1000, T0 + 20,
                                    m + got, &n), 0);
        for (size_t i = got; i < got + n; i++) {
            long key = (long) (idseq(m[i].id) % 3) * N + idseq(m[i].id);
            assert_true(key > last);  /* priority, then id order */
            assert_true(idseq(m[i].id) % 7 != 0);
            last = key;
            memcpy(ids[i], m[i].id, 16);
        }
        got += n;
    }
    assert_int_equal(got, N - expired);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.dead, expired);
    assert_int_equal(c.inflight, got);
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2], 0);
    assert_int_equal(store_expire_ttl(fx->store, T0 + 200000, 10000, &n), 0);
    assert_int_equal(n, 0);            /* taken: out of the ttl index */
    int rcs[N];
    assert_int_equal(store_ack_many(fx->store, (const uint8_t (*)[16]) ids,
                                    got, "w", rcs), 0);
    for (size_t i = 0; i < got; i++) {
        assert_int_equal(rcs[i], 0);
        store_msg_clear(&m[i]);
    }
    assert_int_equal(store_ack(fx->store, ids[0], "w"), SY_ENOTFOUND);
    c = counts(fx->store, "q");
    assert_int_equal(c.inflight, 0);
    uint64_t total = 9;
    assert_int_equal(store_message_count(fx->store, &total), 0);
    assert_int_equal(total, expired);
}

static int collect(const store_info_t *info, void *arg)
{
    long *seqs = arg;
    seqs[++seqs[0]] = idseq(info->id);
    return 0;
}

static void test_dlq_retry_purge(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 5);
    for (uint32_t i = 1; i <= 5; i++) {
        store_msg_t m;
        assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), i);
        assert_int_equal(store_nack(fx->store, m.id, "w", "boom", false, 0,
                                    T0), 0);
        store_msg_clear(&m);
    }
    long seqs[16] = { 0 };
    assert_int_equal(store_dlq_list(fx->store, "q", 0, collect, seqs), 0);
    assert_int_equal(seqs[0], 5);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(seqs[i], i);
    memset(seqs, 0, sizeof(seqs));
    assert_int_equal(store_dlq_list(fx->store, "q", 2, collect, seqs), 0);
    assert_int_equal(seqs[0], 2);
    /* retry one: ready again, attempt reset */
    uint8_t id[16];
    mkid(id, T0, 3);
    assert_int_equal(store_dlq_retry(fx->store, id, T0 + 10), 0);
    assert_int_equal(store_dlq_retry(fx->store, id, T0 + 10), SY_ENOTFOUND);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 10, &m), 3);
    assert_int_equal(m.attempt, 1);
    assert_int_equal(store_ack(fx->store, m.id, "w"), 0);
    store_msg_clear(&m);
    /* purge one */
    mkid(id, T0, 1);
    assert_int_equal(store_dlq_purge_id(fx->store, id), 0);
    assert_int_equal(store_dlq_purge_id(fx->store, id), SY_ENOTFOUND);
    assert_int_equal(counts(fx->store, "q").dead, 3);
    /* retry all of the service */
    size_t n = 0;
    assert_int_equal(store_dlq_retry_all(fx->store, "q", T0 + 20, &n), 0);
    assert_int_equal(n, 3);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.dead, 0);
    assert_int_equal(c.ready[1], 3);
    /* dead-letter them again and purge all */
    for (int i = 0; i < 3; i++) {
        assert_true(take1(fx->store, "q", "w", 1000, T0, &m) > 0);
        assert_int_equal(store_nack(fx->store, m.id, "w", NULL, false, 0,
                                    T0), 0);
        store_msg_clear(&m);
    }
    assert_int_equal(store_purge(fx->store, "q", false, &n), 0);
    assert_int_equal(n, 3);
    c = counts(fx->store, "q");
    assert_int_equal(c.dead + c.ready[1], 0);
    /* purge of the ready queue */
    for (uint32_t i = 10; i < 14; i++)
        assert_int_equal(put1(fx->store, "q", 0, i, T0, 0, NULL, NULL), 0);
    assert_int_equal(store_purge(fx->store, "q", true, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(counts(fx->store, "q").ready[0], 0);
}

static int count_holder(const store_info_t *info, void *arg)
{
    int *c = arg;
    if (strcmp(info->holder, "B") == 0)
        c[0]++;
    else
        c[1]++;
    assert_int_equal(info->state, STORE_INFLIGHT);
    assert_true(info->lease_deadline > 0);
    return 0;
}

static void test_release_holder(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 3);
    assert_int_equal(take1(fx->store, "q", "A", 1000, T0, NULL), 1);
    assert_int_equal(take1(fx->store, "q", "B", 1000, T0, NULL), 2);
    assert_int_equal(take1(fx->store, "q", "A", 1000, T0, NULL), 3);
    int c[2] = { 0, 0 };
    assert_int_equal(store_inflight_list(fx->store, "q", count_holder, c), 0);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 2);
    size_t n = 0;
    assert_int_equal(store_release_holder(fx->store, "A", &n), 0);
    assert_int_equal(n, 2);
    store_counts_t k = counts(fx->store, "q");
    assert_int_equal(k.ready[1], 2);
    assert_int_equal(k.inflight, 1);
    c[0] = c[1] = 0;
    assert_int_equal(store_inflight_list(fx->store, NULL, count_holder, c), 0);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "C", 1000, T0, &m), 1);
    assert_int_equal(m.attempt, 2);
    store_msg_clear(&m);
}

static void test_reopen_makes_inflight_ready(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 3);
    assert_int_equal(take1(fx->store, "q", "A", 100000, T0, NULL), 1);
    assert_int_equal(take1(fx->store, "q", "A", 100000, T0, NULL), 2);
    store_destroy(&fx->store);
    assert_null(fx->store);
    fx_open(fx);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.ready[1], 3);
    assert_int_equal(c.inflight, 0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "B", 1000, T0 + 1, &m), 1);
    assert_int_equal(m.attempt, 2);
    store_msg_clear(&m);
}

static int svc_seen(const char *svc, const store_counts_t *c, void *arg)
{
    int *seen = arg;
    if (strcmp(svc, "a") == 0 && c->ready[0] == 1)
        seen[0]++;
    if (strcmp(svc, "b") == 0 && c->ready[2] == 2)
        seen[1]++;
    return 0;
}

static void test_services_view(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    assert_int_equal(put1(fx->store, "a", 0, 1, T0, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "b", 2, 2, T0 + 5, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "b", 2, 3, T0 + 9, 0, NULL, NULL), 0);
    int seen[2] = { 0, 0 };
    assert_int_equal(store_services(fx->store, svc_seen, seen), 0);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(counts(fx->store, "b").oldest_ms, T0 + 5);
    assert_int_equal(counts(fx->store, "nobody").ready[1], 0);
}

static void make_store_with_data(fx_t *fx)
{
    fx_open(fx);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, NULL), 0);
    store_destroy(&fx->store);
}

/* The store's LMDB data file, opened for rewriting; its length in len. */
static FILE *data_file(fx_t *fx, long *len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/data.mdb", fx->dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    return f;
}

/* store_open must refuse the directory with an error mentioning what
   (and also, when not NULL). */
static void expect_refused(fx_t *fx, const char *what, const char *also)
{
    char err[400] = "";
    store_opts_t o = { .dir = fx->dir };
    assert_int_equal(store_open(&o, &fx->store, err, sizeof(err)), SY_ESTORE);
    assert_null(fx->store);
    if (!strstr(err, what) || (also && !strstr(err, also)))
        fail_msg("refused with \"%s\", wanted \"%s\"", err, what);
}

/* LMDB opened directly on the store's directory, a transaction begun. */
static void raw_lmdb(fx_t *fx, unsigned flags, MDB_env **env, MDB_txn **t)
{
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 16), 0);
    assert_int_equal(mdb_env_open(*env, fx->dir, flags, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, flags, t), 0);
}

static void test_corrupt_refused(void **state)
{
    fx_t *fx = *state;
    make_store_with_data(fx);
    long len;
    FILE *f = data_file(fx, &len);
    fseek(f, 0, SEEK_SET);
    srand(42);
    for (long i = 0; i < len; i++)
        fputc(rand() & 0xff, f);
    fclose(f);
    expect_refused(fx, "not an LMDB file", NULL);
    /* still refused, never recreated */
    expect_refused(fx, "not an LMDB file", NULL);
}

/* Zeros over the pages after LMDB's two meta pages (as a lost write or a
   hole would leave them): the meta pages still look right, the trees
   behind them do not.  (Random garbage there can crash LMDB itself, which
   keeps no page checksums; see store.h.) */
static void test_corrupt_pages_refused(void **state)
{
    fx_t *fx = *state;
    make_store_with_data(fx);
    long len;
    FILE *f = data_file(fx, &len);
    long psize = sysconf(_SC_PAGESIZE);
    assert_true(len > 2 * psize);
    fseek(f, 2 * psize, SEEK_SET);
    for (long i = 2 * psize; i < len; i++)
        fputc(0, f);
    fclose(f);
    expect_refused(fx, "damaged", NULL);
}

static void test_newer_format_refused(void **state)
{
    fx_t *fx = *state;
    make_store_with_data(fx);
    /* write format 2 behind the store's back */
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    raw_lmdb(fx, 0, &env, &t);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &dbi), 0);
    uint32_t ver = STORE_FORMAT_VERSION + 1;
    MDB_val k = { 6, "format" }, v = { sizeof(ver), &ver };
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    expect_refused(fx, "newer", NULL);
}

/* A store written by the older layout (format 1) is refused with a
   message saying so, and left as it was. */
static void test_older_format_refused(void **state)
{
    fx_t *fx = *state;
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi meta, data;
    raw_lmdb(fx, 0, &env, &t);
    assert_int_equal(mdb_dbi_open(t, "meta", MDB_CREATE, &meta), 0);
    assert_int_equal(mdb_dbi_open(t, "data", MDB_CREATE, &data), 0);
    uint32_t ver = 1;
    MDB_val k = { 6, "format" }, v = { sizeof(ver), &ver };
    assert_int_equal(mdb_put(t, meta, &k, &v, 0), 0);
    MDB_val dk = { 16, "0123456789abcdef" }, dv = { 5, "bytes" };
    assert_int_equal(mdb_put(t, data, &dk, &dv, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    expect_refused(fx, "format version 1", "older");
    /* untouched: the old record is still there, the format still 1 */
    raw_lmdb(fx, MDB_RDONLY, &env, &t);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(t, "data", 0, &data), 0);
    assert_int_equal(mdb_get(t, meta, &k, &v), 0);
    memcpy(&ver, v.mv_data, sizeof(ver));
    assert_int_equal(ver, 1);
    assert_int_equal(mdb_get(t, data, &dk, &dv), 0);
    assert_int_equal(dv.mv_size, 5);
    mdb_txn_abort(t);
    mdb_env_close(env);
}

/* The attempt count of a take is on disk with the take: a message in
   flight at every "crash" (close without ack) uses up its attempts
   across restarts and ends in the dead-letter queue. */
static void test_restarts_count_attempts(void **state)
{
    fx_t *fx = *state;
    store_opts_t o = { .sync = STORE_SYNC_NONE, .max_attempts = 2 };
    fx_open_opts(fx, &o);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, NULL), 0);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 1);
    assert_int_equal(m.attempt, 1);
    store_msg_clear(&m);
    store_destroy(&fx->store);
    fx_open_opts(fx, &o);
    assert_int_equal(counts(fx->store, "q").ready[1], 1);
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0 + 1, &m), 1);
    assert_int_equal(m.attempt, 2);
    store_destroy(&fx->store);
    fx_open_opts(fx, &o);
    store_counts_t c = counts(fx->store, "q");
    assert_int_equal(c.dead, 1);
    assert_int_equal(c.ready[1] + c.inflight, 0);
    store_info_t info;
    assert_int_equal(store_get_info(fx->store, m.id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_string_equal(info.reason, STORE_REASON_MAX_ATTEMPTS);
    assert_int_equal(info.attempt, 2);
    store_msg_clear(&m);
}

/* store_take_fn that accepts every message and counts them. */
static int take_count(const store_msg_t *m, void *arg)
{
    (void) m;
    (*(int *) arg)++;
    return 0;
}

/* Lease expiry reads the in-flight records only when a remembered bound
   says a lease may have ended; a batch that scanned and was dropped must
   not raise that bound past a lease it had deleted, and a lease written
   after the scan in the same batch lowers it again. */
static void test_lease_bound_follows_commits(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_seq(fx, "q", 1, 2);
    store_msg_t m;
    assert_int_equal(take1(fx->store, "q", "w", 1000, T0, &m), 1);
    /* a batch acks it, scans (nothing left in flight), then is dropped */
    store_txn_t *x;
    size_t a = 9, b = 9;
    assert_int_equal(store_txn_begin(fx->store, T0 + 10, &x), 0);
    assert_int_equal(store_txn_ack(x, m.id, "w"), 0);
    assert_int_equal(store_txn_expire(x, T0 + 10, 100, &a, &b), 0);
    assert_int_equal(a, 0);
    store_txn_abort(&x);
    size_t n = 9;
    assert_int_equal(store_expire_leases(fx->store, T0 + 999, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 1000, 100, &n), 0);
    assert_int_equal(n, 1);
    store_msg_clear(&m);
    /* a lease taken and acked leaves the bound behind (T0 + 1500) */
    assert_int_equal(take1(fx->store, "q", "w", 400, T0 + 1100, &m), 1);
    assert_int_equal(store_ack(fx->store, m.id, "w"), 0);
    store_msg_clear(&m);
    /* a batch scans first (nothing in flight), then leases: committed,
       that lease still runs out */
    assert_int_equal(store_txn_begin(fx->store, T0 + 2000, &x), 0);
    assert_int_equal(store_txn_expire(x, T0 + 2000, 100, &a, &b), 0);
    assert_int_equal(a, 0);
    size_t got = 0;
    int seen = 0;
    assert_int_equal(store_txn_take(x, "q", "w", 1, 500, T0 + 2000,
                                    take_count, &seen, &got), 0);
    assert_int_equal(got, 1);
    assert_int_equal(store_txn_commit(&x), 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 2499, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_expire_leases(fx->store, T0 + 2500, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(counts(fx->store, "q").inflight, 0);
}

/* An LMDB file with nothing in it (a first start killed before its first
   commit) is taken as a new store. */
static void test_empty_lmdb_becomes_store(void **state)
{
    fx_t *fx = *state;
    MDB_env *env;
    MDB_txn *t;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    fx_open(fx);
    assert_int_equal(put1(fx->store, "q", 1, 1, T0, 0, NULL, NULL), 0);
    store_destroy(&fx->store);
    fx_open(fx);
    assert_int_equal(counts(fx->store, "q").ready[1], 1);
}

static void test_foreign_lmdb_refused(void **state)
{
    fx_t *fx = *state;
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, NULL, 0, &dbi), 0);
    MDB_val k = { 3, "abc" }, v = { 3, "def" };
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    char err[256] = "";
    store_opts_t o = { .dir = fx->dir };
    assert_int_equal(store_open(&o, &fx->store, err, sizeof(err)), SY_ESTORE);
    assert_non_null(strstr(err, "not a switchyard store"));
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The child of the crash test: commits batches and reports each
   committed seq on fd, until killed. */
static void crash_child(const char *dir, int fd)
{
    store_opts_t o = { .dir = dir, .sync = STORE_SYNC_FULL };
    store_t *s;
    char err[256];
    if (store_open(&o, &s, err, sizeof(err)))
        _exit(2);
    uint32_t seq = 0;
    for (int b = 0; b < 100000; b++) {
        store_txn_t *x;
        if (store_txn_begin(s, T0, &x))
            _exit(3);
        uint32_t first = seq;
        for (int i = 0; i < 1 + b % 7; i++) {
            uint8_t id[16], body[100];
            mkid(id, T0, seq++);
            memset(body, 'z', sizeof(body));
            store_put_t p = { .service = "c", .prio = (uint8_t) (i % 3),
                              .id = id, .body = body, .body_len = 100 };
            if (store_put(x, &p, NULL))
                _exit(4);
        }
        if (store_txn_commit(&x))
            _exit(5);
        for (uint32_t q = first; q < seq; q++)
            if (write(fd, &q, sizeof(q)) != sizeof(q))
                _exit(6);
    }
    _exit(0);
}

static void test_crash_loses_nothing_committed(void **state)
{
    fx_t *fx = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        crash_child(fx->dir, pfd[1]);
    }
    close(pfd[1]);
    uint32_t *seen = calloc(1 << 20, sizeof(uint32_t));
    assert_non_null(seen);
    size_t n = 0;
    uint32_t q;
    /* wait for the first commit, then kill at a random moment */
    if (read(pfd[0], &q, sizeof(q)) == sizeof(q))
        seen[n++] = q;
    srand((unsigned) time(NULL) ^ (unsigned) getpid());
    usleep(10000 + (useconds_t) (rand() % 200000));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    /* read the rest of what the child reported as committed */
    while (n < (1 << 20) && read(pfd[0], &q, sizeof(q)) == sizeof(q))
        seen[n++] = q;
    close(pfd[0]);
    assert_true(n > 0);
    fx_open(fx);
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        mkid(id, T0, seen[i]);
        store_info_t info;
        assert_int_equal(store_get_info(fx->store, id, &info), 0);
        assert_int_equal(info.state, STORE_READY);
    }
    store_counts_t c = counts(fx->store, "c");
    assert_true(c.ready[0] + c.ready[1] + c.ready[2] >= n);
    print_message("crash test: %zu committed puts checked\n", n);
    free(seen);
}

static void test_startup_fast(void **state)
{
    fx_t *fx = *state;
    const char *env = getenv("SY_STORE_BIG");
    uint32_t total = env ? (uint32_t) atol(env) : 100000;
    store_opts_t o = { .sync = STORE_SYNC_NONE,
                       .map_size = 4ULL << 30 };
    fx_open_opts(fx, &o);
    uint64_t t0 = mono_ms();
    uint8_t body[64];
    memset(body, 'x', sizeof(body));
    for (uint32_t seq = 0; seq < total; ) {
        store_txn_t *x;
        assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
        for (int i = 0; i < 1000 && seq < total; i++, seq++) {
            uint8_t id[16];
            mkid(id, T0 + seq / 1000, seq);
            store_put_t p = { .service = "big", .prio = (uint8_t) (seq % 3),
                              .id = id, .body = body, .body_len = 64 };
            assert_int_equal(store_put(x, &p, NULL), 0);
        }
        assert_int_equal(store_txn_commit(&x), 0);
    }
    uint64_t t_put = mono_ms() - t0;
    store_msg_t m[10];
    size_t n;
    assert_int_equal(store_take(fx->store, "big", "w", 10, 1000, T0, m, &n),
                     0);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        store_msg_clear(&m[i]);
    store_destroy(&fx->store);
    t0 = mono_ms();
    fx_open_opts(fx, &o);
    store_counts_t c = counts(fx->store, "big");
    uint64_t t_open = mono_ms() - t0;
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2], total);
    assert_int_equal(c.inflight, 0);
    print_message("startup: %u puts in %llu ms, reopen with 10 in flight "
                  "%llu ms\n", total, (unsigned long long) t_put,
                  (unsigned long long) t_open);
    assert_true(t_open < 1000);
}

/* ------------------------------------------------------------ place */

/* Puts n messages on svc in one batch: seq first.., prio prio_of(seq),
   all at T0 (so id order is seq order). */
static uint8_t place_prio(uint32_t seq)
{
    return (uint8_t) ((seq * 7 + seq / 5) % 3);
}

static void put_many(store_t *s, const char *svc, uint32_t first, uint32_t n)
{
    store_txn_t *x;
    assert_int_equal(store_txn_begin(s, T0, &x), 0);
    for (uint32_t seq = first; seq < first + n; seq++) {
        uint8_t id[16];
        char body[32];
        mkid(id, T0, seq);
        snprintf(body, sizeof body, "body-%u", seq);    /* as take1 checks */
        store_put_t p = { .service = svc, .prio = place_prio(seq), .id = id,
                          .header = (const uint8_t *) "H", .header_len = 1,
                          .body = (const uint8_t *) body, .body_len = strlen(body) };
        assert_int_equal(store_put(x, &p, NULL), 0);
    }
    assert_int_equal(store_txn_commit(&x), 0);
}

/* The expected place of seq among the ready seqs 1..n not in gone[]. */
static uint64_t place_expected(uint32_t seq, uint32_t n, const bool *gone)
{
    uint64_t place = 1;
    for (uint32_t o = 1; o <= n; o++)
        if (!gone[o] && o != seq
            && (place_prio(o) < place_prio(seq)
                || (place_prio(o) == place_prio(seq) && o < seq)))
            place++;
    return place;
}

static void test_place_every_position(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    enum { N = 120 };
    bool gone[N + 1] = { false };
    put_many(fx->store, "pq", 1, N);
    put_many(fx->store, "pq-other", 1000, 5);       /* a neighbour queue */
    /* take a few (inflight), so the ready index has holes */
    for (int i = 0; i < 4; i++) {
        long seq = take1(fx->store, "pq", "w", 60000, T0, NULL);
        assert_true(seq > 0);
        gone[seq] = true;
    }
    for (uint32_t seq = 1; seq <= N; seq++) {
        uint8_t id[16];
        mkid(id, T0, seq);
        store_place_t pl;
        assert_int_equal(store_place(fx->store, "pq", id, 0, &pl), 0);
        assert_int_equal(pl.ready, N - 4);
        assert_false(pl.capped);
        if (gone[seq]) {
            assert_int_equal(pl.state, STORE_INFLIGHT);
            assert_int_equal(pl.place, 0);
            continue;
        }
        assert_int_equal(pl.state, STORE_READY);
        assert_int_equal(pl.place, place_expected(seq, N, gone));
        /* with a bound: the same up to it, the bound beyond */
        uint64_t want = place_expected(seq, N, gone);
        for (uint64_t max = 1; max <= 60; max += 7) {
            assert_int_equal(store_place(fx->store, "pq", id, max, &pl), 0);
            assert_int_equal(pl.place, want <= max ? want : max);
            assert_int_equal(pl.capped, want > max);
        }
    }
    /* the first one to be taken is place 1 */
    store_msg_t m;
    long first = take1(fx->store, "pq", "w", 60000, T0, &m);
    assert_true(first > 0);
    gone[first] = true;
    store_msg_clear(&m);
    for (uint32_t seq = 1; seq <= N; seq++)
        if (!gone[seq]) {
            uint8_t id[16];
            mkid(id, T0, seq);
            store_place_t pl;
            assert_int_equal(store_place(fx->store, "pq", id, 0, &pl), 0);
            assert_int_equal(pl.place, place_expected(seq, N, gone));
        }
}

static void test_place_states(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    store_place_t pl;
    uint8_t id[16];
    mkid(id, T0, 1);
    /* a service never seen, with and without an id */
    assert_int_equal(store_place(fx->store, "none", NULL, 0, &pl), 0);
    assert_int_equal(pl.ready, 0);
    assert_int_equal(store_place(fx->store, "none", id, 0, &pl), 0);
    assert_int_equal(pl.ready, 0);
    assert_int_equal(pl.state, 0);
    assert_int_equal(pl.place, 0);

    assert_int_equal(put1(fx->store, "s", 1, 1, T0, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "s", 1, 2, T0, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "s", 2, 3, T0, 0, NULL, NULL), 0);
    assert_int_equal(store_place(fx->store, "s", NULL, 0, &pl), 0);
    assert_int_equal(pl.ready, 3);
    assert_int_equal(pl.state, 0);
    /* another queue's message is not in this one */
    assert_int_equal(store_place(fx->store, "t", id, 0, &pl), 0);
    assert_int_equal(pl.state, 0);

    store_msg_t m;
    assert_int_equal(take1(fx->store, "s", "w", 1000, T0, &m), 1);
    assert_int_equal(store_place(fx->store, "s", m.id, 0, &pl), 0);
    assert_int_equal(pl.state, STORE_INFLIGHT);
    assert_int_equal(pl.ready, 2);
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 5000, T0), 0);
    assert_int_equal(store_place(fx->store, "s", m.id, 0, &pl), 0);
    assert_int_equal(pl.state, STORE_DELAYED);
    assert_int_equal(pl.ready, 2);              /* delayed: not counted */
    assert_int_equal(pl.place, 0);
    store_msg_clear(&m);
    assert_int_equal(take1(fx->store, "s", "w", 1000, T0, &m), 2);
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad", false, 0, T0), 0);
    assert_int_equal(store_place(fx->store, "s", m.id, 0, &pl), 0);
    assert_int_equal(pl.state, STORE_DEAD);
    store_msg_clear(&m);
    mkid(id, T0, 3);
    assert_int_equal(store_place(fx->store, "s", id, 0, &pl), 0);
    assert_int_equal(pl.state, STORE_READY);
    assert_int_equal(pl.place, 1);
    assert_int_equal(pl.ready, 1);
    mkid(id, T0, 99);
    assert_int_equal(store_place(fx->store, "s", id, 0, &pl), 0);
    assert_int_equal(pl.state, 0);

    assert_int_equal(store_place(NULL, "s", id, 0, &pl), SY_EINVAL);
    assert_int_equal(store_place(fx->store, "", id, 0, &pl), SY_EINVAL);
    assert_int_equal(store_place(fx->store, "s", id, 0, NULL), SY_EINVAL);
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    assert_int_equal(store_place(fx->store, "s", id, 0, &pl), SY_EINVAL);
    store_txn_abort(&x);
}

/* The newest and the oldest of a long queue are placed in a few reads
   (the walk goes both ways): 20,000 messages in one priority, the place
   asked with a bound far below the queue's length still comes out exact
   for both ends, and capped in the middle. */
static void test_place_walk_ends(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    enum { N = 20000 };
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    for (uint32_t seq = 1; seq <= N; seq++) {
        uint8_t id[16];
        mkid(id, T0, seq);
        store_put_t p = { .service = "long", .prio = 1, .id = id,
                          .header = (const uint8_t *) "H", .header_len = 1,
                          .body = (const uint8_t *) "B", .body_len = 1 };
        assert_int_equal(store_put(x, &p, NULL), 0);
    }
    assert_int_equal(store_txn_commit(&x), 0);
    uint8_t id[16];
    store_place_t pl;
    mkid(id, T0, N);
    assert_int_equal(store_place(fx->store, "long", id, 0, &pl), 0);
    assert_int_equal(pl.place, N);
    mkid(id, T0, 1);
    assert_int_equal(store_place(fx->store, "long", id, 100, &pl), 0);
    assert_int_equal(pl.place, 1);
    assert_false(pl.capped);
    mkid(id, T0, N / 2);
    assert_int_equal(store_place(fx->store, "long", id, 100, &pl), 0);
    assert_int_equal(pl.place, 100);
    assert_true(pl.capped);
    assert_int_equal(store_place(fx->store, "long", id, 0, &pl), 0);
    assert_int_equal(pl.place, N / 2);
    /* a high-priority message ahead of all of them */
    assert_int_equal(put1(fx->store, "long", 0, N + 1, T0, 0, NULL, NULL), 0);
    mkid(id, T0, N);
    assert_int_equal(store_place(fx->store, "long", id, 0, &pl), 0);
    assert_int_equal(pl.place, N + 1);
    assert_int_equal(store_place(fx->store, "long", id, 1, &pl), 0);
    assert_int_equal(pl.place, 1);
    assert_true(pl.capped);
}

/* ------------------------------------------------------------ cancel */

static void test_cancel(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    uint8_t first[16];
    assert_int_equal(put1(fx->store, "c", 1, 1, T0, 0, "k1", NULL), 0);
    assert_int_equal(put1(fx->store, "c", 1, 2, T0, T0 + 60000, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "c", 1, 3, T0, 0, NULL, NULL), 0);
    assert_int_equal(put1(fx->store, "c", 1, 4, T0, 0, NULL, NULL), 0);
    uint8_t id[16];
    store_state_t was = 0;

    /* ready: removed, with its ttl entry; the key's record stays */
    mkid(id, T0, 1);
    assert_int_equal(store_cancel(fx->store, "c", id, &was), 0);
    assert_int_equal(was, STORE_READY);
    assert_int_equal(store_get_info(fx->store, id, &(store_info_t) { 0 }), SY_ENOTFOUND);
    assert_int_equal(put1(fx->store, "c", 1, 50, T0 + 1, 0, "k1", first), SY_EDUPLICATE);
    assert_int_equal(idseq(first), 1);
    assert_int_equal(store_cancel(fx->store, "c", id, &was), SY_ENOTFOUND);
    mkid(id, T0, 2);
    assert_int_equal(store_cancel(fx->store, "c", id, &was), 0);
    assert_int_equal(was, STORE_READY);
    size_t n = 9;
    assert_int_equal(store_expire_ttl(fx->store, T0 + 120000, 100, &n), 0);
    assert_int_equal(n, 0);                     /* no ttl entry was left */

    /* another service's id is not found there */
    mkid(id, T0, 3);
    assert_int_equal(store_cancel(fx->store, "d", id, &was), SY_ENOTFOUND);

    /* inflight: left alone */
    store_msg_t m;
    assert_int_equal(take1(fx->store, "c", "w", 1000, T0, &m), 3);
    was = 0;
    assert_int_equal(store_cancel(fx->store, "c", m.id, &was), 0);
    assert_int_equal(was, STORE_INFLIGHT);
    assert_int_equal(counts(fx->store, "c").inflight, 1);
    /* delayed: removed */
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 5000, T0), 0);
    assert_int_equal(store_cancel(fx->store, "c", m.id, &was), 0);
    assert_int_equal(was, STORE_DELAYED);
    assert_int_equal(counts(fx->store, "c").delayed, 0);
    store_msg_clear(&m);
    /* dead: left alone */
    assert_int_equal(take1(fx->store, "c", "w", 1000, T0, &m), 4);
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad", false, 0, T0), 0);
    assert_int_equal(store_cancel(fx->store, "c", m.id, &was), 0);
    assert_int_equal(was, STORE_DEAD);
    assert_int_equal(counts(fx->store, "c").dead, 1);
    store_msg_clear(&m);

    store_counts_t c = counts(fx->store, "c");
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2] + c.delayed + c.inflight, 0);
    assert_int_equal(take1(fx->store, "c", "w", 1000, T0 + 10000, NULL), -1);
    uint64_t total = 0;
    assert_int_equal(store_message_count(fx->store, &total), 0);
    assert_int_equal(total, 1);                 /* the dead letter */

    assert_int_equal(store_cancel(fx->store, "c", NULL, &was), SY_EINVAL);
    assert_int_equal(store_cancel(fx->store, "", id, &was), SY_EINVAL);
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    assert_int_equal(store_cancel(fx->store, "c", id, &was), SY_EINVAL);
    store_txn_abort(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_and_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts_per_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_any_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_ack_many_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_retry_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_makes_inflight_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pages_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restarts_count_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_bound_follows_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_lmdb_becomes_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_lmdb_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_loses_nothing_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_startup_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_every_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_walk_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
