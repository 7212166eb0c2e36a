/*  topics.h -- event subscriptions: who wants which topic prefixes.
 *
 *  A subscriber is any pointer (the broker uses its peer record).  It holds
 *  a set of prefixes; an event on topic T goes to every subscriber that has
 *  a prefix of T ("" matches everything), once, however many of its
 *  prefixes match.  No sockets: the broker does the sending in the match
 *  callback.
 *
 *  Ownership: prefixes are copied; subscriber pointers are borrowed and
 *  must be dropped with topics_drop() before they are freed.
 */
#ifndef TOPICS_H
#define TOPICS_H

#include <stddef.h>

#define TOPICS_PREFIX_MAX 128   /* bytes of one prefix */
#define TOPICS_PER_SUB    64    /* prefixes per subscriber */

typedef struct _topics_t topics_t;

/* Called once per matching subscriber. */
typedef void (topics_match_fn)(void *who, void *arg);

topics_t *topics_new(void);
void topics_destroy(topics_t **self_p);

/* Adds prefix (len bytes, not NUL-terminated) for who; adding one it has is
   a no-op.  Returns 0, SY_EFIELD_RANGE (prefix too long, or who already
   has TOPICS_PER_SUB prefixes) or SY_ENOMEM. */
int topics_sub(topics_t *self, void *who, const char *prefix, size_t len);

/* Removes prefix for who.  Returns 0 or SY_ENOTFOUND. */
int topics_unsub(topics_t *self, void *who, const char *prefix, size_t len);

/* Forgets every subscription of who. */
void topics_drop(topics_t *self, void *who);

/* Calls fn for each subscriber with a prefix of topic.  Returns how many.
   fn must not change the subscriptions. */
size_t topics_match(topics_t *self, const char *topic, size_t len,
                    topics_match_fn *fn, void *arg);

/* Subscribers with at least one prefix. */
size_t topics_count(const topics_t *self);

#endif
