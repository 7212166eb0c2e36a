/*  test_keys_actor.c -- the runtime's side of CURVE and of connecting
 *  (actors/actor.c), against a fake broker: a ROUTER socket in this test
 *  that reads what the actor sends and answers as the test wants.
 *
 *  - actor_new with a certificate: the name defaults to the certificate's,
 *    another name, a missing or unreadable certificate, a public-only one
 *    and a bad broker key are refused before any connection;
 *  - the hello goes out over CURVE to a CURVE server (broker key from the
 *    broker's .cert file), and a plaintext actor does not get through;
 *  - a refusal (DENIED receipt for the hello; a ZAP handler saying 400)
 *    is retried with the growing backoff, not in a tight loop, and
 *    actor_refused() says so;
 *  - sy.bye is sent on destroy after a hello that got no welcome;
 *  - a hello queued on an abandoned socket never reaches the broker
 *    later (linger 0 and disconnect when a socket is dropped).
 *  Every wait is bounded in time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/actor.h"
#include "common/certs.h"
#include "common/sylog.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

typedef struct {
    char     dir[64];
    char     ep[128];
    zsock_t *router;
} fx_t;

/* One message as the ROUTER got it. */
typedef struct {
    uint8_t    rid[256];
    size_t     rid_len;
    envelope_t env;
    uint8_t    body[4096];
    size_t     body_len;
} rmsg_t;

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sy-kact-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->ep, sizeof fx->ep, "ipc://%s/b.ipc", fx->dir);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;
    zsock_destroy(&fx->router);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* A ROUTER on fx->ep; with server != NULL a CURVE server with that key
   pair. */
static void router_bind(fx_t *fx, zcert_t *server)
{
    fx->router = zsock_new(ZMQ_ROUTER);
    assert_non_null(fx->router);
    zsock_set_linger(fx->router, 0);
    if (server) {
        zsock_set_curve_server(fx->router, 1);
        zcert_apply(server, fx->router);
    }
    assert_true(zsock_bind(fx->router, "%s", fx->ep) >= 0);
}

/* Reads one message if there is one: [rid, header, body]. */
static bool router_recv(fx_t *fx, rmsg_t *m)
{
    void *h = zsock_resolve(fx->router);
    zmq_msg_t f;
    int part = 0;
    bool more = true, ok = true;
    while (more) {
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, h, part == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&f);
            return false;
        }
        size_t n = zmq_msg_size(&f);
        const uint8_t *p = zmq_msg_data(&f);
        if (part == 0 && n <= sizeof m->rid) {
            memcpy(m->rid, p, n);
            m->rid_len = n;
        } else if (part == 1) {
            char err[160];
            ok = envelope_decode(&m->env, p, n, err, sizeof err) == 0;
        } else if (part == 2 && n <= sizeof m->body) {
            memcpy(m->body, p, n);
            m->body_len = n;
        } else
            ok = false;
        more = zmq_msg_more(&f);
        zmq_msg_close(&f);
        part++;
    }
    assert_true(ok);
    assert_int_equal(part, 3);
    return true;
}

/* Sends a header of type (corr = corr) and body to the peer rid. */
static void router_send(fx_t *fx, const rmsg_t *to, const char *type,
                        const uint8_t *corr, const msgpack_sbuffer *body)
{
    envelope_t env;
    envelope_init(&env);
    assert_int_equal(envelope_set_type(&env, type), 0);
    for (int i = 0; i < 16; i++)
        env.id[i] = (uint8_t) (0xa0 + i);
    env.present |= ENV_HAS_CORR;
    memcpy(env.corr, corr, 16);
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&env, hdr, sizeof hdr);
    assert_true(n > 0);
    void *h = zsock_resolve(fx->router);
    assert_true(zmq_send(h, to->rid, to->rid_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, hdr, (size_t) n, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, body->data, body->size, 0) >= 0);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* The hello body's name into out. */
static void hello_name(const rmsg_t *m, char *out, size_t cap)
{
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, m->body, m->body_len);
    assert_int_equal(mpread_next(&r, &map), 0);
    assert_int_equal(mpread_map_find(&r, &map, "name", &v, NULL), 0);
    assert_int_equal(v.kind, MP_STR);
    snprintf(out, cap, "%.*s", (int) v.len, (const char *) v.ptr);
}

/* Runs the actor's loop in short turns for ms, handing every message
   the ROUTER gets to fn (may be NULL: they are counted only).  Returns
   the number of messages. */
typedef void (on_msg_fn)(fx_t *fx, const rmsg_t *m, void *arg);

static int pump(fx_t *fx, actor_t *a, int ms, on_msg_fn *fn, void *arg)
{
    int64_t end = zclock_mono() + ms;
    int n = 0;
    rmsg_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    while (zclock_mono() < end) {
        if (a)
            actor_run_for(a, 10);
        else
            zclock_sleep(10);
        while (fx->router && router_recv(fx, m)) {
            n++;
            if (fn)
                fn(fx, m, arg);
        }
    }
    free(m);
    return n;
}

static zcert_t *make_cert(fx_t *fx, const char *name, const char *role)
{
    char err[300];
    zcert_t *c = NULL;
    assert_int_equal(certs_new(fx->dir, name, role, &c, err, sizeof err), 0);
    return c;
}

static actor_opts_t base_opts(fx_t *fx, const char *name)
{
    actor_opts_t o = { 0 };
    o.name = name;
    o.endpoint = fx->ep;
    o.credit = 1;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 5000;
    o.hello_timeout_ms = 5000;
    return o;
}

/* ------------------------------------------------------------ tests */

static void test_new_with_cert(void **state)
{
    fx_t *fx = *state;
    zcert_t *dev = make_cert(fx, "dev-1", "worker");
    zcert_t *srv = make_cert(fx, "broker", "client");
    char base[128], secret[140], pub[140], srvpath[140];
    snprintf(base, sizeof base, "%s/dev-1", fx->dir);
    snprintf(secret, sizeof secret, "%s/dev-1.secret", fx->dir);
    snprintf(pub, sizeof pub, "%s/dev-1.cert", fx->dir);
    snprintf(srvpath, sizeof srvpath, "%s/broker.secret", fx->dir);

    /* the name defaults to the certificate's, for every path form */
    const char *forms[] = { base, secret, pub };
    for (size_t i = 0; i < 3; i++) {
        actor_opts_t o = base_opts(fx, NULL);
        o.cert = forms[i];
        o.broker_key = zcert_public_txt(srv);
        actor_t *a = actor_new(&o);
        assert_non_null(a);
        assert_string_equal(actor_name(a), "dev-1");
        assert_false(actor_refused(a));
        actor_destroy(&a);
    }
    actor_opts_t o = base_opts(fx, "dev-1");
    o.cert = secret;
    o.broker_cert = srvpath;            /* the .cert beside it is read */
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    actor_destroy(&a);

    /* refused before connecting */
    o.name = "someone-else";
    assert_null(actor_new(&o));
    o.name = NULL;
    o.broker_cert = NULL;
    assert_null(actor_new(&o));                 /* no broker key at all */
    o.broker_key = "not a key";
    assert_null(actor_new(&o));
    o.broker_key = zcert_public_txt(srv);
    o.cert = "/nonexistent/dir/x.secret";
    assert_null(actor_new(&o));
    /* only the public half present */
    assert_int_equal(unlink(secret), 0);
    o.cert = pub;
    assert_null(actor_new(&o));
    /* a secret readable by others */
    zcert_t *loose = make_cert(fx, "loose", "client");
    char lpath[140];
    snprintf(lpath, sizeof lpath, "%s/loose.secret", fx->dir);
    assert_int_equal(chmod(lpath, 0644), 0);
    o.cert = lpath;
    assert_null(actor_new(&o));
    certs_destroy(&loose);
    certs_destroy(&dev);
    certs_destroy(&srv);
}

typedef struct {
    int  hellos;
    char name[65];
    uint8_t last_rid[256];
    size_t  last_rid_len;
    int  distinct;          /* hellos from a routing id unlike the last */
    bool refuse;            /* answer each hello with DENIED */
    bool bye;
} seen_t;

static void on_msg(fx_t *fx, const rmsg_t *m, void *arg)
{
    seen_t *s = arg;
    if (strcmp(m->env.type, "sy.bye") == 0) {
        s->bye = true;
        return;
    }
    if (strcmp(m->env.type, "sy.hello") != 0)
        return;
    s->hellos++;
    hello_name(m, s->name, sizeof s->name);
    if (m->rid_len != s->last_rid_len
        || memcmp(m->rid, s->last_rid, m->rid_len) != 0)
        s->distinct++;
    memcpy(s->last_rid, m->rid, m->rid_len);
    s->last_rid_len = m->rid_len;
    if (s->refuse) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "ok");
        msgpack_pack_false(&pk);
        pk_str(&pk, "code");
        pk_str(&pk, "DENIED");
        pk_str(&pk, "msg");
        pk_str(&pk, "services: the role client may not offer echo");
        router_send(fx, m, "sy.receipt", m->env.id, &sb);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_curve_hello(void **state)
{
    fx_t *fx = *state;
    zcert_t *dev = make_cert(fx, "dev-2", "actor");
    zcert_t *srv = make_cert(fx, "broker", "client");
    router_bind(fx, srv);
    char secret[140], srvpath[140];
    snprintf(secret, sizeof secret, "%s/dev-2.secret", fx->dir);
    snprintf(srvpath, sizeof srvpath, "%s/broker.secret", fx->dir);

    /* plaintext: the CURVE server lets nothing through */
    actor_opts_t o = base_opts(fx, "plain");
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    seen_t s = { 0 };
    assert_int_equal(pump(fx, a, 400, on_msg, &s), 0);
    actor_destroy(&a);

    /* with the certificate and the broker's .cert: through */
    o = base_opts(fx, NULL);
    o.cert = secret;
    o.broker_cert = srvpath;
    a = actor_new(&o);
    assert_non_null(a);
    for (int i = 0; i < 100 && s.hellos == 0; i++)
        pump(fx, a, 20, on_msg, &s);
    assert_int_equal(s.hellos, 1);
    assert_string_equal(s.name, "dev-2");
    /* no welcome: still a bye on destroy */
    actor_destroy(&a);
    pump(fx, NULL, 300, on_msg, &s);
    assert_true(s.bye);
    certs_destroy(&dev);
    certs_destroy(&srv);
}

/* Bug: sy.bye was only sent once welcomed; an actor stopped between its
   hello and the welcome lingered in the broker until liveness. */
static void test_bye_before_welcome(void **state)
{
    fx_t *fx = *state;
    router_bind(fx, NULL);
    actor_opts_t o = base_opts(fx, "t-bye");
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    seen_t s = { 0 };
    for (int i = 0; i < 100 && s.hellos == 0; i++)
        pump(fx, a, 20, on_msg, &s);
    assert_int_equal(s.hellos, 1);
    assert_false(actor_connected(a));
    actor_destroy(&a);
    for (int i = 0; i < 50 && !s.bye; i++)
        pump(fx, NULL, 20, on_msg, &s);
    assert_true(s.bye);
}

/* Bug: the socket dropped after a hello timeout kept its queued hello and
   could deliver it once the broker appeared -- possibly after the new
   socket's hello, taking the name back.  Now nothing comes from it. */
static void test_abandoned_socket_is_silent(void **state)
{
    fx_t *fx = *state;
    actor_opts_t o = base_opts(fx, "t-stale");
    o.hello_timeout_ms = 200;
    o.reconnect_min_ms = 1500;      /* backoff 1125..1500 ms */
    o.reconnect_max_ms = 1500;
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    /* hello queued at ~0 ms with no broker; dropped at ~200 ms */
    pump(fx, a, 350, NULL, NULL);
    router_bind(fx, NULL);
    seen_t s = { 0 };
    /* until ~1100 ms only the abandoned socket could have sent */
    int early = pump(fx, a, 700, on_msg, &s);
    assert_int_equal(early, 0);
    for (int i = 0; i < 100 && s.hellos == 0; i++)
        pump(fx, a, 20, on_msg, &s);
    assert_true(s.hellos >= 1);
    actor_destroy(&a);
}

static void test_hello_refused_backoff(void **state)
{
    fx_t *fx = *state;
    router_bind(fx, NULL);
    actor_opts_t o = base_opts(fx, "t-refused");
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    seen_t s = { .refuse = true };
    pump(fx, a, 1200, on_msg, &s);
    /* 0, ~150, ~450, ~1050 ms: a handful, never a tight loop */
    assert_true(s.hellos >= 2);
    assert_true(s.hellos <= 6);
    assert_int_equal(s.distinct, s.hellos);     /* a new socket each time */
    assert_true(actor_refused(a));
    assert_false(actor_connected(a));
    actor_destroy(&a);
}

/* A ZAP handler in this process (libzmq asks it about every CURVE
   handshake) that refuses everyone with 400, counting requests. */
static int zap_serve(zsock_t *zap)
{
    int n = 0;
    void *h = zsock_resolve(zap);
    zmq_pollitem_t it = { h, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll(&it, 1, 0) == 1) {
        char frames[8][64];
        size_t len[8];
        int part = 0;
        bool more = true;
        while (more) {
            zmq_msg_t f;
            zmq_msg_init(&f);
            assert_true(zmq_msg_recv(&f, h, 0) >= 0);
            if (part < 8) {
                len[part] = zmq_msg_size(&f) < 64 ? zmq_msg_size(&f) : 64;
                memcpy(frames[part], zmq_msg_data(&f), len[part]);
            }
            more = zmq_msg_more(&f);
            zmq_msg_close(&f);
            part++;
        }
        assert_true(part >= 6);
        assert_int_equal(len[5], 5);
        assert_memory_equal(frames[5], "CURVE", 5);
        /* version, request id, status, text, user id, metadata */
        zmq_send(h, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(h, frames[1], len[1], ZMQ_SNDMORE);
        zmq_send(h, "400", 3, ZMQ_SNDMORE);
        zmq_send(h, "not enrolled", 12, ZMQ_SNDMORE);
        zmq_send(h, "", 0, ZMQ_SNDMORE);
        zmq_send(h, "", 0, 0);
        n++;
    }
    return n;
}

static void test_zap_refusal_backoff(void **state)
{
    fx_t *fx = *state;
    zcert_t *dev = make_cert(fx, "dev-3", "worker");
    zcert_t *srv = make_cert(fx, "broker", "client");
    zsock_t *zap = zsock_new(ZMQ_REP);
    assert_non_null(zap);
    zsock_set_linger(zap, 0);
    assert_true(zsock_bind(zap, "inproc://zeromq.zap.01") >= 0);
    router_bind(fx, srv);
    char secret[140];
    snprintf(secret, sizeof secret, "%s/dev-3.secret", fx->dir);
    actor_opts_t o = base_opts(fx, NULL);
    o.cert = secret;
    o.broker_key = zcert_public_txt(srv);
    actor_t *a = actor_new(&o);
    assert_non_null(a);
    int requests = 0, msgs = 0;
    int64_t end = zclock_mono() + 1200;
    while (zclock_mono() < end) {
        actor_run_for(a, 10);
        requests += zap_serve(zap);
        msgs += pump(fx, NULL, 1, NULL, NULL);
    }
    assert_int_equal(msgs, 0);
    assert_true(actor_refused(a));
    /* libzmq alone would retry every 100 ms; the backoff does fewer */
    assert_true(requests >= 2);
    assert_true(requests <= 6);
    actor_destroy(&a);
    zsock_destroy(&zap);
    certs_destroy(&dev);
    certs_destroy(&srv);
}

int main(void)
{
    sylog_open("test_keys_actor", SYLOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_with_cert, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_curve_hello, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bye_before_welcome, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_socket_is_silent,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hello_refused_backoff, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_zap_refusal_backoff, fx_setup,
                                        fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    sylog_close();
    return rc;
}
