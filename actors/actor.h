/*  actor.h -- the runtime every actor, and syctl, is built on.
 *
 *  An actor_t is one connection to the broker: a DEALER socket that says
 *  sy.hello with the actor's name, services and credit, keeps the heartbeat
 *  the broker asked for in sy.welcome, dispatches incoming messages by type
 *  to handlers, and sends, replies, publishes and subscribes.
 *
 *  When the broker goes away (no traffic for the liveness it announced, or
 *  it answers NOT_REGISTERED after a restart) the runtime drops the socket,
 *  waits a jittered, growing backoff (actor/reconnect_min ..
 *  actor/reconnect_max), connects again, says hello again and renews its
 *  subscriptions.  Restarting the broker never needs restarting an actor.
 *
 *  Credit: an actor takes at most `credit` service deliveries at once.  A
 *  handler that returns 0 has finished with its message and the credit is
 *  given back to the broker (batched in sy.credit messages); a handler that
 *  returns ACTOR_KEEP holds the credit until actor_release() is called
 *  (long jobs answered later).  Direct messages (to "@name"), replies,
 *  receipts and events never consume credit.
 *
 *  Bodies: incoming bodies of known types are validated against the table
 *  in schemas/msgtypes.c before a handler sees them; a bad one is answered
 *  BAD_BODY to its sender and never reaches a handler.  Outgoing bodies
 *  are validated the same way: actor_send() refuses what the receiver
 *  would refuse.
 *
 *  Threads: an actor_t belongs to the thread that made it; it runs inside
 *  its own zloop (actor_loop()), where the caller may add readers and
 *  timers.  No call blocks except actor_run().
 *
 *  Ownership: actor_new() returns an actor the caller destroys with
 *  actor_destroy(), which says sy.bye if connected.  Messages handed to a
 *  handler are borrowed and valid only during the call.
 *
 *  Exiting: a process must actor_destroy() every actor and then call
 *  zsys_shutdown() before it returns from main(); the socket's linger
 *  (1 s) then delivers a last reply and the sy.bye instead of dropping
 *  them.  actor_run(), actor_run_for() and actor_wait_connected() must not
 *  be called from inside a handler or a timer of the same loop.
 */
#ifndef ACTOR_H
#define ACTOR_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"
#include "../schemas/envelope.h"

typedef struct _actor_t actor_t;

/* Return value of a handler that keeps its credit until actor_release(). */
#define ACTOR_KEEP 1

typedef struct {
    const char  *name;          /* actor name: envelope_valid_name() */
    const char  *endpoint;      /* e.g. "tcp://127.0.0.1:5570", "ipc://..." */
    const char **services;      /* services offered; may be NULL */
    size_t       nservices;
    uint32_t     credit;        /* 1..10000; 0 means 1 */
    uint32_t     reconnect_min_ms;  /* 0: 100 */
    uint32_t     reconnect_max_ms;  /* 0: 5000 */
    uint32_t     hello_timeout_ms;  /* no welcome this long: reconnect. 0: 2000 */
} actor_opts_t;

/* One incoming message, borrowed for the duration of a handler call. */
typedef struct {
    envelope_t      hdr;
    const uint8_t  *body;
    size_t          body_len;
} actor_msg_t;

/* Per-send options; a NULL pointer means all defaults. */
typedef struct {
    uint8_t      prio;          /* ENVELOPE_PRIO_*; default normal */
    uint64_t     ttl_ms;        /* 0: none */
    bool         durable;
    const char  *key;           /* idempotency key or NULL */
    const char  *reply_to;      /* NULL: replies come back to this actor */
    const uint8_t *corr;        /* 16 bytes or NULL */
} actor_send_opts_t;

typedef int (actor_handler_fn)(actor_t *self, const actor_msg_t *msg, void *arg);
/* Called with up = true after every sy.welcome, false when the connection
   is lost. */
typedef void (actor_state_fn)(actor_t *self, bool up, void *arg);

/* Fills the connection fields of opts (endpoint, reconnect_min_ms,
   reconnect_max_ms, hello_timeout_ms) from the "actor/..." settings of cfg.
   The endpoint string belongs to cfg: keep cfg until actor_new(). */
void actor_opts_from_config(actor_opts_t *opts, const config_t *cfg);

/* Makes an actor and starts connecting (asynchronously: the hello goes out
   when the loop runs).  Returns NULL if opts are invalid (a message is
   logged). */
actor_t *actor_new(const actor_opts_t *opts);

/* Says sy.bye if connected, closes the socket, frees everything, sets
   *self_p to NULL.  Safe on NULL. */
void actor_destroy(actor_t **self_p);

/* Routes messages of `type` to fn.  type "*" catches every type without a
   handler of its own.  sy.receipt, sy.event and sy.answer can be handled
   too.  A later call for the same type replaces the earlier.  Returns 0 or
   SY_EINVAL. */
int actor_on(actor_t *self, const char *type, actor_handler_fn *fn, void *arg);

void actor_on_state(actor_t *self, actor_state_fn *fn, void *arg);

/* Sends a message of `type` with body (msgpack; NULL/0 means an empty map)
   to `to` (a service, or "@name").  The id is written to id_out if not
   NULL.  Returns 0, SY_ECLOSED if not connected (nothing is queued while
   disconnected: the caller decides), SY_EBAD_BODY, SY_EINVAL (bad
   argument, or a type not in the table), SY_ETOO_LARGE (over the max_msg
   of the welcome) or SY_EQUEUE_FULL (the socket's send queue is full;
   never blocks). */
int actor_send(actor_t *self, const char *to, const char *type,
               const uint8_t *body, size_t len,
               const actor_send_opts_t *opts, uint8_t id_out[16]);

/* Sends a message of a sy.* type to the broker itself (no `to`), e.g.
   sy.query.  Same checks and return codes as actor_send(); SY_EINVAL for a
   type outside sy.*. */
int actor_send_broker(actor_t *self, const char *type,
                      const uint8_t *body, size_t len, uint8_t id_out[16]);

/* Replies to req: to = req's reply_to, or "@" + req's from; corr = req's
   id. */
int actor_reply(actor_t *self, const actor_msg_t *req, const char *type,
                const uint8_t *body, size_t len);

/* Publishes an event on topic with free-form data (msgpack; NULL: nil). */
int actor_publish(actor_t *self, const char *topic,
                  const uint8_t *data, size_t len);

/* Subscribes to events whose topic starts with prefix ("" = all).  Kept
   across reconnects.  Returns 0 or SY_EINVAL. */
int actor_subscribe(actor_t *self, const char *prefix);
int actor_unsubscribe(actor_t *self, const char *prefix);

/* Gives back n credits held by handlers that returned ACTOR_KEEP. */
void actor_release(actor_t *self, uint32_t n);

/* True if msg used one credit: a delivery to a service (not "@name", not
   sy.*).  Only for such a message does a handler's ACTOR_KEEP hold a
   credit that it must later give back with actor_release(self, 1). */
bool actor_msg_uses_credit(const actor_msg_t *msg);

/* True between sy.welcome and the loss of the connection. */
bool actor_connected(const actor_t *self);

/* The name, as given. */
const char *actor_name(const actor_t *self);

/* The loop the actor runs in; borrowed.  Add readers and timers to it. */
zloop_t *actor_loop(actor_t *self);

/* Runs the loop until actor_stop(), SIGINT or SIGTERM.  Returns 0. */
int actor_run(actor_t *self);

/* Makes actor_run() return after the current event. */
void actor_stop(actor_t *self);

/* Runs the loop until connected or timeout_ms passes (for command-line
   tools).  Returns 0 or SY_ETIMEOUT. */
int actor_wait_connected(actor_t *self, int timeout_ms);

/* Runs the loop for at most timeout_ms or until actor_stop(); for tools
   that wait for one answer.  Returns 0, or SY_ETIMEOUT if the time ran out
   without actor_stop(). */
int actor_run_for(actor_t *self, int timeout_ms);

#endif
