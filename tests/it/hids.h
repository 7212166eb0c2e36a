/*  hids.h -- a set of message ids with a little data each, for the
 *  durable-queue tests: which ids got a receipt, how often each was
 *  delivered, what seq it carried.
 *
 *  Open addressing over 16-byte ids (they are time-ordered with random
 *  low bytes, so the last 8 bytes hash well), grown by doubling.  Items
 *  also keep the order they were added in, so a test can walk them.
 *
 *  Ownership: hids_new() returns a set freed by hids_destroy(); item
 *  pointers stay valid until the next hids_add() (which may grow it).
 */
#ifndef HIDS_H
#define HIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t  id[16];
    uint64_t seq;               /* the test's own number for the message */
    int      prio;
    uint32_t delivered;         /* deliveries seen */
    uint32_t last_attempt;      /* attempt of the last delivery */
    uint32_t flags;             /* free for the test */
} hid_item_t;

typedef struct _hids_t hids_t;

hids_t *hids_new(void);
void hids_destroy(hids_t **self_p);

/* The item for id, added (zeroed, id set) if absent; *added (may be
   NULL) says which.  NULL only when out of memory. */
hid_item_t *hids_add(hids_t *self, const uint8_t id[16], bool *added);

/* The item for id, or NULL. */
hid_item_t *hids_find(const hids_t *self, const uint8_t id[16]);

/* Items in insertion order: i in 0 .. hids_size()-1. */
size_t hids_size(const hids_t *self);
hid_item_t *hids_at(const hids_t *self, size_t i);

#endif
