/*  benchclient.h -- the load generator of the benchmark.
 *
 *  One raw libzmq DEALER that sends echo requests to the service "bench"
 *  and waits for the replies, in two modes:
 *    - throughput: `inflight` requests outstanding at all times until
 *      `count` round trips are done; the figure is round trips per second;
 *    - latency: one request at a time, `warmup` untimed then `count` timed
 *      round trips; the figures are percentiles of the round-trip time.
 *  Against sy-broker the client first says sy.hello (no services) and
 *  waits for sy.welcome; against the forwarder it just sends (the
 *  forwarder learns its routing id from the first request).  A sy.receipt
 *  (an error from the broker) ends the run with its code in the message.
 *  Every loop is bounded by its count and by max_secs.
 *
 *  Ownership: benchclient_new() returns a client the caller destroys with
 *  benchclient_destroy(), which NULLs the pointer.
 */
#ifndef BENCHCLIENT_H
#define BENCHCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;
    bool        sy;          /* sy-broker protocol */
    size_t      body_size;   /* bytes per request body */
} benchclient_opts_t;

typedef struct {
    uint64_t round_trips;    /* completed */
    double   secs;           /* wall time of the timed part */
    double   per_sec;        /* round_trips / secs */
} benchclient_tput_t;

typedef struct {
    uint64_t n;              /* timed round trips */
    double   p50_us, p90_us, p99_us, max_us, mean_us;
} benchclient_lat_t;

typedef struct _benchclient_t benchclient_t;

int benchclient_new(const benchclient_opts_t *opts, benchclient_t **out,
                    char *err, size_t errlen);
void benchclient_destroy(benchclient_t **self_p);

/* Pipelined run.  Returns 0, or SY_ETIMEOUT (max_secs passed, or no reply
   for 5 s), or the error a receipt carried; err says which. */
int benchclient_throughput(benchclient_t *self, uint64_t count,
                           uint32_t inflight, uint32_t max_secs,
                           benchclient_tput_t *out, char *err, size_t errlen);

/* One-at-a-time run; same returns. */
int benchclient_latency(benchclient_t *self, uint64_t count, uint64_t warmup,
                        uint32_t max_secs, benchclient_lat_t *out,
                        char *err, size_t errlen);

#endif
