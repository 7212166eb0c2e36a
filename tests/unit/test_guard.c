/*  test_guard.c -- broker/guard.c without a broker: the precomputed role
 *  table agrees with the acl, rate limits hit the listed roles only and
 *  never the settling types, the broker's certificate is made once and
 *  checked against security/broker_key, ipc:// directories are checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/guard.h"
#include "schemas/syerr.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char cfgpath[128];
    config_t *cfg;
    zloop_t *loop;
    guard_t *g;
} fx_t;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void) st; (void) flag; (void) f;
    return remove(p);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sy-guard-XXXXXX");
    if (!fx || !mkdtemp(fx->dir))
        return -1;
    snprintf(fx->cfgpath, sizeof fx->cfgpath, "%s/g.cfg", fx->dir);
    fx->loop = zloop_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    guard_destroy(&fx->g);
    zloop_destroy(&fx->loop);
    config_destroy(&fx->cfg);
    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Loads extra (ZPL text) as the configuration and makes the guard. */
static int fx_guard(fx_t *fx, const char *extra, char *err, size_t errlen)
{
    FILE *f = fopen(fx->cfgpath, "w");
    assert_non_null(f);
    fprintf(f, "security\n    certs_dir = \"%s/certs\"\n"
               "    broker_cert = \"%s/keys/broker.secret\"\n%s",
            fx->dir, fx->dir, extra);
    fclose(f);
    guard_destroy(&fx->g);
    config_destroy(&fx->cfg);
    assert_int_equal(config_load(fx->cfgpath, &fx->cfg, err, errlen), 0);
    return guard_new(fx->cfg, fx->loop, NULL, NULL, &fx->g, err, errlen);
}

static const msgtype_t *mt(const char *type)
{
    const msgtype_t *t = msgtypes_find(type, strlen(type));
    assert_non_null(t);
    return t;
}

static void test_roles_table(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    /* CURVE is the default; turned off, no peer carries an identity */
    assert_int_equal(fx_guard(fx, "", err, sizeof err), 0);
    assert_true(guard_curve(fx->g));
    assert_int_equal(fx_guard(fx, "    curve = false\n", err, sizeof err), 0);
    assert_false(guard_curve(fx->g));
    guard_peer_t who;
    zmq_msg_t m;
    zmq_msg_init(&m);
    assert_int_equal(guard_identify(fx->g, &m, &who), 0);
    zmq_msg_close(&m);
    assert_null(who.name);
    assert_int_equal(who.role, CERTS_ROLE_OPERATOR);       /* the default */

    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("echo.request"), ""), 0);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("sy.ping"), ""), 0);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("sy.credit"), ""),
                     SY_EDENIED);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("sy.query"), "status"), 0);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("sy.query"), "dlq.purge"),
                     SY_EDENIED);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_WORKER, mt("sy.query"), "dlq.purge"),
                     SY_EDENIED);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_WORKER, mt("sy.ack"), ""), 0);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_OPERATOR, mt("sy.query"), "dlq.purge"),
                     0);
    assert_false(guard_may_offer(fx->g, CERTS_ROLE_CLIENT, "inference"));
    assert_true(guard_may_offer(fx->g, CERTS_ROLE_WORKER, "inference"));
    assert_false(guard_may_offer(fx->g, CERTS_ROLE_ACTOR, "inference"));

    /* the table follows the configuration */
    assert_int_equal(fx_guard(fx, "security\n    default_role = client\n"
                                  "acl\n    client\n        send = \"sy.*\"\n",
                              err, sizeof err), 0);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("echo.request"), ""),
                     SY_EDENIED);
    assert_int_equal(guard_may_send(fx->g, CERTS_ROLE_CLIENT, mt("sy.credit"), ""), 0);
}

static void test_rate_limits(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    assert_int_equal(fx_guard(fx, "ratelimit\n    rate = 1\n    burst = 3\n", err,
                              sizeof err), 0);
    int64_t now = 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, "phone", mt("sy.ping"), now), 0);
    assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, "phone", mt("sy.ping"), now),
                     SY_ERATE_LIMITED);
    /* another identity, the settling types, an operator: not limited */
    assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, "laptop", mt("sy.ping"), now), 0);
    assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, "phone", mt("sy.ack"), now), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(guard_rate(fx->g, CERTS_ROLE_OPERATOR, "ops", mt("sy.ping"), now), 0);
    assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, NULL, mt("sy.ping"), now), 0);
    /* a second later one token is back */
    assert_int_equal(guard_rate(fx->g, CERTS_ROLE_CLIENT, "phone", mt("sy.ping"), now + 1000),
                     0);

    assert_int_equal(fx_guard(fx, "ratelimit\n    roles = \"client,nobody\"\n", err,
                              sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "nobody"));
}

static void test_broker_cert_and_ipc(void **state)
{
    fx_t *fx = *state;
    char err[512] = "";
    assert_int_equal(fx_guard(fx, "    curve = true\n", err, sizeof err), 0);
    assert_true(guard_curve(fx->g));
    char key[41];
    snprintf(key, sizeof key, "%s", guard_public_key(fx->g));
    assert_int_equal(strlen(key), 40);
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/keys/broker.secret", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* made once: the second start reads the same key */
    assert_int_equal(fx_guard(fx, "    curve = true\n", err, sizeof err), 0);
    assert_string_equal(guard_public_key(fx->g), key);

    /* a pinned key that is not the broker's is refused up front */
    char extra[256];
    char wrong[41];
    memcpy(wrong, key, sizeof wrong);
    wrong[39] = wrong[39] == 'x' ? 'y' : 'x';
    snprintf(extra, sizeof extra, "    curve = true\n    broker_key = \"%s\"\n", wrong);
    assert_int_equal(fx_guard(fx, extra, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "broker_key"));
    snprintf(extra, sizeof extra, "    curve = true\n    broker_key = \"%s\"\n", key);
    assert_int_equal(fx_guard(fx, extra, err, sizeof err), 0);

    /* ipc:// only in a private directory */
    char open_dir[128], ep[256];
    snprintf(open_dir, sizeof open_dir, "%s/open", fx->dir);
    assert_int_equal(mkdir(open_dir, 0755), 0);
    assert_int_equal(chmod(open_dir, 0755), 0);
    zsock_t *r = zsock_new(ZMQ_ROUTER);
    snprintf(ep, sizeof ep, "ipc://%s/b.ipc", open_dir);
    assert_int_equal(guard_prepare(fx->g, r, ep, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "0755"));
    assert_int_equal(guard_prepare(fx->g, r, "tcp://127.0.0.1:1,ipc://@abstract", err,
                                   sizeof err), SY_ECONFIG);
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:1, ipc://%s/b.ipc", fx->dir);
    assert_int_equal(guard_prepare(fx->g, r, ep, err, sizeof err), 0);
    assert_int_equal(zsock_curve_server(r), 1);
    zsock_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roles_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_cert_and_ipc, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
