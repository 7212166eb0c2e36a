/*  fresh.h -- the plaintext of durable bodies recently put, until taken.
 *
 *  A durable body is sealed before it reaches the store and opened again
 *  when it is taken (durable.h).  While actors with credit keep up, a
 *  message is taken a few loop turns after its put, and opening the sealed
 *  copy only gives back what the broker had a moment before.  This table
 *  keeps that plaintext, so that the take hands it over instead of
 *  decrypting; a message that waited longer (the laptop was off) is
 *  opened from the store as always.
 *
 *  Guarantees, in plain words:
 *
 *  - What a take gets is what the store holds under that id.  An entry
 *    is made only for a put the store accepted, and belongs to the open
 *    batch until fresh_commit(); fresh_abort() drops the entries of a
 *    batch that did not commit.  A second put of an id (the first one
 *    left the store) replaces the entry.  A take removes it.
 *  - Nothing here is written anywhere; the store holds sealed bodies only.
 *    A body handed over from here was not read back from the store, so
 *    its sealed copy is not checked at that take; it is whenever the
 *    message is taken again (a redelivery opens the stored copy).
 *  - It is bounded: at most FRESH_MAX entries and FRESH_BYTES bytes of
 *    blocks.  Room is made by forgetting the oldest entries first (they
 *    are the ones least likely to be taken soon); a forgotten body is
 *    simply opened from the store at its take.
 *  - Lookups cost the same whatever ids the senders chose: the table is
 *    hashed with a key drawn at fresh_new() (SipHash, libsodium's
 *    crypto_shorthash), so crafted ids cannot make long chains.
 *
 *  A block is laid out as a delivery wants it (durable.h): body_len bytes
 *  of body, then header_len bytes of the stored header, one malloc()
 *  block.
 *
 *  Ownership: fresh_new() returns a table freed with fresh_destroy().
 *  fresh_put() copies what it is given.  fresh_take() hands its block to
 *  the caller, who frees it with free().
 */
#ifndef FRESH_H
#define FRESH_H

#include <stddef.h>
#include <stdint.h>

#define FRESH_MAX    4096              /* entries; a power of two */
#define FRESH_BYTES  (4u << 20)        /* bytes of blocks at most */
#define FRESH_ID_LEN 16

typedef struct fresh_t fresh_t;

/* Returns 0 or SY_ENOMEM. */
int fresh_new(fresh_t **out);

/* Frees every block and the table; *pp becomes NULL.  NULL-safe. */
void fresh_destroy(fresh_t **pp);

/* Keeps a copy of body and header under id, in the open batch, replacing
   what was kept under id before.  Returns 0, SY_ENOSPACE when the block
   alone is over the byte budget (not kept; nothing wrong), or SY_ENOMEM
   (not kept). */
int fresh_put(fresh_t *f, const uint8_t id[FRESH_ID_LEN], const void *body,
              size_t body_len, const void *header, size_t header_len);

/* Hands over the block kept under id and forgets it: *block (body, then
   header), *body_len and *header_len.  Returns 0 or SY_ENOTFOUND. */
int fresh_take(fresh_t *f, const uint8_t id[FRESH_ID_LEN], uint8_t **block,
               size_t *body_len, size_t *header_len);

/* The open batch committed: its entries stay until taken or forgotten. */
void fresh_commit(fresh_t *f);

/* The open batch did not commit: its entries are dropped. */
void fresh_abort(fresh_t *f);

/* Entries kept now (for tests). */
size_t fresh_count(const fresh_t *f);

#endif
