/*  benchlmdb.c -- sy-bench-lmdb: the raw LMDB limit of a durable queue.
 *
 *  What the durable benchmark compares sy-broker with: the fastest a
 *  program can move messages through LMDB with full sync, doing nothing
 *  else.  One environment (the same flags as broker/store.c with sync =
 *  full: every commit fdatasyncs the data and writes the meta page
 *  synchronously), one database, key = a 16-byte time-ordered id
 *  (schemas/syid.h, so the tree only ever appends), value = the bytes the
 *  broker would keep for a message: a real durable envelope header
 *  (encoded with the project's codec) and the body.
 *
 *  Two phases, each in transactions of --batch messages:
 *    put     write `batch` records, commit (one sync per batch);
 *    take    from the start of the tree: read `batch` records (copying
 *            each value out, as a delivery would), delete them, commit.
 *  The queue is empty at the end.  Figures (one key=value line):
 *    put_rps    records put per second;
 *    take_rps   records read and deleted per second;
 *    cycle_rps  count / (put time + take time): messages per second
 *               through a full put -> take+delete cycle, the figure to
 *               hold the broker's send -> deliver -> ack rate against.
 *
 *  Also `--txnid DIR`: prints the last committed transaction id of an LMDB
 *  environment (benchtxnid.h), for the script.
 *
 *  Every loop is bounded by its count and by --max-secs.
 */
#include <errno.h>
#include <getopt.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench/benchtxnid.h"
#include "bench/benchwire.h"
#include "schemas/syerr.h"

typedef struct {
    const char *dir;
    const char *txnid_dir;
    size_t      batch;
    size_t      count;
    size_t      body;
    unsigned    max_secs;
} benchlmdb_args_t;

static double benchlmdb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of one record: header length (4 bytes), a durable envelope
   header like the producer's, the body.  Returns its length. */
static size_t benchlmdb_record(uint8_t *buf, size_t cap, size_t body)
{
    syid_t gen;
    syid_init(&gen);
    envelope_t env;
    benchwire_header(&env, &gen, BENCHWIRE_REQ_TYPE, "bdur", NULL);
    env.durable = true;
    env.present |= ENV_HAS_DURABLE | ENV_HAS_TS | ENV_HAS_ATTEMPT;
    env.ts = syid_now_ms();
    env.attempt = 1;
    envelope_set_from(&env, "bench-producer");
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(&env, hdr, sizeof hdr);
    if (hlen < 0 || 4 + (size_t)hlen + body > cap)
        return 0;
    uint32_t h = (uint32_t)hlen;
    memcpy(buf, &h, 4);
    memcpy(buf + 4, hdr, (size_t)hlen);
    if (benchwire_request_body(buf + 4 + hlen, cap - 4 - (size_t)hlen, 0,
                               body) < 0)
        return 0;
    return 4 + (size_t)hlen + body;
}

static int benchlmdb_open(const char *dir, MDB_env **env, MDB_dbi *dbi)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return SY_EIO;
    int rc = mdb_env_create(env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(*env, 4ULL << 30);
    if (rc == 0)
        rc = mdb_env_open(*env, dir, 0, 0600);   /* full sync */
    MDB_txn *t = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(*env, NULL, 0, &t);
    if (rc == 0)
        rc = mdb_dbi_open(t, NULL, 0, dbi);
    if (rc == 0)
        rc = mdb_txn_commit(t);
    else if (t)
        mdb_txn_abort(t);
    return rc == 0 ? 0 : SY_EIO;
}

/* Puts up to count records in batches; returns how many were put (stops
   early at the deadline) or a negative code. */
static long benchlmdb_put(MDB_env *env, MDB_dbi dbi, const uint8_t *rec,
                          size_t reclen, size_t count, size_t batch,
                          double deadline)
{
    syid_t gen;
    syid_init(&gen);
    size_t done = 0;
    while (done < count && benchlmdb_now() < deadline) {
        MDB_txn *t;
        if (mdb_txn_begin(env, NULL, 0, &t) != 0)
            return SY_EIO;
        int rc = 0;
        for (size_t i = 0; i < batch && done + i < count && rc == 0; i++) {
            uint8_t id[16];
            syid_next(&gen, id);
            MDB_val k = {16, id}, v = {reclen, (void *)rec};
            rc = mdb_put(t, dbi, &k, &v, MDB_APPEND);
        }
        if (rc != 0) {
            mdb_txn_abort(t);
            return SY_EIO;
        }
        size_t n = batch < count - done ? batch : count - done;
        if (mdb_txn_commit(t) != 0)
            return SY_EIO;
        done += n;
    }
    return (long)done;
}

/* Takes (reads and copies out) and deletes every record, batch by batch.
   Returns how many were taken or a negative code. */
static long benchlmdb_take(MDB_env *env, MDB_dbi dbi, size_t count,
                           size_t batch, double deadline, uint8_t *copy,
                           size_t cap)
{
    size_t done = 0;
    while (done < count && benchlmdb_now() < deadline) {
        MDB_txn *t;
        MDB_cursor *c;
        if (mdb_txn_begin(env, NULL, 0, &t) != 0)
            return SY_EIO;
        if (mdb_cursor_open(t, dbi, &c) != 0) {
            mdb_txn_abort(t);
            return SY_EIO;
        }
        size_t n = 0;
        MDB_val k, v;
        int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (rc == 0 && n < batch) {
            if (v.mv_size <= cap)
                memcpy(copy, v.mv_data, v.mv_size);
            rc = mdb_cursor_del(c, 0);
            n++;
            if (rc == 0)
                rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        if ((rc != 0 && rc != MDB_NOTFOUND) || mdb_txn_commit(t) != 0)
            return SY_EIO;
        if (n == 0)
            break;
        done += n;
    }
    return (long)done;
}

static int benchlmdb_run(const benchlmdb_args_t *a)
{
    static uint8_t rec[BENCHWIRE_BODY_MAX + 1024], copy[sizeof rec];
    size_t reclen = benchlmdb_record(rec, sizeof rec, a->body);
    MDB_env *env = NULL;
    MDB_dbi dbi;
    if (reclen == 0 || benchlmdb_open(a->dir, &env, &dbi) < 0) {
        fprintf(stderr, "sy-bench-lmdb: cannot open %s\n", a->dir);
        if (env)
            mdb_env_close(env);
        return 1;
    }
    double t0 = benchlmdb_now();
    double deadline = t0 + a->max_secs;
    long put = benchlmdb_put(env, dbi, rec, reclen, a->count, a->batch,
                             deadline);
    double t1 = benchlmdb_now();
    long took = put > 0 ? benchlmdb_take(env, dbi, (size_t)put, a->batch,
                                         t1 + a->max_secs, copy, sizeof copy)
                        : put;
    double t2 = benchlmdb_now();
    mdb_env_close(env);
    if (put <= 0 || took != put) {
        fprintf(stderr, "sy-bench-lmdb: put %ld, took %ld: failed\n", put,
                took);
        return 1;
    }
    printf("system=lmdb batch=%zu record=%zu n=%ld put_secs=%.4f"
           " put_rps=%.0f take_secs=%.4f take_rps=%.0f cycle_rps=%.0f\n",
           a->batch, reclen + 16, put, t1 - t0, (double)put / (t1 - t0),
           t2 - t1, (double)took / (t2 - t1), (double)put / (t2 - t0));
    return 0;
}

static void benchlmdb_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench-lmdb --dir DIR [--batch K] [--count N] [--body B]\n"
        "                     [--max-secs S]\n"
        "       sy-bench-lmdb --txnid DIR\n"
        "  --dir DIR     a new directory for the environment\n"
        "  --batch K     records per transaction (100)\n"
        "  --count N     records (20000)\n"
        "  --body B      body bytes of a record (256)\n"
        "  --max-secs S  bound of each phase (60)\n"
        "  --txnid DIR   print the last transaction id of DIR's environment\n");
}

static int benchlmdb_parse(int argc, char **argv, benchlmdb_args_t *a)
{
    static const struct option longopts[] = {
        {"dir", 1, 0, 'd'}, {"txnid", 1, 0, 'x'}, {"batch", 1, 0, 'k'},
        {"count", 1, 0, 'n'}, {"body", 1, 0, 'b'}, {"max-secs", 1, 0, 't'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (benchlmdb_args_t){.batch = 100, .count = 20000, .body = 256,
                            .max_secs = 60};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 'd': a->dir = optarg; break;
        case 'x': a->txnid_dir = optarg; break;
        case 'k': a->batch = (size_t)v; break;
        case 'n': a->count = (size_t)v; break;
        case 'b': a->body = (size_t)v; break;
        case 't': a->max_secs = (unsigned)v; break;
        case 'h': benchlmdb_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    if (a->txnid_dir)
        return 0;
    if (!a->dir || a->batch == 0 || a->count == 0 || a->body < 32
        || a->body > BENCHWIRE_BODY_MAX || a->max_secs == 0)
        return SY_EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    benchlmdb_args_t a;
    if (benchlmdb_parse(argc, argv, &a) < 0) {
        benchlmdb_usage(stderr);
        return 2;
    }
    if (a.txnid_dir) {
        uint64_t id = 0;
        if (benchtxnid_read(a.txnid_dir, &id) < 0) {
            fprintf(stderr, "sy-bench-lmdb: cannot read %s\n", a.txnid_dir);
            return 1;
        }
        printf("%llu\n", (unsigned long long)id);
        return 0;
    }
    return benchlmdb_run(&a);
}
