/*  benchclient.c -- the load generator of the benchmark (see benchclient.h).
 *
 *  The receive timeout of the socket (500 ms) is the loop's heartbeat: a
 *  run that stops getting replies notices within that, checks its
 *  deadlines and gives up after 5 s of silence rather than hanging.
 *  Every reply is checked (type, body size; in latency mode corr against
 *  the id just sent) so that a system that drops or mangles messages
 *  cannot post a good figure.
 */
#include "bench/benchclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bench/benchwire.h"
#include "schemas/syerr.h"

#define BENCHCLIENT_SILENCE_MS 5000

struct _benchclient_t {
    benchclient_opts_t opts;
    void    *ctx;
    void    *sock;
    syid_t   ids;
    uint64_t seq;
    uint8_t  body[BENCHWIRE_BODY_MAX];
    uint8_t  last_id[ENVELOPE_ID_LEN];
};

static uint64_t benchclient_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int benchclient_send_request(benchclient_t *self)
{
    int len = benchwire_request_body(self->body, sizeof self->body,
                                     self->seq++, self->opts.body_size);
    if (len < 0)
        return len;
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, BENCHWIRE_REQ_TYPE,
                              BENCHWIRE_SERVICE, NULL);
    if (rc < 0)
        return rc;
    memcpy(self->last_id, env.id, ENVELOPE_ID_LEN);
    return benchwire_send(self->sock, &env, self->body, (size_t)len);
}

/* Handles a message that is not a reply.  Returns 0 to go on, or the
   error of a receipt. */
static int benchclient_other(benchclient_t *self, benchwire_msg_t *m,
                             char *err, size_t errlen)
{
    if (strcmp(m->hdr.type, "sy.ping") == 0) {
        static const uint8_t empty_map = 0x80;
        envelope_t env;
        if (benchwire_header(&env, &self->ids, "sy.pong", NULL, m->hdr.id) == 0)
            benchwire_send(self->sock, &env, &empty_map, 1);
        return 0;
    }
    if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        char code[64] = "?", detail[64] = "";
        const uint8_t *b = zmq_msg_data(&m->body_frame);
        size_t n = zmq_msg_size(&m->body_frame);
        benchwire_body_str(b, n, "code", code, sizeof code);
        benchwire_body_str(b, n, "detail", detail, sizeof detail);
        snprintf(err, errlen, "client: receipt %s %s", code, detail);
        int rc = syerr_from_name(code);
        return rc < 0 ? rc : SY_EINTERNAL;
    }
    if (strncmp(m->hdr.type, "sy.", 3) == 0)
        return 0;   /* pong, events: nothing to do */
    snprintf(err, errlen, "client: unexpected message type %s", m->hdr.type);
    return SY_EINVAL;
}

/* Receives one message.  Returns 1 for a good reply, 0 for something else
   handled, SY_ETIMEOUT after the socket's receive timeout, or an error. */
static int benchclient_recv(benchclient_t *self, benchwire_msg_t *m,
                            char *err, size_t errlen)
{
    int rc = benchwire_recv(self->sock, m);
    if (rc == SY_ETIMEOUT)
        return rc;
    if (rc < 0) {
        snprintf(err, errlen, "client: bad message (%s)", syerr_name(rc));
        return rc;
    }
    if (strcmp(m->hdr.type, BENCHWIRE_REP_TYPE) != 0)
        return benchclient_other(self, m, err, errlen);
    if (zmq_msg_size(&m->body_frame) != self->opts.body_size) {
        snprintf(err, errlen, "client: reply body of %zu bytes, sent %zu",
                 zmq_msg_size(&m->body_frame), self->opts.body_size);
        return SY_EBAD_BODY;
    }
    return 1;
}

static int benchclient_hello(benchclient_t *self, char *err, size_t errlen)
{
    uint8_t body[256];
    int len = benchwire_hello_body(body, sizeof body, BENCHWIRE_CLIENT, NULL, 1);
    envelope_t env;
    int rc = len < 0 ? len
           : benchwire_header(&env, &self->ids, "sy.hello", NULL, NULL);
    if (rc == 0)
        rc = benchwire_send(self->sock, &env, body, (size_t)len);
    if (rc < 0) {
        snprintf(err, errlen, "client: cannot send hello (%s)", syerr_name(rc));
        return rc;
    }
    uint64_t deadline = benchclient_now_ns() + 20000000000ull;
    while (benchclient_now_ns() < deadline) {
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        rc = benchwire_recv(self->sock, &m);
        bool welcome = rc == 0 && strcmp(m.hdr.type, "sy.welcome") == 0
                       && memcmp(m.hdr.corr, env.id, ENVELOPE_ID_LEN) == 0;
        if (rc == 0 && !welcome && strcmp(m.hdr.type, "sy.receipt") == 0)
            rc = benchclient_other(self, &m, err, errlen);
        benchwire_msg_close(&m);
        if (welcome)
            return 0;
        if (rc < 0 && rc != SY_ETIMEOUT)
            return rc;
    }
    snprintf(err, errlen, "client: no welcome from %s within 20 s",
             self->opts.endpoint);
    return SY_ETIMEOUT;
}

int benchclient_new(const benchclient_opts_t *opts, benchclient_t **out,
                    char *err, size_t errlen)
{
    benchclient_t *self = calloc(1, sizeof *self);
    if (!self)
        return SY_ENOMEM;
    self->opts = *opts;
    syid_init(&self->ids);
    self->ctx = zmq_ctx_new();
    self->sock = self->ctx ? zmq_socket(self->ctx, ZMQ_DEALER) : NULL;
    int rc = self->sock ? 0 : SY_EIO;
    if (rc == 0) {
        int timeout = 500, linger = 0, hwm = 100000;
        zmq_setsockopt(self->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_connect(self->sock, opts->endpoint) != 0)
            rc = SY_EIO;
    }
    if (rc < 0)
        snprintf(err, errlen, "client: cannot connect to %s: %s",
                 opts->endpoint, zmq_strerror(zmq_errno()));
    if (rc == 0 && opts->sy)
        rc = benchclient_hello(self, err, errlen);
    if (rc < 0) {
        benchclient_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void benchclient_destroy(benchclient_t **self_p)
{
    benchclient_t *self = *self_p;
    if (!self)
        return;
    if (self->sock)
        zmq_close(self->sock);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

/* Tracks silence and the overall deadline.  Returns 0 to go on. */
static int benchclient_idle(uint64_t *quiet_since, uint64_t deadline,
                            const char *what, uint64_t done,
                            char *err, size_t errlen)
{
    uint64_t now = benchclient_now_ns();
    if (*quiet_since == 0)
        *quiet_since = now;
    if (now - *quiet_since >= BENCHCLIENT_SILENCE_MS * 1000000ull
        || now >= deadline) {
        snprintf(err, errlen, "client: %s stalled or out of time after %llu "
                 "round trips", what, (unsigned long long)done);
        return SY_ETIMEOUT;
    }
    return 0;
}

int benchclient_throughput(benchclient_t *self, uint64_t count,
                           uint32_t inflight, uint32_t max_secs,
                           benchclient_tput_t *out, char *err, size_t errlen)
{
    uint64_t t0 = benchclient_now_ns();
    uint64_t deadline = t0 + max_secs * 1000000000ull;
    uint64_t sent = 0, got = 0, quiet = 0;
    int rc = 0;
    while (rc == 0 && sent < count && sent < inflight) {
        rc = benchclient_send_request(self);
        sent++;
    }
    while (rc == 0 && got < count) {
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int r = benchclient_recv(self, &m, err, errlen);
        benchwire_msg_close(&m);
        if (r == 1) {
            got++;
            quiet = 0;
            if (sent < count) {
                rc = benchclient_send_request(self);
                sent++;
            }
            if ((got & 4095) == 0 && benchclient_now_ns() >= deadline)
                rc = benchclient_idle(&quiet, deadline, "throughput", got,
                                      err, errlen);
        } else if (r == SY_ETIMEOUT) {
            rc = benchclient_idle(&quiet, deadline, "throughput", got,
                                  err, errlen);
        } else if (r < 0) {
            rc = r;
        }
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, errlen, "client: send failed (%s)", syerr_name(rc));
    double secs = (double)(benchclient_now_ns() - t0) / 1e9;
    out->round_trips = got;
    out->secs = secs;
    out->per_sec = secs > 0 ? (double)got / secs : 0;
    return rc;
}

static int benchclient_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One round trip; its duration in *ns.  Returns 0 or an error. */
static int benchclient_one(benchclient_t *self, uint64_t deadline,
                           uint64_t done, uint64_t *ns,
                           char *err, size_t errlen)
{
    uint64_t t0 = benchclient_now_ns(), quiet = 0;
    int rc = benchclient_send_request(self);
    while (rc == 0) {
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int r = benchclient_recv(self, &m, err, errlen);
        bool mine = r == 1 && (m.hdr.present & ENV_HAS_CORR)
                    && memcmp(m.hdr.corr, self->last_id, ENVELOPE_ID_LEN) == 0;
        benchwire_msg_close(&m);
        if (mine) {
            *ns = benchclient_now_ns() - t0;
            return 0;
        }
        if (r == 1) {
            snprintf(err, errlen, "client: reply with a foreign corr");
            return SY_EINVAL;
        }
        if (r == SY_ETIMEOUT)
            rc = benchclient_idle(&quiet, deadline, "latency", done, err, errlen);
        else if (r < 0)
            rc = r;
    }
    if (err[0] == '\0')
        snprintf(err, errlen, "client: send failed (%s)", syerr_name(rc));
    return rc;
}

int benchclient_latency(benchclient_t *self, uint64_t count, uint64_t warmup,
                        uint32_t max_secs, benchclient_lat_t *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (count == 0)
        return SY_EINVAL;
    uint64_t *ns = calloc(count, sizeof *ns);
    if (!ns)
        return SY_ENOMEM;
    uint64_t deadline = benchclient_now_ns() + max_secs * 1000000000ull;
    int rc = 0;
    uint64_t dummy;
    for (uint64_t i = 0; rc == 0 && i < warmup; i++)
        rc = benchclient_one(self, deadline, i, &dummy, err, errlen);
    uint64_t n = 0;
    for (; rc == 0 && n < count; n++) {
        rc = benchclient_one(self, deadline, n, &ns[n], err, errlen);
        if (rc == 0 && (n & 1023) == 0 && benchclient_now_ns() >= deadline) {
            snprintf(err, errlen, "client: latency out of time after %llu",
                     (unsigned long long)n);
            rc = SY_ETIMEOUT;
        }
    }
    if (rc == 0) {
        qsort(ns, n, sizeof *ns, benchclient_cmp_u64);
        double sum = 0;
        for (uint64_t i = 0; i < n; i++)
            sum += (double)ns[i];
        out->n = n;
        out->p50_us = (double)ns[n * 50 / 100] / 1e3;
        out->p90_us = (double)ns[n * 90 / 100] / 1e3;
        out->p99_us = (double)ns[n * 99 / 100] / 1e3;
        out->max_us = (double)ns[n - 1] / 1e3;
        out->mean_us = sum / (double)n / 1e3;
    }
    free(ns);
    return rc;
}
