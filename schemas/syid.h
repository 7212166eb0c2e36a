/*  syid.h -- 16-byte time-ordered message ids.
 *
 *  Layout: 6 bytes of milliseconds since the epoch, big-endian, then 10
 *  bytes that start random each millisecond and are incremented for every
 *  further id inside the same millisecond.  Ids from one generator
 *  therefore sort (memcmp) in the order they were made, even across a clock
 *  that steps back (the generator then keeps the last time it saw); ids
 *  from different generators sort by time to the millisecond.
 *
 *  Ownership: the caller owns the syid_t; no global state.
 */
#ifndef SYID_H
#define SYID_H

#include <stdint.h>

typedef struct {
    uint64_t last_ms;
    uint8_t  last[16];
} syid_t;

/* Prepares a generator. */
void syid_init(syid_t *gen);

/* Writes the next id into out. */
void syid_next(syid_t *gen, uint8_t out[16]);

/* The millisecond timestamp carried in an id. */
uint64_t syid_time_ms(const uint8_t id[16]);

/* Wall clock, ms since the epoch. */
uint64_t syid_now_ms(void);

#endif
