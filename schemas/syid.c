/*  syid.c -- 16-byte time-ordered message ids.
 *
 *  An id is 6 bytes of milliseconds (big-endian) and 10 bytes of "tail".
 *  The first id in a new millisecond takes a random tail with its top bit
 *  cleared, so the 2^79 increments that follow within that millisecond
 *  cannot realistically wrap; each further id in the same millisecond (or
 *  while the clock stands behind the last time seen) is the previous tail
 *  plus one.  So memcmp order is creation order for one generator, and the
 *  random start keeps ids of different generators apart.
 */
#include "schemas/syid.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define SYID_TIME_LEN 6
#define SYID_MS_MAX   ((1ULL << 48) - 1)

void syid_init(syid_t *gen)
{
    /* sodium_init() may be called any number of times; randombytes_buf()
       needs it once per process. */
    if (sodium_init() < 0) {
        /* the kernel's random source is missing: randombytes_buf() would
           abort anyway, nothing better to do here */
    }
    memset(gen, 0, sizeof *gen);
}

uint64_t syid_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void syid_put_time(uint8_t id[16], uint64_t ms)
{
    for (int i = SYID_TIME_LEN - 1; i >= 0; i--) {
        id[i] = (uint8_t)(ms & 0xff);
        ms >>= 8;
    }
}

static void syid_fresh_tail(uint8_t id[16])
{
    randombytes_buf(id + SYID_TIME_LEN, 16 - SYID_TIME_LEN);
    id[SYID_TIME_LEN] &= 0x7f;
}

/* Adds one to the tail.  Returns false if it wrapped to zero. */
static bool syid_inc_tail(uint8_t id[16])
{
    for (int i = 15; i >= SYID_TIME_LEN; i--)
        if (++id[i] != 0)
            return true;
    return false;
}

void syid_next(syid_t *gen, uint8_t out[16])
{
    uint64_t now = syid_now_ms() & SYID_MS_MAX;
    if (now > gen->last_ms || gen->last_ms == 0) {
        gen->last_ms = now;
        syid_put_time(gen->last, now);
        syid_fresh_tail(gen->last);
    } else if (!syid_inc_tail(gen->last)) {
        /* tail exhausted within one millisecond: borrow the next one */
        gen->last_ms++;
        syid_put_time(gen->last, gen->last_ms);
        syid_fresh_tail(gen->last);
    }
    memcpy(out, gen->last, 16);
}

uint64_t syid_time_ms(const uint8_t id[16])
{
    uint64_t ms = 0;
    for (int i = 0; i < SYID_TIME_LEN; i++)
        ms = (ms << 8) | id[i];
    return ms;
}
