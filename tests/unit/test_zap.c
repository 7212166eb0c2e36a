/*  test_zap.c -- unit tests of broker/zap.c on real CURVE sockets.
 *
 *  A server actor (a thread, like the broker's main loop) runs a zloop
 *  with the ZAP handler and a ROUTER socket with ZMQ_CURVE_SERVER bound to
 *  tcp://127.0.0.1:*.  For each message it reports on its pipe
 *      "MSG" user-id role text       (zap_peer says the sender is enrolled)
 *      "DENIED" user-id text         (it is not, any more)
 *  and answers the client "ok NAME" or "denied".  Revocations reported by
 *  the handler's timer arrive as "REVOKED" name.  The test thread plays the
 *  devices (DEALER clients) and syctl (a second allowlist_t on the same
 *  directory).
 *
 *  Cases: enrolled key accepted with User-Id and role seen on the server;
 *  unknown key refused; wrong server key refused; plaintext client refused;
 *  revoked key refused on new connections after the reload, its old
 *  connection denied from its next message, and the revocation reported.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/zap.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 1500            /* how long a refused client waits for nothing */

typedef struct {
    char root[64];
    char dev[96];
    char list[96];
    zcert_t *server;            /* the broker's certificate */
    zactor_t *actor;
    int port;
} fx_t;

/* ------------------------------------------------------------ the server */

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    allowlist_t *allow;
    zap_t *zap;
} srv_t;

static void srv_on_revoked(const char *name, void *arg)
{
    srv_t *srv = arg;
    zstr_sendx(srv->pipe, "REVOKED", name, NULL);
}

/* Reads [routing id, text] raw, to see the connection's properties. */
static int srv_on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    srv_t *srv = arg;
    void *raw = zsock_resolve(sock);
    zmq_msg_t rid, body;
    zmq_msg_init(&rid);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&rid, raw, 0) < 0 || !zmq_msg_more(&rid)
        || zmq_msg_recv(&body, raw, 0) < 0) {
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        return 0;
    }
    char text[128];
    size_t n = zmq_msg_size(&body) < sizeof text - 1 ? zmq_msg_size(&body) : sizeof text - 1;
    memcpy(text, zmq_msg_data(&body), n);
    text[n] = '\0';
    const char *user = zmq_msg_gets(&body, "User-Id");
    const char *role = zmq_msg_gets(&body, ZAP_PROP_ROLE);
    const allowlist_entry_t *e = zap_peer(srv->allow, &body);
    char answer[128];
    if (e) {
        zstr_sendx(srv->pipe, "MSG", user ? user : "-", role ? role : "-", text, NULL);
        snprintf(answer, sizeof answer, "ok %s", e->name);
    } else {
        zstr_sendx(srv->pipe, "DENIED", user ? user : "-", text, NULL);
        snprintf(answer, sizeof answer, "denied");
    }
    zmq_msg_send(&rid, raw, ZMQ_SNDMORE);
    zmq_send(raw, answer, strlen(answer), 0);
    zmq_msg_close(&rid);
    zmq_msg_close(&body);
    return 0;
}

static int srv_on_pipe(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    srv_t *srv = arg;
    char *cmd = zstr_recv(sock);
    int rc = 0;
    if (cmd == NULL || streq(cmd, "$TERM"))
        rc = -1;
    else if (streq(cmd, "STATS")) {
        uint64_t a, r;
        zap_stats(srv->zap, &a, &r);
        zstr_sendf(srv->pipe, "STATS %llu %llu", (unsigned long long) a,
                   (unsigned long long) r);
    }
    zstr_free(&cmd);
    return rc;
}

static void srv_actor(zsock_t *pipe, void *args)
{
    fx_t *fx = args;
    srv_t srv = { .pipe = pipe };
    char err[256] = "";
    zloop_t *loop = zloop_new();
    int rc = allowlist_new(fx->list, &srv.allow, err, sizeof err);
    if (rc == 0)
        rc = zap_new(loop, srv.allow, 100, srv_on_revoked, &srv, &srv.zap, err, sizeof err);
    int port = -1;
    if (rc == 0) {
        srv.router = zsock_new(ZMQ_ROUTER);
        zcert_apply(fx->server, srv.router);
        zsock_set_curve_server(srv.router, 1);
        zsock_set_zap_domain(srv.router, "switchyard");
        port = zsock_bind(srv.router, "tcp://127.0.0.1:*");
        zloop_reader(loop, srv.router, srv_on_router, &srv);
        zloop_reader(loop, pipe, srv_on_pipe, &srv);
    }
    zsock_signal(pipe, 0);
    zstr_sendf(pipe, "%d %s", port, err);
    if (port > 0)
        zloop_start(loop);
    zap_destroy(&srv.zap);
    zloop_destroy(&loop);
    zsock_destroy(&srv.router);
    allowlist_destroy(&srv.allow);
}

/* ------------------------------------------------------------ fixture */

static void mkdev(fx_t *fx, const char *name, const char *role, bool enroll)
{
    char err[256], path[256];
    int rc = certs_new(fx->dev, name, role, NULL, err, sizeof err);
    if (rc)
        fail_msg("certs_new: %s", err);
    if (!enroll)
        return;
    allowlist_t *al = NULL;
    assert_int_equal(allowlist_new(fx->list, &al, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/%s.cert", fx->dev, name);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    allowlist_destroy(&al);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tutil_tmpdir(fx->root, sizeof fx->root, "zap"), 0);
    snprintf(fx->dev, sizeof fx->dev, "%s/dev", fx->root);
    snprintf(fx->list, sizeof fx->list, "%s/enrolled", fx->root);
    assert_int_equal(mkdir(fx->dev, 0700), 0);
    assert_int_equal(mkdir(fx->list, 0700), 0);
    mkdev(fx, "phone", "client", true);
    mkdev(fx, "laptop", "worker", true);
    mkdev(fx, "stranger", "client", false);
    fx->server = zcert_new();
    zcert_set_meta(fx->server, "name", "broker");

    fx->actor = zactor_new(srv_actor, fx);
    assert_non_null(fx->actor);
    zsock_set_rcvtimeo(fx->actor, 5000);
    char *hello = zstr_recv(fx->actor);
    assert_non_null(hello);
    fx->port = atoi(hello);
    if (fx->port <= 0)
        fail_msg("server did not start: %s", hello);
    zstr_free(&hello);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    zactor_destroy(&fx->actor);
    certs_destroy(&fx->server);
    tutil_rmtree(fx->root);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------ clients */

/* A DEALER for device name (NULL: plaintext), pinning server_key. */
static zsock_t *client_new(fx_t *fx, const char *name, const char *server_key)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_linger(d, 0);
    zsock_set_rcvtimeo(d, WAIT_MS);
    if (name) {
        char path[256], err[256];
        zcert_t *c = NULL;
        snprintf(path, sizeof path, "%s/%s.secret", fx->dev, name);
        assert_int_equal(certs_load(path, &c, err, sizeof err), 0);
        zcert_apply(c, d);
        certs_destroy(&c);
        zsock_set_curve_serverkey(d, server_key);
    }
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", fx->port);
    assert_int_equal(zsock_connect(d, "%s", ep), 0);
    return d;
}

/* Sends text, returns the answer (caller frees) or NULL after WAIT_MS. */
static char *client_ask(zsock_t *d, const char *text)
{
    zstr_send(d, text);
    return zstr_recv(d);
}

/* The next pipe message from the server as one string "WORD a b c". */
static char *server_next(fx_t *fx, int timeout_ms)
{
    zsock_set_rcvtimeo(fx->actor, timeout_ms);
    zmsg_t *m = zmsg_recv(fx->actor);
    if (m == NULL)
        return NULL;
    char line[512] = "";
    for (zframe_t *f = zmsg_first(m); f; f = zmsg_next(m)) {
        char *s = zframe_strdup(f);
        if (line[0])
            strncat(line, " ", sizeof line - strlen(line) - 1);
        strncat(line, s, sizeof line - strlen(line) - 1);
        free(s);
    }
    zmsg_destroy(&m);
    return strdup(line);
}

static void server_stats(fx_t *fx, unsigned *accepted, unsigned *refused)
{
    zstr_send(fx->actor, "STATS");
    char *s = server_next(fx, 2000);
    assert_non_null(s);
    if (sscanf(s, "STATS %u %u", accepted, refused) != 2)
        fail_msg("expected STATS, got %s", s);
    free(s);
}

/* Sends text from d and expects the reply and the server's event line. */
static void expect_answer(fx_t *fx, zsock_t *d, const char *text, const char *reply,
                          const char *event)
{
    char *ans = client_ask(d, text);
    assert_non_null(ans);
    assert_string_equal(ans, reply);
    zstr_free(&ans);
    char *ev = server_next(fx, 2000);
    assert_non_null(ev);
    assert_string_equal(ev, event);
    free(ev);
}

/* ------------------------------------------------------------ tests */

static void test_enrolled_accepted(void **state)
{
    fx_t *fx = *state;
    zsock_t *d = client_new(fx, "phone", zcert_public_txt(fx->server));
    expect_answer(fx, d, "hi", "ok phone", "MSG phone client hi");
    zsock_t *w = client_new(fx, "laptop", zcert_public_txt(fx->server));
    expect_answer(fx, w, "job", "ok laptop", "MSG laptop worker job");
    unsigned a, r;
    server_stats(fx, &a, &r);
    assert_int_equal(a, 2);
    assert_int_equal(r, 0);
    zsock_destroy(&d);
    zsock_destroy(&w);
}

static void test_unknown_key_refused(void **state)
{
    fx_t *fx = *state;
    zsock_t *d = client_new(fx, "stranger", zcert_public_txt(fx->server));
    char *ans = client_ask(d, "let me in");
    assert_null(ans);
    unsigned a, r;
    server_stats(fx, &a, &r);                 /* STATS comes first: no MSG */
    assert_int_equal(a, 0);
    assert_true(r >= 1);
    zsock_destroy(&d);
}

static void test_wrong_server_key_refused(void **state)
{
    fx_t *fx = *state;
    zcert_t *impostor = zcert_new();
    zsock_t *d = client_new(fx, "phone", zcert_public_txt(impostor));
    char *ans = client_ask(d, "hi");
    assert_null(ans);
    unsigned a, r;
    server_stats(fx, &a, &r);                 /* the handshake never got to ZAP */
    assert_int_equal(a, 0);
    zsock_destroy(&d);
    zcert_destroy(&impostor);
}

static void test_plaintext_refused(void **state)
{
    fx_t *fx = *state;
    zsock_t *d = client_new(fx, NULL, NULL);
    char *ans = client_ask(d, "hi");
    assert_null(ans);
    unsigned a, r;
    server_stats(fx, &a, &r);
    assert_int_equal(a, 0);
    zsock_destroy(&d);
}

static void test_revoked_refused(void **state)
{
    fx_t *fx = *state;
    zsock_t *old = client_new(fx, "phone", zcert_public_txt(fx->server));
    expect_answer(fx, old, "before", "ok phone", "MSG phone client before");

    /* syctl keys revoke phone, in "another process" */
    char err[256];
    allowlist_t *syctl = NULL;
    assert_int_equal(allowlist_new(fx->list, &syctl, err, sizeof err), 0);
    int64_t t0 = zclock_mono();
    assert_int_equal(allowlist_revoke(syctl, "phone", err, sizeof err), 0);
    allowlist_destroy(&syctl);

    /* the handler's timer notices within a second or two */
    char *ev = server_next(fx, 3000);
    assert_non_null(ev);
    assert_string_equal(ev, "REVOKED phone");
    free(ev);
    assert_true(zclock_mono() - t0 < 2000);

    /* the open connection is denied from its next message */
    expect_answer(fx, old, "after", "denied", "DENIED phone after");

    /* a new connection with the revoked key does not get in */
    unsigned a0, r0, a1, r1;
    server_stats(fx, &a0, &r0);
    zsock_t *again = client_new(fx, "phone", zcert_public_txt(fx->server));
    char *ans = client_ask(again, "again");
    assert_null(ans);
    server_stats(fx, &a1, &r1);
    assert_int_equal(a1, a0);
    assert_true(r1 > r0);

    /* the other device is untouched */
    zsock_t *w = client_new(fx, "laptop", zcert_public_txt(fx->server));
    expect_answer(fx, w, "still here", "ok laptop", "MSG laptop worker still here");
    zsock_destroy(&w);
    zsock_destroy(&again);
    zsock_destroy(&old);
}

/* A second handler in the same context cannot bind. */
static void test_second_handler_refused(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    allowlist_t *al = NULL;
    assert_int_equal(allowlist_new(fx->list, &al, err, sizeof err), 0);
    zloop_t *loop = zloop_new();
    zap_t *z = NULL;
    assert_int_equal(zap_new(loop, al, 0, NULL, NULL, &z, err, sizeof err), SY_EIO);
    assert_null(z);
    assert_non_null(strstr(err, ZAP_ENDPOINT));
    zloop_destroy(&loop);
    allowlist_destroy(&al);
}

int main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enrolled_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_server_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_handler_refused, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
