/*  fresh.c -- the plaintext of durable bodies recently put, until taken
 *  (see fresh.h).
 *
 *  Ideas: entries sit in a ring in put order, so forgetting the oldest is
 *  advancing the head, and the entries of the open batch are the ring's
 *  tail from a mark on (dropping them is moving the tail back).  A keyed
 *  hash with chains (entry numbers, one link per entry) finds an entry by
 *  id; taking or replacing one unlinks it and leaves a hole in the ring
 *  that the head skips when it gets there.
 */
#include "broker/fresh.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/syerr.h"

#define FRESH_MASK    (FRESH_MAX - 1)
#define FRESH_BUCKETS FRESH_MAX

typedef struct {
    uint8_t  id[FRESH_ID_LEN];
    uint8_t *block;                    /* NULL: a hole (taken, replaced) */
    size_t   body_len, header_len;
    uint32_t next;                     /* chain: entry number + 1; 0 ends */
    uint32_t bucket;
} fresh_entry_t;

struct fresh_t {
    fresh_entry_t entries[FRESH_MAX];
    uint32_t buckets[FRESH_BUCKETS];   /* entry number + 1; 0: empty */
    uint64_t head, tail;               /* ring positions; entry = pos & mask */
    uint64_t mark;                     /* where the open batch starts */
    size_t   live, bytes;              /* entries and bytes kept now */
    uint8_t  key[crypto_shorthash_KEYBYTES];
};

int fresh_new(fresh_t **out)
{
    *out = NULL;
    if (sodium_init() < 0)
        return SY_ENOMEM;
    fresh_t *f = calloc(1, sizeof *f);
    if (!f)
        return SY_ENOMEM;
    randombytes_buf(f->key, sizeof f->key);
    *out = f;
    return 0;
}

static uint32_t fresh_bucket(const fresh_t *f, const uint8_t id[FRESH_ID_LEN])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, id, FRESH_ID_LEN, f->key);
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v & (FRESH_BUCKETS - 1);
}

/* Unlinks live entry n from its chain and makes it a hole; returns its
   block, which the caller now owns. */
static uint8_t *fresh_unlink(fresh_t *f, uint32_t n)
{
    fresh_entry_t *e = &f->entries[n];
    uint32_t *link = &f->buckets[e->bucket];
    while (*link && *link != n + 1)
        link = &f->entries[*link - 1].next;
    if (*link)
        *link = e->next;
    f->bytes -= e->body_len + e->header_len;
    f->live--;
    uint8_t *block = e->block;
    e->block = NULL;
    return block;
}

static void fresh_drop(fresh_t *f, uint32_t n)
{
    free(fresh_unlink(f, n));
}

/* The live entry kept under id, as an entry number + 1; 0: none. */
static uint32_t fresh_find(const fresh_t *f, const uint8_t id[FRESH_ID_LEN],
                           uint32_t bucket)
{
    uint32_t n = f->buckets[bucket];
    while (n && memcmp(f->entries[n - 1].id, id, FRESH_ID_LEN) != 0)
        n = f->entries[n - 1].next;
    return n;
}

/* Forgets the oldest entry (or hole). */
static void fresh_forget_oldest(fresh_t *f)
{
    uint32_t n = (uint32_t) (f->head & FRESH_MASK);
    if (f->entries[n].block)
        fresh_drop(f, n);
    f->head++;
    if (f->mark < f->head)
        f->mark = f->head;
}

void fresh_destroy(fresh_t **pp)
{
    if (!pp || !*pp)
        return;
    fresh_t *f = *pp;
    while (f->head < f->tail)
        fresh_forget_oldest(f);
    free(f);
    *pp = NULL;
}

int fresh_put(fresh_t *f, const uint8_t id[FRESH_ID_LEN], const void *body,
              size_t body_len, const void *header, size_t header_len)
{
    size_t size = body_len + header_len;
    uint32_t bucket = fresh_bucket(f, id);
    uint32_t old = fresh_find(f, id, bucket);
    if (old)
        fresh_drop(f, old - 1);            /* the store took a new one */
    if (size > FRESH_BYTES)
        return SY_ENOSPACE;
    uint8_t *block = malloc(size + 1);     /* + 1: never malloc(0) */
    if (!block)
        return SY_ENOMEM;
    memcpy(block, body, body_len);
    memcpy(block + body_len, header, header_len);
    while (f->tail - f->head >= FRESH_MAX || size > FRESH_BYTES - f->bytes)
        fresh_forget_oldest(f);
    uint32_t n = (uint32_t) (f->tail++ & FRESH_MASK);
    fresh_entry_t *e = &f->entries[n];
    memcpy(e->id, id, FRESH_ID_LEN);
    e->block = block;
    e->body_len = body_len;
    e->header_len = header_len;
    e->bucket = bucket;
    e->next = f->buckets[bucket];
    f->buckets[bucket] = n + 1;
    f->live++;
    f->bytes += size;
    return 0;
}

int fresh_take(fresh_t *f, const uint8_t id[FRESH_ID_LEN], uint8_t **block,
               size_t *body_len, size_t *header_len)
{
    if (f->live == 0)
        return SY_ENOTFOUND;
    uint32_t n = fresh_find(f, id, fresh_bucket(f, id));
    if (!n)
        return SY_ENOTFOUND;
    *body_len = f->entries[n - 1].body_len;
    *header_len = f->entries[n - 1].header_len;
    *block = fresh_unlink(f, n - 1);
    return 0;
}

void fresh_commit(fresh_t *f)
{
    f->mark = f->tail;
}

void fresh_abort(fresh_t *f)
{
    while (f->tail > f->mark) {
        uint32_t n = (uint32_t) (--f->tail & FRESH_MASK);
        if (f->entries[n].block)
            fresh_drop(f, n);
    }
}

size_t fresh_count(const fresh_t *f)
{
    return f->live;
}
