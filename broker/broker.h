/*  broker.h -- sy-broker's routing core: one ROUTER socket, one zloop.
 *
 *  The broker reads two-frame messages (header, body) from its ROUTER,
 *  checks the header, sets `from` (and `ts` if absent) and forwards the
 *  body frame untouched to a service's actor, a named actor or the
 *  subscribers of a topic.  It answers the session messages of
 *  docs/PROTOCOL.md (hello, ping, credit, sub, unsub, event, query, bye)
 *  and reports every refusal as a sy.receipt.  Nothing a client sends
 *  stops it: a bad message gets its receipt and the next one is read.
 *
 *  Guarantees.  Non-durable delivery, at most once; a message that cannot
 *  be delivered at once to a service waits in memory (bounded in count and
 *  bytes per service and in bytes over all services -- beyond them the
 *  sender gets QUEUE_FULL --, ttl honoured) and is lost if the broker
 *  stops.  ttl counts from the
 *  message's arrival at the broker, so a sender's clock does not matter.
 *  Durable messages (header durable = true) go to the LMDB store
 *  (broker/durable.h, broker/store.h): receipt only after the commit,
 *  delivery at least once under a lease, within the actor's credit; the
 *  whole contract is in docs/DURABLE.md.
 *
 *  Ownership: broker_new() returns a broker the caller destroys; it
 *  copies what it keeps from the options.
 */
#ifndef BROKER_H
#define BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define BROKER_VERSION "0.1.0"

/* Defaults of broker/queue_bytes and broker/memory_max (common/config.c
   has the same): a 1 GB machine keeps room for everything else. */
#define BROKER_QUEUE_BYTES_DEFAULT (64u * 1024 * 1024)
#define BROKER_MEMORY_MAX_DEFAULT  (256u * 1024 * 1024)

typedef struct _broker_t broker_t;

typedef struct {
    const char *endpoint;      /* e.g. "tcp://127.0.0.1:5570", "ipc://..." */
    const char *name;          /* `from` of what the broker itself sends */
    uint32_t    heartbeat_ms;  /* hb announced in sy.welcome */
    uint32_t    liveness_ms;   /* silence after which a peer is removed */
    size_t      max_msg;       /* largest header + body accepted */
    size_t      queue_max;     /* waiting messages per service */
    size_t      queue_bytes;   /* bytes waiting per service (0: the default) */
    size_t      memory_max;    /* bytes waiting over all services (0: the
                                  default); also bounds the ROUTER's
                                  high-water marks (memory_max / max_msg
                                  messages per pipe, 1000 .. 100000) */
    const config_t *cfg;       /* store/... and service/... settings of the
                                  durable queues (borrowed: must outlive
                                  the broker); NULL: no durable store,
                                  durable sends are refused */
} broker_opts_t;

/* Opens the durable store (when opts->cfg is set), creates the socket,
   binds it and prepares the loop.  Returns NULL on failure with a message
   (naming the store's path or the endpoint) in err. */
broker_t *broker_new(const broker_opts_t *opts, char *err, size_t errlen);

/* Closes the socket and frees everything; waiting messages are dropped.
   Sets *self_p to NULL; safe on NULL. */
void broker_destroy(broker_t **self_p);

/* Runs until SIGINT / SIGTERM (CZMQ's handler) or broker_stop().
   Returns 0. */
int broker_run(broker_t *self);

/* Makes broker_run() return after the current event. */
void broker_stop(broker_t *self);

/* The endpoint actually bound (with the port filled in for tcp://...:0 or
   :*).  Owned by the broker. */
const char *broker_endpoint(const broker_t *self);

#endif
