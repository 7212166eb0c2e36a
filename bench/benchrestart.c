/*  benchrestart.c -- sy-bench-restart: how long sy-broker takes to come
 *  back with a full store, and how much memory it holds then.
 *
 *  The store (store/dir of --config) has been filled beforehand
 *  (sy-bench-fill).  This program starts the broker itself (fork + exec),
 *  so the clock starts at the exec and the process it measures is its own
 *  child, stopped by its pid:
 *
 *    ready    --runs times: clock, exec bin/sy-broker, then at once (the
 *             DEALER connects and reconnects every 2 ms until the broker
 *             listens) sy.hello and sy.query {what:"status"}; the clock
 *             stops at the sy.answer.  ready_ms is the median.
 *    memory   once more: exec, wait for sy.welcome (no query), wait
 *             --idle-ms, read VmRSS from /proc/PID/status (rss_idle_kb);
 *             then ask the status, wait for the answer and read VmRSS
 *             again (rss_status_kb) and the peak VmHWM.
 *
 *  The status answer must mention the queue depth (--expect, any unsigned
 *  integer field holding that value): queued_seen=yes shows that the
 *  broker did open the filled store and counts what is in it.
 *
 *  --init starts the broker once on an empty store (it makes the store,
 *  the key file that seals bodies and the key's fingerprint), waits for
 *  the status answer and stops it: what sy-bench-fill needs first.
 *
 *  Every wait is bounded; the broker gets SIGTERM, then SIGKILL after 10 s,
 *  and SIGTERM from the kernel should this program die first
 *  (PR_SET_PDEATHSIG).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchwire.h"
#include "schemas/syerr.h"

#define BENCHRESTART_RUNS_MAX 20

typedef struct {
    const char *broker;
    const char *config;
    const char *endpoint;
    uint64_t    expect;
    unsigned    runs;
    unsigned    idle_ms;
    unsigned    max_secs;
    bool        init;
} benchrestart_args_t;

/* One started broker and the client talking to it. */
typedef struct {
    pid_t    pid;
    void    *ctx;
    void    *sock;
    syid_t   ids;
    bool     queued_seen;
} benchrestart_run_t;

static double benchrestart_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads "Field:  1234 kB" of /proc/pid/status; 0 if absent. */
static long benchrestart_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long kb = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static int benchrestart_start(const benchrestart_args_t *a,
                              benchrestart_run_t *r)
{
    r->pid = fork();
    if (r->pid < 0)
        return SY_EIO;
    if (r->pid == 0) {
        /* If this program is killed (timeout, ^C), its broker goes too. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(127);
        execl(a->broker, a->broker, "--config", a->config, "--endpoint",
              a->endpoint, (char *)NULL);
        _exit(127);
    }
    r->ctx = zmq_ctx_new();
    r->sock = r->ctx ? zmq_socket(r->ctx, ZMQ_DEALER) : NULL;
    if (!r->sock)
        return SY_EIO;
    int zero = 0, ivl = 2;
    zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(r->sock, ZMQ_RCVTIMEO, &zero, sizeof zero);
    zmq_setsockopt(r->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    return zmq_connect(r->sock, a->endpoint) == 0 ? 0 : SY_EIO;
}

static void benchrestart_stop(benchrestart_run_t *r)
{
    if (r->sock)
        zmq_close(r->sock);
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    r->sock = r->ctx = NULL;
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

static int benchrestart_send(benchrestart_run_t *r, const char *type,
                             const uint8_t *body, int len, uint8_t id[16])
{
    envelope_t env;
    if (len < 0 || benchwire_header(&env, &r->ids, type, NULL, NULL) < 0)
        return SY_EINVAL;
    memcpy(id, env.id, 16);
    return benchwire_send(r->sock, &env, body, (size_t)len);
}

static int benchrestart_hello(benchrestart_run_t *r, uint8_t id[16])
{
    uint8_t body[128];
    int len = benchwire_hello_body(body, sizeof body, "bench-restart", NULL, 1);
    return benchrestart_send(r, "sy.hello", body, len, id);
}

static int benchrestart_query(benchrestart_run_t *r, uint8_t id[16])
{
    uint8_t body[32];
    int len = benchwire_query_body(body, sizeof body, "status");
    return benchrestart_send(r, "sy.query", body, len, id);
}

/* Waits for a message of type with corr; bounded by deadline and by the
   broker staying alive.  Returns 0, SY_ETIMEOUT, SY_EDENIED (a receipt
   refused it) or SY_ECLOSED (the broker exited). */
static int benchrestart_wait(benchrestart_run_t *r, const char *type,
                             const uint8_t corr[16], uint64_t expect,
                             double deadline)
{
    while (benchrestart_now() < deadline) {
        zmq_pollitem_t it = {r->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 20);
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int rc = benchwire_recv(r->sock, &m);
        bool hit = rc == 0 && strcmp(m.hdr.type, type) == 0
                   && memcmp(m.hdr.corr, corr, 16) == 0;
        bool refused = rc == 0 && strcmp(m.hdr.type, "sy.receipt") == 0
                       && memcmp(m.hdr.corr, corr, 16) == 0;
        if (hit && expect)
            r->queued_seen = benchwire_body_has_uint(
                zmq_msg_data(&m.body_frame), zmq_msg_size(&m.body_frame),
                expect);
        benchwire_msg_close(&m);
        if (hit)
            return 0;
        if (refused)
            return SY_EDENIED;
        if (rc == SY_ETIMEOUT && waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return SY_ECLOSED;
        }
    }
    return SY_ETIMEOUT;
}

/* One timed restart: exec to status answer, in ms (negative: failed). */
static double benchrestart_ready(const benchrestart_args_t *a, bool *seen)
{
    benchrestart_run_t r = {0};
    syid_init(&r.ids);
    double t0 = benchrestart_now();
    uint8_t hid[16], qid[16];
    int rc = benchrestart_start(a, &r);
    if (rc == 0)
        rc = benchrestart_hello(&r, hid);
    if (rc == 0)
        rc = benchrestart_query(&r, qid);
    if (rc == 0)
        rc = benchrestart_wait(&r, "sy.answer", qid, a->expect,
                               t0 + a->max_secs);
    double ms = (benchrestart_now() - t0) * 1000;
    *seen = r.queued_seen;
    benchrestart_stop(&r);
    if (rc < 0)
        fprintf(stderr, "sy-bench-restart: no status answer (%s)\n",
                syerr_name(rc));
    return rc < 0 ? -1 : ms;
}

/* The memory run: fills idle_kb, status_kb and hwm_kb. */
static int benchrestart_memory(const benchrestart_args_t *a, long *idle_kb,
                               long *status_kb, long *hwm_kb)
{
    benchrestart_run_t r = {0};
    syid_init(&r.ids);
    double deadline = benchrestart_now() + a->max_secs;
    uint8_t hid[16], qid[16];
    int rc = benchrestart_start(a, &r);
    if (rc == 0)
        rc = benchrestart_hello(&r, hid);
    if (rc == 0)
        rc = benchrestart_wait(&r, "sy.welcome", hid, 0, deadline);
    if (rc == 0) {
        usleep(a->idle_ms * 1000u);
        *idle_kb = benchrestart_status_kb(r.pid, "VmRSS");
        rc = benchrestart_query(&r, qid);
    }
    if (rc == 0)
        rc = benchrestart_wait(&r, "sy.answer", qid, 0, deadline + 10);
    if (rc == 0) {
        usleep(200000);
        *status_kb = benchrestart_status_kb(r.pid, "VmRSS");
        *hwm_kb = benchrestart_status_kb(r.pid, "VmHWM");
    }
    benchrestart_stop(&r);
    if (rc < 0)
        fprintf(stderr, "sy-bench-restart: memory run failed (%s)\n",
                syerr_name(rc));
    return rc;
}

static int benchrestart_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int benchrestart_main(const benchrestart_args_t *a)
{
    if (a->init) {
        bool seen;
        return benchrestart_ready(a, &seen) < 0 ? 1 : 0;
    }
    double ms[BENCHRESTART_RUNS_MAX];
    bool seen_all = true;
    char all[BENCHRESTART_RUNS_MAX * 16] = "";
    for (unsigned i = 0; i < a->runs; i++) {
        bool seen = false;
        ms[i] = benchrestart_ready(a, &seen);
        if (ms[i] < 0)
            return 1;
        seen_all = seen_all && seen;
        size_t l = strlen(all);
        snprintf(all + l, sizeof all - l, "%s%.1f", i ? "," : "", ms[i]);
    }
    long idle = 0, status = 0, hwm = 0;
    if (benchrestart_memory(a, &idle, &status, &hwm) < 0)
        return 1;
    qsort(ms, a->runs, sizeof ms[0], benchrestart_cmp);
    printf("restart queued=%llu runs=%u ready_ms=%.1f ready_ms_all=%s"
           " queued_seen=%s rss_idle_kb=%ld rss_status_kb=%ld hwm_kb=%ld\n",
           (unsigned long long)a->expect, a->runs, ms[a->runs / 2], all,
           a->expect ? (seen_all ? "yes" : "no") : "-", idle, status, hwm);
    return 0;
}

static void benchrestart_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench-restart --broker BIN --config CFG --endpoint EP\n"
        "                        [--expect N] [--runs R] [--idle-ms MS]\n"
        "                        [--max-secs S] [--init]\n"
        "  --expect N    queue depth the status answer must show (0: none)\n"
        "  --runs R      timed restarts (3, at most 20)\n"
        "  --idle-ms MS  wait before the idle memory reading (1000)\n"
        "  --max-secs S  bound of each start (30)\n"
        "  --init        start and stop once (a new store gets its key)\n");
}

static int benchrestart_parse(int argc, char **argv, benchrestart_args_t *a)
{
    static const struct option longopts[] = {
        {"broker", 1, 0, 'b'}, {"config", 1, 0, 'c'},
        {"endpoint", 1, 0, 'e'}, {"expect", 1, 0, 'x'}, {"runs", 1, 0, 'r'},
        {"idle-ms", 1, 0, 'i'}, {"max-secs", 1, 0, 't'}, {"init", 0, 0, 'n'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (benchrestart_args_t){.runs = 3, .idle_ms = 1000, .max_secs = 30};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 'b': a->broker = optarg; break;
        case 'c': a->config = optarg; break;
        case 'e': a->endpoint = optarg; break;
        case 'x': a->expect = v; break;
        case 'r': a->runs = (unsigned)v; break;
        case 'i': a->idle_ms = (unsigned)v; break;
        case 't': a->max_secs = (unsigned)v; break;
        case 'n': a->init = true; break;
        case 'h': benchrestart_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    if (!a->broker || !a->config || !a->endpoint || a->runs == 0
        || a->runs > BENCHRESTART_RUNS_MAX || a->max_secs == 0
        || a->idle_ms > 60000)
        return SY_EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    benchrestart_args_t a;
    if (benchrestart_parse(argc, argv, &a) < 0) {
        benchrestart_usage(stderr);
        return 2;
    }
    return benchrestart_main(&a);
}
