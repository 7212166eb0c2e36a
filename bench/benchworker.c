/*  benchworker.c -- the echo worker of the benchmark (see benchworker.h).
 *
 *  The socket is made and the hello exchanged on the caller's thread, so a
 *  failure to register is an ordinary error return; then the socket is
 *  handed to a new thread (pthread_create is a full barrier, which is all
 *  libzmq asks when a socket changes threads).  The thread stops when asked
 *  (an atomic flag it checks at least every 100 ms) or after max_secs.
 */
#include "bench/benchworker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bench/benchwire.h"
#include "schemas/syerr.h"

struct _benchworker_t {
    benchworker_opts_t opts;
    void          *ctx;
    void          *sock;
    syid_t         ids;
    pthread_t      thread;
    bool           started;
    atomic_bool    stop;
    atomic_ullong  served;
    atomic_ullong  errors;
    uint64_t       hb_ms;        /* from sy.welcome; 0: never ping */
    uint64_t       last_send_ms;
    uint32_t       since_credit; /* replies since the last sy.credit */
};

static uint64_t benchworker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int benchworker_send(benchworker_t *self, const char *type,
                            const uint8_t *corr, const uint8_t *body,
                            size_t len)
{
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, type, NULL, corr);
    if (rc == 0)
        rc = benchwire_send(self->sock, &env, body, len);
    self->last_send_ms = benchworker_now_ms();
    return rc;
}

static int benchworker_hello(benchworker_t *self, uint8_t hello_id[16])
{
    uint8_t body[256];
    int len = benchwire_hello_body(body, sizeof body, BENCHWIRE_WORKER,
                                   BENCHWIRE_SERVICE, self->opts.credit);
    if (len < 0)
        return len;
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, "sy.hello", NULL, NULL);
    if (rc < 0)
        return rc;
    memcpy(hello_id, env.id, 16);
    return benchwire_send(self->sock, &env, body, (size_t)len);
}

/* Waits for sy.welcome (sy-broker) or the echoed hello (forwarder). */
static int benchworker_welcome(benchworker_t *self, const uint8_t hello_id[16],
                               char *err, size_t errlen)
{
    uint64_t deadline = benchworker_now_ms() + 20000;
    while (benchworker_now_ms() < deadline) {
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int rc = benchwire_recv(self->sock, &m);
        bool done = false;
        if (rc == 0 && !self->opts.sy)
            done = true;
        else if (rc == 0 && strcmp(m.hdr.type, "sy.welcome") == 0
                 && memcmp(m.hdr.corr, hello_id, 16) == 0) {
            uint64_t hb = 0;
            if (benchwire_body_uint(zmq_msg_data(&m.body_frame),
                                    zmq_msg_size(&m.body_frame), "hb", &hb) == 0)
                self->hb_ms = hb;
            done = true;
        } else if (rc == 0 && strcmp(m.hdr.type, "sy.receipt") == 0) {
            char code[64] = "?";
            benchwire_body_str(zmq_msg_data(&m.body_frame),
                               zmq_msg_size(&m.body_frame), "code", code,
                               sizeof code);
            snprintf(err, errlen, "worker hello refused: %s", code);
            benchwire_msg_close(&m);
            return SY_EDENIED;
        }
        benchwire_msg_close(&m);
        if (done)
            return 0;
        if (rc < 0 && rc != SY_ETIMEOUT) {
            snprintf(err, errlen, "worker: bad message while waiting for "
                     "welcome (%s)", syerr_name(rc));
            return rc;
        }
    }
    snprintf(err, errlen, "worker: no welcome from %s within 20 s",
             self->opts.endpoint);
    return SY_ETIMEOUT;
}

/* Answers one request: reply_to, else "@" + from, else (forwarder) any. */
static int benchworker_reply(benchworker_t *self, benchwire_msg_t *m)
{
    char to[ENVELOPE_NAME_MAX + 2];
    if (m->hdr.present & ENV_HAS_REPLY_TO)
        snprintf(to, sizeof to, "%s", m->hdr.reply_to);
    else if (m->hdr.present & ENV_HAS_FROM)
        snprintf(to, sizeof to, "@%s", m->hdr.from);
    else
        snprintf(to, sizeof to, "@%s", BENCHWIRE_CLIENT);
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, BENCHWIRE_REP_TYPE, to,
                              m->hdr.id);
    if (rc == 0)
        rc = benchwire_send_frame(self->sock, &env, &m->body_frame);
    if (rc < 0)
        return rc;
    self->last_send_ms = benchworker_now_ms();
    atomic_fetch_add_explicit(&self->served, 1, memory_order_relaxed);
    if (self->opts.sy && ++self->since_credit >= self->opts.credit_batch) {
        uint8_t body[32];
        int len = benchwire_credit_body(body, sizeof body, self->since_credit);
        self->since_credit = 0;
        if (len < 0)
            return len;
        return benchworker_send(self, "sy.credit", NULL, body, (size_t)len);
    }
    return 0;
}

static void benchworker_handle(benchworker_t *self, benchwire_msg_t *m)
{
    if (strncmp(m->hdr.type, "sy.", 3) != 0) {
        if (benchworker_reply(self, m) < 0)
            atomic_fetch_add(&self->errors, 1);
        return;
    }
    if (strcmp(m->hdr.type, "sy.ping") == 0) {
        static const uint8_t empty_map = 0x80;
        benchworker_send(self, "sy.pong", m->hdr.id, &empty_map, 1);
    } else if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        atomic_fetch_add(&self->errors, 1);
    }
    /* sy.pong and anything else: proof of life only. */
}

static void *benchworker_run(void *arg)
{
    benchworker_t *self = arg;
    uint64_t deadline = benchworker_now_ms() + self->opts.max_secs * 1000ull;
    uint64_t n = 0;
    while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
        /* Checking the clock every message would cost a syscall-free but
           measurable vDSO call; every 256 messages or on a timeout is
           enough for a bound measured in seconds. */
        if ((++n & 255) == 0 || n == 1) {
            uint64_t now = benchworker_now_ms();
            if (now >= deadline)
                break;
            if (self->opts.sy && self->hb_ms
                && now - self->last_send_ms >= self->hb_ms) {
                static const uint8_t empty_map = 0x80;
                benchworker_send(self, "sy.ping", NULL, &empty_map, 1);
            }
        }
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int rc = benchwire_recv(self->sock, &m);
        if (rc == 0)
            benchworker_handle(self, &m);
        else if (rc == SY_ETIMEOUT)
            n = 0;   /* idle: look at the clock next time round */
        else
            atomic_fetch_add(&self->errors, 1);
        benchwire_msg_close(&m);
    }
    return NULL;
}

static int benchworker_socket(benchworker_t *self)
{
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        return SY_ENOMEM;
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->sock)
        return SY_EIO;
    int timeout = 100, linger = 0, hwm = 100000;
    zmq_setsockopt(self->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    return zmq_connect(self->sock, self->opts.endpoint) == 0 ? 0 : SY_EIO;
}

int benchworker_new(const benchworker_opts_t *opts, benchworker_t **out,
                    char *err, size_t errlen)
{
    benchworker_t *self = calloc(1, sizeof *self);
    if (!self)
        return SY_ENOMEM;
    self->opts = *opts;
    if (self->opts.credit_batch == 0)
        self->opts.credit_batch = 1;
    syid_init(&self->ids);
    atomic_init(&self->stop, false);
    atomic_init(&self->served, 0);
    atomic_init(&self->errors, 0);
    uint8_t hello_id[16];
    int rc = benchworker_socket(self);
    if (rc < 0)
        snprintf(err, errlen, "worker: cannot connect to %s: %s",
                 opts->endpoint, zmq_strerror(zmq_errno()));
    if (rc == 0 && (rc = benchworker_hello(self, hello_id)) < 0)
        snprintf(err, errlen, "worker: cannot send hello (%s)", syerr_name(rc));
    if (rc == 0)
        rc = benchworker_welcome(self, hello_id, err, errlen);
    if (rc == 0) {
        self->last_send_ms = benchworker_now_ms();
        if (pthread_create(&self->thread, NULL, benchworker_run, self) != 0) {
            snprintf(err, errlen, "worker: cannot start thread");
            rc = SY_ENOMEM;
        } else {
            self->started = true;
        }
    }
    if (rc < 0) {
        benchworker_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void benchworker_destroy(benchworker_t **self_p)
{
    benchworker_t *self = *self_p;
    if (!self)
        return;
    atomic_store(&self->stop, true);
    if (self->started)
        pthread_join(self->thread, NULL);
    if (self->sock)
        zmq_close(self->sock);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

uint64_t benchworker_served(benchworker_t *self)
{
    return atomic_load(&self->served);
}

uint64_t benchworker_errors(benchworker_t *self)
{
    return atomic_load(&self->errors);
}
