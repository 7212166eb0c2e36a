/*  bench.c -- sy-bench: one measured round of the request/reply benchmark.
 *
 *  Starts the echo worker (benchworker.c) on a thread, then the client
 *  (benchclient.c) on the main thread, against whatever listens at
 *  --endpoint: sy-broker (--system sy) or the trivial forwarder sy-bench-fwd
 *  (--system fwd).  Runs the pipelined throughput test, then the
 *  one-at-a-time latency test, and prints one line of key=value figures
 *  that bench/run.sh collects:
 *
 *    system=sy tput_rt=200000 tput_secs=1.52 tput_rps=131578 lat_n=20000
 *    lat_p50_us=98.1 lat_p90_us=... lat_p99_us=... lat_max_us=...
 *    lat_mean_us=... served=222000 worker_errors=0
 *
 *  Exit status 0 only if every round trip completed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchclient.h"
#include "bench/benchworker.h"
#include "schemas/syerr.h"

typedef struct {
    const char *system;
    const char *endpoint;
    const char *mode;        /* "both", "tput", "lat" */
    uint64_t    count;       /* throughput round trips */
    uint32_t    inflight;
    uint64_t    lat_count;
    uint64_t    lat_warmup;
    size_t      size;
    uint32_t    credit;
    uint32_t    credit_batch;
    uint32_t    max_secs;    /* per test */
} bench_args_t;

static void bench_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench --system sy|fwd --endpoint EP [options]\n"
        "  --mode both|tput|lat  which tests (both)\n"
        "  --count N             throughput round trips (200000)\n"
        "  --inflight N          requests outstanding (500)\n"
        "  --lat-count N         timed one-at-a-time round trips (20000)\n"
        "  --lat-warmup N        untimed ones before (2000)\n"
        "  --size N              body bytes (256)\n"
        "  --credit N            worker credit in sy.hello (1000)\n"
        "  --credit-batch N      sy.credit every N replies (64)\n"
        "  --max-secs N          time bound of each test (60)\n");
}

static int bench_parse(int argc, char **argv, bench_args_t *a)
{
    static const struct option longopts[] = {
        {"system", 1, 0, 's'}, {"endpoint", 1, 0, 'e'}, {"mode", 1, 0, 'm'},
        {"count", 1, 0, 'c'}, {"inflight", 1, 0, 'i'},
        {"lat-count", 1, 0, 'l'}, {"lat-warmup", 1, 0, 'w'},
        {"size", 1, 0, 'z'}, {"credit", 1, 0, 'r'},
        {"credit-batch", 1, 0, 'b'}, {"max-secs", 1, 0, 't'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (bench_args_t){.mode = "both", .count = 200000, .inflight = 500,
                        .lat_count = 20000, .lat_warmup = 2000, .size = 256,
                        .credit = 1000, .credit_batch = 64, .max_secs = 60};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 's': a->system = optarg; break;
        case 'e': a->endpoint = optarg; break;
        case 'm': a->mode = optarg; break;
        case 'c': a->count = v; break;
        case 'i': a->inflight = (uint32_t)v; break;
        case 'l': a->lat_count = v; break;
        case 'w': a->lat_warmup = v; break;
        case 'z': a->size = (size_t)v; break;
        case 'r': a->credit = (uint32_t)v; break;
        case 'b': a->credit_batch = (uint32_t)v; break;
        case 't': a->max_secs = (uint32_t)v; break;
        case 'h': bench_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    bool sys_ok = a->system && (strcmp(a->system, "sy") == 0
                                || strcmp(a->system, "fwd") == 0);
    bool mode_ok = strcmp(a->mode, "both") == 0 || strcmp(a->mode, "tput") == 0
                   || strcmp(a->mode, "lat") == 0;
    if (!sys_ok || !mode_ok || !a->endpoint || a->inflight == 0
        || a->count == 0 || a->lat_count == 0 || a->size < 32
        || a->size > 65536 || a->max_secs == 0)
        return SY_EINVAL;
    return 0;
}

/* Runs the requested tests; prints their figures on the current line. */
static int bench_tests(const bench_args_t *a, benchclient_t *client,
                       char *err, size_t errlen)
{
    int rc = 0;
    if (strcmp(a->mode, "lat") != 0) {
        benchclient_tput_t t;
        rc = benchclient_throughput(client, a->count, a->inflight,
                                    a->max_secs, &t, err, errlen);
        printf(" tput_rt=%llu tput_secs=%.4f tput_rps=%.0f",
               (unsigned long long)t.round_trips, t.secs, t.per_sec);
    }
    if (rc == 0 && strcmp(a->mode, "tput") != 0) {
        benchclient_lat_t l;
        rc = benchclient_latency(client, a->lat_count, a->lat_warmup,
                                 a->max_secs, &l, err, errlen);
        printf(" lat_n=%llu lat_p50_us=%.1f lat_p90_us=%.1f lat_p99_us=%.1f"
               " lat_max_us=%.1f lat_mean_us=%.1f",
               (unsigned long long)l.n, l.p50_us, l.p90_us, l.p99_us,
               l.max_us, l.mean_us);
    }
    return rc;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    if (bench_parse(argc, argv, &a) < 0) {
        bench_usage(stderr);
        return 2;
    }
    bool sy = strcmp(a.system, "sy") == 0;
    char err[256] = "";
    benchworker_opts_t wo = {.endpoint = a.endpoint, .sy = sy,
                             .credit = a.credit,
                             .credit_batch = a.credit_batch,
                             .max_secs = 3 * a.max_secs + 10};
    benchworker_t *worker = NULL;
    int rc = benchworker_new(&wo, &worker, err, sizeof err);
    benchclient_t *client = NULL;
    benchclient_opts_t co = {.endpoint = a.endpoint, .sy = sy,
                             .body_size = a.size};
    if (rc == 0)
        rc = benchclient_new(&co, &client, err, sizeof err);
    if (rc == 0) {
        printf("system=%s", a.system);
        rc = bench_tests(&a, client, err, sizeof err);
        printf(" served=%llu worker_errors=%llu\n",
               (unsigned long long)benchworker_served(worker),
               (unsigned long long)benchworker_errors(worker));
        fflush(stdout);
    }
    benchclient_destroy(&client);
    benchworker_destroy(&worker);
    if (rc < 0) {
        fprintf(stderr, "sy-bench: %s\n", err[0] ? err : syerr_name(rc));
        return 1;
    }
    return 0;
}
