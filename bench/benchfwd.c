/*  benchfwd.c -- sy-bench-fwd: the trivial forwarder sy-broker is measured
 *  against.
 *
 *  One ROUTER socket and nothing else: no header decoding, no names, no
 *  credit.  The first peer to send anything is taken as the worker (its
 *  first message is echoed back to it, the only "welcome" there is, so the
 *  worker knows it has been seen); every other peer is the client.  A
 *  message from the client goes to the worker and one from the worker goes
 *  to the most recent client: the routing-id frame is swapped, the header
 *  and body frames are moved with zmq_msg_send (no copy).  This is the
 *  floor any broker over libzmq pays: whatever sy-broker costs beyond it
 *  is its own work.
 *
 *  It runs until killed (bench/run.sh sends SIGTERM) or for --max-secs.
 *  Usage: sy-bench-fwd ENDPOINT [MAX_SECS]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define BENCHFWD_RID_MAX 256
#define BENCHFWD_FRAMES  8

typedef struct {
    uint8_t id[BENCHFWD_RID_MAX];
    size_t  len;
} benchfwd_rid_t;

typedef struct {
    void          *sock;
    benchfwd_rid_t worker;
    benchfwd_rid_t client;
    zmq_msg_t      frames[BENCHFWD_FRAMES];
    int            nframes;
} benchfwd_t;

static uint64_t benchfwd_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static void benchfwd_rid_set(benchfwd_rid_t *r, zmq_msg_t *m)
{
    size_t n = zmq_msg_size(m);
    r->len = n < BENCHFWD_RID_MAX ? n : BENCHFWD_RID_MAX;
    memcpy(r->id, zmq_msg_data(m), r->len);
}

static bool benchfwd_rid_is(const benchfwd_rid_t *r, zmq_msg_t *m)
{
    return r->len == zmq_msg_size(m) && memcmp(r->id, zmq_msg_data(m), r->len) == 0;
}

/* Receives the frames after the routing id.  Returns the count, or -1. */
static int benchfwd_recv_rest(benchfwd_t *self, zmq_msg_t *rid)
{
    int n = 0;
    bool more = zmq_msg_more(rid);
    while (more) {
        zmq_msg_t *f = n < BENCHFWD_FRAMES ? &self->frames[n] : NULL;
        zmq_msg_t spill;
        if (!f) {        /* too many frames: drop the extra ones */
            f = &spill;
        }
        zmq_msg_init(f);
        if (zmq_msg_recv(f, self->sock, 0) < 0)
            return -1;
        more = zmq_msg_more(f);
        if (f == &spill)
            zmq_msg_close(f);
        else
            n++;
    }
    return n;
}

/* Sends dest's routing id, then moves the frames. */
static void benchfwd_send(benchfwd_t *self, const benchfwd_rid_t *dest, int n)
{
    if (n == 0 || dest->len == 0)
        return;
    if (zmq_send(self->sock, dest->id, dest->len, ZMQ_SNDMORE) < 0)
        return;
    for (int i = 0; i < n; i++) {
        if (zmq_msg_send(&self->frames[i], self->sock,
                         i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return;
    }
}

static void benchfwd_one(benchfwd_t *self, zmq_msg_t *rid)
{
    int n = benchfwd_recv_rest(self, rid);
    if (n < 0)
        n = 0;
    if (self->worker.len == 0) {
        benchfwd_rid_set(&self->worker, rid);
        benchfwd_send(self, &self->worker, n);   /* the echo is the welcome */
    } else if (benchfwd_rid_is(&self->worker, rid)) {
        benchfwd_send(self, &self->client, n);
    } else {
        if (!benchfwd_rid_is(&self->client, rid))
            benchfwd_rid_set(&self->client, rid);
        benchfwd_send(self, &self->worker, n);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&self->frames[i]);   /* no-op for frames sent */
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: sy-bench-fwd ENDPOINT [MAX_SECS]\n");
        return 2;
    }
    uint64_t max_secs = argc == 3 ? strtoull(argv[2], NULL, 10) : 900;
    void *ctx = zmq_ctx_new();
    benchfwd_t self = {.sock = zmq_socket(ctx, ZMQ_ROUTER)};
    int timeout = 200, linger = 0, hwm = 100000;
    zmq_setsockopt(self.sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(self.sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self.sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self.sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(self.sock, argv[1]) != 0) {
        fprintf(stderr, "sy-bench-fwd: cannot bind %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
        zmq_close(self.sock);
        zmq_ctx_term(ctx);
        return 1;
    }
    uint64_t deadline = benchfwd_now_s() + max_secs;
    uint64_t n = 0;
    for (;;) {
        zmq_msg_t rid;
        zmq_msg_init(&rid);
        int rc = zmq_msg_recv(&rid, self.sock, 0);
        if (rc >= 0)
            benchfwd_one(&self, &rid);
        zmq_msg_close(&rid);
        if ((rc < 0 || (++n & 4095) == 0) && benchfwd_now_s() >= deadline)
            break;
    }
    zmq_close(self.sock);
    zmq_ctx_term(ctx);
    return 0;
}
