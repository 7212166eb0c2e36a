/*  test_broker_security.c -- the real sy-broker with security/curve on,
 *  spoken to with raw DEALER sockets and CURVE certificates.
 *
 *  One broker for the whole file ($SY_BIN_DIR/sy-broker, default bin/),
 *  started with a private configuration in a temporary directory: CURVE
 *  on, an allow-list the test enrolls into (with allowlist.h, as `syctl
 *  keys enroll` does), a low rate limit for clients.  Each test uses its
 *  own device names, so the tests do not depend on each other's order.
 *
 *  Shown here: enrolled keys work; unknown keys, plaintext peers and a
 *  wrong broker key are refused; a revoked device is cut off within
 *  seconds while the broker keeps running; a client certificate cannot
 *  offer a worker's service, cannot purge, cannot appear under another
 *  name (neither in sy.hello nor in `from`); a flood is RATE_LIMITED while
 *  another identity keeps its answers; the store file holds no plaintext
 *  of a queued body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/allowlist.h"
#include "common/certs.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "tutil.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <msgpack.h>
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

#define WAIT_MS   3000          /* a reply that should come */
#define QUIET_MS  1200          /* silence that shows a refusal */
#define MARK      "SECRET-queued-chat-5e2b9c"

typedef struct {
    char dir[64];
    char cfg[128], certs[128], devices[128], keys[128], store[128], log[128];
    char ep[64];
    char server_key[41];
    pid_t pid;
    allowlist_t *allow;
} bs_t;

/* ------------------------------------------------------------ process */

static void bs_write_config(bs_t *b)
{
    assert_int_equal(tutil_write_file(b->cfg,
        "log\n    level = debug\n    file = \"%s\"\n"
        "broker\n    endpoint = \"%s\"\n    heartbeat = 1s\n    liveness = 20s\n"
        "store\n    dir = \"%s\"\n    sync = none\n    map_size = 32M\n"
        "security\n    curve = true\n    certs_dir = \"%s\"\n"
        "    broker_cert = \"%s/broker.secret\"\n    refresh = 200ms\n"
        "ratelimit\n    rate = 5\n    burst = 10\n",
        b->log, b->ep, b->store, b->certs, b->keys), 0);
}

static void bs_start(bs_t *b)
{
    b->pid = tutil_broker_start(b->cfg, b->log);
    assert_true(b->pid >= 0);
}

/* Waits for the broker's public certificate (made at its first start). */
static bool bs_wait_key(bs_t *b)
{
    char path[256];
    snprintf(path, sizeof path, "%s/broker.cert", b->keys);
    for (int i = 0; i < 500; i++) {
        zcert_t *c = access(path, F_OK) == 0 ? zcert_load(path) : NULL;
        if (c) {
            snprintf(b->server_key, sizeof b->server_key, "%s", zcert_public_txt(c));
            zcert_destroy(&c);
            return true;
        }
        usleep(10000);
    }
    return false;
}

/* ------------------------------------------------------------ certificates */

static void bs_device(bs_t *b, const char *name, const char *role, bool enroll)
{
    char err[256] = "";
    int rc = certs_new(b->devices, name, role, NULL, err, sizeof err);
    if (rc)
        fail_msg("certs_new %s: %s", name, err);
    if (!enroll)
        return;
    char path[256];
    snprintf(path, sizeof path, "%s/%s%s", b->devices, name, CERTS_PUBLIC_EXT);
    rc = allowlist_enroll(b->allow, path, err, sizeof err);
    if (rc)
        fail_msg("enroll %s: %s", name, err);
}

/* A DEALER connected to the broker: with the device's certificate and
   server_key (NULL: the broker's), or plaintext when name is NULL. */
static zsock_t *bs_dealer(bs_t *b, const char *name, const char *server_key)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_linger(d, 0);
    if (name) {
        char path[256], err[256];
        snprintf(path, sizeof path, "%s/%s%s", b->devices, name, CERTS_SECRET_EXT);
        zcert_t *c = NULL;
        if (certs_load(path, &c, err, sizeof err) != 0)
            fail_msg("load %s: %s", path, err);
        zcert_apply(c, d);
        certs_destroy(&c);
        zsock_set_curve_serverkey(d, server_key ? server_key : b->server_key);
    }
    assert_int_equal(zsock_connect(d, "%s", b->ep), 0);
    return d;
}

/* ------------------------------------------------------------ messages */

static void bs_send_ex(zsock_t *d, const char *type, const char *to, const char *from,
                       bool durable, const msgpack_sbuffer *body, uint8_t id[16])
{
    assert_int_equal(tutil_send(zsock_resolve(d), type, to, from, durable,
                                body ? body->data : NULL, body ? body->size : 0, id), 0);
}

static void bs_send(zsock_t *d, const char *type, const char *to,
                    const msgpack_sbuffer *body)
{
    bs_send_ex(d, type, to, NULL, false, body, NULL);
}

/* Receives one message within timeout_ms; a malformed one fails the test. */
static bool bs_recv(zsock_t *d, int timeout_ms, tutil_msg_t *m)
{
    int rc = tutil_recv(zsock_resolve(d), timeout_ms, m);
    assert_true(rc >= 0);
    return rc == 1;
}

/* Receives until a message of type comes (others are skipped). */
static bool bs_expect(zsock_t *d, const char *type, int timeout_ms, tutil_msg_t *m)
{
    int rc = tutil_expect(zsock_resolve(d), type, timeout_ms, m);
    assert_true(rc >= 0);
    return rc == 1;
}

static void bs_hello(zsock_t *d, const char *name, const char *service)
{
    assert_int_equal(tutil_hello(zsock_resolve(d), name, service, 10), 0);
}

/* sy.query / sy.sub style body {k1: v1[, k2: v2]}. */
static void bs_send_map(zsock_t *d, const char *type, const char *k1, const char *v1,
                        const char *k2, const char *v2)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, k2 ? 2 : 1);
    tutil_pack_str(&pk, k1);
    tutil_pack_str(&pk, v1);
    if (k2) {
        tutil_pack_str(&pk, k2);
        tutil_pack_str(&pk, v2);
    }
    bs_send(d, type, NULL, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Hello and welcome, or the test fails. */
static zsock_t *bs_session(bs_t *b, const char *name, const char *service)
{
    zsock_t *d = bs_dealer(b, name, NULL);
    bs_hello(d, name, service);
    tutil_msg_t m;
    if (!bs_expect(d, "sy.welcome", WAIT_MS, &m))
        fail_msg("%s: no sy.welcome", name);
    return d;
}

/* Expects a refusal receipt with code; returns its msg in out. */
static void bs_expect_refusal(zsock_t *d, const char *code, char *out, size_t cap)
{
    tutil_msg_t m;
    if (!bs_expect(d, "sy.receipt", WAIT_MS, &m))
        fail_msg("no receipt (wanted %s)", code);
    char got[64];
    tutil_field(&m, false, "code", got, sizeof got);
    tutil_field(&m, false, "msg", out, cap);
    if (strcmp(got, code) != 0)
        fail_msg("receipt %s (%s), wanted %s", got, out, code);
}

static bool bs_ping(zsock_t *d, int timeout_ms)
{
    bs_send(d, "sy.ping", NULL, NULL);
    tutil_msg_t m;
    return bs_expect(d, "sy.pong", timeout_ms, &m);
}

/* ------------------------------------------------------------ fixture */

static int bs_setup(void **state)
{
    bs_t *b = calloc(1, sizeof *b);
    if (!b || tutil_tmpdir(b->dir, sizeof b->dir, "sec") != 0)
        return -1;
    snprintf(b->cfg, sizeof b->cfg, "%s/sy.cfg", b->dir);
    snprintf(b->certs, sizeof b->certs, "%s/certs", b->dir);
    snprintf(b->devices, sizeof b->devices, "%s/devices", b->dir);
    snprintf(b->keys, sizeof b->keys, "%s/keys", b->dir);
    snprintf(b->store, sizeof b->store, "%s/store", b->dir);
    snprintf(b->log, sizeof b->log, "%s/broker.log", b->dir);
    mkdir(b->devices, 0700);
    int port = tutil_free_port();
    if (port <= 0)
        return -1;
    snprintf(b->ep, sizeof b->ep, "tcp://127.0.0.1:%d", port);
    char err[256];
    if (allowlist_new(b->certs, &b->allow, err, sizeof err) != 0) {
        fprintf(stderr, "allowlist: %s\n", err);
        return -1;
    }
    *state = b;
    bs_write_config(b);
    bs_start(b);
    if (!bs_wait_key(b)) {
        tutil_print_log(b->log);
        return -1;
    }
    return 0;
}

static int bs_teardown(void **state)
{
    bs_t *b = *state;
    bool clean = tutil_broker_stop(b->pid);
    if (!clean || getenv("SY_VERBOSE"))
        tutil_print_log(b->log);
    allowlist_destroy(&b->allow);
    if (clean)
        tutil_rmtree(b->dir);
    free(b);
    return clean ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

static void test_enrolled_key_works(void **state)
{
    bs_t *b = *state;
    bs_device(b, "alice", "client", true);
    zsock_t *d = bs_session(b, "alice", NULL);
    assert_true(bs_ping(d, WAIT_MS));
    zsock_destroy(&d);
}

static void test_unknown_key_refused(void **state)
{
    bs_t *b = *state;
    bs_device(b, "mallory", "operator", false);     /* made, never enrolled */
    zsock_t *d = bs_dealer(b, "mallory", NULL);
    bs_hello(d, "mallory", NULL);
    tutil_msg_t m;
    assert_false(bs_recv(d, QUIET_MS, &m));
    zsock_destroy(&d);
    /* enrolling the same key lets it in: the refusal was the allow-list */
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/mallory.cert", b->devices);
    assert_int_equal(allowlist_enroll(b->allow, path, err, sizeof err), 0);
    d = bs_session(b, "mallory", NULL);
    zsock_destroy(&d);
}

static void test_plaintext_refused(void **state)
{
    bs_t *b = *state;
    zsock_t *d = bs_dealer(b, NULL, NULL);
    bs_hello(d, "plain", NULL);
    tutil_msg_t m;
    assert_false(bs_recv(d, QUIET_MS, &m));
    zsock_destroy(&d);
}

static void test_wrong_broker_key_refused(void **state)
{
    bs_t *b = *state;
    bs_device(b, "erin", "client", true);
    zcert_t *other = zcert_new();
    zsock_t *d = bs_dealer(b, "erin", zcert_public_txt(other));
    bs_hello(d, "erin", NULL);
    tutil_msg_t m;
    assert_false(bs_recv(d, QUIET_MS, &m));
    zsock_destroy(&d);
    certs_destroy(&other);
    d = bs_session(b, "erin", NULL);                /* the right key works */
    zsock_destroy(&d);
}

static void test_client_cannot_offer_inference(void **state)
{
    bs_t *b = *state;
    bs_device(b, "phone", "client", true);
    bs_device(b, "laptop", "worker", true);
    zsock_t *d = bs_dealer(b, "phone", NULL);
    bs_hello(d, "phone", "inference");
    char msg[256];
    bs_expect_refusal(d, "DENIED", msg, sizeof msg);
    assert_non_null(strstr(msg, "inference"));
    zsock_destroy(&d);
    d = bs_session(b, "laptop", "inference");       /* a worker may */
    zsock_destroy(&d);
}

static void test_client_cannot_purge(void **state)
{
    bs_t *b = *state;
    bs_device(b, "tablet", "client", true);
    bs_device(b, "ops1", "operator", true);
    zsock_t *d = bs_session(b, "tablet", NULL);
    bs_send_map(d, "sy.query", "what", "dlq.purge", "service", "inference");
    char msg[256];
    bs_expect_refusal(d, "DENIED", msg, sizeof msg);
    /* status is read-only: a client may ask it */
    bs_send_map(d, "sy.query", "what", "status", NULL, NULL);
    tutil_msg_t m;
    assert_true(bs_expect(d, "sy.answer", WAIT_MS, &m));
    zsock_destroy(&d);
    zsock_t *o = bs_session(b, "ops1", NULL);
    bs_send_map(o, "sy.query", "what", "dlq.purge", "service", "inference");
    assert_true(bs_expect(o, "sy.answer", WAIT_MS, &m));
    zsock_destroy(&o);
}

static void test_cannot_appear_as_another(void **state)
{
    bs_t *b = *state;
    bs_device(b, "carol", "client", true);
    bs_device(b, "echoer", "worker", true);
    zsock_t *d = bs_dealer(b, "carol", NULL);
    bs_hello(d, "echoer", NULL);                    /* someone else's name */
    char msg[256];
    bs_expect_refusal(d, "DENIED", msg, sizeof msg);
    assert_non_null(strstr(msg, "carol"));
    bs_hello(d, "carol", NULL);
    tutil_msg_t m;
    assert_true(bs_expect(d, "sy.welcome", WAIT_MS, &m));

    /* `from` is the certificate's name whatever the header says */
    zsock_t *w = bs_session(b, "echoer", "echo");
    bs_send_ex(d, "echo.request", "echo", "operator", false, NULL, NULL);
    assert_true(bs_expect(w, "echo.request", WAIT_MS, &m));
    assert_string_equal(m.env.from, "carol");
    zsock_destroy(&w);
    zsock_destroy(&d);
}

static void test_flood_is_rate_limited(void **state)
{
    bs_t *b = *state;
    bs_device(b, "flooder", "client", true);
    bs_device(b, "calm", "client", true);
    zsock_t *f = bs_session(b, "flooder", NULL);
    zsock_t *c = bs_session(b, "calm", NULL);
    int sent = 60;
    for (int i = 0; i < sent; i++)
        bs_send(f, "sy.ping", NULL, NULL);
    /* the other identity keeps its normal answer meanwhile */
    assert_true(bs_ping(c, WAIT_MS));
    int pongs = 0, limited = 0;
    tutil_msg_t m;
    while (pongs + limited < sent && bs_recv(f, WAIT_MS, &m)) {
        if (strcmp(m.env.type, "sy.pong") == 0)
            pongs++;
        else if (strcmp(m.env.type, "sy.receipt") == 0) {
            char code[32];
            tutil_field(&m, false, "code", code, sizeof code);
            if (strcmp(code, "RATE_LIMITED") == 0)
                limited++;
        }
    }
    print_message("flood of %d pings: %d answered, %d RATE_LIMITED\n", sent, pongs, limited);
    assert_int_equal(pongs + limited, sent);
    assert_true(limited >= sent / 2);
    assert_true(pongs >= 1);
    zsock_destroy(&f);
    zsock_destroy(&c);
}

static void test_revoked_device_cut_off(void **state)
{
    bs_t *b = *state;
    bs_device(b, "ops2", "operator", true);
    bs_device(b, "dave", "client", true);
    zsock_t *o = bs_session(b, "ops2", NULL);
    bs_send_map(o, "sy.sub", "topic", "presence.leave", NULL, NULL);
    assert_true(bs_ping(o, WAIT_MS));               /* the sub is in place */
    zsock_t *d = bs_session(b, "dave", NULL);

    char err[256];
    int64_t t0 = zclock_mono();
    assert_int_equal(allowlist_revoke(b->allow, "dave", err, sizeof err), 0);
    tutil_msg_t m;
    bool left = false;
    while (!left && bs_expect(o, "sy.event", 5000, &m)) {
        mpread_t r;
        mpval_t map, data, v;
        mpread_init(&r, m.body, m.blen);
        char name[64] = "", reason[64] = "";
        if (mpread_next(&r, &map) == 0
            && mpread_map_find(&r, &map, "data", &data, &r) == 0 && data.kind == MP_MAP) {
            if (mpread_map_find(&r, &data, "name", &v, NULL) == 0 && v.len < sizeof name)
                memcpy(name, v.ptr, v.len);
            if (mpread_map_find(&r, &data, "reason", &v, NULL) == 0 && v.len < sizeof reason)
                memcpy(reason, v.ptr, v.len);
        }
        left = strcmp(name, "dave") == 0 && strcmp(reason, "revoked") == 0;
    }
    int64_t took = zclock_mono() - t0;
    print_message("revoked device left after %lld ms\n", (long long) took);
    assert_true(left);
    assert_true(took < 5000);
    assert_true(bs_expect(d, "sy.bye", WAIT_MS, &m));
    char reason[64];
    tutil_field(&m, false, "reason", reason, sizeof reason);
    assert_string_equal(reason, "revoked");

    /* its open connection gets DENIED from now on */
    bs_send(d, "sy.ping", NULL, NULL);
    char msg[256];
    bs_expect_refusal(d, "DENIED", msg, sizeof msg);
    zsock_destroy(&d);
    /* a new connection with the revoked key is not admitted */
    d = bs_dealer(b, "dave", NULL);
    bs_hello(d, "dave", NULL);
    assert_false(bs_recv(d, QUIET_MS, &m));
    zsock_destroy(&d);
    /* and the broker runs on */
    assert_true(bs_ping(o, WAIT_MS));
    assert_int_equal(waitpid(b->pid, NULL, WNOHANG), 0);
    zsock_destroy(&o);
}

static void test_store_holds_no_plaintext(void **state)
{
    bs_t *b = *state;
    bs_device(b, "ops3", "operator", true);
    zsock_t *o = bs_session(b, "ops3", NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    tutil_pack_str(&pk, "data");
    tutil_pack_str(&pk, MARK);
    uint8_t id[16];
    bs_send_ex(o, "echo.request", "queued-svc", NULL, true, &sb, id);
    msgpack_sbuffer_destroy(&sb);
    tutil_msg_t m;
    assert_true(bs_expect(o, "sy.receipt", WAIT_MS, &m));
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, m.body, m.blen);
    assert_int_equal(mpread_next(&r, &map), 0);
    assert_int_equal(mpread_map_find(&r, &map, "ok", &v, NULL), 0);
    assert_true(v.kind == MP_BOOL && v.b);

    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", b->store);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 40u << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    assert_null(memmem(buf, n, MARK, strlen(MARK)));
    /* the search works: the readable header (service name) is there */
    assert_non_null(memmem(buf, n, "queued-svc", strlen("queued-svc")));
    free(buf);
    zsock_destroy(&o);
}

int main(void)
{
    alarm(120);                     /* bounded whatever happens */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enrolled_key_works),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_wrong_broker_key_refused),
        cmocka_unit_test(test_client_cannot_offer_inference),
        cmocka_unit_test(test_client_cannot_purge),
        cmocka_unit_test(test_cannot_appear_as_another),
        cmocka_unit_test(test_flood_is_rate_limited),
        cmocka_unit_test(test_revoked_device_cut_off),
        cmocka_unit_test(test_store_holds_no_plaintext),
    };
    int rc = cmocka_run_group_tests(tests, bs_setup, bs_teardown);
    zsys_shutdown();
    return rc;
}
