/*  registry.c -- actors, services, credit choice and waiting queues.
 *
 *  Indexes are zhashx tables whose keys point into the records themselves
 *  (no key copies): routing ids are length-prefixed byte strings with our
 *  own hash and compare, names are C strings.  Peers also sit on a doubly
 *  linked list in join order, which is what liveness sweeps and status
 *  walk.
 *
 *  A service keeps its actors in a small array; the choice scans it from a
 *  round-robin cursor and keeps the first actor with strictly more credit
 *  left than the best so far, so equals are taken in turn.  Services have
 *  a handful of actors: a scan is cheaper than keeping a heap in order.
 *
 *  Waiting queues are ring buffers, one per priority, that grow by
 *  doubling; the bounds are on their sum: queue_max items and queue_bytes
 *  bytes per service, and memory_max bytes over all services.  Each slot
 *  remembers the size it was pushed with, so that every way out (pop,
 *  expiry, orphaning, destroy) gives back exactly what came in: two
 *  additions and a compare per push, no allocation beyond the ring's
 *  doubling.  Expiry compacts a ring in place, keeping order.
 *
 *  See registry.h for the rules and ownership.
 */
#include "broker/registry.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/syerr.h"

typedef struct {
    void    *item;
    uint64_t deadline;          /* 0: none */
    size_t   bytes;             /* as pushed, given back when it leaves */
} registry_slot_t;

typedef struct {
    registry_slot_t *slots;
    size_t head, count, cap;
} registry_ring_t;

struct _registry_service_t {
    char name[REGISTRY_NAME_MAX + 1];
    registry_t *reg;            /* its registry (for the global byte sum) */
    registry_peer_t **peers;
    size_t npeers, cap;
    size_t rr;                  /* round-robin cursor into peers */
    registry_ring_t waiting[REGISTRY_PRIOS];
    size_t nwaiting;
    size_t nbytes;              /* sum of the waiting slots' bytes */
    bool stored;                /* the durable store may hold deliverable
                                   messages for it (a hint, see .h) */
};

struct _registry_t {
    zhashx_t *by_rid;           /* rid bytes -> peer */
    zhashx_t *by_name;          /* name -> peer */
    zhashx_t *services;         /* name -> service */
    registry_peer_t *head, *tail;
    size_t npeers;
    size_t queue_max;
    size_t queue_bytes;         /* per service; SIZE_MAX: no bound */
    size_t memory_max;          /* over all services; SIZE_MAX: no bound */
    size_t nbytes;              /* bytes waiting in all services */
    registry_free_fn *free_item;
};

/* ---------------------------------------------------------------- keys */

/* Routing-id keys: byte 0 is the length. FNV-1a over length and bytes. */
static size_t registry_rid_hash(const void *key)
{
    const uint8_t *k = key;
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0; i <= k[0]; i++) {
        h ^= k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int registry_rid_cmp(const void *a, const void *b)
{
    const uint8_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return memcmp(x + 1, y + 1, x[0]);
}

static zhashx_t *registry_index_new(bool binary)
{
    zhashx_t *h = zhashx_new();
    if (!h)
        return NULL;
    /* keys point into the records: no copies, nothing to free */
    zhashx_set_key_duplicator(h, NULL);
    zhashx_set_key_destructor(h, NULL);
    if (binary) {
        zhashx_set_key_hasher(h, registry_rid_hash);
        zhashx_set_key_comparator(h, registry_rid_cmp);
    }
    return h;
}

/* ---------------------------------------------------------------- rings */

/* Adds a slot at the back (or, with front, at the head: an item popped
   and put back keeps its turn). */
static int registry_ring_push(registry_ring_t *r, registry_slot_t slot, bool front)
{
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        registry_slot_t *ns = malloc(ncap * sizeof *ns);
        if (!ns)
            return SY_ENOMEM;
        for (size_t i = 0; i < r->count; i++)
            ns[i] = r->slots[(r->head + i) % r->cap];
        free(r->slots);
        r->slots = ns;
        r->cap = ncap;
        r->head = 0;
    }
    if (front) {
        r->head = (r->head + r->cap - 1) % r->cap;
        r->slots[r->head] = slot;
    }
    else
        r->slots[(r->head + r->count) % r->cap] = slot;
    r->count++;
    return 0;
}

/* A slot left a service's queue: its bytes go back to both sums. */
static void registry_wait_gone(registry_service_t *svc, const registry_slot_t *s)
{
    svc->nwaiting--;
    svc->nbytes -= s->bytes;
    svc->reg->nbytes -= s->bytes;
}

static registry_slot_t registry_ring_pop(registry_ring_t *r)
{
    registry_slot_t s = r->slots[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    return s;
}

/* Removes the expired slots of svc's ring r, keeping the order of the
   rest.  Returns how many went to fn. */
static size_t registry_ring_expire(registry_service_t *svc, registry_ring_t *r,
                                   uint64_t now, registry_item_fn *fn, void *arg)
{
    size_t kept = 0, gone = 0;
    for (size_t i = 0; i < r->count; i++) {
        registry_slot_t s = r->slots[(r->head + i) % r->cap];
        if (s.deadline && s.deadline <= now) {
            registry_wait_gone(svc, &s);
            fn(s.item, arg);
            gone++;
        }
        else
            r->slots[(r->head + kept++) % r->cap] = s;
    }
    r->count = kept;
    return gone;
}

/* ---------------------------------------------------------------- services */

static registry_service_t *registry_service_get(registry_t *self, const char *name)
{
    registry_service_t *svc = zhashx_lookup(self->services, name);
    if (svc)
        return svc;
    svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    snprintf(svc->name, sizeof svc->name, "%s", name);
    svc->reg = self;
    svc->stored = true;
    if (zhashx_insert(self->services, svc->name, svc) != 0) {
        free(svc);
        return NULL;
    }
    return svc;
}

static int registry_service_attach(registry_service_t *svc, registry_peer_t *peer)
{
    if (svc->npeers == svc->cap) {
        size_t ncap = svc->cap ? svc->cap * 2 : 4;
        registry_peer_t **np = realloc(svc->peers, ncap * sizeof *np);
        if (!np)
            return SY_ENOMEM;
        svc->peers = np;
        svc->cap = ncap;
    }
    svc->peers[svc->npeers++] = peer;
    return 0;
}

/* Frees a service that has no actors; its waiting items go to fn (or the
   free function when fn is NULL). */
static void registry_service_drop(registry_t *self, registry_service_t *svc,
                                  registry_item_fn *fn, void *arg)
{
    for (int p = 0; p < REGISTRY_PRIOS; p++) {
        registry_ring_t *r = &svc->waiting[p];
        while (r->count) {
            registry_slot_t s = registry_ring_pop(r);
            registry_wait_gone(svc, &s);
            if (fn)
                fn(s.item, arg);
            else if (self->free_item)
                self->free_item(s.item);
        }
        free(r->slots);
    }
    zhashx_delete(self->services, svc->name);
    free(svc->peers);
    free(svc);
}

static void registry_service_detach(registry_t *self, registry_service_t *svc,
                                    registry_peer_t *peer,
                                    registry_item_fn *orphan_fn, void *arg)
{
    for (size_t i = 0; i < svc->npeers; i++)
        if (svc->peers[i] == peer) {
            /* keep the order, so the round-robin turn stays fair */
            memmove(&svc->peers[i], &svc->peers[i + 1],
                    (svc->npeers - i - 1) * sizeof *svc->peers);
            svc->npeers--;
            if (svc->rr > i)
                svc->rr--;
            break;
        }
    if (svc->npeers == 0)
        registry_service_drop(self, svc, orphan_fn, arg);
}

const char *registry_service_name(const registry_service_t *svc) { return svc->name; }
size_t registry_service_actors(const registry_service_t *svc) { return svc->npeers; }
size_t registry_service_waiting(const registry_service_t *svc) { return svc->nwaiting; }
size_t registry_service_bytes(const registry_service_t *svc) { return svc->nbytes; }
size_t registry_bytes(const registry_t *self) { return self->nbytes; }

registry_peer_t *registry_service_actor(const registry_service_t *svc, size_t i)
{
    return i < svc->npeers ? svc->peers[i] : NULL;
}

registry_service_t *registry_service_find(registry_t *self, const char *name)
{
    return zhashx_lookup(self->services, name);
}

registry_service_t *registry_service_first(registry_t *self)
{
    return zhashx_first(self->services);
}

registry_service_t *registry_service_next(registry_t *self)
{
    return zhashx_next(self->services);
}

size_t registry_service_count(const registry_t *self)
{
    return zhashx_size(self->services);
}

bool registry_service_stored(const registry_service_t *svc)
{
    return svc->stored;
}

void registry_service_set_stored(registry_service_t *svc, bool stored)
{
    svc->stored = stored;
}

bool registry_service_has_credit(const registry_service_t *svc)
{
    for (size_t i = 0; i < svc->npeers; i++)
        if (svc->peers[i]->credit_left > 0)
            return true;
    return false;
}

registry_peer_t *registry_service_pick(registry_service_t *svc)
{
    size_t n = svc->npeers, best = n;
    uint32_t best_left = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (svc->rr + k) % n;
        if (svc->peers[i]->credit_left > best_left) {
            best_left = svc->peers[i]->credit_left;
            best = i;
        }
    }
    if (best == n)
        return NULL;
    svc->rr = (best + 1) % n;
    return svc->peers[best];
}

/* ---------------------------------------------------------------- waiting */

/* Adds a slot to svc's ring for prio and to the sums. */
static int registry_wait_add(registry_service_t *svc, void *item, unsigned prio,
                             uint64_t deadline, size_t bytes, bool front)
{
    if (prio >= REGISTRY_PRIOS)
        prio = REGISTRY_PRIOS - 1;
    registry_slot_t slot = { item, deadline, bytes };
    int rc = registry_ring_push(&svc->waiting[prio], slot, front);
    if (rc)
        return SY_EQUEUE_FULL;          /* out of memory: the queue is full */
    svc->nwaiting++;
    svc->nbytes += bytes;
    svc->reg->nbytes += bytes;
    return 0;
}

int registry_wait_push(registry_t *self, registry_service_t *svc, void *item,
                       unsigned prio, uint64_t deadline, size_t bytes)
{
    /* written as subtractions: no overflow whatever bytes is */
    if (svc->nwaiting >= self->queue_max
        || bytes > self->queue_bytes - svc->nbytes
        || bytes > self->memory_max - self->nbytes)
        return SY_EQUEUE_FULL;
    return registry_wait_add(svc, item, prio, deadline, bytes, false);
}

int registry_wait_unpop(registry_service_t *svc, void *item, unsigned prio,
                        uint64_t deadline, size_t bytes)
{
    return registry_wait_add(svc, item, prio, deadline, bytes, true);
}

void *registry_wait_pop(registry_service_t *svc, uint64_t now,
                        registry_item_fn *expired_fn, void *arg)
{
    for (int p = 0; p < REGISTRY_PRIOS; p++) {
        registry_ring_t *r = &svc->waiting[p];
        while (r->count) {
            registry_slot_t s = registry_ring_pop(r);
            registry_wait_gone(svc, &s);
            if (s.deadline && s.deadline <= now)
                expired_fn(s.item, arg);
            else
                return s.item;
        }
    }
    return NULL;
}

size_t registry_wait_expire(registry_t *self, uint64_t now,
                            registry_item_fn *expired_fn, void *arg)
{
    size_t gone = 0;
    for (registry_service_t *svc = zhashx_first(self->services); svc;
         svc = zhashx_next(self->services)) {
        if (svc->nwaiting == 0)
            continue;
        for (int p = 0; p < REGISTRY_PRIOS; p++)
            gone += registry_ring_expire(svc, &svc->waiting[p], now, expired_fn, arg);
    }
    return gone;
}

/* ---------------------------------------------------------------- peers */

registry_t *registry_new(size_t queue_max, registry_free_fn *free_item)
{
    registry_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_rid = registry_index_new(true);
    self->by_name = registry_index_new(false);
    self->services = registry_index_new(false);
    self->queue_max = queue_max;
    self->queue_bytes = SIZE_MAX;
    self->memory_max = SIZE_MAX;
    self->free_item = free_item;
    if (!self->by_rid || !self->by_name || !self->services)
        registry_destroy(&self);
    return self;
}

void registry_set_budget(registry_t *self, size_t queue_bytes, size_t memory_max)
{
    self->queue_bytes = queue_bytes ? queue_bytes : SIZE_MAX;
    self->memory_max = memory_max ? memory_max : SIZE_MAX;
}

void registry_destroy(registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    while (self->head) {
        registry_peer_t *p = self->head;
        /* orphans go to the free function (fn NULL) */
        registry_peer_remove(self, &p, NULL, NULL);
    }
    zhashx_destroy(&self->by_rid);
    zhashx_destroy(&self->by_name);
    zhashx_destroy(&self->services);
    free(self);
    *self_p = NULL;
}

static void registry_unindex(registry_t *self, registry_peer_t *peer)
{
    if (peer->indexed_rid) {
        zhashx_delete(self->by_rid, peer->rid);
        peer->indexed_rid = false;
    }
    if (peer->indexed_name) {
        zhashx_delete(self->by_name, peer->name);
        peer->indexed_name = false;
    }
}

int registry_peer_add(registry_t *self, const uint8_t *rid, size_t rid_len,
                      const char *name, const char *const *services,
                      size_t nservices, uint32_t credit, uint64_t now,
                      registry_peer_t **out, registry_peer_t *displaced[2])
{
    displaced[0] = displaced[1] = NULL;
    if (!rid || rid_len == 0 || rid_len > REGISTRY_RID_MAX || !name
        || strlen(name) == 0 || strlen(name) > REGISTRY_NAME_MAX
        || nservices > REGISTRY_SERVICES_MAX || credit == 0
        || credit > REGISTRY_CREDIT_MAX)
        return SY_EINVAL;
    for (size_t i = 0; i < nservices; i++)
        if (!services[i] || !*services[i] || strlen(services[i]) > REGISTRY_NAME_MAX)
            return SY_EINVAL;

    registry_peer_t *peer = calloc(1, sizeof *peer);
    if (!peer)
        return SY_ENOMEM;
    peer->rid[0] = (uint8_t) rid_len;
    memcpy(peer->rid + 1, rid, rid_len);
    snprintf(peer->name, sizeof peer->name, "%s", name);
    peer->credit = peer->credit_left = credit;
    peer->joined_ms = peer->last_seen_ms = now;
    peer->fd = -1;

    /* attach to services first: a failure here leaves nothing displaced */
    for (size_t i = 0; i < nservices; i++) {
        bool dup = false;
        for (size_t j = 0; j < peer->nservices; j++)
            dup |= strcmp(peer->services[j]->name, services[i]) == 0;
        if (dup)
            continue;
        registry_service_t *svc = registry_service_get(self, services[i]);
        if (!svc || registry_service_attach(svc, peer) != 0) {
            if (svc && svc->npeers == 0)
                registry_service_drop(self, svc, NULL, NULL);
            for (size_t j = 0; j < peer->nservices; j++)
                registry_service_detach(self, peer->services[j], peer, NULL, NULL);
            free(peer);
            return SY_ENOMEM;
        }
        peer->services[peer->nservices++] = svc;
    }

    registry_peer_t *old_rid = zhashx_lookup(self->by_rid, peer->rid);
    registry_peer_t *old_name = zhashx_lookup(self->by_name, peer->name);
    if (old_rid)
        registry_unindex(self, old_rid);
    if (old_name)
        registry_unindex(self, old_name);
    displaced[0] = old_rid ? old_rid : old_name;
    displaced[1] = (old_rid && old_name && old_name != old_rid) ? old_name : NULL;

    zhashx_insert(self->by_rid, peer->rid, peer);
    zhashx_insert(self->by_name, peer->name, peer);
    peer->indexed_rid = peer->indexed_name = true;

    peer->prev = self->tail;
    if (self->tail)
        self->tail->next = peer;
    else
        self->head = peer;
    self->tail = peer;
    self->npeers++;
    *out = peer;
    return 0;
}

void registry_peer_remove(registry_t *self, registry_peer_t **peer_p,
                          registry_item_fn *orphan_fn, void *arg)
{
    if (!peer_p || !*peer_p)
        return;
    registry_peer_t *peer = *peer_p;
    registry_unindex(self, peer);
    for (size_t i = 0; i < peer->nservices; i++)
        registry_service_detach(self, peer->services[i], peer, orphan_fn, arg);
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        self->head = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    else
        self->tail = peer->prev;
    self->npeers--;
    free(peer);
    *peer_p = NULL;
}

registry_peer_t *registry_peer_by_rid(registry_t *self, const uint8_t *rid,
                                      size_t rid_len)
{
    if (rid_len == 0 || rid_len > REGISTRY_RID_MAX)
        return NULL;
    uint8_t key[1 + REGISTRY_RID_MAX];
    key[0] = (uint8_t) rid_len;
    memcpy(key + 1, rid, rid_len);
    return registry_peer_by_key(self, key);
}

registry_peer_t *registry_peer_by_key(registry_t *self, const uint8_t *key)
{
    return key[0] ? zhashx_lookup(self->by_rid, key) : NULL;
}

registry_peer_t *registry_peer_by_name(registry_t *self, const char *name)
{
    return zhashx_lookup(self->by_name, name);
}

registry_peer_t *registry_peer_first(registry_t *self) { return self->head; }
registry_peer_t *registry_peer_next(registry_peer_t *peer) { return peer->next; }
size_t registry_peer_count(const registry_t *self) { return self->npeers; }

registry_peer_t *registry_peer_stale(registry_t *self, uint64_t now,
                                     uint64_t liveness_ms)
{
    for (registry_peer_t *p = self->head; p; p = p->next)
        if (p->gone || (now > p->last_seen_ms && now - p->last_seen_ms > liveness_ms))
            return p;
    return NULL;
}

int registry_peer_use(registry_peer_t *peer)
{
    if (peer->credit_left == 0)
        return SY_EINVAL;
    peer->credit_left--;
    return 0;
}

void registry_peer_mark_gone(registry_peer_t *peer)
{
    peer->gone = true;
    peer->credit_left = 0;
}

void registry_peer_give(registry_peer_t *peer, uint32_t n)
{
    if (peer->gone)
        return;
    uint32_t room = peer->credit - peer->credit_left;
    peer->credit_left += n < room ? n : room;
}
