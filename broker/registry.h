/*  registry.h -- the broker's actors, their services, credit and waiting
 *  queues.  A pure data structure: no sockets, no clock (times are passed
 *  in, in ms of any monotonic clock), so it is tested on its own.
 *
 *  Peers.  One registry_peer_t per connection that said sy.hello, found by
 *  its ZeroMQ routing id or by its name.  A peer offers services and has a
 *  credit: how many service deliveries it takes at once.
 *
 *  Takeover.  registry_peer_add() with a name (or a routing id) already
 *  held by another peer moves the index entry to the new peer and hands the
 *  old one back as *displaced*: it still sits in its services (so messages
 *  waiting for them are not orphaned in between) until the caller has said
 *  its goodbyes and calls registry_peer_remove() on it.
 *
 *  Choice.  registry_service_pick() returns the live actor of a service with
 *  the most credit left; among equals it goes round-robin (a cursor on the
 *  service moves past the one chosen).  Picking does not spend credit:
 *  the caller spends it with registry_peer_use() once the delivery really
 *  went out, which keeps "which actor" apart from "deliver", so a durable
 *  store can slot its own delivery in between.
 *
 *  Waiting.  A service whose actors have no credit left keeps messages in
 *  a bounded queue, one FIFO per priority, each item with an optional
 *  deadline and a size in bytes (what the caller says it costs).  The
 *  bounds: queue_max items and queue_bytes bytes per service, and
 *  memory_max bytes over all services together (registry_set_budget).  Items are opaque to the registry; it
 *  frees what it still holds at destroy time with the free function given
 *  to registry_new(), and otherwise hands items back through callbacks:
 *  expired ones, and orphaned ones when the last actor of a service leaves
 *  (the service then disappears: a service exists while an actor offers
 *  it).
 *
 *  Ownership: the registry owns peers and services; pointers to them stay
 *  valid until registry_peer_remove() / the service's last peer leaves.
 *  Strings passed in are copied.
 */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_RID_MAX      255   /* ZeroMQ routing ids: 1..255 bytes */
#define REGISTRY_NAME_MAX     64
#define REGISTRY_SERVICES_MAX 64    /* services one actor may offer (as sy.hello allows) */
#define REGISTRY_CREDIT_MAX   10000
#define REGISTRY_PRIOS        3     /* ENVELOPE_PRIO_HIGH .. LOW */
#define REGISTRY_ROLE_MAX     15
#define REGISTRY_CERT_MAX     64

typedef struct _registry_t registry_t;
typedef struct _registry_service_t registry_service_t;

/* One connected actor.  Fields are for reading; change them only through
   the functions below (the broker may set role / cert / last_seen /
   fd / fd_gen). */
typedef struct _registry_peer_t registry_peer_t;
struct _registry_peer_t {
    uint8_t  rid[1 + REGISTRY_RID_MAX];   /* rid[0] = length, then bytes */
    char     name[REGISTRY_NAME_MAX + 1];
    registry_service_t *services[REGISTRY_SERVICES_MAX];
    size_t   nservices;
    uint32_t credit;                      /* as given in sy.hello */
    uint32_t credit_left;                 /* credit minus deliveries in flight */
    uint64_t joined_ms;
    uint64_t last_seen_ms;                /* last message heard from it */
    /* security, filled in by the broker once CURVE/ZAP is in place */
    char     role[REGISTRY_ROLE_MAX + 1];     /* "client", "actor", ... or "" */
    char     cert[REGISTRY_CERT_MAX + 1];     /* certificate name or "" */
    registry_peer_t *prev, *next;         /* list of all peers, join order */
    bool     indexed_rid, indexed_name;   /* still reachable by rid / name */
    bool     gone;                        /* a send found it disconnected */
    bool     batch_receipts;              /* said so in sy.hello: the ok
                                             receipts of one commit go out
                                             as one sy.receipt {ids} */
    /* the connection it said hello on (broker/conns.h): descriptor and
       generation; -1 / 0 (the defaults) when unknown: then only liveness
       removes it */
    int      fd;
    uint32_t fd_gen;
};

/* Frees a waiting item (only at registry_destroy()). */
typedef void (registry_free_fn)(void *item);
/* Receives an item the registry gives up (expired or orphaned); the
   callee owns it from then on. */
typedef void (registry_item_fn)(void *item, void *arg);

/* queue_max: waiting messages per service (0: none may wait).  Bytes are
   not bounded until registry_set_budget(). */
registry_t *registry_new(size_t queue_max, registry_free_fn *free_item);

/* Bounds the bytes waiting: queue_bytes per service, memory_max over all
   services (0: no bound).  Applies to later pushes only. */
void registry_set_budget(registry_t *self, size_t queue_bytes, size_t memory_max);

/* Bytes waiting over all services. */
size_t registry_bytes(const registry_t *self);
void registry_destroy(registry_t **self_p);

/* Adds a peer.  rid is the routing id (1..REGISTRY_RID_MAX bytes); name and
   services are valid names (the caller checked them); duplicate services
   are folded; credit 1..REGISTRY_CREDIT_MAX.  A peer already indexed under
   this rid or name is unindexed and returned in displaced[0..1] (NULL where
   none; both may be the same peer, then only displaced[0] is set): the
   caller must registry_peer_remove() it.  Returns 0 with *out, SY_EINVAL,
   or SY_ENOMEM. */
int registry_peer_add(registry_t *self, const uint8_t *rid, size_t rid_len,
                      const char *name, const char *const *services,
                      size_t nservices, uint32_t credit, uint64_t now,
                      registry_peer_t **out, registry_peer_t *displaced[2]);

/* Removes peer from everything and frees it; *peer_p is set to NULL.
   Items waiting for a service it was the last actor of go to orphan_fn
   (which owns them) and the service is removed. */
void registry_peer_remove(registry_t *self, registry_peer_t **peer_p,
                          registry_item_fn *orphan_fn, void *arg);

registry_peer_t *registry_peer_by_rid(registry_t *self, const uint8_t *rid,
                                      size_t rid_len);
/* The same for a routing id in registry_peer_t.rid's form (key[0] = the
   length 1..REGISTRY_RID_MAX, then the bytes): no copy of the key. */
registry_peer_t *registry_peer_by_key(registry_t *self, const uint8_t *key);
registry_peer_t *registry_peer_by_name(registry_t *self, const char *name);

/* All peers in join order (safe to remove the current one if its next was
   read first). */
registry_peer_t *registry_peer_first(registry_t *self);
registry_peer_t *registry_peer_next(registry_peer_t *peer);
size_t registry_peer_count(const registry_t *self);

/* The first peer (join order) that is marked gone or was last heard from
   more than liveness_ms before now, or NULL.  The caller removes it and
   asks again. */
registry_peer_t *registry_peer_stale(registry_t *self, uint64_t now,
                                     uint64_t liveness_ms);

/* Spends one credit (after a service delivery).  Returns 0 or SY_EINVAL
   if the peer had none left. */
int registry_peer_use(registry_peer_t *peer);
/* Gives n credits back, never above the credit from sy.hello (nothing for
   a peer marked gone). */
void registry_peer_give(registry_peer_t *peer, uint32_t n);
/* Marks a peer whose connection turned out closed: it is never picked
   again and is to be removed by the caller's next sweep.  (Removing it on
   the spot could free a service the caller is still working on.) */
void registry_peer_mark_gone(registry_peer_t *peer);

registry_service_t *registry_service_find(registry_t *self, const char *name);
const char *registry_service_name(const registry_service_t *svc);
size_t registry_service_actors(const registry_service_t *svc);
size_t registry_service_waiting(const registry_service_t *svc);
/* Bytes waiting for svc (the sum of the sizes pushed). */
size_t registry_service_bytes(const registry_service_t *svc);
/* The i-th actor of a service (i < registry_service_actors()). */
registry_peer_t *registry_service_actor(const registry_service_t *svc, size_t i);
/* All services, unordered.  Do not add or remove peers while iterating. */
registry_service_t *registry_service_first(registry_t *self);
registry_service_t *registry_service_next(registry_t *self);
size_t registry_service_count(const registry_t *self);

/* The actor of svc with the most credit left (> 0), ties round-robin, or
   NULL when none has credit. */
registry_peer_t *registry_service_pick(registry_service_t *svc);

/* True if some actor of svc has credit left (pick would succeed); does not
   move the round-robin turn. */
bool registry_service_has_credit(const registry_service_t *svc);

/* The durable-store hint of a service: true when the store may hold
   messages for it that are ready to deliver, so that the broker asks the
   store only then (never on the non-durable hot path).  A new service
   starts true (its queue may have filled while nobody offered it); the
   broker sets it when it stores, requeues or revives messages and clears
   it when a take came back short. */
bool registry_service_stored(const registry_service_t *svc);
void registry_service_set_stored(registry_service_t *svc, bool stored);

/* Queues item for svc at prio (0..2, clamped) with deadline (0: none);
   bytes is what it costs, counted until it leaves the queue.  Returns 0,
   or SY_EQUEUE_FULL when svc has queue_max items, or the item would take
   svc over queue_bytes or all services over memory_max (the item stays
   the caller's). */
int registry_wait_push(registry_t *self, registry_service_t *svc, void *item,
                       unsigned prio, uint64_t deadline, size_t bytes);
/* Puts an item registry_wait_pop() just returned back at the head of its
   queue (it keeps its turn), with the same prio, deadline and bytes; the
   bounds are not checked (it was within them).  Returns 0, or
   SY_EQUEUE_FULL only if memory runs out (the item stays the caller's). */
int registry_wait_unpop(registry_service_t *svc, void *item, unsigned prio,
                        uint64_t deadline, size_t bytes);
/* The next waiting item (highest priority first, FIFO within one), or
   NULL.  Items whose deadline is <= now are handed to expired_fn on the
   way. */
void *registry_wait_pop(registry_service_t *svc, uint64_t now,
                        registry_item_fn *expired_fn, void *arg);
/* Hands every waiting item with deadline <= now to expired_fn.  Returns
   how many. */
size_t registry_wait_expire(registry_t *self, uint64_t now,
                            registry_item_fn *expired_fn, void *arg);

#endif
