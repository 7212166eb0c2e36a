/*  test_broker_disconnect.c -- a peer whose connection closes leaves the
 *  broker at once, and an attempt counts a delivery that went out.
 *
 *  Three layers:
 *
 *  - conns (broker/conns.h), the descriptor -> connection-generation
 *    table: a close names the peer of its own connection only, never the
 *    one that got the descriptor number next, and in doubt nobody.
 *
 *  - the durable queues (broker/durable.h, store.h) without sockets: a
 *    delivery taken and never sent (its holder left in the same batch,
 *    or its send failed) comes back with its attempt count unchanged --
 *    shown with max_attempts = 1, where a counted attempt would send it
 *    to the dead-letter queue -- while one really sent counts.
 *
 *  - the real sy-broker ($SY_BIN_DIR/sy-broker, default bin/) as a
 *    process, curve off, liveness 30 s and lease 60 s, spoken to with raw
 *    DEALERs: a worker process killed with SIGKILL (tcp) or a socket
 *    closed with linger 0 (ipc) while holding a durable message, without
 *    sy.bye: a second worker gets the message within 2 s with attempt 2,
 *    and a subscriber sees presence.leave reason "disconnected".  New
 *    connections that reuse a closed connection's descriptor at once are
 *    not dropped by the old connection's close (bounded rounds; the
 *    broker's debug log shows that descriptors were really reused).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/conns.h"
#include "broker/durable.h"
#include "broker/store.h"
#include "common/config.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define WAIT_MS    5000         /* a reply that should come */
#define FAST_MS    2000         /* "at once": far below liveness (30 s) */
#define REUSE_ROUNDS 12

/* ================================================================ conns */

static void test_conns_generations(void **state)
{
    (void) state;
    conns_t *c = conns_new();
    assert_non_null(c);
    uint8_t a[4] = { 3, 'a', 'a', 'a' }, b[4] = { 3, 'b', 'b', 'b' };
    uint8_t out[1 + CONNS_RID_MAX];
    uint32_t gen = 0;

    assert_int_equal(conns_current(c, 7), 0);               /* never accepted */
    assert_int_equal(conns_bind(c, 7, 1, a), SY_EINVAL);
    assert_false(conns_disconnected(c, 7, &gen, out));

    assert_int_equal(conns_accepted(c, 7), 0);
    uint32_t g1 = conns_current(c, 7);
    assert_true(g1 != 0);
    assert_int_equal(conns_open(c), 1);
    assert_int_equal(conns_bind(c, 7, g1, a), 0);
    assert_true(conns_disconnected(c, 7, &gen, out));
    assert_int_equal(gen, g1);
    assert_memory_equal(out, a, sizeof a);
    assert_int_equal(conns_current(c, 7), 0);               /* closed */
    assert_int_equal(conns_open(c), 0);
    assert_false(conns_disconnected(c, 7, &gen, out));      /* once only */

    /* the number is reused: a new generation; the old one binds nothing */
    assert_int_equal(conns_accepted(c, 7), 0);
    uint32_t g2 = conns_current(c, 7);
    assert_true(g2 != 0 && g2 != g1);
    assert_int_equal(conns_bind(c, 7, g1, a), SY_EINVAL);
    assert_int_equal(conns_bind(c, 7, g2, b), 0);
    assert_int_equal(conns_bind(c, 7, g2, b), 0);           /* hello again */
    assert_true(conns_disconnected(c, 7, &gen, out));
    assert_int_equal(gen, g2);
    assert_memory_equal(out, b, sizeof b);

    /* a connection nobody said hello on names nobody */
    assert_int_equal(conns_accepted(c, 3), 0);
    assert_false(conns_disconnected(c, 3, &gen, out));

    /* out of range: not tracked, in doubt */
    assert_int_equal(conns_accepted(c, -1), SY_EINVAL);
    assert_int_equal(conns_accepted(c, CONNS_FD_MAX), SY_EINVAL);
    assert_int_equal(conns_current(c, -1), 0);

    /* a high number grows the table; lower slots keep their state */
    assert_int_equal(conns_accepted(c, 5000), 0);
    assert_int_equal(conns_bind(c, 5000, conns_current(c, 5000), a), 0);
    assert_int_equal(conns_current(c, 7), 0);
    assert_int_equal(conns_open(c), 1);
    conns_destroy(&c);
    assert_null(c);
    conns_destroy(&c);
}

/* Two routing ids on one connection: the table is behind the socket;
   the close of that connection must name nobody. */
static void test_conns_doubt(void **state)
{
    (void) state;
    conns_t *c = conns_new();
    uint8_t a[3] = { 2, 'x', '1' }, b[3] = { 2, 'x', '2' };
    uint8_t out[1 + CONNS_RID_MAX];
    uint32_t gen = 0;
    assert_int_equal(conns_accepted(c, 9), 0);
    uint32_t g = conns_current(c, 9);
    assert_int_equal(conns_bind(c, 9, g, a), 0);
    assert_int_equal(conns_bind(c, 9, g, b), SY_EINVAL);
    assert_int_equal(conns_bind(c, 9, g, a), SY_EINVAL);    /* stays in doubt */
    assert_false(conns_disconnected(c, 9, &gen, out));
    /* the next connection on the number is trusted again */
    assert_int_equal(conns_accepted(c, 9), 0);
    assert_int_equal(conns_bind(c, 9, conns_current(c, 9), b), 0);
    assert_true(conns_disconnected(c, 9, &gen, out));
    assert_memory_equal(out, b, sizeof b);
    conns_destroy(&c);
}

/* ================================================================ durable */

#define DL_MAX 16

typedef struct {
    char dir[64], store[128], cfgpath[128];
    config_t *cfg;
    durable_t *d;
    int ndl;
    uint32_t attempt[DL_MAX];
    char holder[DL_MAX][32];
    bool undo;                  /* the deliver callback plays a failed send */
} dfx_t;

static void dfx_receipt(const durable_receipt_t *r, void *arg)
{
    (void) r;
    (void) arg;
}

static void dfx_deliver(durable_delivery_t *dl, void *arg)
{
    dfx_t *fx = arg;
    if (!dl->committed)
        return;
    if (fx->ndl < DL_MAX) {
        fx->attempt[fx->ndl] = dl->attempt;
        snprintf(fx->holder[fx->ndl], sizeof fx->holder[0], "%s", dl->holder);
        fx->ndl++;
    }
    if (fx->undo)
        assert_int_equal(durable_undeliver(fx->d, dl->id, dl->holder, 0, 5000), 0);
}

static int dfx_setup(void **state)
{
    dfx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tutil_tmpdir(fx->dir, sizeof fx->dir, "undeliver") != 0)
        return -1;
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->dir);
    snprintf(fx->cfgpath, sizeof fx->cfgpath, "%s/t.cfg", fx->dir);
    /* one attempt: a counted attempt that was never a delivery would
       send the message to the dead-letter queue at once */
    if (tutil_write_file(fx->cfgpath,
            "store\n    dir = \"%s\"\n    sync = none\n    map_size = 16M\n"
            "    lease = 60s\n    max_attempts = 1\n", fx->store) != 0)
        return -1;
    char err[256];
    if (config_load(fx->cfgpath, &fx->cfg, err, sizeof err) != 0
        || durable_new(fx->cfg, dfx_receipt, fx, &fx->d, err, sizeof err) != 0) {
        fprintf(stderr, "durable: %s\n", err);
        return -1;
    }
    durable_set_deliver(fx->d, dfx_deliver, fx);
    *state = fx;
    return 0;
}

static int dfx_teardown(void **state)
{
    dfx_t *fx = *state;
    durable_destroy(&fx->d);
    config_destroy(&fx->cfg);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void dfx_put(dfx_t *fx, uint8_t tag)
{
    envelope_t env;
    envelope_init(&env);
    randombytes_buf(env.id, ENVELOPE_ID_LEN);
    env.id[0] = tag;
    envelope_set_type(&env, "echo.request");
    envelope_set_to(&env, "svc");
    envelope_set_from(&env, "producer");
    env.durable = true;
    env.present |= ENV_HAS_DURABLE;
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(&env, hbuf, sizeof hbuf);
    assert_true(hlen > 0);
    uint8_t rid[3] = { 2, 'p', 'p' };
    assert_int_equal(durable_put(fx->d, rid, &env, hbuf, (size_t) hlen, "job", 3, 1000), 0);
    assert_int_equal(durable_flush(fx->d), 0);
}

static store_counts_t dfx_counts(dfx_t *fx)
{
    store_counts_t c;
    assert_int_equal(store_counts(durable_store(fx->d), "svc", &c), 0);
    return c;
}

/* The holder leaves in the batch that took the message for it: the
   message never went out, so its attempt is not used. */
static void test_release_in_batch_is_not_an_attempt(void **state)
{
    dfx_t *fx = *state;
    dfx_put(fx, 1);
    size_t n = 0, back = 0;
    assert_int_equal(durable_deliver(fx->d, "svc", "w1", 1, 2000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(durable_release(fx->d, "w1", &back), 0);
    assert_int_equal(back, 1);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(fx->ndl, 0);                       /* never handed out */
    store_counts_t c = dfx_counts(fx);
    assert_int_equal(c.dead, 0);
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2], 1);

    assert_int_equal(durable_deliver(fx->d, "svc", "w2", 1, 3000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(fx->ndl, 1);
    assert_string_equal(fx->holder[0], "w2");
    assert_int_equal(fx->attempt[0], 1);                /* its first delivery */

    /* w2 really got it: its leaving counts that attempt, the only one */
    assert_int_equal(durable_release(fx->d, "w2", &back), 0);
    assert_int_equal(back, 1);
    assert_int_equal(durable_flush(fx->d), 0);
    c = dfx_counts(fx);
    assert_int_equal(c.dead, 1);
    assert_int_equal(c.ready[0] + c.ready[1] + c.ready[2], 0);
}

/* A committed delivery whose send failed is given back uncounted, as
   many times as it fails. */
static void test_failed_send_is_not_an_attempt(void **state)
{
    dfx_t *fx = *state;
    dfx_put(fx, 2);
    fx->undo = true;
    for (int round = 0; round < 3; round++) {
        size_t n = 0;
        assert_int_equal(durable_deliver(fx->d, "svc", "w1", 1, 4000, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(durable_flush(fx->d), 0);
        assert_int_equal(fx->ndl, round + 1);
        assert_int_equal(fx->attempt[round], 1);
        store_counts_t c = dfx_counts(fx);
        assert_int_equal(c.inflight, 0);
        assert_int_equal(c.dead, 0);
    }
    fx->undo = false;
    /* not in flight (any more): nothing to give back */
    uint8_t id[ENVELOPE_ID_LEN] = { 0 };
    assert_int_equal(durable_undeliver(fx->d, id, "w1", 0, 5000), SY_ENOTFOUND);
    assert_int_equal(durable_flush(fx->d), 0);
}

/* ================================================================ the broker */

typedef struct {
    char dir[64];
    char cfg[128], store[128], log[128], ipc[128];
    char tcp[64];
    pid_t pid;
    void *ctx;                  /* the test's own libzmq context */
    int nsock;                  /* its sockets still open */
} bd_t;

/* ------------------------------------------------------------ messages
   (raw libzmq, so that they work in a forked child too) */

/* A body {k: v} or {}, msgpack. */
static int bd_send_kv(void *s, const char *type, const char *k, const char *v)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, k ? 1 : 0);
    if (k) {
        tutil_pack_str(&pk, k);
        tutil_pack_str(&pk, v);
    }
    int rc = tutil_send(s, type, NULL, NULL, false, sb.data, sb.size, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Receives until a message of type comes (others are skipped); false on
   silence and on a malformed message. */
static bool bd_expect(void *s, const char *type, int timeout_ms, tutil_msg_t *m)
{
    return tutil_expect(s, type, timeout_ms, m) == 1;
}

/* A socket of the fixture's context; counted, so that teardown knows
   whether the context can be terminated (a failed test leaves some). */
static void *bd_open(bd_t *b, const char *ep)
{
    void *s = tutil_dealer(b->ctx, ep);
    if (s)
        b->nsock++;
    return s;
}

static void bd_close(bd_t *b, void *s)
{
    zmq_close(s);
    b->nsock--;
}

/* Hello and welcome, or the test fails. */
static void *bd_session(bd_t *b, const char *ep, const char *name, const char *service,
                        uint32_t credit)
{
    void *s = bd_open(b, ep);
    assert_non_null(s);
    assert_int_equal(tutil_hello(s, name, service, credit), 0);
    tutil_msg_t m;
    if (!bd_expect(s, "sy.welcome", WAIT_MS, &m))
        fail_msg("%s: no sy.welcome", name);
    return s;
}

static bool bd_ping(void *s, int timeout_ms)
{
    if (tutil_send(s, "sy.ping", NULL, NULL, false, NULL, 0, NULL) != 0)
        return false;
    tutil_msg_t m;
    return bd_expect(s, "sy.pong", timeout_ms, &m);
}

/* A subscriber of presence.leave, its subscription in place. */
static void *bd_watcher(bd_t *b, const char *ep, const char *name)
{
    void *s = bd_session(b, ep, name, NULL, 10);
    assert_int_equal(bd_send_kv(s, "sy.sub", "topic", "presence.leave"), 0);
    assert_true(bd_ping(s, WAIT_MS));       /* the sub was read before the ping */
    return s;
}

/* Waits for presence.leave of name; its reason in reason. */
static bool bd_wait_leave(void *w, const char *name, int timeout_ms, char *reason,
                          size_t cap)
{
    int64_t end = zclock_mono() + timeout_ms;
    for (;;) {
        int64_t left = end - zclock_mono();
        tutil_msg_t m;
        if (left <= 0 || !bd_expect(w, "sy.event", (int) left, &m))
            return false;
        char who[80];
        if (tutil_field(&m, true, "name", who, sizeof who) && strcmp(who, name) == 0) {
            tutil_field(&m, true, "reason", reason, cap);
            return true;
        }
    }
}

/* Sends a durable job to service and waits for its ok receipt. */
static void bd_queue_job(void *prod, const char *service, const char *text,
                         uint8_t id[ENVELOPE_ID_LEN])
{
    assert_int_equal(tutil_send(prod, "echo.request", service, NULL, true, text, strlen(text), id), 0);
    tutil_msg_t m;
    if (!bd_expect(prod, "sy.receipt", WAIT_MS, &m))
        fail_msg("no receipt for the durable job");
    char code[40];
    if (tutil_field(&m, false, "code", code, sizeof code))
        fail_msg("durable job refused: %s", code);
}

/* ------------------------------------------------------------ fixture */

static void bd_write_config(bd_t *b)
{
    assert_int_equal(tutil_write_file(b->cfg,
        "log\n    level = debug\n    file = \"%s\"\n"
        "broker\n    endpoint = \"%s,%s\"\n    heartbeat = 1s\n    liveness = 30s\n"
        "store\n    dir = \"%s\"\n    sync = none\n    map_size = 32M\n"
        "    lease = 60s\n"
        "security\n    curve = false\n",
        b->log, b->tcp, b->ipc, b->store), 0);
}

static void bd_start(bd_t *b)
{
    b->pid = tutil_broker_start(b->cfg, b->log);
    assert_true(b->pid >= 0);
}

/* Waits until the broker answers on ep (a hello gets its welcome). */
static bool bd_wait_up(bd_t *b, const char *ep)
{
    for (int i = 0; i < 100; i++) {
        void *s = tutil_dealer(b->ctx, ep);
        bool up = false;
        if (s) {
            tutil_msg_t m;
            up = tutil_hello(s, "probe", NULL, 1) == 0 && bd_expect(s, "sy.welcome", 100, &m);
            if (up)
                bd_send_kv(s, "sy.bye", "reason", "probe");
            zmq_close(s);
        }
        if (up)
            return true;
        usleep(50000);
    }
    return false;
}

static int bd_setup(void **state)
{
    bd_t *b = calloc(1, sizeof *b);
    if (!b || tutil_tmpdir(b->dir, sizeof b->dir, "disc") != 0)
        return -1;
    snprintf(b->cfg, sizeof b->cfg, "%s/sy.cfg", b->dir);
    snprintf(b->store, sizeof b->store, "%s/store", b->dir);
    snprintf(b->log, sizeof b->log, "%s/broker.log", b->dir);
    snprintf(b->ipc, sizeof b->ipc, "ipc://%s/broker.ipc", b->dir);
    int port = tutil_free_port();
    if (port <= 0)
        return -1;
    snprintf(b->tcp, sizeof b->tcp, "tcp://127.0.0.1:%d", port);
    *state = b;
    b->ctx = zmq_ctx_new();
    if (!b->ctx)
        return -1;
    bd_write_config(b);
    bd_start(b);
    if (!bd_wait_up(b, b->tcp) || !bd_wait_up(b, b->ipc)) {
        tutil_print_log(b->log);
        return -1;
    }
    return 0;
}

static int bd_teardown(void **state)
{
    bd_t *b = *state;
    bool clean = tutil_broker_stop(b->pid);
    if (!clean || getenv("SY_VERBOSE"))
        tutil_print_log(b->log);
    if (clean)
        tutil_rmtree(b->dir);
    if (b->nsock == 0)
        zmq_ctx_term(b->ctx);
    else
        zmq_ctx_shutdown(b->ctx);   /* a failed test left sockets: do not wait */
    free(b);
    return clean ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

/* The child side of a worker that dies: its own libzmq context (never the
   parent's), hello, the delivery, its attempt written to fd, then it
   waits to be killed.  Writes 0 on any failure. */
static void bd_worker_child(const char *ep, const char *name, const char *service, int fd)
{
    void *ctx = zmq_ctx_new();
    void *s = ctx ? tutil_dealer(ctx, ep) : NULL;
    tutil_msg_t m;
    uint8_t got = 0;
    if (s && tutil_hello(s, name, service, 1) == 0 && bd_expect(s, "sy.welcome", WAIT_MS, &m)
        && bd_expect(s, "echo.request", WAIT_MS, &m))
        got = (uint8_t) (m.env.present & ENV_HAS_ATTEMPT ? m.env.attempt : 255);
    if (write(fd, &got, 1) != 1)
        _exit(3);
    for (int i = 0; i < 600; i++)           /* killed long before */
        usleep(100000);
    _exit(0);
}

/* Takes over a durable delivery that a vanished worker held: within
   FAST_MS, attempt 2, and the leave says "disconnected". */
static void bd_expect_takeover(void *w2, void *watch, const char *dead, const char *text,
                               int64_t t0, tutil_msg_t *out)
{
    tutil_msg_t m;
    if (!bd_expect(w2, "echo.request", WAIT_MS, &m))
        fail_msg("the second worker did not get the job within %d ms (liveness is 30 s)",
                 WAIT_MS);
    int64_t took = zclock_mono() - t0;
    print_message("redelivered %lld ms after %s vanished, attempt %u\n",
                  (long long) took, dead, m.env.attempt);
    assert_true(m.env.present & ENV_HAS_ATTEMPT);
    assert_int_equal(m.env.attempt, 2);
    assert_int_equal(m.blen, strlen(text));
    assert_memory_equal(m.body, text, m.blen);
    if (took > FAST_MS)
        fail_msg("redelivered after %lld ms, wanted under %d", (long long) took, FAST_MS);
    char reason[64] = "";
    if (!bd_wait_leave(watch, dead, WAIT_MS, reason, sizeof reason))
        fail_msg("no presence.leave for %s", dead);
    assert_string_equal(reason, "disconnected");
    *out = m;
}

static void bd_ack(void *s, const tutil_msg_t *m)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    tutil_pack_str(&pk, "id");
    msgpack_pack_bin(&pk, ENVELOPE_ID_LEN);
    msgpack_pack_bin_body(&pk, m->env.id, ENVELOPE_ID_LEN);
    assert_int_equal(tutil_send(s, "sy.ack", NULL, NULL, false, sb.data, sb.size, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* A worker process killed with SIGKILL over tcp. */
static void test_killed_worker_tcp(void **state)
{
    bd_t *b = *state;
    const char *text = "job for a worker that dies";
    void *watch = bd_watcher(b, b->tcp, "watch-tcp");
    void *prod = bd_session(b, b->tcp, "prod-tcp", NULL, 10);
    uint8_t id[ENVELOPE_ID_LEN];
    bd_queue_job(prod, "jobs-tcp", text, id);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        bd_worker_child(b->tcp, "worker-tcp-1", "jobs-tcp", fds[1]);
    }
    close(fds[1]);
    struct pollfd pfd = { fds[0], POLLIN, 0 };
    uint8_t got = 0;
    bool read_ok = poll(&pfd, 1, 2 * WAIT_MS) == 1 && read(fds[0], &got, 1) == 1;
    close(fds[0]);
    if (!read_ok || got != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the first worker did not get the job with attempt 1 (got %u)", got);
    }
    /* the second worker is there before the first one dies: it waits
       with credit, and nothing is for it while the first holds the job */
    void *w2 = bd_session(b, b->tcp, "worker-tcp-2", "jobs-tcp", 1);
    tutil_msg_t m;
    assert_int_equal(tutil_recv(w2, 200, &m), 0);

    int64_t t0 = zclock_mono();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bd_expect_takeover(w2, watch, "worker-tcp-1", text, t0, &m);

    bd_ack(w2, &m);
    bd_close(b, w2);
    bd_close(b, prod);
    bd_close(b, watch);
}

/* A socket closed with linger 0 over ipc, no sy.bye. */
static void test_closed_socket_ipc(void **state)
{
    bd_t *b = *state;
    const char *text = "job over ipc";
    void *watch = bd_watcher(b, b->ipc, "watch-ipc");
    void *prod = bd_session(b, b->ipc, "prod-ipc", NULL, 10);
    void *w1 = bd_session(b, b->ipc, "worker-ipc-1", "jobs-ipc", 1);
    uint8_t id[ENVELOPE_ID_LEN];
    bd_queue_job(prod, "jobs-ipc", text, id);
    tutil_msg_t m;
    if (!bd_expect(w1, "echo.request", WAIT_MS, &m))
        fail_msg("the first worker did not get the job");
    assert_int_equal(m.env.attempt, 1);
    void *w2 = bd_session(b, b->ipc, "worker-ipc-2", "jobs-ipc", 1);
    assert_int_equal(tutil_recv(w2, 200, &m), 0);

    int64_t t0 = zclock_mono();
    bd_close(b, w1);                          /* linger 0: gone, no bye */
    bd_expect_takeover(w2, watch, "worker-ipc-1", text, t0, &m);
    bd_ack(w2, &m);
    bd_close(b, w2);
    bd_close(b, prod);
    bd_close(b, watch);
}

/* A worker that says sy.bye and closes at once leaves with "bye" (its
   last message is read before its connection's close is applied). */
static void test_bye_then_close_is_bye(void **state)
{
    bd_t *b = *state;
    void *watch = bd_watcher(b, b->tcp, "watch-bye");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "byer-%d", i);
        void *s = bd_session(b, b->tcp, name, NULL, 1);
        int linger = 1000;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        assert_int_equal(bd_send_kv(s, "sy.bye", "reason", "done"), 0);
        bd_close(b, s);
        char reason[64] = "";
        if (!bd_wait_leave(watch, name, WAIT_MS, reason, sizeof reason))
            fail_msg("no presence.leave for %s", name);
        assert_string_equal(reason, "bye");
    }
    bd_close(b, watch);
}

/* How many "descriptor N" of the log's lines for names starting with
   prefix repeat the descriptor of the line before (a reused number). */
static int bd_count_reuse(const bd_t *b, const char *prefix)
{
    FILE *f = fopen(b->log, "r");
    char line[512];
    int last = -2, reused = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "actor %s", prefix);
    while (f && fgets(line, sizeof line, f)) {
        const char *a = strstr(line, pat), *d = a ? strstr(a, "descriptor ") : NULL;
        if (!d)
            continue;
        int fd = atoi(d + strlen("descriptor "));
        if (fd == last)
            reused++;
        last = fd;
    }
    if (f)
        fclose(f);
    return reused;
}

/* The presence.leave events of the reuse test, by round. */
typedef struct {
    bool old_left[REUSE_ROUNDS];
    int  nold;
    char bad[160];              /* the first thing that should not have happened */
} bd_leaves_t;

/* Reads the watcher's events for up to ms (until round `until` left when
   until >= 0) and records them. */
static void bd_collect(void *watch, int ms, int until, bd_leaves_t *lv)
{
    int64_t end = zclock_mono() + ms;
    while (zclock_mono() < end && !(until >= 0 && lv->old_left[until])) {
        tutil_msg_t m;
        if (!bd_expect(watch, "sy.event", (int) (end - zclock_mono()), &m))
            return;
        char who[80] = "", reason[64] = "";
        tutil_field(&m, true, "name", who, sizeof who);
        tutil_field(&m, true, "reason", reason, sizeof reason);
        if (strncmp(who, "reuse-new-", 10) == 0 && !lv->bad[0])
            snprintf(lv->bad, sizeof lv->bad, "%s was dropped (%s)", who, reason);
        if (strncmp(who, "reuse-old-", 10) == 0) {
            int i = atoi(who + 10);
            if (strcmp(reason, "disconnected") != 0 && !lv->bad[0])
                snprintf(lv->bad, sizeof lv->bad, "%s left with %s", who, reason);
            if (i >= 0 && i < REUSE_ROUNDS && !lv->old_left[i]) {
                lv->old_left[i] = true;
                lv->nold++;
            }
        }
    }
}

/* New connections that get a closed connection's descriptor number at
   once are not dropped when the old connection's close is processed. */
static void test_reused_descriptor_not_dropped(void **state)
{
    bd_t *b = *state;
    void *watch = bd_watcher(b, b->tcp, "watch-reuse");
    void *keep[REUSE_ROUNDS];
    bd_leaves_t lv;
    memset(&lv, 0, sizeof lv);
    for (int i = 0; i < REUSE_ROUNDS; i++) {
        char old[32], young[32];
        snprintf(old, sizeof old, "reuse-old-%d", i);
        snprintf(young, sizeof young, "reuse-new-%d", i);
        void *s = bd_session(b, b->tcp, old, NULL, 1);
        bd_close(b, s);                     /* no bye */
        if (i % 2) {
            /* the old close is processed first: its number is free for
               the next accept */
            bd_collect(watch, WAIT_MS, i, &lv);
            if (!lv.old_left[i])
                fail_msg("no presence.leave for %s", old);
        }
        else if (i % 3)
            usleep((useconds_t) (i % 3) * 1000);
        /* else: connect at once, racing the old close (or a ms or two
           later: the broker may have closed the number, not yet read the
           event) */
        keep[i] = bd_session(b, b->tcp, young, NULL, 1);
    }
    /* every old one leaves; none of the new ones does, also after the
       broker's wait for late closes (500 ms) */
    for (int i = 0; i < REUSE_ROUNDS && lv.nold < REUSE_ROUNDS; i++)
        if (!lv.old_left[i])
            bd_collect(watch, WAIT_MS, i, &lv);
    bd_collect(watch, 800, -1, &lv);
    if (lv.bad[0])
        fail_msg("%s", lv.bad);
    assert_int_equal(lv.nold, REUSE_ROUNDS);
    for (int i = 0; i < REUSE_ROUNDS; i++) {
        if (!bd_ping(keep[i], WAIT_MS))
            fail_msg("reuse-new-%d no longer answered", i);
        tutil_msg_t m;
        assert_false(bd_expect(keep[i], "sy.receipt", 50, &m));   /* no NOT_REGISTERED */
        bd_close(b, keep[i]);
    }
    int reused = bd_count_reuse(b, "reuse-");
    print_message("%d of %d new connections got the descriptor of the one before\n",
                  reused, REUSE_ROUNDS);
    assert_true(reused > 0);
    bd_close(b, watch);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_conns_generations),
        cmocka_unit_test(test_conns_doubt),
        cmocka_unit_test_setup_teardown(test_release_in_batch_is_not_an_attempt,
                                        dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_send_is_not_an_attempt,
                                        dfx_setup, dfx_teardown),
    };
    const struct CMUnitTest broker[] = {
        cmocka_unit_test(test_killed_worker_tcp),
        cmocka_unit_test(test_closed_socket_ipc),
        cmocka_unit_test(test_bye_then_close_is_bye),
        cmocka_unit_test(test_reused_descriptor_not_dropped),
    };
    int failed = cmocka_run_group_tests_name("pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("broker", broker, bd_setup, bd_teardown);
    return failed;
}
