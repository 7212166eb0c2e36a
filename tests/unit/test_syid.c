/*  test_syid.c -- time-ordered ids: strictly increasing by memcmp, the
 *  time they carry, a clock that steps back, and a tail that runs out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "schemas/syid.h"

static void test_ordering(void **state)
{
    (void)state;
    enum { N = 10000 };
    static uint8_t ids[N][16];
    syid_t gen;
    syid_init(&gen);
    uint64_t before = syid_now_ms();
    for (int i = 0; i < N; i++)
        syid_next(&gen, ids[i]);
    uint64_t after = syid_now_ms();
    for (int i = 1; i < N; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 16) < 0);
    assert_true(syid_time_ms(ids[0]) >= before);
    assert_true(syid_time_ms(ids[N - 1]) <= after);
}

static void test_time(void **state)
{
    (void)state;
    uint8_t id[16];
    syid_t gen;
    syid_init(&gen);
    uint64_t now = syid_now_ms();
    assert_true(now > 1700000000000ULL);   /* after 2023 */
    syid_next(&gen, id);
    assert_true(syid_time_ms(id) + 5000 > now && syid_time_ms(id) < now + 5000);
    const uint8_t fixed[16] = { 0x01, 0x9a, 0xa7, 0xee, 0x3e, 0xfb };
    assert_int_equal(syid_time_ms(fixed), 1763754000123ULL);
}

/* Two generators in the same millisecond start at random tails. */
static void test_generators_differ(void **state)
{
    (void)state;
    syid_t a, b;
    uint8_t x[16], y[16];
    syid_init(&a);
    syid_init(&b);
    syid_next(&a, x);
    syid_next(&b, y);
    assert_memory_not_equal(x + 6, y + 6, 10);
}

/* A clock behind the last id: the generator keeps its last time. */
static void test_clock_back(void **state)
{
    (void)state;
    syid_t gen;
    uint8_t prev[16], id[16];
    syid_init(&gen);
    syid_next(&gen, prev);
    uint64_t future = syid_time_ms(prev) + 3600000;
    gen.last_ms = future;
    for (int i = 5; i >= 0; i--)
        gen.last[i] = (uint8_t)(future >> (8 * (5 - i)));
    memcpy(prev, gen.last, 16);
    for (int i = 0; i < 100; i++) {
        syid_next(&gen, id);
        assert_true(memcmp(prev, id, 16) < 0);
        assert_int_equal(syid_time_ms(id), future);
        memcpy(prev, id, 16);
    }
}

/* A tail at its maximum moves on to the next millisecond. */
static void test_tail_overflow(void **state)
{
    (void)state;
    syid_t gen;
    uint8_t id[16], prev[16];
    syid_init(&gen);
    uint64_t future = syid_now_ms() + 3600000;
    gen.last_ms = future;
    for (int i = 5; i >= 0; i--)
        gen.last[i] = (uint8_t)(future >> (8 * (5 - i)));
    memset(gen.last + 6, 0xff, 10);
    memcpy(prev, gen.last, 16);
    syid_next(&gen, id);
    assert_true(memcmp(prev, id, 16) < 0);
    assert_int_equal(syid_time_ms(id), future + 1);
    assert_int_equal(id[6] & 0x80, 0);   /* fresh tails leave headroom */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_generators_differ),
        cmocka_unit_test(test_clock_back),
        cmocka_unit_test(test_tail_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
