/*  test_registry.c -- the broker's registry without a socket: credit choice,
 *  round-robin among equals, takeover, removal and orphans, waiting-queue
 *  bounds (count, bytes per service, bytes over all), priorities and ttl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/registry.h"
#include "broker/status.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "tests/it/hmp.h"

/* Waiting items are heap ints so that ASan sees any leak or double free. */
static int *item_new(int v)
{
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = v;
    return p;
}

typedef struct {
    int seen[64];
    size_t n;
} collect_t;

static void collect(void *item, void *arg)
{
    collect_t *c = arg;
    assert_true(c->n < 64);
    c->seen[c->n++] = *(int *) item;
    free(item);
}

static registry_peer_t *add(registry_t *reg, const char *rid, const char *name,
                            const char *svc, uint32_t credit, registry_peer_t *displaced[2])
{
    registry_peer_t *p = NULL, *d[2];
    const char *svcs[] = { svc };
    int rc = registry_peer_add(reg, (const uint8_t *) rid, strlen(rid), name,
                               svcs, svc ? 1 : 0, credit, 1000, &p, displaced ? displaced : d);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

static void test_most_credit_wins(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *a = add(reg, "r1", "a", "work", 3, NULL);
    registry_peer_t *b = add(reg, "r2", "b", "work", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");
    assert_non_null(svc);
    assert_int_equal(registry_service_actors(svc), 2);

    /* a: 3 left, b: 1 -> a twice, then equal at 1 */
    assert_ptr_equal(registry_service_pick(svc), a);
    assert_int_equal(registry_peer_use(a), 0);
    assert_ptr_equal(registry_service_pick(svc), a);
    assert_int_equal(registry_peer_use(a), 0);
    registry_peer_t *third = registry_service_pick(svc);
    assert_int_equal(registry_peer_use(third), 0);
    registry_peer_t *fourth = registry_service_pick(svc);
    assert_non_null(fourth);
    assert_ptr_not_equal(third, fourth);
    assert_int_equal(registry_peer_use(fourth), 0);
    /* everyone spent: nothing to pick, and spending more is refused */
    assert_false(registry_service_has_credit(svc));
    assert_null(registry_service_pick(svc));
    assert_int_equal(registry_peer_use(a), SY_EINVAL);

    /* credit back, capped at the hello's credit */
    registry_peer_give(b, 50);
    assert_int_equal(b->credit_left, 1);
    assert_true(registry_service_has_credit(svc));
    assert_ptr_equal(registry_service_pick(svc), b);
    registry_destroy(&reg);
    assert_null(reg);
}

static void test_round_robin_ties(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *p[3];
    p[0] = add(reg, "r1", "a", "work", 100, NULL);
    p[1] = add(reg, "r2", "b", "work", 100, NULL);
    p[2] = add(reg, "r3", "c", "work", 100, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");

    /* picking without spending: equals are taken in turn */
    int count[3] = { 0, 0, 0 };
    registry_peer_t *prev = NULL;
    for (int i = 0; i < 30; i++) {
        registry_peer_t *x = registry_service_pick(svc);
        assert_ptr_not_equal(x, prev);
        prev = x;
        for (int k = 0; k < 3; k++)
            count[k] += x == p[k];
    }
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);

    /* spending: the load stays even */
    for (int i = 0; i < 30; i++)
        assert_int_equal(registry_peer_use(registry_service_pick(svc)), 0);
    assert_int_equal(p[0]->credit_left, 90);
    assert_int_equal(p[1]->credit_left, 90);
    assert_int_equal(p[2]->credit_left, 90);
    registry_destroy(&reg);
}

static void test_takeover_by_name(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *old = add(reg, "r1", "echo", "echo", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "echo");
    assert_int_equal(registry_wait_push(reg, svc, item_new(7), 1, 0, 8), 0);

    registry_peer_t *d[2];
    registry_peer_t *new = add(reg, "r2", "echo", "echo", 1, d);
    assert_ptr_equal(d[0], old);
    assert_null(d[1]);
    assert_ptr_equal(registry_peer_by_name(reg, "echo"), new);
    assert_null(registry_peer_by_rid(reg, (const uint8_t *) "r1", 2));
    assert_ptr_equal(registry_peer_by_rid(reg, (const uint8_t *) "r2", 2), new);

    /* removing the displaced one orphans nothing: the new one offers echo */
    collect_t orphans = { .n = 0 };
    registry_peer_remove(reg, &d[0], collect, &orphans);
    assert_null(d[0]);
    assert_int_equal(orphans.n, 0);
    svc = registry_service_find(reg, "echo");
    assert_non_null(svc);
    assert_int_equal(registry_service_actors(svc), 1);
    assert_int_equal(registry_service_waiting(svc), 1);
    assert_int_equal(registry_peer_count(reg), 1);
    /* and the index entries of the new one are intact */
    assert_ptr_equal(registry_peer_by_name(reg, "echo"), new);
    registry_destroy(&reg);     /* frees the waiting item */
}

static void test_hello_again_same_rid(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *first = add(reg, "rx", "one", "s1", 1, NULL);
    registry_peer_t *other = add(reg, "ry", "two", NULL, 1, NULL);
    registry_peer_t *d[2];
    /* same connection renames itself to a name another one holds */
    registry_peer_t *p = add(reg, "rx", "two", "s2", 1, d);
    assert_ptr_equal(d[0], first);
    assert_ptr_equal(d[1], other);
    registry_peer_remove(reg, &d[0], NULL, NULL);
    registry_peer_remove(reg, &d[1], NULL, NULL);
    assert_int_equal(registry_peer_count(reg), 1);
    assert_ptr_equal(registry_peer_by_rid(reg, (const uint8_t *) "rx", 2), p);
    assert_null(registry_service_find(reg, "s1"));
    assert_non_null(registry_service_find(reg, "s2"));
    registry_destroy(&reg);
}

static void test_remove_orphans(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *a = add(reg, "r1", "a", "work", 1, NULL);
    registry_peer_t *b = add(reg, "r2", "b", "work", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");
    for (int i = 0; i < 3; i++)
        assert_int_equal(registry_wait_push(reg, svc, item_new(i), 1, 0, 8), 0);

    collect_t orphans = { .n = 0 };
    registry_peer_remove(reg, &a, collect, &orphans);
    assert_int_equal(orphans.n, 0);     /* b still offers it */
    registry_peer_remove(reg, &b, collect, &orphans);
    assert_int_equal(orphans.n, 3);     /* last one gone: all handed back */
    assert_int_equal(orphans.seen[0], 0);
    assert_int_equal(orphans.seen[2], 2);
    assert_null(registry_service_find(reg, "work"));
    assert_int_equal(registry_service_count(reg), 0);
    assert_int_equal(registry_peer_count(reg), 0);
    registry_destroy(&reg);
}

static void test_wait_bound_and_order(void **state)
{
    (void) state;
    registry_t *reg = registry_new(40, free);
    add(reg, "r1", "a", "work", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");
    /* more than one ring growth, mixed priorities */
    for (int i = 0; i < 40; i++)
        assert_int_equal(registry_wait_push(reg, svc, item_new(i), (unsigned) (i % 3), 0, 8), 0);
    int *extra = item_new(99);
    assert_int_equal(registry_wait_push(reg, svc, extra, 0, 0, 8), SY_EQUEUE_FULL);
    free(extra);
    assert_int_equal(registry_service_waiting(svc), 40);

    collect_t none = { .n = 0 };
    int last_prio = 0, last_in_prio = -1;
    for (int n = 0; n < 40; n++) {
        int *it = registry_wait_pop(svc, 5000, collect, &none);
        assert_non_null(it);
        int prio = *it % 3;
        assert_true(prio >= last_prio);             /* high priority first */
        if (prio != last_prio)
            last_in_prio = -1;
        assert_true(*it > last_in_prio);            /* FIFO within one */
        last_prio = prio;
        last_in_prio = *it;
        free(it);
    }
    assert_null(registry_wait_pop(svc, 5000, collect, &none));
    assert_int_equal(none.n, 0);
    assert_int_equal(registry_service_waiting(svc), 0);
    registry_destroy(&reg);
}

static void test_wait_ttl(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    add(reg, "r1", "a", "work", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");
    /* deadlines 100, none, 300, 200, none */
    assert_int_equal(registry_wait_push(reg, svc, item_new(1), 1, 100, 8), 0);
    assert_int_equal(registry_wait_push(reg, svc, item_new(2), 1, 0, 8), 0);
    assert_int_equal(registry_wait_push(reg, svc, item_new(3), 1, 300, 8), 0);
    assert_int_equal(registry_wait_push(reg, svc, item_new(4), 1, 200, 8), 0);
    assert_int_equal(registry_wait_push(reg, svc, item_new(5), 1, 0, 8), 0);

    collect_t gone = { .n = 0 };
    assert_int_equal(registry_wait_expire(reg, 99, collect, &gone), 0);
    assert_int_equal(registry_wait_expire(reg, 200, collect, &gone), 2);
    assert_int_equal(gone.n, 2);
    assert_int_equal(gone.seen[0], 1);
    assert_int_equal(gone.seen[1], 4);
    assert_int_equal(registry_service_waiting(svc), 3);

    /* order kept; pop hands the expired one on the way */
    int *it = registry_wait_pop(svc, 1000, collect, &gone);
    assert_int_equal(*it, 2);
    free(it);
    it = registry_wait_pop(svc, 1000, collect, &gone);
    assert_int_equal(*it, 5);
    free(it);
    assert_int_equal(gone.n, 3);
    assert_int_equal(gone.seen[2], 3);
    assert_int_equal(registry_service_waiting(svc), 0);
    registry_destroy(&reg);
}

static void test_zero_queue_and_bad_args(void **state)
{
    (void) state;
    registry_t *reg = registry_new(0, free);
    add(reg, "r1", "a", "work", 1, NULL);
    registry_service_t *svc = registry_service_find(reg, "work");
    int x = 1;
    assert_int_equal(registry_wait_push(reg, svc, &x, 1, 0, 8), SY_EQUEUE_FULL);

    registry_peer_t *p, *d[2];
    const char *svcs[] = { "s" };
    assert_int_equal(registry_peer_add(reg, (const uint8_t *) "r", 0, "n", svcs, 1, 1, 0, &p, d),
                     SY_EINVAL);
    assert_int_equal(registry_peer_add(reg, (const uint8_t *) "r", 1, "", svcs, 1, 1, 0, &p, d),
                     SY_EINVAL);
    assert_int_equal(registry_peer_add(reg, (const uint8_t *) "r", 1, "n", svcs, 1, 0, 0, &p, d),
                     SY_EINVAL);
    assert_int_equal(registry_peer_count(reg), 1);

    /* duplicate services fold into one; binary rids with NULs work */
    const char *dup[] = { "x", "x", "y" };
    const uint8_t rid[5] = { 0, 1, 0, 2, 0 };
    assert_int_equal(registry_peer_add(reg, rid, 5, "dup", dup, 3, 2, 0, &p, d), 0);
    assert_int_equal(p->nservices, 2);
    assert_int_equal(registry_service_actors(registry_service_find(reg, "x")), 1);
    assert_ptr_equal(registry_peer_by_rid(reg, rid, 5), p);
    assert_null(registry_peer_by_rid(reg, rid, 4));
    /* the same by the peer's own length-prefixed form */
    const uint8_t key[6] = { 5, 0, 1, 0, 2, 0 };
    const uint8_t shorter[5] = { 4, 0, 1, 0, 2 };
    assert_ptr_equal(registry_peer_by_key(reg, key), p);
    assert_ptr_equal(registry_peer_by_key(reg, p->rid), p);
    assert_null(registry_peer_by_key(reg, shorter));

    /* gone peers are never picked and get no credit back */
    registry_service_t *y = registry_service_find(reg, "y");
    assert_ptr_equal(registry_service_pick(y), p);
    registry_peer_mark_gone(p);
    assert_null(registry_service_pick(y));
    registry_peer_give(p, 1);
    assert_int_equal(p->credit_left, 0);
    registry_destroy(&reg);
}

static void test_liveness(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *a = add(reg, "r1", "a", "work", 1, NULL);    /* seen at 1000 */
    registry_peer_t *b = add(reg, "r2", "b", "work", 1, NULL);
    registry_peer_t *c = add(reg, "r3", "c", NULL, 1, NULL);
    b->last_seen_ms = 2500;
    c->last_seen_ms = 2500;

    assert_null(registry_peer_stale(reg, 3000, 2000));      /* a: 2000, not more */
    assert_ptr_equal(registry_peer_stale(reg, 3001, 2000), a);
    registry_peer_remove(reg, &a, NULL, NULL);
    assert_null(registry_peer_stale(reg, 3001, 2000));
    registry_peer_mark_gone(c);
    assert_ptr_equal(registry_peer_stale(reg, 3001, 2000), c);
    registry_peer_remove(reg, &c, NULL, NULL);
    assert_ptr_equal(registry_peer_stale(reg, 4501, 2000), b);
    /* a clock reading before last_seen is not silence */
    assert_null(registry_peer_stale(reg, 100, 2000));
    registry_destroy(&reg);
}

/* The status answer is built from the registry: check it against the
   sy.answer schema and read it back. */
static void test_status_body(void **state)
{
    (void) state;
    registry_t *reg = registry_new(10, free);
    registry_peer_t *a = add(reg, "r1", "alpha", "work", 4, NULL);
    add(reg, "r2", "beta", NULL, 1, NULL);
    registry_peer_use(a);
    a->last_seen_ms = 1500;
    registry_service_t *svc = registry_service_find(reg, "work");
    assert_int_equal(registry_wait_push(reg, svc, item_new(1), 1, 0, 8), 0);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    status_info_t info = { "9.9", "tcp://127.0.0.1:1", 777 };
    assert_int_equal(status_build(reg, &info, 2000, &sb), 0);
    const uint8_t *b = (const uint8_t *) sb.data;
    char err[200];
    const msgtype_t *mt = msgtypes_find("sy.answer", 9);
    assert_non_null(mt);
    assert_int_equal(msgtypes_validate(mt, b, sb.size, err, sizeof err), 0);

    char str[80];
    uint64_t u;
    assert_true(hmp_get_str(b, sb.size, "what", str, sizeof str));
    assert_string_equal(str, "status");
    assert_true(hmp_get_str(b, sb.size, "data.broker.version", str, sizeof str));
    assert_string_equal(str, "9.9");
    assert_true(hmp_get_uint(b, sb.size, "data.broker.uptime_ms", &u));
    assert_int_equal(u, 777);
    assert_int_equal(hmp_count(b, sb.size, "data.actors"), 2);
    assert_true(hmp_get_str(b, sb.size, "data.actors.0.name", str, sizeof str));
    assert_string_equal(str, "alpha");
    assert_true(hmp_get_str(b, sb.size, "data.actors.0.services.0", str, sizeof str));
    assert_string_equal(str, "work");
    assert_true(hmp_get_uint(b, sb.size, "data.actors.0.credit_left", &u));
    assert_int_equal(u, 3);
    assert_true(hmp_get_uint(b, sb.size, "data.actors.0.age_ms", &u));
    assert_int_equal(u, 500);
    assert_true(hmp_get_uint(b, sb.size, "data.actors.0.up_ms", &u));
    assert_int_equal(u, 1000);
    assert_int_equal(hmp_count(b, sb.size, "data.actors.1.services"), 0);
    assert_int_equal(hmp_count(b, sb.size, "data.services"), 1);
    assert_true(hmp_get_uint(b, sb.size, "data.services.0.waiting", &u));
    assert_int_equal(u, 1);
    assert_true(hmp_get_uint(b, sb.size, "data.services.0.actors", &u));
    assert_int_equal(u, 1);
    msgpack_sbuffer_destroy(&sb);
    registry_destroy(&reg);
}

/* Bytes per service: pushes count, every way out (pop, expiry on the way
   and by sweep, orphaning) gives back; the bound is exact and per
   service. */
static void test_wait_bytes_per_service(void **state)
{
    (void) state;
    registry_t *reg = registry_new(100, free);
    registry_set_budget(reg, 1000, 0);
    add(reg, "r1", "a", "work", 1, NULL);
    registry_peer_t *pb = add(reg, "r2", "b", "other", 1, NULL);
    registry_service_t *w = registry_service_find(reg, "work");
    registry_service_t *o = registry_service_find(reg, "other");

    assert_int_equal(registry_wait_push(reg, w, item_new(1), 1, 0, 400), 0);
    assert_int_equal(registry_wait_push(reg, w, item_new(2), 1, 500, 400), 0);
    int *big = item_new(3);
    assert_int_equal(registry_wait_push(reg, w, big, 1, 0, 300), SY_EQUEUE_FULL);
    assert_int_equal(registry_wait_push(reg, w, big, 1, 0, 200), 0);      /* exactly 1000 */
    int *one = item_new(4);
    assert_int_equal(registry_wait_push(reg, w, one, 1, 0, 1), SY_EQUEUE_FULL);
    assert_int_equal(registry_wait_push(reg, w, one, 1, 0, SIZE_MAX), SY_EQUEUE_FULL);
    assert_int_equal(registry_service_bytes(w), 1000);
    assert_int_equal(registry_service_waiting(w), 3);
    /* another service has its own budget */
    assert_int_equal(registry_wait_push(reg, o, item_new(10), 1, 0, 1000), 0);
    assert_int_equal(registry_wait_push(reg, o, one, 1, 0, 1), SY_EQUEUE_FULL);
    assert_int_equal(registry_bytes(reg), 2000);

    /* a pop gives its bytes back, and makes room */
    collect_t gone = { .n = 0 };
    int *it = registry_wait_pop(w, 100, collect, &gone);
    assert_int_equal(*it, 1);
    free(it);
    assert_int_equal(registry_service_bytes(w), 600);
    assert_int_equal(registry_bytes(reg), 1600);
    assert_int_equal(registry_wait_push(reg, w, one, 1, 0, 400), 0);
    assert_int_equal(registry_service_bytes(w), 1000);

    /* expired on the way of a pop: item 2 (deadline 500) */
    it = registry_wait_pop(w, 600, collect, &gone);
    assert_int_equal(*it, 3);
    free(it);
    assert_int_equal(gone.n, 1);
    assert_int_equal(gone.seen[0], 2);
    assert_int_equal(registry_service_bytes(w), 400);       /* item 4 left */

    /* expired by the sweep */
    assert_int_equal(registry_wait_push(reg, w, item_new(5), 1, 700, 250), 0);
    assert_int_equal(registry_service_bytes(w), 650);
    assert_int_equal(registry_wait_expire(reg, 700, collect, &gone), 1);
    assert_int_equal(registry_service_bytes(w), 400);
    assert_int_equal(registry_bytes(reg), 1400);

    /* orphaned when the last actor leaves */
    registry_peer_remove(reg, &pb, collect, &gone);
    assert_int_equal(gone.seen[gone.n - 1], 10);
    assert_int_equal(registry_bytes(reg), 400);

    it = registry_wait_pop(w, 800, collect, &gone);
    assert_int_equal(*it, 4);
    free(it);
    assert_int_equal(registry_service_bytes(w), 0);
    assert_int_equal(registry_bytes(reg), 0);
    registry_destroy(&reg);
}

/* The global bound spans services; unpop puts an item back at the head
   with its bytes. */
static void test_wait_bytes_global_and_unpop(void **state)
{
    (void) state;
    registry_t *reg = registry_new(100, free);
    registry_set_budget(reg, 0, 1500);          /* no bound per service */
    add(reg, "r1", "a", "work", 1, NULL);
    add(reg, "r2", "b", "other", 1, NULL);
    registry_service_t *w = registry_service_find(reg, "work");
    registry_service_t *o = registry_service_find(reg, "other");

    assert_int_equal(registry_wait_push(reg, w, item_new(1), 1, 0, 600), 0);
    assert_int_equal(registry_wait_push(reg, w, item_new(2), 1, 0, 400), 0);
    assert_int_equal(registry_wait_push(reg, o, item_new(3), 1, 0, 500), 0);
    int *x = item_new(4);
    assert_int_equal(registry_wait_push(reg, o, x, 1, 0, 1), SY_EQUEUE_FULL);
    assert_int_equal(registry_wait_push(reg, w, x, 1, 0, 1), SY_EQUEUE_FULL);
    assert_int_equal(registry_bytes(reg), 1500);

    collect_t gone = { .n = 0 };
    int *it = registry_wait_pop(w, 0, collect, &gone);
    assert_int_equal(*it, 1);
    assert_int_equal(registry_bytes(reg), 900);
    /* put back: first again, bytes counted again, even though now full */
    assert_int_equal(registry_wait_push(reg, o, x, 1, 0, 600), 0);
    assert_int_equal(registry_bytes(reg), 1500);
    assert_int_equal(registry_wait_unpop(w, it, 1, 0, 600), 0);
    assert_int_equal(registry_service_waiting(w), 2);
    assert_int_equal(registry_service_bytes(w), 1000);
    assert_int_equal(registry_bytes(reg), 2100);
    it = registry_wait_pop(w, 0, collect, &gone);
    assert_int_equal(*it, 1);
    free(it);
    it = registry_wait_pop(w, 0, collect, &gone);
    assert_int_equal(*it, 2);
    free(it);
    assert_int_equal(registry_service_bytes(w), 0);
    assert_int_equal(registry_service_bytes(o), 1100);
    assert_int_equal(registry_bytes(reg), 1100);
    assert_int_equal(gone.n, 0);
    /* what is left is freed by destroy (ASan watches) */
    registry_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_credit_wins),
        cmocka_unit_test(test_round_robin_ties),
        cmocka_unit_test(test_takeover_by_name),
        cmocka_unit_test(test_hello_again_same_rid),
        cmocka_unit_test(test_remove_orphans),
        cmocka_unit_test(test_wait_bound_and_order),
        cmocka_unit_test(test_wait_ttl),
        cmocka_unit_test(test_wait_bytes_per_service),
        cmocka_unit_test(test_wait_bytes_global_and_unpop),
        cmocka_unit_test(test_zero_queue_and_bad_args),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_status_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
