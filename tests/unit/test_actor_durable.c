/*  test_actor_durable.c -- the runtime's durable credit (actors/actor.c)
 *  against a fake broker: a ROUTER socket in this test that welcomes the
 *  actor, hands it durable deliveries and records every sy.ack, sy.nack
 *  and sy.lease it gets.
 *
 *  The rule checked (docs/DURABLE.md section 3): each durable delivery
 *  uses one credit and only its sy.ack or sy.nack gives it back, a late
 *  one included.  So in one session every delivery the actor receives
 *  must be answered by exactly one settle, and none of a lost session
 *  (the new hello restores the window):
 *  - a handler that answers at once: one sy.ack;
 *  - the same message delivered again while its handler keeps it (its
 *    lease ran out): the handler does not run twice, and the app's ack
 *    (or nack) goes out twice;
 *  - the receipts answering the extra nacks reach no handler, others do;
 *  - a held delivery of a lost session: its ack is not sent; delivered
 *    again afterwards it is acked at once without running the handler;
 *  - a held delivery of a lost session delivered again while still held
 *    takes the old one's place: one ack, and its keepalive restarts.
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
#include <unistd.h>

#include "actors/actor.h"
#include "common/sylog.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"
#include "tutil.h"

#define MAXREC 32

/* What the fake broker saw. */
typedef struct {
    uint8_t  rid[256];
    size_t   rid_len;
    uint8_t  hello_id[16];
    int      hellos;
    int      credits;       /* sy.credit messages */
    int      nacks, acks, leases;
    uint8_t  ack_ids[MAXREC][16];
    uint8_t  nack_ids[MAXREC][16];
    uint8_t  nack_env[MAXREC][16];     /* each sy.nack's own id */
} seen_t;

typedef struct {
    char     dir[64];
    char     ep[128];
    zsock_t *router;
    actor_t *actor;
    uint8_t  next_id;       /* ids of what the fake broker sends */
    seen_t   seen;
    int      runs;          /* handler calls */
    int      rc;            /* what the handler returns */
    int      receipts;      /* sy.receipt handler calls */
} fx_t;

/* ------------------------------------------------------------ fixture */

static int on_job(actor_t *a, const actor_msg_t *m, void *arg)
{
    (void) a;
    (void) m;
    fx_t *fx = arg;
    fx->runs++;
    return fx->rc;
}

static int on_receipt(actor_t *a, const actor_msg_t *m, void *arg)
{
    (void) a;
    (void) m;
    fx_t *fx = arg;
    fx->receipts++;
    return 0;
}

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (tutil_tmpdir(fx->dir, sizeof fx->dir, "adur") != 0)
        return -1;
    snprintf(fx->ep, sizeof fx->ep, "ipc://%s/b.ipc", fx->dir);
    fx->router = zsock_new(ZMQ_ROUTER);
    if (!fx->router)
        return -1;
    zsock_set_linger(fx->router, 0);
    if (zsock_bind(fx->router, "%s", fx->ep) < 0)
        return -1;
    static const char *svc[] = { "jobs" };
    actor_opts_t o = { 0 };
    o.name = "worker-1";
    o.endpoint = fx->ep;
    o.services = svc;
    o.nservices = 1;
    o.credit = 2;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 1000;
    o.hello_timeout_ms = 5000;
    fx->actor = actor_new(&o);
    if (!fx->actor)
        return -1;
    actor_on(fx->actor, "echo.request", on_job, fx);
    actor_on(fx->actor, "sy.receipt", on_receipt, fx);
    fx->rc = ACTOR_KEEP;
    fx->next_id = 1;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;
    actor_destroy(&fx->actor);
    zsock_destroy(&fx->router);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ fake broker */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Sends env (its id made here) and body to the actor. */
static void broker_send(fx_t *fx, envelope_t *env, const msgpack_sbuffer *body)
{
    memset(env->id, 0, 16);
    env->id[0] = 0x7f;
    env->id[15] = fx->next_id++;
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(env, hdr, sizeof hdr);
    assert_true(n > 0);
    void *h = zsock_resolve(fx->router);
    assert_true(fx->seen.rid_len > 0);
    assert_true(zmq_send(h, fx->seen.rid, fx->seen.rid_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, hdr, (size_t) n, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, body->data, body->size, 0) >= 0);
}

static void broker_welcome(fx_t *fx)
{
    envelope_t env;
    envelope_init(&env);
    assert_int_equal(envelope_set_type(&env, "sy.welcome"), 0);
    env.present |= ENV_HAS_CORR;
    memcpy(env.corr, fx->seen.hello_id, 16);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "name");
    pk_str(&pk, "worker-1");
    pk_str(&pk, "hb");
    msgpack_pack_uint32(&pk, 1000);
    pk_str(&pk, "liveness");
    msgpack_pack_uint32(&pk, 60000);
    pk_str(&pk, "max_msg");
    msgpack_pack_uint32(&pk, 1 << 20);
    broker_send(fx, &env, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The 16-byte "id" of a settle body into out. */
static void body_id(const uint8_t *body, size_t len, uint8_t out[16])
{
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, body, len);
    assert_int_equal(mpread_next(&r, &map), 0);
    assert_int_equal(mpread_map_find(&r, &map, "id", &v, NULL), 0);
    assert_int_equal(v.len, 16);
    memcpy(out, v.ptr, 16);
}

/* Handles one message the ROUTER got: [rid, header, body]. */
static void broker_take(fx_t *fx, const uint8_t *rid, size_t rid_len,
                        const envelope_t *env, const uint8_t *body,
                        size_t len)
{
    seen_t *s = &fx->seen;
    if (strcmp(env->type, "sy.hello") == 0) {
        memcpy(s->rid, rid, rid_len);
        s->rid_len = rid_len;
        memcpy(s->hello_id, env->id, 16);
        s->hellos++;
        broker_welcome(fx);
    } else if (strcmp(env->type, "sy.credit") == 0)
        s->credits++;
    else if (strcmp(env->type, "sy.lease") == 0)
        s->leases++;
    else if (strcmp(env->type, "sy.ack") == 0) {
        assert_true(s->acks < MAXREC);
        body_id(body, len, s->ack_ids[s->acks++]);
    } else if (strcmp(env->type, "sy.nack") == 0) {
        assert_true(s->nacks < MAXREC);
        memcpy(s->nack_env[s->nacks], env->id, 16);
        body_id(body, len, s->nack_ids[s->nacks++]);
    }
}

/* Reads one message if there is one. */
static bool broker_recv(fx_t *fx)
{
    void *h = zsock_resolve(fx->router);
    zmq_msg_t f[3];
    int part = 0;
    bool more = true;
    while (more) {
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, h, part == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&x);
            assert_int_equal(part, 0);
            return false;
        }
        more = zmq_msg_more(&x);
        assert_true(part < 3);
        f[part++] = x;
    }
    assert_int_equal(part, 3);
    envelope_t env;
    char err[160];
    assert_int_equal(envelope_decode(&env, zmq_msg_data(&f[1]),
                                     zmq_msg_size(&f[1]), err, sizeof err), 0);
    broker_take(fx, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), &env,
                zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&f[i]);
    return true;
}

/* Runs the actor and the fake broker in short turns for ms. */
static void pump(fx_t *fx, int ms)
{
    int64_t end = zclock_mono() + ms;
    while (zclock_mono() < end) {
        actor_run_for(fx->actor, 5);
        while (broker_recv(fx))
            ;
    }
}

/* Runs until the actor is welcomed (hellos reaches n), at most 3 s. */
static void connect_n(fx_t *fx, int n)
{
    int64_t end = zclock_mono() + 3000;
    while ((fx->seen.hellos < n || !actor_connected(fx->actor))
           && zclock_mono() < end)
        pump(fx, 10);
    assert_int_equal(fx->seen.hellos, n);
    assert_true(actor_connected(fx->actor));
}

/* A durable echo.request with message id `id` as the broker delivers it. */
static void deliver(fx_t *fx, const uint8_t id[16], uint32_t attempt)
{
    envelope_t env;
    envelope_init(&env);
    assert_int_equal(envelope_set_type(&env, "echo.request"), 0);
    assert_int_equal(envelope_set_to(&env, "jobs"), 0);
    assert_int_equal(envelope_set_from(&env, "producer"), 0);
    env.present |= ENV_HAS_DURABLE | ENV_HAS_ATTEMPT;
    env.durable = true;
    env.attempt = attempt;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "seq");
    msgpack_pack_uint32(&pk, attempt);
    /* sent here, not by broker_send(), which makes a fresh id: a
       redelivery carries the message's own id */
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    memcpy(env.id, id, 16);
    int n = envelope_encode(&env, hdr, sizeof hdr);
    assert_true(n > 0);
    void *h = zsock_resolve(fx->router);
    assert_true(zmq_send(h, fx->seen.rid, fx->seen.rid_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, hdr, (size_t) n, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(h, sb.data, sb.size, 0) >= 0);
    msgpack_sbuffer_destroy(&sb);
}

/* A receipt {ok:false, code, detail?} answering corr. */
static void send_receipt(fx_t *fx, const uint8_t corr[16], const char *code,
                         const char *detail)
{
    envelope_t env;
    envelope_init(&env);
    assert_int_equal(envelope_set_type(&env, "sy.receipt"), 0);
    env.present |= ENV_HAS_CORR;
    memcpy(env.corr, corr, 16);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, detail ? 3 : 2);
    pk_str(&pk, "ok");
    msgpack_pack_false(&pk);
    pk_str(&pk, "code");
    pk_str(&pk, code);
    if (detail) {
        pk_str(&pk, "detail");
        pk_str(&pk, detail);
    }
    broker_send(fx, &env, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* The broker forgot the actor (it restarted): the actor says hello again
   on the same socket and is welcomed: a new session. */
static void broker_forget(fx_t *fx)
{
    int before = fx->seen.hellos;
    send_receipt(fx, fx->seen.hello_id, "DENIED", "NOT_REGISTERED");
    connect_n(fx, before + 1);
}

static int count_ids(uint8_t (*ids)[16], int n, const uint8_t id[16])
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += memcmp(ids[i], id, 16) == 0;
    return c;
}

static int acks_of(const fx_t *fx, const uint8_t id[16])
{
    return count_ids((uint8_t (*)[16]) fx->seen.ack_ids, fx->seen.acks, id);
}

static int nacks_of(const fx_t *fx, const uint8_t id[16])
{
    return count_ids((uint8_t (*)[16]) fx->seen.nack_ids, fx->seen.nacks, id);
}

static void make_id(uint8_t id[16], uint8_t tag)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t) (tag + i);
}

/* ------------------------------------------------------------ tests */

/* A handler that finishes at once: exactly one sy.ack, no sy.credit. */
static void test_handled_acks_once(void **state)
{
    fx_t *fx = *state;
    connect_n(fx, 1);
    fx->rc = 0;
    uint8_t y[16];
    make_id(y, 0x30);
    deliver(fx, y, 1);
    pump(fx, 200);
    assert_int_equal(fx->runs, 1);
    assert_int_equal(acks_of(fx, y), 1);
    assert_int_equal(fx->seen.nacks, 0);
    assert_int_equal(fx->seen.credits, 0);
    assert_int_equal(actor_held_durable(fx->actor), 0);
}

/* The lease ran out while the handler keeps X and the broker gave X to
   the same actor again: two credits spent, so two sy.ack, one run. */
static void test_redelivered_while_held_acks_twice(void **state)
{
    fx_t *fx = *state;
    connect_n(fx, 1);
    uint8_t x[16];
    make_id(x, 0x10);
    deliver(fx, x, 1);
    pump(fx, 150);
    assert_int_equal(fx->runs, 1);
    assert_int_equal(actor_held_durable(fx->actor), 1);
    deliver(fx, x, 2);
    pump(fx, 150);
    assert_int_equal(fx->runs, 1);              /* not run twice */
    assert_int_equal(actor_held_durable(fx->actor), 1);
    assert_int_equal(fx->seen.acks, 0);         /* nothing settled yet */

    assert_int_equal(actor_ack(fx->actor, x), 0);
    pump(fx, 200);
    assert_int_equal(acks_of(fx, x), 2);
    assert_int_equal(fx->seen.acks, 2);
    assert_int_equal(fx->seen.nacks, 0);
    assert_int_equal(fx->seen.credits, 0);
    assert_int_equal(actor_held_durable(fx->actor), 0);
    assert_int_equal(actor_ack(fx->actor, x), SY_ENOTFOUND);

    /* X comes a third time (say the first ack was late and the broker had
       leased it again): acked at once, not run; one more settle */
    deliver(fx, x, 3);
    pump(fx, 150);
    assert_int_equal(fx->runs, 1);
    assert_int_equal(acks_of(fx, x), 3);
    assert_int_equal(actor_held_durable(fx->actor), 0);
}

/* Three copies, then a nack: three sy.nack (extra nacks, never acks
   after a nack); their EXPIRED receipts reach no handler, another
   receipt does. */
static void test_redelivered_while_held_nacks(void **state)
{
    fx_t *fx = *state;
    connect_n(fx, 1);
    uint8_t x[16];
    make_id(x, 0x50);
    for (uint32_t a = 1; a <= 3; a++) {
        deliver(fx, x, a);
        pump(fx, 100);
    }
    assert_int_equal(fx->runs, 1);
    assert_int_equal(actor_nack(fx->actor, x, "busy", true, 0), 0);
    pump(fx, 200);
    assert_int_equal(nacks_of(fx, x), 3);
    assert_int_equal(fx->seen.acks, 0);
    assert_int_equal(actor_held_durable(fx->actor), 0);

    /* the broker answers the two extra nacks EXPIRED (and the first too,
       as if it came late), and a receipt of something else */
    for (int i = 0; i < 3; i++)
        send_receipt(fx, fx->seen.nack_env[i], "EXPIRED", NULL);
    uint8_t other[16];
    make_id(other, 0x90);
    send_receipt(fx, other, "EXPIRED", NULL);
    pump(fx, 200);
    assert_int_equal(fx->receipts, 2);          /* the first nack's, other */

    /* a nacked message is not "done": delivered again, it runs */
    fx->rc = 0;
    deliver(fx, x, 4);
    pump(fx, 150);
    assert_int_equal(fx->runs, 2);
    assert_int_equal(acks_of(fx, x), 1);
}

/* The session ends while X is held: its ack is not sent (the new session
   never spent a credit on it); X delivered again later is acked at once
   without running the handler. */
static void test_ack_of_lost_session_not_sent(void **state)
{
    fx_t *fx = *state;
    connect_n(fx, 1);
    uint8_t x[16];
    make_id(x, 0x70);
    deliver(fx, x, 1);
    pump(fx, 100);
    deliver(fx, x, 2);          /* one extra copy in the old session */
    pump(fx, 100);
    assert_int_equal(fx->runs, 1);
    broker_forget(fx);
    assert_int_equal(actor_held_durable(fx->actor), 1);
    assert_int_equal(actor_ack(fx->actor, x), SY_ECLOSED);
    pump(fx, 200);
    assert_int_equal(fx->seen.acks, 0);
    assert_int_equal(actor_held_durable(fx->actor), 0);

    deliver(fx, x, 3);
    pump(fx, 150);
    assert_int_equal(fx->runs, 1);
    assert_int_equal(acks_of(fx, x), 1);
    assert_int_equal(fx->seen.nacks, 0);
}

/* The session ends while X is held (with a keepalive); the new session
   delivers X while it is still held: no second run, the keepalive
   starts again, and the final ack goes out once (the old session's
   copies are owed nothing). */
static void test_lost_session_delivery_adopted(void **state)
{
    fx_t *fx = *state;
    connect_n(fx, 1);
    uint8_t x[16];
    make_id(x, 0x80);
    deliver(fx, x, 1);
    pump(fx, 100);
    assert_int_equal(actor_keepalive(fx->actor, x, 100, 1000), 0);
    deliver(fx, x, 2);
    pump(fx, 300);
    assert_true(fx->seen.leases >= 2);
    broker_forget(fx);
    int leases = fx->seen.leases;
    pump(fx, 300);
    assert_int_equal(fx->seen.leases, leases);  /* keepalive stopped */
    assert_int_equal(actor_extend(fx->actor, x, 1000), SY_ECLOSED);

    deliver(fx, x, 3);
    pump(fx, 300);
    assert_int_equal(fx->runs, 1);
    assert_int_equal(actor_held_durable(fx->actor), 1);
    assert_true(fx->seen.leases >= leases + 2);  /* keepalive again */
    assert_int_equal(actor_ack(fx->actor, x), 0);
    pump(fx, 200);
    assert_int_equal(acks_of(fx, x), 1);
    assert_int_equal(fx->seen.nacks, 0);
}

int main(void)
{
    sylog_open("test_actor_durable", SYLOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handled_acks_once, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_while_held_acks_twice,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_while_held_nacks,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ack_of_lost_session_not_sent,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lost_session_delivery_adopted,
                                        fx_setup, fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    sylog_close();
    return rc;
}
