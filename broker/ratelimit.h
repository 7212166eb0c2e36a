/*  ratelimit.h -- a token bucket per identity, in bounded memory.
 *
 *  Each identity (a certificate name, or whatever string the broker keys
 *  by) has a bucket of `burst` tokens refilled at `rate` tokens per second;
 *  a message takes one token, and a message finding the bucket empty is
 *  refused (the broker answers RATE_LIMITED).  So an identity may send
 *  `burst` messages at once and `rate` per second for ever; one identity
 *  flooding does not touch any other's bucket.
 *
 *  Cost: ratelimit_check is O(1) (a hash lookup and a list move) and never
 *  allocates: all memory is taken by ratelimit_new for max_ids identities.
 *  Identities are kept in least-recently-seen order.  One whose bucket has
 *  refilled completely is forgotten (that loses nothing: a new bucket is
 *  full too); when max_ids identities are all active the least recently
 *  seen is forgotten to make room (it then starts again with a full
 *  bucket, so max_ids should exceed the number of devices).
 *
 *  Time is passed in by the caller (milliseconds, any monotonic origin), so
 *  the module reads no clock and tests need no sleeping.  A clock that goes
 *  back is treated as standing still.
 *
 *  Threads: one thread at a time.  Ownership: ratelimit_new returns a
 *  ratelimit_t the caller destroys.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_ID_MAX 64            /* longest identity, bytes */

typedef struct _ratelimit_t ratelimit_t;

/* rate >= 1 tokens per second, burst >= 1, max_ids >= 1.  Returns 0 with
   *out, SY_EINVAL or SY_ENOMEM. */
int ratelimit_new(uint32_t rate, uint32_t burst, size_t max_ids, ratelimit_t **out);

void ratelimit_destroy(ratelimit_t **self_p);

/* Takes one token from id's bucket at time now_ms.  Returns 0 (allowed),
   SY_ERATE_LIMITED (bucket empty), or SY_EINVAL (id NULL, empty or longer
   than RATELIMIT_ID_MAX). */
int ratelimit_check(ratelimit_t *self, const char *id, int64_t now_ms);

/* Identities currently tracked. */
size_t ratelimit_size(const ratelimit_t *self);

#endif
