/*  test_ratelimit.c -- unit tests of broker/ratelimit.c, token buckets.
 *
 *  Time is passed in, so every test is exact and instant: burst then
 *  refusal, refill at the rate, one flooding identity not touching
 *  another, bounded memory with eviction, a clock going back, bad ids, and
 *  a random run compared with a straightforward reference model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/ratelimit.h"
#include "schemas/syerr.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1000000

static ratelimit_t *rl_make(uint32_t rate, uint32_t burst, size_t max)
{
    ratelimit_t *rl = NULL;
    assert_int_equal(ratelimit_new(rate, burst, max, &rl), 0);
    assert_non_null(rl);
    return rl;
}

static void test_burst_then_limited(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(10, 5, 16);        /* 10/s, burst 5 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_check(rl, "phone", T0), 0);
    assert_int_equal(ratelimit_check(rl, "phone", T0), SY_ERATE_LIMITED);
    assert_int_equal(ratelimit_check(rl, "phone", T0 + 99), SY_ERATE_LIMITED);
    assert_int_equal(ratelimit_check(rl, "phone", T0 + 100), 0);   /* one token per 100 ms */
    assert_int_equal(ratelimit_check(rl, "phone", T0 + 100), SY_ERATE_LIMITED);
    /* a long pause refills to burst, not beyond */
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_check(rl, "phone", T0 + 100000), 0);
    assert_int_equal(ratelimit_check(rl, "phone", T0 + 100000), SY_ERATE_LIMITED);
    ratelimit_destroy(&rl);
    assert_null(rl);
    ratelimit_destroy(&rl);
}

/* Sustained: over 10 s at 10/s with burst 5, exactly 5 + 100 pass. */
static void test_sustained_rate(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(10, 5, 16);
    int ok = 0;
    for (int64_t t = 0; t <= 10000; t++)          /* try every millisecond */
        for (int k = 0; k < 3; k++)
            ok += ratelimit_check(rl, "flood", T0 + t) == 0;
    assert_int_equal(ok, 5 + 100);
    ratelimit_destroy(&rl);
}

static void test_identities_independent(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(5, 10, 16);
    int limited = 0;
    for (int i = 0; i < 1000; i++)
        limited += ratelimit_check(rl, "flooder", T0 + i) == SY_ERATE_LIMITED;
    assert_true(limited > 900);
    /* the quiet one keeps its full burst */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_check(rl, "quiet", T0 + 1000), 0);
    assert_int_equal(ratelimit_check(rl, "quiet", T0 + 1000), SY_ERATE_LIMITED);
    ratelimit_destroy(&rl);
}

static void test_bounded_memory(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(1, 2, 4);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "dev-%d", i);
        assert_int_equal(ratelimit_check(rl, id, T0), 0);
        assert_true(ratelimit_size(rl) <= 4);
    }
    assert_int_equal(ratelimit_size(rl), 4);
    /* the four most recent are still tracked: their buckets are not full */
    assert_int_equal(ratelimit_check(rl, "dev-999", T0), 0);
    assert_int_equal(ratelimit_check(rl, "dev-999", T0), SY_ERATE_LIMITED);

    /* identities whose buckets refilled are forgotten as others come by */
    ratelimit_destroy(&rl);
    rl = rl_make(1000, 1, 64);
    for (int i = 0; i < 64; i++) {
        snprintf(id, sizeof id, "dev-%d", i);
        assert_int_equal(ratelimit_check(rl, id, T0), 0);
    }
    assert_int_equal(ratelimit_size(rl), 64);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_check(rl, "busy", T0 + 10 + i), 0);
    assert_true(ratelimit_size(rl) < 64);
    ratelimit_destroy(&rl);
}

static void test_single_slot(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(1, 1, 1);
    assert_int_equal(ratelimit_check(rl, "a", T0), 0);
    assert_int_equal(ratelimit_check(rl, "a", T0), SY_ERATE_LIMITED);
    assert_int_equal(ratelimit_check(rl, "a", T0 + 5000), 0);   /* full again: not lost */
    assert_int_equal(ratelimit_check(rl, "b", T0 + 5000), 0);   /* forces a out */
    assert_int_equal(ratelimit_size(rl), 1);
    ratelimit_destroy(&rl);
}

static void test_clock_back_and_bad_input(void **state)
{
    (void) state;
    ratelimit_t *rl = rl_make(1, 2, 8);
    assert_int_equal(ratelimit_check(rl, "x", T0), 0);
    assert_int_equal(ratelimit_check(rl, "x", T0), 0);
    assert_int_equal(ratelimit_check(rl, "x", T0 - 5000), SY_ERATE_LIMITED);  /* no refill */
    assert_int_equal(ratelimit_check(rl, "x", T0 + 999), SY_ERATE_LIMITED);
    assert_int_equal(ratelimit_check(rl, "x", T0 + 1000), 0);

    char longid[RATELIMIT_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(ratelimit_check(rl, longid, T0), SY_EINVAL);
    longid[RATELIMIT_ID_MAX] = '\0';
    assert_int_equal(ratelimit_check(rl, longid, T0), 0);
    assert_int_equal(ratelimit_check(rl, "", T0), SY_EINVAL);
    assert_int_equal(ratelimit_check(rl, NULL, T0), SY_EINVAL);
    assert_int_equal(ratelimit_check(NULL, "x", T0), SY_EINVAL);
    ratelimit_destroy(&rl);

    ratelimit_t *bad = NULL;
    assert_int_equal(ratelimit_new(0, 1, 1, &bad), SY_EINVAL);
    assert_int_equal(ratelimit_new(1, 0, 1, &bad), SY_EINVAL);
    assert_int_equal(ratelimit_new(1, 1, 0, &bad), SY_EINVAL);
    assert_null(bad);
}

/* With no more identities than slots, eviction must never change an
   answer: compare with a plain model that keeps every bucket. */
static void test_matches_model(void **state)
{
    (void) state;
    enum { IDS = 12, STEPS = 200000 };
    const int64_t rate = 7, cap = 3 * 1000;
    ratelimit_t *rl = rl_make(7, 3, IDS);
    int64_t tokens[IDS], last[IDS];
    bool seen[IDS] = { false };
    unsigned seed = 12345;
    int64_t now = T0;
    int limited = 0;
    for (int s = 0; s < STEPS; s++) {
        seed = seed * 1103515245u + 12345u;
        int who = (int) ((seed >> 16) % IDS);
        now += (seed >> 8) % 7 == 0 ? (int64_t) ((seed >> 4) % 2000) : 0;
        if (!seen[who]) {
            seen[who] = true;
            tokens[who] = cap;
            last[who] = now;
        }
        int64_t el = now - last[who];
        tokens[who] = tokens[who] + el * rate > cap ? cap : tokens[who] + el * rate;
        last[who] = now;
        int want = tokens[who] >= 1000 ? 0 : SY_ERATE_LIMITED;
        if (want == 0)
            tokens[who] -= 1000;
        char id[16];
        snprintf(id, sizeof id, "id%d", who);
        int got = ratelimit_check(rl, id, now);
        if (got != want)
            fail_msg("step %d id %d: got %d want %d", s, who, got, want);
        limited += got != 0;
        assert_true(ratelimit_size(rl) <= IDS);
    }
    assert_true(limited > 0 && limited < STEPS);
    ratelimit_destroy(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_limited),
        cmocka_unit_test(test_sustained_rate),
        cmocka_unit_test(test_identities_independent),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_single_slot),
        cmocka_unit_test(test_clock_back_and_bad_input),
        cmocka_unit_test(test_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
