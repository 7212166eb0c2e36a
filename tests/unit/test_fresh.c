/*  test_fresh.c -- broker/fresh: the plaintext of a batch's puts.
 *
 *  A put body comes back from fresh_take byte for byte, followed by its
 *  header, exactly once; unknown ids are not found; a second put of an id
 *  replaces the first; the entry and byte budgets forget the oldest
 *  entries first; an aborted batch's entries are gone and a committed
 *  one's stay; many ids that share their leading bytes (as time-ordered
 *  ids do) are all found; what is left is freed by fresh_destroy (ASan
 *  checks the frees).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/fresh.h"
#include "schemas/syerr.h"

static void fill_id(uint8_t id[FRESH_ID_LEN], uint32_t n)
{
    memset(id, 0x5a, FRESH_ID_LEN);          /* same time, same prefix */
    id[12] = (uint8_t) (n >> 24);
    id[13] = (uint8_t) (n >> 16);
    id[14] = (uint8_t) (n >> 8);
    id[15] = (uint8_t) n;
}

static void test_put_take_once(void **state)
{
    (void) state;
    fresh_t *f = NULL;
    assert_int_equal(fresh_new(&f), 0);
    uint8_t id[FRESH_ID_LEN];
    fill_id(id, 7);
    assert_int_equal(fresh_put(f, id, "body!", 5, "HDR", 3), 0);
    assert_int_equal(fresh_count(f), 1);
    uint8_t *block = NULL;
    size_t blen = 0, hlen = 0;
    uint8_t other[FRESH_ID_LEN];
    fill_id(other, 8);
    assert_int_equal(fresh_take(f, other, &block, &blen, &hlen), SY_ENOTFOUND);
    assert_int_equal(fresh_take(f, id, &block, &blen, &hlen), 0);
    assert_int_equal(blen, 5);
    assert_int_equal(hlen, 3);
    assert_memory_equal(block, "body!HDR", 8);
    free(block);
    assert_int_equal(fresh_take(f, id, &block, &blen, &hlen), SY_ENOTFOUND);
    assert_int_equal(fresh_count(f), 0);
    fresh_destroy(&f);
    assert_null(f);
    fresh_destroy(&f);                       /* NULL-safe */
}

static int take_u32(fresh_t *f, uint32_t n, uint32_t *got)
{
    uint8_t id[FRESH_ID_LEN];
    fill_id(id, n);
    uint8_t *block = NULL;
    size_t blen = 0, hlen = 0;
    int rc = fresh_take(f, id, &block, &blen, &hlen);
    if (rc == 0) {
        assert_int_equal(blen, sizeof *got);
        memcpy(got, block, sizeof *got);
        free(block);
    }
    return rc;
}

static void put_u32(fresh_t *f, uint32_t n, uint32_t value)
{
    uint8_t id[FRESH_ID_LEN];
    fill_id(id, n);
    assert_int_equal(fresh_put(f, id, &value, sizeof value, "h", 1), 0);
}

static void test_second_put_replaces(void **state)
{
    (void) state;
    fresh_t *f = NULL;
    assert_int_equal(fresh_new(&f), 0);
    put_u32(f, 1, 100);
    fresh_commit(f);
    put_u32(f, 1, 200);
    assert_int_equal(fresh_count(f), 1);
    uint32_t got = 0;
    assert_int_equal(take_u32(f, 1, &got), 0);
    assert_int_equal(got, 200);
    assert_int_equal(take_u32(f, 1, &got), SY_ENOTFOUND);
    fresh_destroy(&f);
}

static void test_abort_drops_the_batch(void **state)
{
    (void) state;
    fresh_t *f = NULL;
    assert_int_equal(fresh_new(&f), 0);
    put_u32(f, 1, 1);
    put_u32(f, 2, 2);
    fresh_commit(f);
    put_u32(f, 3, 3);
    put_u32(f, 4, 4);
    fresh_abort(f);
    assert_int_equal(fresh_count(f), 2);
    uint32_t got = 0;
    assert_int_equal(take_u32(f, 3, &got), SY_ENOTFOUND);
    assert_int_equal(take_u32(f, 4, &got), SY_ENOTFOUND);
    assert_int_equal(take_u32(f, 2, &got), 0);
    assert_int_equal(got, 2);
    /* the ring goes on after an abort */
    put_u32(f, 5, 5);
    fresh_commit(f);
    assert_int_equal(take_u32(f, 5, &got), 0);
    assert_int_equal(got, 5);
    assert_int_equal(take_u32(f, 1, &got), 0);
    assert_int_equal(got, 1);
    assert_int_equal(fresh_count(f), 0);
    fresh_destroy(&f);
}

static void test_entry_budget_forgets_oldest(void **state)
{
    (void) state;
    fresh_t *f = NULL;
    assert_int_equal(fresh_new(&f), 0);
    uint32_t extra = 10;
    for (uint32_t i = 0; i < FRESH_MAX + extra; i++) {
        put_u32(f, i, i);
        if (i % 100 == 0)
            fresh_commit(f);
    }
    fresh_commit(f);
    assert_int_equal(fresh_count(f), FRESH_MAX);
    uint32_t got = 0;
    for (uint32_t i = 0; i < extra; i++)
        assert_int_equal(take_u32(f, i, &got), SY_ENOTFOUND);
    for (uint32_t i = extra; i < FRESH_MAX + extra; i += 7) {
        assert_int_equal(take_u32(f, i, &got), 0);
        assert_int_equal(got, i);
    }
    /* holes left by takes are skipped as the ring turns */
    for (uint32_t i = 0; i < 2 * FRESH_MAX; i++)
        put_u32(f, 100000 + i, i);
    assert_int_equal(fresh_count(f), FRESH_MAX);
    assert_int_equal(take_u32(f, 100000 + 2 * FRESH_MAX - 1, &got), 0);
    assert_int_equal(got, 2 * FRESH_MAX - 1);
    fresh_destroy(&f);                       /* frees the rest */
}

static void test_byte_budget(void **state)
{
    (void) state;
    fresh_t *f = NULL;
    assert_int_equal(fresh_new(&f), 0);
    size_t big = FRESH_BYTES / 2;
    uint8_t *body = calloc(1, FRESH_BYTES + 1);
    assert_non_null(body);
    uint8_t a[FRESH_ID_LEN], b[FRESH_ID_LEN], c[FRESH_ID_LEN];
    fill_id(a, 1);
    fill_id(b, 2);
    fill_id(c, 3);
    assert_int_equal(fresh_put(f, a, body, big - 10, "h", 1), 0);
    assert_int_equal(fresh_put(f, b, body, big - 10, "h", 1), 0);
    assert_int_equal(fresh_put(f, c, body, 100, "h", 1), 0);   /* a goes */
    assert_int_equal(fresh_count(f), 2);
    uint8_t *block = NULL;
    size_t blen = 0, hlen = 0;
    assert_int_equal(fresh_take(f, a, &block, &blen, &hlen), SY_ENOTFOUND);
    assert_int_equal(fresh_take(f, b, &block, &blen, &hlen), 0);
    free(block);
    /* one block over the whole budget is not kept, and drops nothing */
    assert_int_equal(fresh_put(f, a, body, FRESH_BYTES + 1, "", 0), SY_ENOSPACE);
    assert_int_equal(fresh_count(f), 1);
    free(body);
    fresh_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_take_once),
        cmocka_unit_test(test_second_put_replaces),
        cmocka_unit_test(test_abort_drops_the_batch),
        cmocka_unit_test(test_entry_budget_forgets_oldest),
        cmocka_unit_test(test_byte_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
