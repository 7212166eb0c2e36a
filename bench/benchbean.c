/*  benchbean.c -- sy-bench-bean: the durable benchmark's load against
 *  beanstalkd, speaking its text protocol over TCP on 127.0.0.1.
 *
 *  The same cycle and the same shape as sy-bench-durable, so the two
 *  figures compare: one thread polling two connections,
 *
 *    producer  `put <pri> 0 <ttr> <bytes>` with a body of --size bytes
 *              carrying its sequence number (the same msgpack body as the
 *              broker benchmark), keeping --inflight puts without their
 *              INSERTED (beanstalkd answers after its binlog write, which
 *              with `-f 0` is fsynced: the receipt of a durable send);
 *    consumer  keeps --credit `reserve` commands outstanding; each
 *              RESERVED job is checked, marked, and deleted with
 *              `delete <id>` (also binlogged and fsynced), and another
 *              reserve goes out while jobs remain.
 *
 *  beanstalkd serves the commands of a connection in order, so pipelined
 *  reserves are answered one by one as jobs come, and a delete sent behind
 *  a waiting reserve is served after it: the consumer sends exactly
 *  --count reserves, so none waits forever.
 *
 *  rps: every put INSERTED and every job reserved; committed_rps: also
 *  every delete answered DELETED (on disk).  Lost jobs fail the run.
 *  Every loop is bounded by its count and by --max-secs.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchwire.h"
#include "schemas/syerr.h"

#define BENCHBEAN_BUF (4u << 20)     /* per connection and direction */
#define BENCHBEAN_TTR 600            /* seconds a reserved job stays ours */

typedef struct {
    int       port;
    uint64_t  count;
    uint32_t  inflight;
    uint32_t  credit;
    size_t    size;
    uint32_t  max_secs;
} benchbean_args_t;

/* One connection with its buffered output and input. */
typedef struct {
    int      fd;
    uint8_t *out;
    size_t   out_len;
    uint8_t *in;
    size_t   in_len;
} benchbean_conn_t;

typedef struct {
    benchbean_args_t a;
    benchbean_conn_t prod, cons;
    uint8_t   body[BENCHWIRE_BODY_MAX];
    uint8_t  *seen;
    uint64_t  sent, inserted, reserves, delivered, deleted, dups;
    int       failed;
    char      err[256];
} benchbean_t;

static double benchbean_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void benchbean_fail(benchbean_t *self, const char *what,
                           const char *detail)
{
    if (self->failed)
        return;
    self->failed = SY_EINTERNAL;
    snprintf(self->err, sizeof self->err, "%s: %.200s", what, detail);
}

/* Connects to 127.0.0.1:port, retrying for up to 10 s (beanstalkd may be
   starting).  Returns a non-blocking socket or -1. */
static int benchbean_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double deadline = benchbean_now() + 10;
    while (benchbean_now() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -1;
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int e = 0;
            socklen_t el = sizeof e;
            if (poll(&p, 1, 1000) == 1
                && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
                rc = 0;
        }
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        close(fd);
        usleep(20000);
    }
    return -1;
}

static int benchbean_conn_open(benchbean_conn_t *c, int port)
{
    c->out = malloc(BENCHBEAN_BUF);
    c->in = malloc(BENCHBEAN_BUF);
    c->fd = c->out && c->in ? benchbean_connect(port) : -1;
    return c->fd < 0 ? SY_EIO : 0;
}

static void benchbean_conn_close(benchbean_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    free(c->in);
    *c = (benchbean_conn_t){.fd = -1};
}

/* Queues bytes for sending.  Returns 0 or SY_ENOSPACE. */
static int benchbean_queue(benchbean_conn_t *c, const void *p, size_t n)
{
    if (n > BENCHBEAN_BUF - c->out_len)
        return SY_ENOSPACE;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static int benchbean_flush(benchbean_conn_t *c)
{
    if (c->out_len == 0)
        return 0;
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN ? 0 : SY_EIO;
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    return 0;
}

static int benchbean_fill(benchbean_conn_t *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, BENCHBEAN_BUF - c->in_len, 0);
    if (n == 0)
        return SY_EIO;                   /* beanstalkd closed */
    if (n < 0)
        return errno == EAGAIN ? 0 : SY_EIO;
    c->in_len += (size_t)n;
    return 0;
}

static void benchbean_put(benchbean_t *self)
{
    char cmd[64];
    int len = benchwire_request_body(self->body, sizeof self->body,
                                     self->sent, self->a.size);
    int hl = snprintf(cmd, sizeof cmd, "put 1024 0 %d %zu\r\n", BENCHBEAN_TTR,
                      self->a.size);
    if (len < 0 || benchbean_queue(&self->prod, cmd, (size_t)hl) < 0
        || benchbean_queue(&self->prod, self->body, (size_t)len) < 0
        || benchbean_queue(&self->prod, "\r\n", 2) < 0)
        benchbean_fail(self, "producer", "cannot queue a put");
    else
        self->sent++;
}

static void benchbean_reserve(benchbean_t *self)
{
    if (benchbean_queue(&self->cons, "reserve\r\n", 9) < 0)
        benchbean_fail(self, "consumer", "cannot queue a reserve");
    else
        self->reserves++;
}

/* Handles one line of the producer's input.  */
static void benchbean_on_prod_line(benchbean_t *self, const char *line)
{
    if (strncmp(line, "INSERTED ", 9) == 0)
        self->inserted++;
    else
        benchbean_fail(self, "put answered", line);
}

/* The job data of a RESERVED: check, mark, delete, reserve again. */
static void benchbean_on_job(benchbean_t *self, unsigned long long id,
                             const uint8_t *data, size_t n)
{
    uint64_t seq = 0;
    if (n != self->a.size || benchwire_body_uint(data, n, "seq", &seq) < 0
        || seq >= self->a.count) {
        benchbean_fail(self, "consumer", "job data mangled");
        return;
    }
    if (self->seen[seq / 8] & (1u << (seq % 8)))
        self->dups++;
    else {
        self->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
        self->delivered++;
    }
    char cmd[48];
    int hl = snprintf(cmd, sizeof cmd, "delete %llu\r\n", id);
    if (benchbean_queue(&self->cons, cmd, (size_t)hl) < 0)
        benchbean_fail(self, "consumer", "cannot queue a delete");
    if (self->reserves < self->a.count)
        benchbean_reserve(self);
}

/* Parses what c holds: whole lines (and for RESERVED the job after its
   line).  Returns the bytes consumed. */
static size_t benchbean_parse(benchbean_t *self, benchbean_conn_t *c,
                              bool prod)
{
    size_t pos = 0;
    while (pos < c->in_len && !self->failed) {
        uint8_t *p = c->in + pos;
        uint8_t *nl = memmem(p, c->in_len - pos, "\r\n", 2);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - p);
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)(llen < 127 ? llen : 127),
                 (const char *)p);
        if (prod) {
            benchbean_on_prod_line(self, line);
            pos += llen + 2;
            continue;
        }
        unsigned long long id, bytes;
        if (sscanf(line, "RESERVED %llu %llu", &id, &bytes) == 2) {
            if (c->in_len - pos < llen + 2 + bytes + 2)
                break;                               /* job not all here */
            benchbean_on_job(self, id, p + llen + 2, (size_t)bytes);
            pos += llen + 2 + (size_t)bytes + 2;
        } else if (strcmp(line, "DELETED") == 0) {
            self->deleted++;
            pos += llen + 2;
        } else {
            benchbean_fail(self, "consumer answered", line);
        }
    }
    return pos;
}

static void benchbean_read(benchbean_t *self, benchbean_conn_t *c, bool prod)
{
    if (benchbean_fill(c) < 0) {
        benchbean_fail(self, prod ? "producer" : "consumer",
                       "connection lost");
        return;
    }
    size_t used = benchbean_parse(self, c, prod);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->in_len == BENCHBEAN_BUF)
        benchbean_fail(self, "input", "line too long");
}

static void benchbean_step(benchbean_t *self)
{
    while (self->sent < self->a.count
           && self->sent - self->inserted < self->a.inflight && !self->failed)
        benchbean_put(self);
    if (benchbean_flush(&self->prod) < 0 || benchbean_flush(&self->cons) < 0)
        benchbean_fail(self, "send", "connection lost");
    struct pollfd p[2] = {
        {self->prod.fd, POLLIN | (self->prod.out_len ? POLLOUT : 0), 0},
        {self->cons.fd, POLLIN | (self->cons.out_len ? POLLOUT : 0), 0}};
    if (poll(p, 2, 100) <= 0)
        return;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        benchbean_read(self, &self->prod, true);
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        benchbean_read(self, &self->cons, false);
}

static int benchbean_main(benchbean_t *self)
{
    self->seen = calloc(self->a.count / 8 + 1, 1);
    if (!self->seen || benchbean_conn_open(&self->prod, self->a.port) < 0
        || benchbean_conn_open(&self->cons, self->a.port) < 0) {
        benchbean_fail(self, "connect", "no beanstalkd on 127.0.0.1");
        return self->failed;
    }
    uint64_t n = self->a.count;
    double t0 = benchbean_now(), deadline = t0 + self->a.max_secs, t1 = 0;
    for (uint32_t i = 0; i < self->a.credit && self->reserves < n; i++)
        benchbean_reserve(self);
    while (!self->failed && self->deleted < n) {
        if (benchbean_now() >= deadline) {
            char d[128];
            snprintf(d, sizeof d, "after %u s: %llu inserted, %llu reserved,"
                     " %llu deleted", self->a.max_secs,
                     (unsigned long long)self->inserted,
                     (unsigned long long)self->delivered,
                     (unsigned long long)self->deleted);
            benchbean_fail(self, "timeout", d);
            break;
        }
        benchbean_step(self);
        if (t1 == 0 && self->inserted == n && self->delivered == n)
            t1 = benchbean_now();
    }
    if (self->failed)
        return self->failed;
    double t2 = benchbean_now();
    printf("system=beanstalkd n=%llu inflight=%u credit=%u size=%zu"
           " secs=%.4f rps=%.0f committed_secs=%.4f committed_rps=%.0f"
           " duplicates=%llu\n", (unsigned long long)n, self->a.inflight,
           self->a.credit, self->a.size, t1 - t0, (double)n / (t1 - t0),
           t2 - t0, (double)n / (t2 - t0), (unsigned long long)self->dups);
    return 0;
}

static void benchbean_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-bench-bean --port P [options]   (beanstalkd on 127.0.0.1)\n"
        "  --count N     jobs (20000)\n"
        "  --inflight N  puts without INSERTED at most (500)\n"
        "  --credit N    reserves outstanding (500)\n"
        "  --size N      job bytes (256)\n"
        "  --max-secs N  bound of the run (60)\n");
}

static int benchbean_args(int argc, char **argv, benchbean_args_t *a)
{
    static const struct option longopts[] = {
        {"port", 1, 0, 'p'}, {"count", 1, 0, 'c'}, {"inflight", 1, 0, 'i'},
        {"credit", 1, 0, 'r'}, {"size", 1, 0, 'z'}, {"max-secs", 1, 0, 't'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (benchbean_args_t){.count = 20000, .inflight = 500, .credit = 500,
                            .size = 256, .max_secs = 60};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (c) {
        case 'p': a->port = (int)v; break;
        case 'c': a->count = v; break;
        case 'i': a->inflight = (uint32_t)v; break;
        case 'r': a->credit = (uint32_t)v; break;
        case 'z': a->size = (size_t)v; break;
        case 't': a->max_secs = (uint32_t)v; break;
        case 'h': benchbean_usage(stdout); exit(0);
        default: return SY_EINVAL;
        }
    }
    if (a->port <= 0 || a->port > 65535 || a->count == 0 || a->inflight == 0
        || a->credit == 0 || a->size < 32 || a->size > BENCHWIRE_BODY_MAX
        || a->max_secs == 0)
        return SY_EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    static benchbean_t self = {.prod = {.fd = -1}, .cons = {.fd = -1}};
    if (benchbean_args(argc, argv, &self.a) < 0) {
        benchbean_usage(stderr);
        return 2;
    }
    int rc = benchbean_main(&self);
    benchbean_conn_close(&self.prod);
    benchbean_conn_close(&self.cons);
    free(self.seen);
    if (rc) {
        fprintf(stderr, "sy-bench-bean: %s\n", self.err);
        return 1;
    }
    return 0;
}
