/*  test_actor_services.c -- actor_set_services() (actors/actor.h) against
 *  the real sy-broker ($SY_BIN_DIR/sy-broker, default bin/) as a child
 *  process, curve off, plaintext over ipc://.
 *
 *  What is checked:
 *  - an actor that offers nothing takes a service with
 *    actor_set_services(): the state callback hears up = true again after
 *    the new welcome (and never up = false: the connection stayed), and
 *    a message sent to the service reaches its handler;
 *  - the same set again sends nothing (no new session, no callback);
 *  - withdrawn (an empty list), a send to the service gets NO_SERVICE;
 *  - a durable delivery the actor holds when it withdraws goes to another
 *    worker of the service (attempt 2); its ack from the first actor is
 *    not sent (SY_ECLOSED: it belongs to the old session);
 *  - bad names are refused with SY_EINVAL and change nothing.
 *  Several actors run in this one thread: each has its own loop, pumped
 *  in turn for a few ms.  Every wait is bounded.
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
#include <unistd.h>

#include "actors/actor.h"
#include "common/sylog.h"
#include "schemas/syerr.h"
#include "tutil.h"

#define WAIT_MS 8000

typedef struct {
    actor_t *a;
    int      ups, downs;    /* state callbacks */
    int      runs;          /* handler calls */
    int      rc;            /* what the handler returns */
    uint8_t  last_id[16];
    uint32_t last_attempt;
} peer_t;

typedef struct {
    char   dir[64];
    char   cfg[128], log[128], store[128], ep[128];
    pid_t  pid;
} fx_t;

/* ------------------------------------------------------------ fixture */

static void on_state(actor_t *a, bool up, void *arg)
{
    (void) a;
    peer_t *p = arg;
    if (up)
        p->ups++;
    else
        p->downs++;
}

static int on_job(actor_t *a, const actor_msg_t *m, void *arg)
{
    (void) a;
    peer_t *p = arg;
    p->runs++;
    memcpy(p->last_id, m->hdr.id, 16);
    p->last_attempt = m->hdr.attempt;
    return p->rc;
}

static bool fx_wait_up(fx_t *fx)
{
    void *ctx = zmq_ctx_new();
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        void *s = tutil_dealer(ctx, fx->ep);
        if (s) {
            tutil_msg_t m;
            up = tutil_hello(s, "probe", NULL, 1) == 0
                 && tutil_expect(s, "sy.welcome", 100, &m) == 1;
            if (up)
                tutil_send(s, "sy.bye", NULL, NULL, false, NULL, 0, NULL);
            zmq_close(s);
        }
        if (!up)
            usleep(50000);
    }
    zmq_ctx_term(ctx);
    return up;
}

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tutil_tmpdir(fx->dir, sizeof fx->dir, "asvc") != 0)
        return -1;
    snprintf(fx->cfg, sizeof fx->cfg, "%s/sy.cfg", fx->dir);
    snprintf(fx->log, sizeof fx->log, "%s/broker.log", fx->dir);
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->dir);
    snprintf(fx->ep, sizeof fx->ep, "ipc://%s/b.ipc", fx->dir);
    if (tutil_write_file(fx->cfg,
            "log\n    level = debug\n    file = \"%s\"\n"
            "broker\n    endpoint = \"%s\"\n    heartbeat = 250ms\n"
            "    liveness = 5s\n"
            "store\n    dir = \"%s\"\n    sync = none\n    map_size = 16M\n"
            "    lease = 60s\n"
            "security\n    curve = false\n",
            fx->log, fx->ep, fx->store) != 0)
        return -1;
    fx->pid = tutil_broker_start(fx->cfg, fx->log);
    if (fx->pid < 0 || !fx_wait_up(fx)) {
        tutil_print_log(fx->log);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;
    bool clean = tutil_broker_stop(fx->pid);
    if (!clean)
        tutil_print_log(fx->log);
    tutil_rmtree(fx->dir);
    free(fx);
    return clean ? 0 : -1;
}

/* An actor offering services[0..n), credit 1, connected. */
static void peer_new(fx_t *fx, peer_t *p, const char *name,
                     const char **services, size_t n)
{
    memset(p, 0, sizeof *p);
    actor_opts_t o = { 0 };
    o.name = name;
    o.endpoint = fx->ep;
    o.services = services;
    o.nservices = n;
    o.credit = 1;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 500;
    o.hello_timeout_ms = 5000;
    p->a = actor_new(&o);
    assert_non_null(p->a);
    actor_on_state(p->a, on_state, p);
    actor_on(p->a, "echo.request", on_job, p);
    assert_int_equal(actor_wait_connected(p->a, WAIT_MS), 0);
}

/* Runs each actor's loop for a few ms, in turn, until *flag reaches
   want or WAIT_MS passed.  True if it did. */
static bool pump_until(peer_t **ps, size_t n, const int *flag, int want)
{
    int64_t end = zclock_mono() + WAIT_MS;
    while (*flag < want && zclock_mono() < end)
        for (size_t i = 0; i < n; i++)
            actor_run_for(ps[i]->a, 5);
    return *flag >= want;
}

static void pump_for(peer_t **ps, size_t n, int ms)
{
    int64_t end = zclock_mono() + ms;
    while (zclock_mono() < end)
        for (size_t i = 0; i < n; i++)
            actor_run_for(ps[i]->a, 5);
}

/* Sends an echo.request from p to service; its id into id. */
static void send_echo(peer_t *p, const char *service, bool durable,
                      uint8_t id[16])
{
    actor_send_opts_t o = { .prio = 1, .durable = durable };
    assert_int_equal(actor_send(p->a, service, "echo.request", NULL, 0, &o,
                                id), 0);
}

/* ------------------------------------------------------------ tests */

static void test_take_and_withdraw(void **state)
{
    fx_t *fx = *state;
    peer_t w, c;
    peer_new(fx, &w, "svc-worker", NULL, 0);
    peer_new(fx, &c, "svc-client", NULL, 0);
    peer_t *all[] = { &w, &c };
    assert_int_equal(w.ups, 1);

    /* nobody offers it yet */
    uint8_t id[16];
    actor_receipt_t r;
    send_echo(&c, "svc-x", false, id);
    assert_int_equal(actor_wait_receipt(c.a, id, WAIT_MS, &r), 0);
    assert_false(r.ok);
    assert_string_equal(r.code_name, "NO_SERVICE");

    /* take it: a new session, up again, no down */
    const char *svc[] = { "svc-x" };
    assert_int_equal(actor_set_services(w.a, svc, 1), 0);
    assert_true(pump_until(all, 2, &w.ups, 2));
    assert_int_equal(w.downs, 0);
    assert_true(actor_connected(w.a));

    send_echo(&c, "svc-x", false, id);
    assert_true(pump_until(all, 2, &w.runs, 1));
    assert_memory_equal(w.last_id, id, 16);

    /* the same set again: nothing happens */
    assert_int_equal(actor_set_services(w.a, svc, 1), 0);
    pump_for(all, 2, 300);
    assert_int_equal(w.ups, 2);

    /* withdraw: the service is gone from the broker */
    assert_int_equal(actor_set_services(w.a, NULL, 0), 0);
    assert_true(pump_until(all, 2, &w.ups, 3));
    assert_int_equal(w.downs, 0);
    send_echo(&c, "svc-x", false, id);
    assert_int_equal(actor_wait_receipt(c.a, id, WAIT_MS, &r), 0);
    assert_false(r.ok);
    assert_string_equal(r.code_name, "NO_SERVICE");
    pump_for(all, 2, 100);
    assert_int_equal(w.runs, 1);

    actor_destroy(&w.a);
    actor_destroy(&c.a);
}

static void test_held_durable_moves(void **state)
{
    fx_t *fx = *state;
    const char *svc[] = { "svc-jobs" };
    peer_t w1, w2, c;
    peer_new(fx, &w1, "jobs-1", svc, 1);
    peer_new(fx, &c, "jobs-client", NULL, 0);
    w1.rc = ACTOR_KEEP;

    uint8_t id[16];
    actor_receipt_t r;
    send_echo(&c, "svc-jobs", true, id);
    assert_int_equal(actor_wait_receipt(c.a, id, WAIT_MS, &r), 0);
    assert_true(r.ok);
    peer_t *two[] = { &w1, &c };
    assert_true(pump_until(two, 2, &w1.runs, 1));
    assert_memory_equal(w1.last_id, id, 16);
    assert_int_equal(w1.last_attempt, 1);
    assert_int_equal(actor_held_durable(w1.a), 1);

    /* a second worker that takes the service later */
    peer_new(fx, &w2, "jobs-2", NULL, 0);
    peer_t *all[] = { &w1, &w2, &c };
    assert_int_equal(actor_set_services(w2.a, svc, 1), 0);
    assert_true(pump_until(all, 3, &w2.ups, 2));
    pump_for(all, 3, 200);
    assert_int_equal(w2.runs, 0);       /* w1 still holds it */

    /* w1 withdraws while holding it: it goes to w2 */
    assert_int_equal(actor_set_services(w1.a, NULL, 0), 0);
    assert_true(pump_until(all, 3, &w2.runs, 1));
    assert_memory_equal(w2.last_id, id, 16);
    assert_int_equal(w2.last_attempt, 2);
    assert_int_equal(w1.runs, 1);       /* never run twice by w1 */
    /* w1's ack belongs to the old session: not sent */
    assert_int_equal(actor_ack(w1.a, id), SY_ECLOSED);
    assert_int_equal(actor_held_durable(w1.a), 0);
    assert_int_equal(actor_held_durable(w2.a), 0);     /* w2 acked it */

    actor_destroy(&w1.a);
    actor_destroy(&w2.a);
    actor_destroy(&c.a);
}

static void test_bad_names(void **state)
{
    fx_t *fx = *state;
    peer_t w;
    peer_new(fx, &w, "svc-bad", NULL, 0);
    const char *at[] = { "@x" };
    const char *empty[] = { "" };
    const char *null[] = { NULL };
    assert_int_equal(actor_set_services(w.a, at, 1), SY_EINVAL);
    assert_int_equal(actor_set_services(w.a, empty, 1), SY_EINVAL);
    assert_int_equal(actor_set_services(w.a, null, 1), SY_EINVAL);
    assert_int_equal(actor_set_services(w.a, NULL, 2), SY_EINVAL);
    assert_int_equal(actor_set_services(NULL, NULL, 0), SY_EINVAL);
    const char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = "svc-many";
    assert_int_equal(actor_set_services(w.a, many, 65), SY_EINVAL);
    peer_t *all[] = { &w };
    pump_for(all, 1, 200);
    assert_int_equal(w.ups, 1);         /* nothing was said again */
    assert_true(actor_connected(w.a));
    actor_destroy(&w.a);
}

int main(void)
{
    sylog_open("test_actor_services", SYLOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_take_and_withdraw, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_held_durable_moves, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, fx_setup,
                                        fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    sylog_close();
    return rc;
}
