/*  test_queues.c -- unit tests of broker/queues.c: the answers of the
 *  place and cancel queries, built from a store in a temporary directory
 *  and read back with the bounded reader (schemas/mpread.h), as a peer
 *  would read them.
 *
 *  place: the counts, the states ready / delayed / inflight / dead / gone
 *  and the place in delivery order; an absent store (a broker without
 *  one) answers an empty queue.  cancel: a ready and a delayed message
 *  are removed, inflight / dead / gone are not, the owner callback sees
 *  the stored header and its refusal removes nothing and answers nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/queues.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000ULL

typedef struct {
    char     dir[64];
    store_t *store;
    msgpack_sbuffer sb;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tutil_tmpdir(fx->dir, sizeof fx->dir, "queues"), 0);
    char err[256];
    store_opts_t o = { .dir = fx->dir, .sync = STORE_SYNC_NONE };
    assert_int_equal(store_open(&o, &fx->store, err, sizeof err), 0);
    msgpack_sbuffer_init(&fx->sb);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    store_destroy(&fx->store);
    msgpack_sbuffer_destroy(&fx->sb);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void mkid(uint8_t id[16], uint32_t seq)
{
    memset(id, 0, 16);
    uint64_t ms = T0;
    for (int i = 5; i >= 0; i--) { id[i] = (uint8_t) ms; ms >>= 8; }
    id[15] = (uint8_t) seq;
    id[14] = (uint8_t) (seq >> 8);
}

/* Stores a message of svc with a real header: from, and reply_to when
   not NULL. */
static void put(fx_t *fx, const char *svc, uint8_t prio, uint32_t seq,
                const char *from, const char *reply_to)
{
    envelope_t env;
    envelope_init(&env);
    mkid(env.id, seq);
    assert_int_equal(envelope_set_type(&env, "echo.request"), 0);
    assert_int_equal(envelope_set_to(&env, svc), 0);
    assert_int_equal(envelope_set_from(&env, from), 0);
    if (reply_to)
        assert_int_equal(envelope_set_reply_to(&env, reply_to), 0);
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(&env, hdr, sizeof hdr);
    assert_true(hlen > 0);
    store_put_t p = { .service = svc, .prio = prio, .id = env.id,
                      .header = hdr, .header_len = (size_t) hlen,
                      .body = (const uint8_t *) "B", .body_len = 1 };
    store_txn_t *x;
    assert_int_equal(store_txn_begin(fx->store, T0, &x), 0);
    assert_int_equal(store_put(x, &p, NULL), 0);
    assert_int_equal(store_txn_commit(&x), 0);
}

/* The answer in fx->sb: what, and the data map (reader at its pairs). */
typedef struct {
    mpread_t r, at;
    mpval_t  map, data;
} answer_t;

static void answer_read(fx_t *fx, const char *what, answer_t *a)
{
    mpval_t v;
    mpread_init(&a->r, (const uint8_t *) fx->sb.data, fx->sb.size);
    assert_int_equal(mpread_check((const uint8_t *) fx->sb.data, fx->sb.size, 8), 0);
    assert_int_equal(mpread_next(&a->r, &a->map), 0);
    assert_int_equal(a->map.kind, MP_MAP);
    assert_int_equal(a->map.len, 2);
    assert_int_equal(mpread_map_find(&a->r, &a->map, "what", &v, NULL), 0);
    assert_true(mpval_str_eq(&v, what));
    assert_int_equal(mpread_map_find(&a->r, &a->map, "data", &a->data, &a->at), 0);
    assert_int_equal(a->data.kind, MP_MAP);
}

/* data[key] as an unsigned, or -1 when absent. */
static long long answer_uint(const answer_t *a, const char *key)
{
    mpval_t v;
    uint64_t u;
    if (mpread_map_find(&a->at, &a->data, key, &v, NULL) != 0)
        return -1;
    assert_true(mpval_as_uint(&v, &u));
    return (long long) u;
}

/* data[key] as a string into out, "" when absent. */
static const char *answer_str(const answer_t *a, const char *key, char *out, size_t cap)
{
    mpval_t v;
    out[0] = '\0';
    if (mpread_map_find(&a->at, &a->data, key, &v, NULL) == 0) {
        assert_int_equal(v.kind, MP_STR);
        assert_true(v.len < cap);
        memcpy(out, v.ptr, v.len);
        out[v.len] = '\0';
    }
    return out;
}

/* place of seq (0: no id) on svc; the answer is read into a. */
static void place(fx_t *fx, const char *svc, uint32_t seq, uint64_t workers, answer_t *a)
{
    uint8_t id[16];
    mkid(id, seq);
    char err[128];
    msgpack_sbuffer_clear(&fx->sb);
    assert_int_equal(queues_place(fx->store, svc, seq ? id : NULL, workers, &fx->sb,
                                  err, sizeof err), 0);
    answer_read(fx, "place", a);
}

/* ------------------------------------------------------------ place */

static void test_place(void **state)
{
    fx_t *fx = *state;
    answer_t a;
    char buf[64];

    /* an empty (never seen) queue */
    place(fx, "inference", 0, 0, &a);
    assert_int_equal(a.data.len, 3);
    assert_string_equal(answer_str(&a, "service", buf, sizeof buf), "inference");
    assert_int_equal(answer_uint(&a, "workers"), 0);
    assert_int_equal(answer_uint(&a, "ready"), 0);
    place(fx, "inference", 7, 2, &a);
    assert_int_equal(answer_uint(&a, "workers"), 2);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "gone");
    assert_int_equal(answer_uint(&a, "place"), -1);

    put(fx, "inference", 1, 1, "router", "frontdoor");
    put(fx, "inference", 1, 2, "router", "frontdoor");
    put(fx, "inference", 0, 3, "router", "frontdoor");     /* jumps ahead */
    put(fx, "inference", 2, 4, "router", "frontdoor");
    place(fx, "inference", 0, 1, &a);
    assert_int_equal(answer_uint(&a, "ready"), 4);
    assert_int_equal(answer_uint(&a, "workers"), 1);
    place(fx, "inference", 3, 1, &a);
    assert_int_equal(a.data.len, 5);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "ready");
    assert_int_equal(answer_uint(&a, "place"), 1);
    place(fx, "inference", 1, 1, &a);
    assert_int_equal(answer_uint(&a, "place"), 2);
    place(fx, "inference", 2, 1, &a);
    assert_int_equal(answer_uint(&a, "place"), 3);
    place(fx, "inference", 4, 1, &a);
    assert_int_equal(answer_uint(&a, "place"), 4);

    /* inflight, delayed, dead: a state and no place */
    store_msg_t m;
    size_t n = 0;
    assert_int_equal(store_take(fx->store, "inference", "w", 1, 1000, T0, &m, &n), 0);
    assert_int_equal(n, 1);
    place(fx, "inference", 3, 1, &a);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "inflight");
    assert_int_equal(answer_uint(&a, "place"), -1);
    assert_int_equal(answer_uint(&a, "ready"), 3);
    place(fx, "inference", 1, 1, &a);
    assert_int_equal(answer_uint(&a, "place"), 1);
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 60000, T0), 0);
    place(fx, "inference", 3, 1, &a);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "delayed");
    assert_int_equal(answer_uint(&a, "ready"), 3);
    store_msg_clear(&m);
    assert_int_equal(store_take(fx->store, "inference", "w", 1, 1000, T0, &m, &n), 0);
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad", false, 0, T0), 0);
    place(fx, "inference", 1, 1, &a);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "dead");
    store_msg_clear(&m);
    /* another queue does not hold it */
    place(fx, "light", 2, 0, &a);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "gone");
    assert_string_equal(answer_str(&a, "service", buf, sizeof buf), "light");

    /* no store: an empty queue; no service: MISSING */
    char err[128];
    uint8_t id[16];
    mkid(id, 2);
    msgpack_sbuffer_clear(&fx->sb);
    assert_int_equal(queues_place(NULL, "inference", id, 3, &fx->sb, err, sizeof err), 0);
    answer_read(fx, "place", &a);
    assert_int_equal(answer_uint(&a, "ready"), 0);
    assert_int_equal(answer_uint(&a, "workers"), 3);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "gone");
    msgpack_sbuffer_clear(&fx->sb);
    assert_int_equal(queues_place(fx->store, NULL, id, 0, &fx->sb, err, sizeof err),
                     SY_EMISSING);
    assert_non_null(strstr(err, "service"));
    assert_int_equal(fx->sb.size, 0);
    assert_false(queues_knows("place"));
    assert_false(queues_knows("cancel"));
}

/* ------------------------------------------------------------ cancel */

typedef struct {
    const char *requester;
    int         calls;
    char        from[ENVELOPE_NAME_MAX + 1];
    char        reply_to[ENVELOPE_NAME_MAX + 2];
} owner_t;

/* The owner rule of the test: the sender only. */
static int may_cancel(const envelope_t *stored, void *arg, char *why, size_t whylen)
{
    owner_t *o = arg;
    o->calls++;
    snprintf(o->from, sizeof o->from, "%s", stored->present & ENV_HAS_FROM ? stored->from : "");
    snprintf(o->reply_to, sizeof o->reply_to, "%s",
             stored->present & ENV_HAS_REPLY_TO ? stored->reply_to : "");
    if (strcmp(o->from, o->requester) == 0)
        return 0;
    snprintf(why, whylen, "%s does not own it", o->requester);
    return SY_EDENIED;
}

/* Cancels seq of svc as requester; the store's answer into a (when 0). */
static int cancel(fx_t *fx, const char *svc, uint32_t seq, owner_t *o, answer_t *a,
                  char *err, size_t errlen)
{
    uint8_t id[16];
    mkid(id, seq);
    msgpack_sbuffer_clear(&fx->sb);
    int rc = queues_cancel(fx->store, svc, id, may_cancel, o, &fx->sb, err, errlen);
    if (rc == 0)
        answer_read(fx, "cancel", a);
    return rc;
}

static bool answer_bool(const answer_t *a, const char *key)
{
    mpval_t v;
    assert_int_equal(mpread_map_find(&a->at, &a->data, key, &v, NULL), 0);
    assert_int_equal(v.kind, MP_BOOL);
    return v.b;
}

static void test_cancel(void **state)
{
    fx_t *fx = *state;
    answer_t a;
    char buf[64], err[160];
    owner_t router = { .requester = "router" }, stranger = { .requester = "mallory" };
    put(fx, "jobs", 1, 1, "router", "frontdoor");
    put(fx, "jobs", 1, 2, "router", NULL);
    put(fx, "jobs", 1, 3, "router", NULL);
    put(fx, "jobs", 1, 4, "router", NULL);

    /* a stranger: DENIED, nothing removed, nothing answered */
    assert_int_equal(cancel(fx, "jobs", 1, &stranger, &a, err, sizeof err), SY_EDENIED);
    assert_non_null(strstr(err, "mallory"));
    assert_int_equal(fx->sb.size, 0);
    assert_int_equal(stranger.calls, 1);
    assert_string_equal(stranger.from, "router");
    assert_string_equal(stranger.reply_to, "frontdoor");
    store_counts_t c;
    assert_int_equal(store_counts(fx->store, "jobs", &c), 0);
    assert_int_equal(c.ready[1], 4);

    /* the owner: ready -> cancelled */
    assert_int_equal(cancel(fx, "jobs", 1, &router, &a, err, sizeof err), 0);
    assert_int_equal(a.data.len, 2);
    assert_true(answer_bool(&a, "cancelled"));
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "ready");
    assert_int_equal(store_counts(fx->store, "jobs", &c), 0);
    assert_int_equal(c.ready[1], 3);
    /* again: gone, and the owner check is not even asked */
    int calls = router.calls;
    assert_int_equal(cancel(fx, "jobs", 1, &router, &a, err, sizeof err), 0);
    assert_false(answer_bool(&a, "cancelled"));
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "gone");
    assert_int_equal(router.calls, calls);
    /* under another service: gone */
    assert_int_equal(cancel(fx, "other", 2, &router, &a, err, sizeof err), 0);
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "gone");

    /* inflight: not cancelled; delayed: cancelled; dead: not */
    store_msg_t m;
    size_t n = 0;
    assert_int_equal(store_take(fx->store, "jobs", "w", 1, 1000, T0, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cancel(fx, "jobs", 2, &router, &a, err, sizeof err), 0);
    assert_false(answer_bool(&a, "cancelled"));
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "inflight");
    assert_int_equal(store_nack(fx->store, m.id, "w", NULL, true, 60000, T0), 0);
    assert_int_equal(cancel(fx, "jobs", 2, &router, &a, err, sizeof err), 0);
    assert_true(answer_bool(&a, "cancelled"));
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "delayed");
    store_msg_clear(&m);
    assert_int_equal(store_take(fx->store, "jobs", "w", 1, 1000, T0, &m, &n), 0);
    assert_int_equal(store_nack(fx->store, m.id, "w", "bad", false, 0, T0), 0);
    assert_int_equal(cancel(fx, "jobs", 3, &router, &a, err, sizeof err), 0);
    assert_false(answer_bool(&a, "cancelled"));
    assert_string_equal(answer_str(&a, "state", buf, sizeof buf), "dead");
    store_msg_clear(&m);
    /* what is left is delivered; the cancelled ones never */
    assert_int_equal(store_take(fx->store, "jobs", "w", 10, 1000, T0 + 120000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m.id[15], 4);
    store_msg_clear(&m);

    /* missing fields */
    uint8_t id[16];
    mkid(id, 4);
    assert_int_equal(queues_cancel(fx->store, NULL, id, may_cancel, &router, &fx->sb, err,
                                   sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "service"));
    assert_int_equal(queues_cancel(fx->store, "jobs", NULL, may_cancel, &router, &fx->sb, err,
                                   sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
