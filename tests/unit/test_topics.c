/*  test_topics.c -- prefix subscriptions: matching, once per subscriber,
 *  unsubscribe, drop, limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "broker/topics.h"
#include "schemas/syerr.h"

typedef struct {
    void *who[16];
    size_t n;
} hits_t;

static void hit(void *who, void *arg)
{
    hits_t *h = arg;
    assert_true(h->n < 16);
    h->who[h->n++] = who;
}

static size_t match(topics_t *t, const char *topic, hits_t *h)
{
    memset(h, 0, sizeof *h);
    size_t n = topics_match(t, topic, strlen(topic), hit, h);
    assert_int_equal(n, h->n);
    return n;
}

static bool has(const hits_t *h, void *who)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->who[i] == who)
            return true;
    return false;
}

static int sub(topics_t *t, void *who, const char *p)
{
    return topics_sub(t, who, p, strlen(p));
}

static void test_prefix_match(void **state)
{
    (void) state;
    int a, b, c;
    topics_t *t = topics_new();
    assert_non_null(t);
    assert_int_equal(sub(t, &a, "presence."), 0);
    assert_int_equal(sub(t, &b, "presence.join"), 0);
    assert_int_equal(sub(t, &c, "chat"), 0);
    hits_t h;

    assert_int_equal(match(t, "presence.join", &h), 2);
    assert_true(has(&h, &a) && has(&h, &b));
    assert_int_equal(match(t, "presence.leave", &h), 1);
    assert_true(has(&h, &a));
    assert_int_equal(match(t, "presence", &h), 0);          /* shorter than the prefix */
    assert_int_equal(match(t, "chatter", &h), 1);
    assert_true(has(&h, &c));
    assert_int_equal(match(t, "other", &h), 0);
    assert_int_equal(topics_count(t), 3);
    topics_destroy(&t);
    assert_null(t);
}

static void test_once_per_subscriber(void **state)
{
    (void) state;
    int a, b;
    topics_t *t = topics_new();
    assert_int_equal(sub(t, &a, ""), 0);                   /* everything */
    assert_int_equal(sub(t, &a, "x"), 0);
    assert_int_equal(sub(t, &a, "x.y"), 0);
    assert_int_equal(sub(t, &a, "x.y"), 0);                /* again: no-op */
    assert_int_equal(sub(t, &b, "x.y"), 0);
    hits_t h;
    assert_int_equal(match(t, "x.y.z", &h), 2);
    assert_true(has(&h, &a) && has(&h, &b));
    assert_int_equal(match(t, "", &h), 1);                 /* only "" matches "" */
    assert_true(has(&h, &a));
    assert_int_equal(topics_count(t), 2);
    topics_destroy(&t);
}

static void test_unsub_and_drop(void **state)
{
    (void) state;
    int a, b;
    topics_t *t = topics_new();
    assert_int_equal(sub(t, &a, "p"), 0);
    assert_int_equal(sub(t, &a, "q"), 0);
    assert_int_equal(sub(t, &b, "p"), 0);
    hits_t h;

    assert_int_equal(topics_unsub(t, &a, "p", 1), 0);
    assert_int_equal(topics_unsub(t, &a, "p", 1), SY_ENOTFOUND);
    assert_int_equal(topics_unsub(t, &a, "zz", 2), SY_ENOTFOUND);
    assert_int_equal(match(t, "pp", &h), 1);
    assert_true(has(&h, &b));
    assert_int_equal(match(t, "qq", &h), 1);
    assert_true(has(&h, &a));

    /* the last prefix gone: the subscriber is gone */
    assert_int_equal(topics_unsub(t, &a, "q", 1), 0);
    assert_int_equal(topics_count(t), 1);
    assert_int_equal(match(t, "qq", &h), 0);

    topics_drop(t, &b);
    topics_drop(t, &b);                                    /* twice is harmless */
    assert_int_equal(topics_count(t), 0);
    assert_int_equal(match(t, "pp", &h), 0);
    assert_int_equal(topics_unsub(t, &b, "p", 1), SY_ENOTFOUND);
    topics_destroy(&t);
}

static void test_limits(void **state)
{
    (void) state;
    int a;
    topics_t *t = topics_new();
    char big[TOPICS_PREFIX_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(topics_sub(t, &a, big, TOPICS_PREFIX_MAX + 1), SY_EFIELD_RANGE);
    assert_int_equal(topics_count(t), 0);
    assert_int_equal(topics_sub(t, &a, big, TOPICS_PREFIX_MAX), 0);

    char p[16];
    for (int i = 1; i < TOPICS_PER_SUB; i++) {
        snprintf(p, sizeof p, "t%d", i);
        assert_int_equal(sub(t, &a, p), 0);
    }
    assert_int_equal(sub(t, &a, "one-too-many"), SY_EFIELD_RANGE);
    assert_int_equal(sub(t, &a, "t5"), 0);                 /* already there */
    hits_t h;
    assert_int_equal(match(t, "t63.x", &h), 1);
    topics_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_match),
        cmocka_unit_test(test_once_per_subscriber),
        cmocka_unit_test(test_unsub_and_drop),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
