/*  benchfill.c -- sy-bench-fill: fills a broker store, or reads its counts.
 *
 *  For the restart benchmark the broker must find a million messages
 *  queued.  Sending them through the broker would measure the send path
 *  again and take minutes; this program writes them straight into a store
 *  with the broker's own store API (broker/store.h), exactly as the broker
 *  would have kept them: a real durable envelope header (the project's
 *  codec) and a body of --body bytes, one time-ordered id each, service
 *  --service, normal priority, the body sealed with the store's key file
 *  (common/seal.h, the message id as associated data, as broker/durable.c
 *  seals it).  The key file and its fingerprint in the store are the
 *  broker's to make: bench/run.sh starts the broker once on the empty
 *  store before the fill.  Batches of 10,000 puts per transaction,
 *  sync none (the benchmark times the restart, not the fill); the store is
 *  closed cleanly, so what it wrote is in the file for the next opener.
 *
 *  `--counts` opens an existing store (which, like the broker at start,
 *  returns in-flight messages to ready) and prints one service's counts:
 *  after a durable run the queue must be empty, or the run lost track of
 *  messages.
 *
 *  Loops are bounded by --count and by --max-secs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchwire.h"
#include "broker/store.h"
#include "common/seal.h"
#include "schemas/syerr.h"

#define BENCHFILL_BATCH 10000

typedef struct {
    const char *dir;
    const char *service;
    const char *key_dir;
    size_t      count;
    size_t      body;
    uint64_t    map_size;
    unsigned    max_secs;
    bool        counts;
} benchfill_args_t;

static double benchfill_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encodes the header the broker would store for a durable send from
   "bench-producer" to service.  Returns its length or a negative code. */
static int benchfill_header(uint8_t *buf, size_t cap, syid_t *gen,
                            const char *service, uint8_t id[16])
{
    envelope_t env;
    int rc = benchwire_header(&env, gen, BENCHWIRE_REQ_TYPE, service, NULL);
    if (rc < 0)
        return rc;
    env.durable = true;
    env.ts = syid_now_ms();
    env.present |= ENV_HAS_DURABLE | ENV_HAS_TS;
    envelope_set_from(&env, "bench-producer");
    memcpy(id, env.id, 16);
    return envelope_encode(&env, buf, cap);
}

/* One batch of at most n puts in one transaction.  Returns the number
   stored or a negative code. */
static long benchfill_batch(store_t *st, seal_t *seal,
                            const benchfill_args_t *a, syid_t *gen,
                            const uint8_t *body, size_t n)
{
    static uint8_t sealed[BENCHWIRE_BODY_MAX + SEAL_OVERHEAD];
    store_txn_t *txn = NULL;
    int rc = store_txn_begin(st, syid_now_ms(), &txn);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t hdr[ENVELOPE_MAX_ENCODED], id[16];
        int hlen = benchfill_header(hdr, sizeof hdr, gen, a->service, id);
        if (hlen < 0) {
            rc = hlen;
            break;
        }
        size_t slen = 0;
        rc = seal_encrypt(seal, id, 16, body, a->body, sealed, sizeof sealed,
                          &slen);
        if (rc < 0)
            break;
        store_put_t p = {.service = a->service, .prio = ENVELOPE_PRIO_NORMAL,
                         .id = id, .header = hdr, .header_len = (size_t)hlen,
                         .body = sealed, .body_len = slen};
        rc = store_put(txn, &p, NULL);
    }
    if (rc < 0) {
        store_txn_abort(&txn);
        return rc;
    }
    rc = store_txn_commit(&txn);
    return rc < 0 ? rc : (long)n;
}

static int benchfill_open(const benchfill_args_t *a, store_sync_t sync,
                          store_t **st)
{
    char err[256] = "";
    store_opts_t o = {.dir = a->dir, .map_size = a->map_size, .sync = sync};
    int rc = store_open(&o, st, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "sy-bench-fill: %s: %s\n", a->dir,
                err[0] ? err : syerr_name(rc));
    return rc;
}

static int benchfill_fill(const benchfill_args_t *a)
{
    static uint8_t body[BENCHWIRE_BODY_MAX];
    if (benchwire_request_body(body, sizeof body, 0, a->body) < 0)
        return 1;
    char err[400] = "";
    seal_t *seal = NULL;
    if (seal_open(a->key_dir ? a->key_dir : a->dir, false, &seal, err,
                  sizeof err) < 0) {
        fprintf(stderr, "sy-bench-fill: %s (start the broker once on the "
                "store first: it makes the key)\n", err);
        return 1;
    }
    store_t *st = NULL;
    if (benchfill_open(a, STORE_SYNC_NONE, &st) < 0) {
        seal_destroy(&seal);
        return 1;
    }
    syid_t gen;
    syid_init(&gen);
    double t0 = benchfill_now(), deadline = t0 + a->max_secs;
    size_t done = 0;
    long got = 0;
    while (done < a->count && benchfill_now() < deadline) {
        size_t n = a->count - done < BENCHFILL_BATCH ? a->count - done
                                                     : BENCHFILL_BATCH;
        got = benchfill_batch(st, seal, a, &gen, body, n);
        if (got < 0)
            break;
        done += (size_t)got;
    }
    store_destroy(&st);
    seal_destroy(&seal);
    double secs = benchfill_now() - t0;
    if (got < 0 || done != a->count) {
        fprintf(stderr, "sy-bench-fill: stored %zu of %zu (%s)\n", done,
                a->count, got < 0 ? syerr_name((int)got) : "out of time");
        return 1;
    }
    printf("fill n=%zu secs=%.2f rate=%.0f\n", done, secs,
           (double)done / secs);
    return 0;
}

static int benchfill_counts(const benchfill_args_t *a)
{
    store_t *st = NULL;
    if (benchfill_open(a, STORE_SYNC_FULL, &st) < 0)
        return 1;
    store_counts_t c;
    int rc = store_counts(st, a->service, &c);
    store_destroy(&st);
    if (rc < 0) {
        fprintf(stderr, "sy-bench-fill: counts: %s\n", syerr_name(rc));
        return 1;
    }
    printf("counts service=%s ready=%llu delayed=%llu inflight=%llu"
           " dead=%llu\n", a->service,
           (unsigned long long)(c.ready[0] + c.ready[1] + c.ready[2]),
           (unsigned long long)c.delayed, (unsigned long long)c.inflight,
           (unsigned long long)c.dead);
    return 0;
}

static void benchfill_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench-fill --dir DIR [--count N] [--body B] [--service S]\n"
        "                     [--key-dir D] [--map-size BYTES] [--max-secs S]\n"
        "       sy-bench-fill --counts --dir DIR [--service S]\n"
        "  --count N        messages to store (1000000)\n"
        "  --body B         body bytes (256)\n"
        "  --service S      service of the messages (bdur)\n"
        "  --key-dir D      directory of store.key (DIR)\n"
        "  --map-size BYTES LMDB map size (4 GiB)\n"
        "  --max-secs S     bound of the fill (300)\n");
}

static int benchfill_parse(int argc, char **argv, benchfill_args_t *a)
{
    static const struct option longopts[] = {
        {"dir", 1, 0, 'd'}, {"count", 1, 0, 'n'}, {"body", 1, 0, 'b'},
        {"service", 1, 0, 's'}, {"map-size", 1, 0, 'm'},
        {"max-secs", 1, 0, 't'}, {"counts", 0, 0, 'c'},
        {"key-dir", 1, 0, 'k'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (benchfill_args_t){.service = "bdur", .count = 1000000, .body = 256,
                            .map_size = 4ULL << 30, .max_secs = 300};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 'd': a->dir = optarg; break;
        case 'n': a->count = (size_t)v; break;
        case 'b': a->body = (size_t)v; break;
        case 's': a->service = optarg; break;
        case 'm': a->map_size = v; break;
        case 't': a->max_secs = (unsigned)v; break;
        case 'c': a->counts = true; break;
        case 'k': a->key_dir = optarg; break;
        case 'h': benchfill_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    if (!a->dir || a->count == 0 || a->body < 32
        || a->body > BENCHWIRE_BODY_MAX || a->max_secs == 0)
        return SY_EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    benchfill_args_t a;
    if (benchfill_parse(argc, argv, &a) < 0) {
        benchfill_usage(stderr);
        return 2;
    }
    return a.counts ? benchfill_counts(&a) : benchfill_fill(&a);
}
