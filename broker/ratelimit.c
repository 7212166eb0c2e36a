/*  ratelimit.c -- token buckets per identity (see ratelimit.h).
 *
 *  Ideas:
 *  - Tokens are counted in thousandths, so refilling `rate` tokens per
 *    second is exactly `rate` thousandths per millisecond: integer
 *    arithmetic, no rounding drift.
 *  - All slots are allocated up front: a fixed array of entries, a hash
 *    table of twice as many chain heads (short chains), a free list and an
 *    LRU list threaded through the entries by index.  A check touches a
 *    constant number of them; eviction looks at the LRU tail only.
 *  - A bucket that has refilled to the brim is indistinguishable from a
 *    new one, so forgetting it is free; that keeps the table small without
 *    a sweep.
 */
#include "broker/ratelimit.h"
#include "schemas/syerr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RL_NONE UINT32_MAX
#define RL_MILLI 1000

typedef struct {
    char id[RATELIMIT_ID_MAX + 1];
    int64_t tokens;                 /* thousandths of a token */
    int64_t last_ms;                /* time tokens was computed for */
    uint32_t hnext;                 /* next in hash chain, or free list */
    uint32_t prev, next;            /* LRU list: head = most recent */
} rl_entry_t;

struct _ratelimit_t {
    int64_t rate;                   /* thousandths per ms == tokens per s */
    int64_t cap;                    /* burst in thousandths */
    int64_t full_ms;                /* time to refill from empty */
    rl_entry_t *entries;
    uint32_t max, count;
    uint32_t *heads;
    uint32_t mask;                  /* heads has mask + 1 slots */
    uint32_t free_head;
    uint32_t lru_head, lru_tail;
};

static uint32_t rl_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;       /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t) s[i]) * 16777619u;
    return h;
}

int ratelimit_new(uint32_t rate, uint32_t burst, size_t max_ids, ratelimit_t **out)
{
    if (out == NULL || rate == 0 || burst == 0 || max_ids == 0 || max_ids > (1u << 28))
        return SY_EINVAL;
    *out = NULL;
    ratelimit_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return SY_ENOMEM;
    self->rate = rate;
    self->cap = (int64_t) burst * RL_MILLI;
    self->full_ms = (self->cap + self->rate - 1) / self->rate;
    self->max = (uint32_t) max_ids;
    uint32_t nheads = 1;
    while (nheads < 2 * self->max)
        nheads <<= 1;
    self->mask = nheads - 1;
    self->entries = calloc(self->max, sizeof *self->entries);
    self->heads = malloc(nheads * sizeof *self->heads);
    if (self->entries == NULL || self->heads == NULL) {
        ratelimit_destroy(&self);
        return SY_ENOMEM;
    }
    for (uint32_t i = 0; i < nheads; i++)
        self->heads[i] = RL_NONE;
    for (uint32_t i = 0; i < self->max; i++)
        self->entries[i].hnext = i + 1 < self->max ? i + 1 : RL_NONE;
    self->free_head = 0;
    self->lru_head = self->lru_tail = RL_NONE;
    *out = self;
    return 0;
}

void ratelimit_destroy(ratelimit_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->entries);
    free((*self_p)->heads);
    free(*self_p);
    *self_p = NULL;
}

size_t ratelimit_size(const ratelimit_t *self)
{
    return self ? self->count : 0;
}

/* ------------------------------------------------------------ LRU list */

static void rl_lru_unlink(ratelimit_t *self, uint32_t i)
{
    rl_entry_t *e = &self->entries[i];
    if (e->prev != RL_NONE)
        self->entries[e->prev].next = e->next;
    else
        self->lru_head = e->next;
    if (e->next != RL_NONE)
        self->entries[e->next].prev = e->prev;
    else
        self->lru_tail = e->prev;
    e->prev = e->next = RL_NONE;
}

static void rl_lru_push_front(ratelimit_t *self, uint32_t i)
{
    rl_entry_t *e = &self->entries[i];
    e->prev = RL_NONE;
    e->next = self->lru_head;
    if (self->lru_head != RL_NONE)
        self->entries[self->lru_head].prev = i;
    self->lru_head = i;
    if (self->lru_tail == RL_NONE)
        self->lru_tail = i;
}

/* ------------------------------------------------------------ hash */

static uint32_t rl_find(ratelimit_t *self, const char *id, size_t len, uint32_t h)
{
    for (uint32_t i = self->heads[h & self->mask]; i != RL_NONE; i = self->entries[i].hnext)
        if (self->entries[i].id[len] == '\0' && memcmp(self->entries[i].id, id, len) == 0)
            return i;
    return RL_NONE;
}

/* Removes entry i from its chain and the LRU list; returns it to the free
   list. */
static void rl_evict(ratelimit_t *self, uint32_t i)
{
    rl_entry_t *e = &self->entries[i];
    uint32_t *link = &self->heads[rl_hash(e->id, strlen(e->id)) & self->mask];
    while (*link != i)
        link = &self->entries[*link].hnext;
    *link = e->hnext;
    rl_lru_unlink(self, i);
    e->id[0] = '\0';
    e->hnext = self->free_head;
    self->free_head = i;
    self->count--;
}

/* Forgets the least recently seen identity (unless it is entry keep) if
   its bucket is full again; with force, forgets it regardless. */
static void rl_evict_tail(ratelimit_t *self, int64_t now_ms, bool force, uint32_t keep)
{
    uint32_t t = self->lru_tail;
    if (t == RL_NONE || t == keep)
        return;
    rl_entry_t *e = &self->entries[t];
    int64_t idle = now_ms - e->last_ms;
    bool full = idle >= 0 && (idle >= self->full_ms
                              || e->tokens + idle * self->rate >= self->cap);
    if (force || full)
        rl_evict(self, t);
}

/* ------------------------------------------------------------ check */

int ratelimit_check(ratelimit_t *self, const char *id, int64_t now_ms)
{
    if (self == NULL || id == NULL)
        return SY_EINVAL;
    size_t len = strnlen(id, RATELIMIT_ID_MAX + 1);
    if (len == 0 || len > RATELIMIT_ID_MAX)
        return SY_EINVAL;
    uint32_t h = rl_hash(id, len);
    uint32_t i = rl_find(self, id, len, h);
    if (i == RL_NONE) {
        rl_evict_tail(self, now_ms, false, RL_NONE);   /* keep the table lean */
        if (self->free_head == RL_NONE)
            rl_evict_tail(self, now_ms, true, RL_NONE); /* full: make room */
        i = self->free_head;
        rl_entry_t *e = &self->entries[i];
        self->free_head = e->hnext;
        memcpy(e->id, id, len);
        e->id[len] = '\0';
        e->tokens = self->cap;
        e->last_ms = now_ms;
        e->hnext = self->heads[h & self->mask];
        self->heads[h & self->mask] = i;
        rl_lru_push_front(self, i);
        self->count++;
    } else {
        rl_lru_unlink(self, i);
        rl_lru_push_front(self, i);
        rl_evict_tail(self, now_ms, false, i);
    }
    rl_entry_t *e = &self->entries[i];
    int64_t elapsed = now_ms - e->last_ms;
    if (elapsed > 0) {
        e->tokens = elapsed >= self->full_ms ? self->cap
                    : e->tokens + elapsed * self->rate;
        if (e->tokens > self->cap)
            e->tokens = self->cap;
        e->last_ms = now_ms;
    }
    if (e->tokens < RL_MILLI)
        return SY_ERATE_LIMITED;
    e->tokens -= RL_MILLI;
    return 0;
}
