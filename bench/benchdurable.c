/*  benchdurable.c -- sy-bench-durable: durable send -> deliver -> ack
 *  throughput through sy-broker.
 *
 *  Two raw libzmq DEALERs on one thread, polled together, so that the
 *  load is the same shape as the beanstalkd client (benchbean.c):
 *
 *    producer  sy.hello (no services), then durable sends (header
 *              durable=true, to the service, a body of --size bytes
 *              carrying its sequence number), keeping --inflight sends
 *              without a receipt; every sy.receipt must say ok.  It says
 *              batch_receipts in its hello, so the ok receipts of one
 *              commit come as one sy.receipt {ids}.
 *    consumer  sy.hello offering the service with --credit; each
 *              delivery (durable=true, attempt=N) is checked and its
 *              sequence number marked; the deliveries read in one drain
 *              of the socket are acknowledged together by one
 *              sy.ack {ids:[...]} right after it (the ack is what gives
 *              the credit back); with --unbatched, one sy.ack {id} per
 *              delivery at once, as before sy.ack took several ids.
 *
 *  The clock stops when every message has its receipt and has been
 *  delivered (rps).  Then the producer asks sy.query {what:"status"}: the
 *  broker commits what is pending before it answers, so the answer marks
 *  the moment the last ack is on disk too (committed_rps, the stricter
 *  figure).  Lost messages fail the run; duplicates and redeliveries
 *  (attempt > 1) are counted.
 *
 *  With --store-dir (the broker's store/dir), the store's last LMDB
 *  transaction id is read before and after (benchtxnid.h): their
 *  difference is the broker's number of commits -- fsyncs -- for the run,
 *  and batch_eff = 2 * n / commits is the batch size at which the raw
 *  LMDB put+commit, take+delete+commit cycle (benchlmdb.c) makes the same
 *  number of commits.
 *
 *  Every loop is bounded by its count and by --max-secs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bench/benchtxnid.h"
#include "bench/benchwire.h"
#include "schemas/syerr.h"

#define BENCHDURABLE_PRODUCER "bench-producer"
#define BENCHDURABLE_CONSUMER "bench-consumer"
#define BENCHDURABLE_DRAIN    1000     /* messages read per poll and socket */

typedef struct {
    const char *endpoint;
    const char *service;
    const char *store_dir;
    uint64_t    count;
    uint32_t    inflight;
    uint32_t    credit;
    size_t      size;
    uint32_t    max_secs;
    bool        unbatched;
} benchdurable_args_t;

typedef struct {
    benchdurable_args_t a;
    void     *ctx, *prod, *cons;
    syid_t    ids;
    uint8_t   body[BENCHWIRE_BODY_MAX];
    uint8_t  *seen;                  /* one bit per sequence number */
    uint64_t  sent, receipts, delivered, dups, redelivered;
    uint8_t   query_id[16];
    uint8_t (*acks)[16];             /* ids to acknowledge after a drain */
    size_t    nacks;
    bool      answered;
    int       failed;                /* first error, 0 if none */
    char      err[256];
} benchdurable_t;

static double benchdurable_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void benchdurable_fail(benchdurable_t *self, int rc, const char *what,
                              const char *detail)
{
    if (self->failed)
        return;
    self->failed = rc < 0 ? rc : SY_EINTERNAL;
    snprintf(self->err, sizeof self->err, "%s: %s", what, detail);
}

static void *benchdurable_socket(benchdurable_t *self)
{
    void *s = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!s)
        return NULL;
    int zero = 0, hwm = 1000000, ivl = 10;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &zero, sizeof zero);  /* polled */
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    if (zmq_connect(s, self->a.endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Sends a control message (type, body) on sock; its id into id_out. */
static int benchdurable_send_ctl(benchdurable_t *self, void *sock,
                                 const char *type, const uint8_t *corr,
                                 const uint8_t *body, size_t len,
                                 uint8_t *id_out)
{
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, type, NULL, corr);
    if (rc == 0 && id_out)
        memcpy(id_out, env.id, 16);
    return rc < 0 ? rc : benchwire_send(sock, &env, body, len);
}

/* Says hello on sock and waits (bounded) for the welcome. */
static int benchdurable_hello(benchdurable_t *self, void *sock,
                              const char *name, const char *service,
                              uint32_t credit)
{
    uint8_t body[256], hello_id[16];
    /* the producer takes the ok receipts of a commit together, unless
       --unbatched asks for the old one-for-one protocol */
    bool batch = !service && !self->a.unbatched;
    int len = benchwire_hello_body_ex(body, sizeof body, name, service, credit, batch);
    int rc = len < 0 ? len
           : benchdurable_send_ctl(self, sock, "sy.hello", NULL, body,
                                   (size_t)len, hello_id);
    double deadline = benchdurable_now() + 20;
    while (rc == 0 && benchdurable_now() < deadline) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 100);
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int r = benchwire_recv(sock, &m);
        bool welcome = r == 0 && strcmp(m.hdr.type, "sy.welcome") == 0
                       && memcmp(m.hdr.corr, hello_id, 16) == 0;
        bool refused = r == 0 && strcmp(m.hdr.type, "sy.receipt") == 0;
        benchwire_msg_close(&m);
        if (welcome)
            return 0;
        if (refused) {
            benchdurable_fail(self, SY_EDENIED, name, "hello refused");
            return SY_EDENIED;
        }
    }
    benchdurable_fail(self, SY_ETIMEOUT, name, "no welcome within 20 s");
    return SY_ETIMEOUT;
}

static int benchdurable_send_one(benchdurable_t *self)
{
    envelope_t env;
    int rc = benchwire_header(&env, &self->ids, BENCHWIRE_REQ_TYPE,
                              self->a.service, NULL);
    env.durable = true;
    env.present |= ENV_HAS_DURABLE;
    int len = benchwire_request_body(self->body, sizeof self->body,
                                     self->sent, self->a.size);
    if (rc == 0 && len < 0)
        rc = len;
    if (rc == 0)
        rc = benchwire_send(self->prod, &env, self->body, (size_t)len);
    if (rc < 0)
        benchdurable_fail(self, rc, "producer", "send failed");
    else
        self->sent++;
    return rc;
}

static void benchdurable_pong(benchdurable_t *self, void *sock,
                              const benchwire_msg_t *m)
{
    static const uint8_t empty_map = 0x80;
    benchdurable_send_ctl(self, sock, "sy.pong", m->hdr.id, &empty_map, 1,
                          NULL);
}

/* A receipt's code, for error messages. */
static void benchdurable_code(const benchwire_msg_t *m, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    benchwire_body_str(zmq_msg_data((zmq_msg_t *)&m->body_frame),
                       zmq_msg_size((zmq_msg_t *)&m->body_frame), "code",
                       out, cap);
}

static void benchdurable_on_producer(benchdurable_t *self, benchwire_msg_t *m)
{
    const uint8_t *b = zmq_msg_data(&m->body_frame);
    size_t n = zmq_msg_size(&m->body_frame);
    if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        bool ok = false;
        benchwire_body_bool(b, n, "ok", &ok);
        uint32_t nids = 0;
        if (ok && !(m->hdr.present & ENV_HAS_CORR)
            && benchwire_body_ids(b, n, "ids", &nids) == 0) {
            self->receipts += nids;    /* a gathered receipt (batch_receipts) */
            return;
        }
        if (ok) {
            self->receipts++;
            return;
        }
        char code[64];
        benchdurable_code(m, code, sizeof code);
        benchdurable_fail(self, syerr_from_name(code), "producer receipt",
                          code);
    } else if (strcmp(m->hdr.type, "sy.answer") == 0
               && memcmp(m->hdr.corr, self->query_id, 16) == 0) {
        self->answered = true;
    } else if (strcmp(m->hdr.type, "sy.ping") == 0) {
        benchdurable_pong(self, self->prod, m);
    }
}

static void benchdurable_on_delivery(benchdurable_t *self, benchwire_msg_t *m)
{
    uint64_t seq = 0;
    const uint8_t *b = zmq_msg_data(&m->body_frame);
    size_t n = zmq_msg_size(&m->body_frame);
    if (!m->hdr.durable || n != self->a.size
        || benchwire_body_uint(b, n, "seq", &seq) < 0 || seq >= self->a.count) {
        benchdurable_fail(self, SY_EBAD_BODY, "consumer",
                          "delivery not durable or body mangled");
        return;
    }
    if (self->seen[seq / 8] & (1u << (seq % 8)))
        self->dups++;
    else {
        self->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
        self->delivered++;
    }
    if ((m->hdr.present & ENV_HAS_ATTEMPT) && m->hdr.attempt > 1)
        self->redelivered++;
    if (!self->a.unbatched) {
        memcpy(self->acks[self->nacks++], m->hdr.id, 16);
        return;                      /* benchdurable_ack_all, after the drain */
    }
    uint8_t ack[32];
    int len = benchwire_ack_body(ack, sizeof ack, m->hdr.id);
    if (len < 0 || benchdurable_send_ctl(self, self->cons, "sy.ack", NULL, ack,
                                         (size_t)len, NULL) < 0)
        benchdurable_fail(self, SY_EIO, "consumer", "ack failed");
}

/* One sy.ack {ids} for the deliveries of the drain that just ended. */
static void benchdurable_ack_all(benchdurable_t *self)
{
    if (self->nacks == 0)
        return;
    static uint8_t body[16 + BENCHDURABLE_DRAIN * 18];
    int len = benchwire_ack_ids_body(body, sizeof body, self->acks, self->nacks);
    if (len < 0 || benchdurable_send_ctl(self, self->cons, "sy.ack", NULL, body,
                                         (size_t)len, NULL) < 0)
        benchdurable_fail(self, SY_EIO, "consumer", "ack failed");
    self->nacks = 0;
}

static void benchdurable_on_consumer(benchdurable_t *self, benchwire_msg_t *m)
{
    if (strcmp(m->hdr.type, BENCHWIRE_REQ_TYPE) == 0)
        benchdurable_on_delivery(self, m);
    else if (strcmp(m->hdr.type, "sy.ping") == 0)
        benchdurable_pong(self, self->cons, m);
    else if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        char code[64];
        benchdurable_code(m, code, sizeof code);
        benchdurable_fail(self, syerr_from_name(code), "consumer receipt",
                          code);
    }
}

/* Reads what is waiting on sock (at most BENCHDURABLE_DRAIN messages). */
static void benchdurable_drain(benchdurable_t *self, void *sock)
{
    for (int i = 0; i < BENCHDURABLE_DRAIN && !self->failed; i++) {
        benchwire_msg_t m;
        benchwire_msg_init(&m);
        int rc = benchwire_recv(sock, &m);
        if (rc == 0 && sock == self->prod)
            benchdurable_on_producer(self, &m);
        else if (rc == 0)
            benchdurable_on_consumer(self, &m);
        benchwire_msg_close(&m);
        if (rc == SY_ETIMEOUT)
            break;
        if (rc < 0)
            benchdurable_fail(self, rc, "recv", syerr_name(rc));
    }
}

static void benchdurable_poll(benchdurable_t *self, long timeout_ms)
{
    zmq_pollitem_t it[2] = {{self->prod, 0, ZMQ_POLLIN, 0},
                            {self->cons, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(it, 2, timeout_ms) < 0)
        return;
    if (it[0].revents & ZMQ_POLLIN)
        benchdurable_drain(self, self->prod);
    if (it[1].revents & ZMQ_POLLIN) {
        benchdurable_drain(self, self->cons);
        benchdurable_ack_all(self);
    }
}

/* The measured run: returns its seconds, or a negative value. */
static double benchdurable_run(benchdurable_t *self)
{
    double t0 = benchdurable_now(), deadline = t0 + self->a.max_secs;
    uint64_t n = self->a.count;
    while (!self->failed && (self->receipts < n || self->delivered < n)) {
        if (benchdurable_now() >= deadline) {
            char d[128];
            snprintf(d, sizeof d, "after %u s: %llu receipts, %llu delivered",
                     self->a.max_secs, (unsigned long long)self->receipts,
                     (unsigned long long)self->delivered);
            benchdurable_fail(self, SY_ETIMEOUT, "timeout", d);
            break;
        }
        while (self->sent < n && self->sent - self->receipts < self->a.inflight
               && !self->failed)
            benchdurable_send_one(self);
        benchdurable_poll(self, 100);
    }
    return self->failed ? -1 : benchdurable_now() - t0;
}

/* Asks for the status and waits (bounded) for the answer: the broker has
   committed the acks before it answers. */
static int benchdurable_settle(benchdurable_t *self)
{
    uint8_t body[32];
    int len = benchwire_query_body(body, sizeof body, "status");
    if (len < 0 || benchdurable_send_ctl(self, self->prod, "sy.query", NULL,
                                         body, (size_t)len,
                                         self->query_id) < 0)
        return SY_EIO;
    double deadline = benchdurable_now() + 10;
    while (!self->answered && !self->failed && benchdurable_now() < deadline)
        benchdurable_poll(self, 100);
    return self->answered ? 0 : SY_ETIMEOUT;
}

static void benchdurable_report(benchdurable_t *self, double secs,
                                double committed, uint64_t commits)
{
    double n = (double)self->a.count;
    printf("system=sy-durable n=%llu inflight=%u credit=%u size=%zu"
           " secs=%.4f rps=%.0f committed_secs=%.4f committed_rps=%.0f",
           (unsigned long long)self->a.count, self->a.inflight,
           self->a.credit, self->a.size, secs, n / secs, committed,
           n / committed);
    if (commits)
        printf(" commits=%llu commits_per_msg=%.3f batch_eff=%.0f",
               (unsigned long long)commits, (double)commits / n,
               2 * n / (double)commits);
    printf(" duplicates=%llu redelivered=%llu\n",
           (unsigned long long)self->dups,
           (unsigned long long)self->redelivered);
    fflush(stdout);
}

static int benchdurable_main(benchdurable_t *self)
{
    self->ctx = zmq_ctx_new();
    self->prod = self->ctx ? benchdurable_socket(self) : NULL;
    self->cons = self->prod ? benchdurable_socket(self) : NULL;
    self->seen = calloc(self->a.count / 8 + 1, 1);
    self->acks = calloc(BENCHDURABLE_DRAIN, sizeof *self->acks);
    if (!self->cons || !self->seen || !self->acks) {
        benchdurable_fail(self, SY_EIO, "setup", "cannot connect");
        return self->failed;
    }
    if (benchdurable_hello(self, self->prod, BENCHDURABLE_PRODUCER, NULL, 1) < 0
        || benchdurable_hello(self, self->cons, BENCHDURABLE_CONSUMER,
                              self->a.service, self->a.credit) < 0)
        return self->failed;
    uint64_t tx0 = 0, tx1 = 0;
    bool txn = self->a.store_dir
               && benchtxnid_read(self->a.store_dir, &tx0) == 0;
    double t0 = benchdurable_now();
    double secs = benchdurable_run(self);
    if (secs < 0)
        return self->failed;
    if (benchdurable_settle(self) < 0) {
        benchdurable_fail(self, SY_ETIMEOUT, "status", "no answer in 10 s");
        return self->failed;
    }
    double committed = benchdurable_now() - t0;
    if (txn && benchtxnid_read(self->a.store_dir, &tx1) < 0)
        txn = false;
    benchdurable_report(self, secs, committed, txn ? tx1 - tx0 : 0);
    return 0;
}

static void benchdurable_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench-durable --endpoint EP [options]\n"
        "  --service S     service to send to (bdur)\n"
        "  --count N       messages (20000)\n"
        "  --inflight N    sends without a receipt at most (500)\n"
        "  --credit N      consumer credit (500)\n"
        "  --size N        body bytes (256)\n"
        "  --store-dir D   the broker's store/dir: count its commits\n"
        "  --max-secs N    bound of the run (60)\n"
        "  --unbatched     one sy.ack {id} per delivery instead of one\n"
        "                  sy.ack {ids} per drain of the socket, and one\n"
        "                  sy.receipt per send (no batch_receipts)\n");
}

static int benchdurable_parse(int argc, char **argv, benchdurable_args_t *a)
{
    static const struct option longopts[] = {
        {"endpoint", 1, 0, 'e'}, {"service", 1, 0, 's'},
        {"count", 1, 0, 'c'}, {"inflight", 1, 0, 'i'}, {"credit", 1, 0, 'r'},
        {"size", 1, 0, 'z'}, {"store-dir", 1, 0, 'd'},
        {"max-secs", 1, 0, 't'}, {"unbatched", 0, 0, 'A'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (benchdurable_args_t){.service = "bdur", .count = 20000,
                               .inflight = 500, .credit = 500, .size = 256,
                               .max_secs = 60};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 'e': a->endpoint = optarg; break;
        case 's': a->service = optarg; break;
        case 'c': a->count = v; break;
        case 'i': a->inflight = (uint32_t)v; break;
        case 'r': a->credit = (uint32_t)v; break;
        case 'z': a->size = (size_t)v; break;
        case 'd': a->store_dir = optarg; break;
        case 't': a->max_secs = (uint32_t)v; break;
        case 'A': a->unbatched = true; break;
        case 'h': benchdurable_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    if (!a->endpoint || a->count == 0 || a->inflight == 0 || a->credit == 0
        || a->size < 32 || a->size > BENCHWIRE_BODY_MAX || a->max_secs == 0)
        return SY_EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    static benchdurable_t self;
    if (benchdurable_parse(argc, argv, &self.a) < 0) {
        benchdurable_usage(stderr);
        return 2;
    }
    syid_init(&self.ids);
    int rc = benchdurable_main(&self);
    if (self.prod)
        zmq_close(self.prod);
    if (self.cons)
        zmq_close(self.cons);
    if (self.ctx)
        zmq_ctx_term(self.ctx);
    free(self.seen);
    free(self.acks);
    if (rc) {
        fprintf(stderr, "sy-bench-durable: %s (sent %llu, receipts %llu,"
                " delivered %llu)\n", self.err,
                (unsigned long long)self.sent,
                (unsigned long long)self.receipts,
                (unsigned long long)self.delivered);
        return 1;
    }
    return 0;
}
