/*  test_frontdoor.c -- sy-frontdoor on the real broker (docs/CHAT.md,
 *  "The front door").
 *
 *  The real sy-broker and sy-frontdoor run as processes.  A raw test
 *  client plays the router (it offers `router`, takes each chat.request,
 *  acks it) and, where a test needs one, the worker too: it sends
 *  chat.routed, chat.token and chat.reply durably to `frontdoor` as the
 *  router and sy-inference would.  Clients "alice" and "bob" send
 *  chat.message and chat.sync as syctl chat does; "tgbridge" is a bridge
 *  (named in frontdoor/bridges) whose channel is the service "tgfake".
 *
 *  Covered: the history goes with the next question, per user, trimmed
 *  to frontdoor/history_turns; /new forgets it; an answer reaches its
 *  user once (a second copy is dropped); a reply sent while the client
 *  was away comes with chat.sync; refusals (RATE_LIMITED, TOO_LONG,
 *  BAD_INPUT); a bridge's answers come durably on its service with user,
 *  addr and ref; queued / online notices; tokens relayed.  /status,
 *  /queue and /cancel need the broker's place and cancel queries: those
 *  tests skip (saying so) on a broker that does not know them yet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hmp.h"
#include "schemas/syerr.h"

#define WAIT_MS 5000

static int slow_ms(int ms)
{
    return ms * harness_slow();
}

/* Settings of every test: the store in the test dir, a bridge, no rate
   limit in the way (the rate test sets its own). */
static int setup(void **state)
{
    if (harness_setup(state, "frontdoor") != 0)
        return -1;
    harness_t *h = *state;
    char dir[HARNESS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/fdstore", harness_dir(h));
    harness_set(h, "frontdoor/store", dir);
    harness_set(h, "frontdoor/bridges", "tgbridge, otherbridge");
    harness_set(h, "frontdoor/rate", "6000");
    harness_set(h, "frontdoor/burst", "100");
    harness_set(h, "store/sync", "none");
    harness_set(h, "store/retry_backoff", "100ms");
    /* raw test clients ping only while they receive: a long wait on one
       must not expire the others */
    harness_set(h, "broker/liveness", "20s");
    return 0;
}

/* Starts the broker, the fake router and sy-frontdoor. */
static hclient_t *start_all(harness_t *h)
{
    harness_broker_start(h);
    static const char *const svc[] = { "router", NULL };
    hclient_t *router = harness_client(h, "router", svc, 16);
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "sy-frontdoor", bin, sizeof bin);
    char *const argv[] = { bin, "--config", (char *) harness_config(h),
                           "--endpoint", (char *) harness_endpoint(h), NULL };
    harness_spawn(h, "frontdoor", argv);
    if (!harness_wait_actor(h, "frontdoor", true, slow_ms(WAIT_MS)))
        fail_msg("sy-frontdoor did not register within %d ms", slow_ms(WAIT_MS));
    return router;
}

/* ------------------------------------------------------------ sending */

/* chat.message {text[, attachments (raw msgpack)][, channel, user, addr,
   ref]} to frontdoor; durable when asked. */
typedef struct {
    const char    *text;
    const uint8_t *attach;      /* packed attachments value, or NULL */
    size_t         attach_len;
    const char    *channel, *user, *addr, *ref;
    bool           durable;
} msg_t;

static void send_msg(hclient_t *c, const msg_t *m, uint8_t id[16])
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    uint32_t n = 1 + (m->attach != NULL) + (m->channel != NULL)
               + (m->user != NULL) + (m->addr != NULL) + (m->ref != NULL);
    msgpack_pack_map(&b.pk, n);
    hmp_str(&b, "text");
    hmp_str(&b, m->text);
    if (m->attach) {
        hmp_str(&b, "attachments");
        msgpack_sbuffer_write(&b.sb, (const char *) m->attach, m->attach_len);
    }
    const char *keys[] = { "channel", "user", "addr", "ref" };
    const char *vals[] = { m->channel, m->user, m->addr, m->ref };
    for (int i = 0; i < 4; i++)
        if (vals[i]) {
            hmp_str(&b, keys[i]);
            hmp_str(&b, vals[i]);
        }
    hsend_t s = { .type = "chat.message", .to = "frontdoor",
                  .durable = m->durable };
    assert_int_equal(hclient_send(c, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, id), 0);
    hmp_buf_clear(&b);
}

static void say(hclient_t *c, const char *text)
{
    msg_t m = { .text = text };
    send_msg(c, &m, NULL);
}

static void send_sync(hclient_t *c, uint64_t after)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1);
    hmp_str(&b, "after");
    msgpack_pack_uint64(&b.pk, after);
    hsend_t s = { .type = "chat.sync", .to = "frontdoor" };
    assert_int_equal(hclient_send(c, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, NULL), 0);
    hmp_buf_clear(&b);
}

/* ------------------------------------------------------------ router */

/* The job id of a chat.* body. */
static void body_job(const hmsg_t *m, uint8_t job[16])
{
    mpval_t v;
    if (hmp_get(m->body, m->body_len, "job", &v) != 0 || v.kind != MP_BIN
        || v.len != 16) {
        hmsg_print("no job in: ", m);
        fail_msg("%s without a job id", m->hdr.type);
    }
    memcpy(job, v.ptr, 16);
}

/* The fake router takes the next chat.request (acking it), checks its
   user, channel and text; the job id into job. */
static void expect_request(hclient_t *router, hmsg_t *m, const char *user,
                           const char *channel, const char *text,
                           uint8_t job[16])
{
    int rc = hclient_recv_type(router, "chat.request", m, slow_ms(WAIT_MS), NULL);
    if (rc)
        fail_msg("no chat.request for \"%s\" within %d ms: %s", text,
                 slow_ms(WAIT_MS), syerr_name(rc));
    if (!hdur_is_delivery(m)) {
        hmsg_print("not durable: ", m);
        fail_msg("chat.request not delivered durably");
    }
    assert_int_equal(hclient_ack(router, m->hdr.id), 0);
    char got[256];
    assert_true(hmp_get_str(m->body, m->body_len, "text", got, sizeof got));
    assert_string_equal(got, text);
    assert_true(hmp_get_str(m->body, m->body_len, "user", got, sizeof got));
    assert_string_equal(got, user);
    assert_true(hmp_get_str(m->body, m->body_len, "channel", got, sizeof got));
    assert_string_equal(got, channel);
    bool waiting = false;
    assert_true(hmp_get_bool(m->body, m->body_len, "waiting", &waiting));
    assert_true(waiting);
    body_job(m, job);
    char hex[33], key[40];
    envelope_id_hex(job, hex);
    snprintf(key, sizeof key, "job:%s", hex);
    assert_true(m->hdr.present & ENV_HAS_KEY);
    assert_string_equal(m->hdr.key, key);
}

/* Sends a durable message of type to frontdoor as the router or a worker
   would (key may be NULL) and waits for its receipt, which must be ok. */
static void to_frontdoor(hclient_t *c, const char *type, const hmp_buf_t *b,
                         const char *key)
{
    hsend_t s = { .type = type, .to = "frontdoor", .durable = true,
                  .key = key };
    uint8_t id[16];
    assert_int_equal(hclient_send(c, &s, (const uint8_t *) b->sb.data,
                                  b->sb.size, id), 0);
    hmsg_t r;
    int rc = hclient_recv_corr(c, id, &r, slow_ms(WAIT_MS));
    if (rc)
        fail_msg("no receipt for a durable %s within %d ms", type,
                 slow_ms(WAIT_MS));
    hdur_receipt_t rr;
    if (!hdur_receipt_parse(&r, &rr) || !rr.ok) {
        hmsg_print("receipt: ", &r);
        fail_msg("durable %s to frontdoor refused", type);
    }
    hmsg_clear(&r);
}

static void pack_job(hmp_buf_t *b, const uint8_t job[16])
{
    hmp_str(b, "job");
    msgpack_pack_bin(&b->pk, 16);
    msgpack_pack_bin_body(&b->pk, job, 16);
}

/* The worker's chat.reply {job, text[, error]}; key NULL: none. */
static void worker_reply(hclient_t *c, const uint8_t job[16], const char *text,
                         const char *error, const char *key)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, error ? 3 : 2);
    pack_job(&b, job);
    hmp_str(&b, "text");
    hmp_str(&b, text);
    if (error) {
        hmp_str(&b, "error");
        hmp_str(&b, error);
    }
    to_frontdoor(c, "chat.reply", &b, key);
    hmp_buf_clear(&b);
}

/* The router's chat.routed for a heavy job. */
static void router_routed(hclient_t *c, const uint8_t job[16], bool online,
                          uint64_t place, const uint8_t *queued_id)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 6 + (queued_id != NULL));
    pack_job(&b, job);
    hmp_str(&b, "class");
    hmp_str(&b, "HEAVY");
    hmp_str(&b, "why");
    hmp_str(&b, "test");
    hmp_str(&b, "service");
    hmp_str(&b, "inference");
    hmp_str(&b, "online");
    if (online)
        msgpack_pack_true(&b.pk);
    else
        msgpack_pack_false(&b.pk);
    hmp_str(&b, "place");
    msgpack_pack_uint64(&b.pk, place);
    if (queued_id) {
        hmp_str(&b, "queued_id");
        msgpack_pack_bin(&b.pk, 16);
        msgpack_pack_bin_body(&b.pk, queued_id, 16);
    }
    to_frontdoor(c, "chat.routed", &b, NULL);
    hmp_buf_clear(&b);
}

/* ------------------------------------------------------------ user side */

/* Receives the next message of type on c; checks text (exact, or a
   substring when contains) and error ("" = must be absent, NULL = not
   checked). */
static void expect_user(hclient_t *c, const char *type, hmsg_t *m,
                        const char *text, bool contains, const char *error)
{
    int rc = hclient_recv_type(c, type, m, slow_ms(WAIT_MS), NULL);
    if (rc)
        fail_msg("%s: no %s within %d ms (%s)", hclient_name(c), type,
                 slow_ms(WAIT_MS), syerr_name(rc));
    char got[2048] = "";
    assert_true(hmp_get_str(m->body, m->body_len, "text", got, sizeof got));
    bool match = contains ? strstr(got, text) != NULL : !strcmp(got, text);
    if (!match)
        fail_msg("%s: %s text \"%s\", want %s\"%s\"", hclient_name(c), type,
                 got, contains ? "one containing " : "", text);
    char err[64] = "";
    bool has_err = hmp_get_str(m->body, m->body_len, "error", err, sizeof err);
    if (error && !*error && has_err)
        fail_msg("%s: unexpected error %s", hclient_name(c), err);
    if (error && *error) {
        if (!has_err)
            fail_msg("%s: %s without error, want %s", hclient_name(c), type,
                     error);
        assert_string_equal(err, error);
    }
    char user[130] = "";
    assert_true(hmp_get_str(m->body, m->body_len, "user", user, sizeof user));
}

static uint64_t body_seq(const hmsg_t *m)
{
    uint64_t seq = 0;
    assert_true(hmp_get_uint(m->body, m->body_len, "seq", &seq));
    return seq;
}

/* The reply of a direct client: a chat.reply with seq. */
static uint64_t expect_reply(hclient_t *c, const char *text, bool contains,
                             const char *error)
{
    hmsg_t m;
    expect_user(c, "chat.reply", &m, text, contains, error);
    uint64_t seq = body_seq(&m);
    hmsg_clear(&m);
    return seq;
}

/* Nothing of type comes to c within ms. */
static void expect_none(hclient_t *c, const char *type, int ms)
{
    hmsg_t m;
    if (hclient_recv_type(c, type, &m, ms, NULL) == 0) {
        hmsg_print("unexpected: ", &m);
        fail_msg("%s got a %s it should not have", hclient_name(c), type);
    }
}

/* The request's history is exactly the n (role, text) pairs. */
static void expect_history(const hmsg_t *req, int n, const char *const *rt)
{
    int got = hmp_count(req->body, req->body_len, "history");
    if (n == 0 && got < 0)
        return;                 /* absent: none */
    if (got != n) {
        char text[2048];
        hmp_to_text(req->body, req->body_len, text, sizeof text);
        fail_msg("history of %d turns, want %d: %s", got, n, text);
    }
    for (int i = 0; i < n; i++) {
        char path[40], v[256];
        snprintf(path, sizeof path, "history.%d.role", i);
        assert_true(hmp_get_str(req->body, req->body_len, path, v, sizeof v));
        assert_string_equal(v, rt[2 * i]);
        snprintf(path, sizeof path, "history.%d.text", i);
        assert_true(hmp_get_str(req->body, req->body_len, path, v, sizeof v));
        assert_string_equal(v, rt[2 * i + 1]);
    }
}

/* One question answered: asked by c, taken by the router, answered. */
static void round_trip(hclient_t *c, hclient_t *router, const char *q,
                       const char *a, int nh, const char *const *hist)
{
    hmsg_t req;
    uint8_t job[16];
    say(c, q);
    expect_request(router, &req, hclient_name(c), "zmq", q, job);
    expect_history(&req, nh, hist);
    hmsg_clear(&req);
    worker_reply(router, job, a, NULL, NULL);
    expect_reply(c, a, false, "");
}

static bool queue_empty(const hdur_counts_t *k, void *arg)
{
    (void) arg;
    return hdur_ready(k) == 0 && k->inflight == 0 && k->delayed == 0;
}

/* Every durable message to frontdoor was acked in the end. */
static void expect_frontdoor_drained(harness_t *h)
{
    hclient_t *admin = harness_client(h, "fd-admin", NULL, 1);
    hdur_counts_t k;
    if (!hdur_wait_counts(admin, "frontdoor", queue_empty, NULL,
                          slow_ms(WAIT_MS), &k))
        fail_msg("frontdoor queue not drained: ready %llu inflight %llu "
                 "delayed %llu dead %llu",
                 (unsigned long long) hdur_ready(&k),
                 (unsigned long long) k.inflight,
                 (unsigned long long) k.delayed, (unsigned long long) k.dead);
    assert_int_equal(k.dead, 0);
    harness_client_close(h, admin);
}

/* ------------------------------------------------------------ tests */

static void test_history_goes_with_next_question(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    round_trip(alice, router, "first question", "first answer", 0, NULL);
    static const char *const h1[] = { "user", "first question",
                                      "assistant", "first answer" };
    round_trip(alice, router, "second question", "second answer", 2, h1);
    static const char *const h2[] = { "user", "first question",
                                      "assistant", "first answer",
                                      "user", "second question",
                                      "assistant", "second answer" };
    round_trip(alice, router, "third question", "third answer", 4, h2);
    expect_frontdoor_drained(h);
    harness_pass(h);
}

static void test_two_users_apart(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hclient_t *bob = harness_client(h, "bob", NULL, 1);
    round_trip(alice, router, "alice asks", "alice is told", 0, NULL);
    round_trip(bob, router, "bob asks", "bob is told", 0, NULL);
    static const char *const ha[] = { "user", "alice asks",
                                      "assistant", "alice is told" };
    static const char *const hb[] = { "user", "bob asks",
                                      "assistant", "bob is told" };
    round_trip(bob, router, "bob again", "bob told again", 2, hb);
    round_trip(alice, router, "alice again", "alice told again", 2, ha);
    harness_pass(h);
}

static void test_history_trimmed_to_turns(void **state)
{
    harness_t *h = *state;
    harness_set(h, "frontdoor/history_turns", "3");
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    round_trip(alice, router, "q1", "a1", 0, NULL);
    static const char *const h1[] = { "user", "q1", "assistant", "a1" };
    round_trip(alice, router, "q2", "a2", 2, h1);
    static const char *const h2[] = { "assistant", "a1", "user", "q2",
                                      "assistant", "a2" };
    round_trip(alice, router, "q3", "a3", 3, h2);
    harness_pass(h);
}

static void test_new_forgets_history(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    round_trip(alice, router, "before", "answer before", 0, NULL);
    say(alice, "/new");
    expect_reply(alice, "new conversation", true, "");
    round_trip(alice, router, "after", "answer after", 0, NULL);
    /* anything else starting with / lists the commands */
    say(alice, "/what");
    expect_reply(alice, "/cancel", true, "");
    harness_pass(h);
}

static void test_reply_reaches_its_user_once(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hclient_t *bob = harness_client(h, "bob", NULL, 1);
    hmsg_t req;
    uint8_t job[16];
    say(alice, "only for alice");
    expect_request(router, &req, "alice", "zmq", "only for alice", job);
    hmsg_clear(&req);
    worker_reply(router, job, "the answer", NULL, NULL);
    hmsg_t m;
    expect_user(alice, "chat.reply", &m, "the answer", false, "");
    uint8_t got[16];
    body_job(&m, got);
    assert_memory_equal(got, job, 16);
    char user[64];
    assert_true(hmp_get_str(m.body, m.body_len, "user", user, sizeof user));
    assert_string_equal(user, "alice");
    assert_string_equal(m.hdr.to, "@alice");
    hmsg_clear(&m);
    /* the same job answered again (another key: the broker's dedup does
       not hide it): acked and dropped */
    worker_reply(router, job, "the answer, again", NULL, "second-copy");
    expect_none(alice, "chat.reply", slow_ms(1000));
    expect_none(bob, "chat.reply", 200);
    expect_frontdoor_drained(h);
    /* and it did not land in the history twice */
    static const char *const h1[] = { "user", "only for alice",
                                      "assistant", "the answer" };
    round_trip(alice, router, "next", "next answer", 2, h1);
    harness_pass(h);
}

static void test_outbox_replayed_after_reconnect(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    round_trip(alice, router, "q1", "a1", 0, NULL);
    hmsg_t req;
    uint8_t job[16];
    say(alice, "q2");
    expect_request(router, &req, "alice", "zmq", "q2", job);
    hmsg_clear(&req);
    /* alice goes away; the answer comes meanwhile */
    harness_client_close(h, alice);
    assert_true(harness_wait_actor(h, "alice", false, slow_ms(WAIT_MS)));
    worker_reply(router, job, "a2 while away", NULL, NULL);
    expect_frontdoor_drained(h);
    alice = harness_client(h, "alice", NULL, 1);
    expect_none(alice, "chat.reply", 300);
    send_sync(alice, 1);
    hmsg_t m;
    expect_user(alice, "chat.reply", &m, "a2 while away", false, "");
    assert_int_equal(body_seq(&m), 2);
    hmsg_clear(&m);
    expect_none(alice, "chat.reply", 300);
    /* everything again, in order */
    send_sync(alice, 0);
    assert_int_equal(expect_reply(alice, "a1", false, ""), 1);
    assert_int_equal(expect_reply(alice, "a2 while away", false, ""), 2);
    send_sync(alice, 2);
    expect_none(alice, "chat.reply", 300);
    harness_pass(h);
}

static void test_rate_limited(void **state)
{
    harness_t *h = *state;
    harness_set(h, "frontdoor/rate", "1");
    harness_set(h, "frontdoor/burst", "2");
    start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hclient_t *bob = harness_client(h, "bob", NULL, 1);
    say(alice, "/help");
    say(alice, "/help");
    say(alice, "/help");
    expect_reply(alice, "/status", true, "");
    expect_reply(alice, "/status", true, "");
    expect_reply(alice, "Too many", true, "RATE_LIMITED");
    /* bob has a bucket of his own */
    say(bob, "/help");
    expect_reply(bob, "/status", true, "");
    harness_pass(h);
}

static void test_refusals_too_long_bad_input(void **state)
{
    harness_t *h = *state;
    harness_set(h, "frontdoor/max_text", "100");
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    char text[102];
    memset(text, 'x', 101);
    text[101] = 0;
    say(alice, text);
    expect_reply(alice, "limit is 100", true, "TOO_LONG");
    text[100] = 0;              /* exactly the limit: accepted */
    hmsg_t req;
    uint8_t job[16];
    say(alice, text);
    expect_request(router, &req, "alice", "zmq", text, job);
    hmsg_clear(&req);

    /* attachments: an array of maps with a string kind */
    static const uint8_t not_maps[] = { 0x91, 0x01 };                 /* [1] */
    static const uint8_t no_kind[] = { 0x91, 0x81, 0xa4, 'm', 'i', 'm', 'e',
                                       0xa1, 'x' };                  /* [{mime:x}] */
    static const uint8_t int_kind[] = { 0x91, 0x81, 0xa4, 'k', 'i', 'n', 'd',
                                        0x07 };                      /* [{kind:7}] */
    const struct { const uint8_t *p; size_t n; } bad[] = {
        { not_maps, sizeof not_maps }, { no_kind, sizeof no_kind },
        { int_kind, sizeof int_kind },
    };
    for (size_t i = 0; i < 3; i++) {
        msg_t m = { .text = "look at this", .attach = bad[i].p,
                    .attach_len = bad[i].n };
        send_msg(alice, &m, NULL);
        expect_reply(alice, "attachments", true, "BAD_INPUT");
    }
    static const uint8_t good[] = { 0x91, 0x82, 0xa4, 'k', 'i', 'n', 'd',
                                    0xa5, 'p', 'h', 'o', 't', 'o',
                                    0xa7, 'f', 'i', 'l', 'e', '_', 'i', 'd',
                                    0xa2, 'f', '1' };
    msg_t m = { .text = "a photo", .attach = good, .attach_len = sizeof good };
    send_msg(alice, &m, NULL);
    expect_request(router, &req, "alice", "zmq", "a photo", job);
    char kind[16];
    assert_true(hmp_get_str(req.body, req.body_len, "attachments.0.kind", kind,
                            sizeof kind));
    assert_string_equal(kind, "photo");
    hmsg_clear(&req);
    /* nothing refused reached the router */
    expect_none(router, "chat.request", 300);
    harness_pass(h);
}

static void test_bridge_replies_durable_on_its_service(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    static const char *const svc[] = { "tgfake", NULL };
    hclient_t *tg = harness_client(h, "tgbridge", svc, 4);
    msg_t in = { .text = "hello from telegram", .channel = "tgfake",
                 .user = "u42", .addr = "chat-7", .ref = "m-1",
                 .durable = true };
    uint8_t id[16];
    send_msg(tg, &in, id);
    hmsg_t r;
    assert_int_equal(hclient_recv_corr(tg, id, &r, slow_ms(WAIT_MS)), 0);
    hdur_receipt_t rr;
    assert_true(hdur_receipt_parse(&r, &rr) && rr.ok);
    hmsg_clear(&r);
    hmsg_t req;
    uint8_t job[16];
    expect_request(router, &req, "u42", "tgfake", "hello from telegram", job);
    hmsg_clear(&req);
    /* the job is named by the bridge's message: a second delivery of it
       (lost ack, broker restart) finds the job and asks nothing twice */
    assert_memory_equal(job, id, 16);
    worker_reply(router, job, "hello back", NULL, NULL);
    hmsg_t m;
    int rc = hclient_recv_type(tg, "chat.reply", &m, slow_ms(WAIT_MS), NULL);
    if (rc)
        fail_msg("the bridge got no chat.reply: %s", syerr_name(rc));
    if (!hdur_is_delivery(&m))
        fail_msg("the reply to a bridge is not a durable delivery");
    assert_string_equal(m.hdr.to, "tgfake");
    char v[64];
    assert_true(hmp_get_str(m.body, m.body_len, "text", v, sizeof v));
    assert_string_equal(v, "hello back");
    assert_true(hmp_get_str(m.body, m.body_len, "user", v, sizeof v));
    assert_string_equal(v, "u42");
    assert_true(hmp_get_str(m.body, m.body_len, "addr", v, sizeof v));
    assert_string_equal(v, "chat-7");
    assert_true(hmp_get_str(m.body, m.body_len, "ref", v, sizeof v));
    assert_string_equal(v, "m-1");
    uint64_t seq;
    assert_false(hmp_get_uint(m.body, m.body_len, "seq", &seq));
    assert_int_equal(hclient_ack(tg, m.hdr.id), 0);
    hmsg_clear(&m);
    expect_frontdoor_drained(h);

    /* the conversation of (tgfake, u42) has it */
    send_msg(tg, &(msg_t){ .text = "and then?", .channel = "tgfake",
                           .user = "u42", .durable = true }, NULL);
    expect_request(router, &req, "u42", "tgfake", "and then?", job);
    static const char *const h1[] = { "user", "hello from telegram",
                                      "assistant", "hello back" };
    expect_history(&req, 2, h1);
    hmsg_clear(&req);

    /* a bridge that does not say channel and user is refused */
    send_msg(tg, &(msg_t){ .text = "who am I" }, NULL);
    rc = hclient_recv_type(tg, "chat.reply", &m, slow_ms(WAIT_MS), NULL);
    assert_int_equal(rc, 0);
    assert_true(hmp_get_str(m.body, m.body_len, "error", v, sizeof v));
    assert_string_equal(v, "BAD_INPUT");
    hmsg_clear(&m);
    /* a client not in frontdoor/bridges is itself, whatever it says */
    hclient_t *eve = harness_client(h, "eve", NULL, 1);
    send_msg(eve, &(msg_t){ .text = "I am u42", .channel = "tgfake",
                            .user = "u42" }, NULL);
    expect_request(router, &req, "eve", "zmq", "I am u42", job);
    hmsg_clear(&req);
    harness_pass(h);
}

static void test_notices_and_tokens(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    hmsg_t req, m;
    uint8_t job[16], qid[16];
    say(alice, "a heavy one");
    expect_request(router, &req, "alice", "zmq", "a heavy one", job);
    hmsg_clear(&req);
    memset(qid, 0x42, sizeof qid);
    router_routed(router, job, false, 3, qid);
    expect_user(alice, "chat.notice", &m, "offline", true, NULL);
    char kind[16];
    assert_true(hmp_get_str(m.body, m.body_len, "kind", kind, sizeof kind));
    assert_string_equal(kind, "queued");
    uint64_t place = 0;
    assert_true(hmp_get_uint(m.body, m.body_len, "place", &place));
    assert_int_equal(place, 3);
    char text[256];
    assert_true(hmp_get_str(m.body, m.body_len, "text", text, sizeof text));
    assert_non_null(strstr(text, "place 3"));
    hmsg_clear(&m);

    /* a worker for inference joins: alice hears that the laptop is back */
    static const char *const inf[] = { "inference", NULL };
    harness_client(h, "inference-t", inf, 1);
    expect_user(alice, "chat.notice", &m, "back", true, NULL);
    assert_true(hmp_get_str(m.body, m.body_len, "kind", kind, sizeof kind));
    assert_string_equal(kind, "online");
    hmsg_clear(&m);

    /* tokens are relayed, not kept; a token of an unknown job is dropped */
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    pack_job(&b, job);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, 0);
    hmp_str(&b, "text");
    hmp_str(&b, "Hel");
    hsend_t s = { .type = "chat.token", .to = "frontdoor" };
    assert_int_equal(hclient_send(router, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, NULL), 0);
    hmp_buf_clear(&b);
    expect_user(alice, "chat.token", &m, "Hel", false, NULL);
    assert_true(hmp_get_uint(m.body, m.body_len, "seq", &place));
    assert_int_equal(place, 0);         /* the piece's own seq */
    hmsg_clear(&m);
    worker_reply(router, job, "Hello", NULL, NULL);
    expect_reply(alice, "Hello", false, "");
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    pack_job(&b, job);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, 1);
    hmp_str(&b, "text");
    hmp_str(&b, "late");
    assert_int_equal(hclient_send(router, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, NULL), 0);
    hmp_buf_clear(&b);
    expect_none(alice, "chat.token", slow_ms(500));
    harness_pass(h);
}

/* ------------------------------------------------------------ broker queries */

/* True if the broker answers sy.query {what: place}; false (and the test
   is skipped, saying why) if it does not know the query yet. */
static bool broker_has_place(harness_t *h)
{
    hclient_t *c = harness_client(h, "place-probe", NULL, 1);
    hquery_t q = { .what = "place", .service = "inference" };
    hmsg_t m;
    int rc = hclient_query(c, &q, &m, slow_ms(WAIT_MS));
    bool ok = rc == 0 && !strcmp(m.hdr.type, "sy.answer");
    if (rc == 0)
        hmsg_clear(&m);
    harness_client_close(h, c);
    if (!ok) {
        print_message("broker does not answer sy.query {what: place} yet: "
                      "skipped\n");
        harness_pass(h);
        skip();
    }
    return ok;
}

/* The fake router queues job durably on inference (reply_to frontdoor),
   as sy-router does; the stored id into qid. */
static void queue_on_inference(hclient_t *router, const uint8_t job[16],
                               uint8_t qid[16])
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 2);
    pack_job(&b, job);
    hmp_str(&b, "messages");
    msgpack_pack_array(&b.pk, 0);
    hsend_t s = { .type = "infer.request", .to = "inference", .durable = true,
                  .reply_to = "frontdoor" };
    uint8_t id[16];
    assert_int_equal(hclient_send(router, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, id), 0);
    hmp_buf_clear(&b);
    hmsg_t r;
    assert_int_equal(hclient_recv_corr(router, id, &r, slow_ms(WAIT_MS)), 0);
    hdur_receipt_t rr;
    assert_true(hdur_receipt_parse(&r, &rr) && rr.ok && rr.has_id);
    memcpy(qid, rr.id, 16);
    hmsg_clear(&r);
}

/* A question of c routed as a queued heavy job; its job and queued id. */
static void ask_queued(hclient_t *c, hclient_t *router, const char *q,
                       uint8_t job[16], uint8_t qid[16], uint64_t place)
{
    hmsg_t req, m;
    say(c, q);
    expect_request(router, &req, hclient_name(c), "zmq", q, job);
    hmsg_clear(&req);
    queue_on_inference(router, job, qid);
    router_routed(router, job, false, place, qid);
    expect_user(c, "chat.notice", &m, "offline", true, NULL);
    hmsg_clear(&m);
}

static void test_status_queue_cancel(void **state)
{
    harness_t *h = *state;
    hclient_t *router = start_all(h);
    if (!broker_has_place(h))
        return;
    hclient_t *alice = harness_client(h, "alice", NULL, 1);
    say(alice, "/status");
    expect_reply(alice, "laptop online: no (0 workers), queued: 0", false, "");
    uint8_t j1[16], q1[16], j2[16], q2[16];
    ask_queued(alice, router, "first heavy", j1, q1, 1);
    ask_queued(alice, router, "second heavy", j2, q2, 2);
    say(alice, "/status");
    expect_reply(alice, "laptop online: no (0 workers), queued: 2", false, "");
    say(alice, "/queue");
    hmsg_t m;
    expect_user(alice, "chat.reply", &m, "first heavy", true, "");
    char text[1024];
    assert_true(hmp_get_str(m.body, m.body_len, "text", text, sizeof text));
    char *a = strstr(text, "first heavy"), *b = strstr(text, "second heavy");
    if (!a || !b || a > b || !strstr(a, "place 1") || !strstr(b, "place 2"))
        fail_msg("/queue answered: %s", text);
    hmsg_clear(&m);

    /* /cancel takes the newest: the second */
    say(alice, "/cancel");
    expect_user(alice, "chat.reply", &m, "second heavy", true, "CANCELLED");
    uint8_t got[16];
    body_job(&m, got);
    assert_memory_equal(got, j2, 16);
    hmsg_clear(&m);
    say(alice, "/status");
    expect_reply(alice, "queued: 1", true, "");
    /* the cancelled job is over: a late answer is dropped */
    worker_reply(router, j2, "too late", NULL, NULL);
    expect_none(alice, "chat.reply", slow_ms(500));
    say(alice, "/queue");
    expect_user(alice, "chat.reply", &m, "first heavy", true, "");
    assert_true(hmp_get_str(m.body, m.body_len, "text", text, sizeof text));
    assert_null(strstr(text, "second heavy"));
    hmsg_clear(&m);

    /* a job being generated is not cancelled */
    static const char *const inf[] = { "inference", NULL };
    hclient_t *worker = harness_client(h, "inference-t", inf, 1);
    hmsg_t job;
    assert_int_equal(hclient_recv_type(worker, "infer.request", &job,
                                       slow_ms(WAIT_MS), NULL), 0);
    say(alice, "/status");
    expect_reply(alice, "laptop online: yes (1 worker)", true, "");
    say(alice, "/cancel");
    expect_reply(alice, "already running", true, "");
    worker_reply(worker, j1, "first answer", NULL, NULL);
    expect_reply(alice, "first answer", false, "");
    assert_int_equal(hclient_ack(worker, job.hdr.id), 0);
    hmsg_clear(&job);
    say(alice, "/queue");
    expect_reply(alice, "no pending jobs", true, "");
    say(alice, "/cancel");
    expect_reply(alice, "Nothing to cancel", true, "");
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_history_goes_with_next_question, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_two_users_apart, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_history_trimmed_to_turns, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_new_forgets_history, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_reply_reaches_its_user_once, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_replayed_after_reconnect, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_refusals_too_long_bad_input, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_replies_durable_on_its_service, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_notices_and_tokens, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_status_queue_cancel, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
