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
 *  Durable deliveries (header durable = true, to a service; see
 *  docs/PROTOCOL.md section 10) also use one credit, but the broker gives
 *  it back only on sy.ack or sy.nack, never on sy.credit; the runtime
 *  therefore never counts them in sy.credit.  A handler that returns 0
 *  has handled the message: the runtime sends sy.ack {id} right after the
 *  handler (so a reply the handler sent goes out first).  A handler that
 *  returns a negative code failed: the runtime sends sy.nack {id, reason
 *  = the code's name, requeue = true}.  A handler that returns ACTOR_KEEP
 *  holds the delivery until it calls actor_ack() or actor_nack() (the
 *  delivery's lease can be extended meanwhile with actor_extend() or,
 *  for jobs of no known length, actor_keepalive()).  A handler may also
 *  ack or nack inside the call; the runtime then sends nothing more.  A
 *  durable delivery whose body is invalid, or whose type has no handler,
 *  is dead-lettered at once (sy.nack requeue = false, with the reason).
 *
 *  Durable credit stays exact.  A message delivered again while this
 *  actor still holds it (its lease ran out while the handler kept it and
 *  the broker gave it to us again) does not run its handler a second
 *  time: the runtime counts the copy, and when the job is acked or
 *  nacked it sends that sy.ack / sy.nack once more per copy (the broker
 *  spent a credit on each and takes the extra ones as late settles that
 *  only return the credit; receipts answering the extra nacks are
 *  dropped).  Deliveries still held when the connection is lost belong
 *  to the dead session: the broker gives them out again (attempt + 1)
 *  and the new hello restores the whole window, so their keepalives stop
 *  and their ack or nack is not sent (actor_ack() returns SY_ECLOSED).
 *  If the new session delivers such a message to this actor while the
 *  handler still holds it, the new delivery takes the old one's place
 *  (no second run; its keepalive starts again).  A message delivered
 *  again after this actor acked it (a late ack, or one not sent for a
 *  dead session) is acked at once without running the handler (the last
 *  64 acked ids are remembered).
 *
 *  Durable sends: actor_send() with opts->durable; the broker answers
 *  sy.receipt (corr = the message's id) once the message is on disk, or
 *  with DUPLICATE / QUEUE_FULL.  The receipt reaches the "sy.receipt"
 *  handler, unless a caller waits for it with actor_wait_receipt();
 *  actor_receipt_parse() reads any receipt.
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
 *  actor_destroy(), which says sy.bye if it said hello.  Messages handed to a
 *  handler are borrowed and valid only during the call.
 *
 *  Security: with opts->cert set the DEALER is a CURVE client.  The
 *  certificate (certs.h: a NAME.secret file, mode 0600) is read, applied
 *  to each new socket with the broker's public key (opts->broker_key, or
 *  the file opts->broker_cert) and wiped from memory again at every
 *  (re)connect: no secret stays in this process outside libzmq's socket
 *  options, and none is ever logged.  The broker knows a device by its
 *  certificate's name, so the actor's name must be that name: a NULL
 *  opts->name means "the certificate's name", and another name is
 *  refused by actor_new().  A broker that refuses the device (key not
 *  enrolled or revoked: the CURVE handshake fails; or a DENIED receipt
 *  for the hello; or sy.bye "revoked") is logged as "the broker refused
 *  this device: ..." and retried with the growing backoff, never in a
 *  tight loop.  Without opts->cert nothing changes (plaintext).
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

    /* CURVE (see "Security" above).  All three NULL or "": plaintext. */
    const char  *cert;          /* this peer's certificate: DIR/NAME.secret,
                                   or DIR/NAME (".secret" is added), or
                                   DIR/NAME.cert (the .secret beside it) */
    const char  *broker_key;    /* the broker's public key, Z85 (40 chars);
                                   NULL or "": read from broker_cert */
    const char  *broker_cert;   /* a file holding the broker's public key:
                                   NAME.cert (a NAME.secret path means the
                                   NAME.cert beside it; the secret file is
                                   never read) */
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

/* Fills the CURVE fields of opts from the "security/..." settings of cfg
   when security/curve is true: cert = cert_override if not NULL, else
   security/cert; broker_key = security/broker_key; broker_cert =
   security/broker_cert.  With security/curve false it sets all three to
   NULL (plaintext), whatever cert_override says.  Returns 0, or
   SY_ECONFIG when curve is on but no certificate is configured (a line
   in err).  The strings belong to cfg (or to the caller). */
int actor_opts_security(actor_opts_t *opts, const config_t *cfg,
                        const char *cert_override, char *err, size_t errlen);

/* Resolves a certificate path as opts->cert takes it ("DIR/NAME",
   "DIR/NAME.secret" or "DIR/NAME.cert") into the secret file's path
   (secret != NULL) and the public file's path (pub != NULL).  Returns 0
   or SY_EINVAL (empty, or too long for cap).  Pure. */
int actor_cert_paths(const char *cert, char *secret, char *pub, size_t cap);

/* Makes an actor and starts connecting (asynchronously: the hello goes out
   when the loop runs).  Returns NULL if opts are invalid (a message is
   logged), e.g. with CURVE: a certificate that cannot be read, has no
   secret key or another name than opts->name, or no usable broker key. */
actor_t *actor_new(const actor_opts_t *opts);

/* Replaces the services this actor offers (copied; NULL/0: none).  If
   connected, says sy.hello again at once with the new list: the broker
   takes that as a new session, so durable deliveries still held belong to
   the old one (as after a reconnect: hand them back with actor_nack()
   first if they should go to another worker at once), and the state
   callback runs again with up = true after the new sy.welcome.  Used by
   workers that offer a service only while their backend answers.
   Returns 0, SY_EINVAL (a name not valid or refused) or SY_ENOMEM. */
int actor_set_services(actor_t *self, const char *const *services, size_t n);

/* Says sy.bye if a hello went out on the current connection, closes the socket, frees everything, sets
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

/* Gives back n credits held by handlers that returned ACTOR_KEEP for
   non-durable deliveries.  Not for durable deliveries: their credit comes
   back with actor_ack() / actor_nack(). */
void actor_release(actor_t *self, uint32_t n);

/* True if msg used one credit: a delivery to a service (not "@name", not
   sy.*).  Only for such a message does a handler's ACTOR_KEEP hold a
   credit that it must later give back with actor_release(self, 1). */
bool actor_msg_uses_credit(const actor_msg_t *msg);

/* True if msg is a durable delivery: it uses a credit (see above) and its
   header says durable.  Its credit comes back with actor_ack() or
   actor_nack() only. */
bool actor_msg_is_durable(const actor_msg_t *msg);

/* Acknowledges the durable delivery id: the broker removes it and gives
   the credit back.  For a delivery whose handler returned ACTOR_KEEP (or
   inside the handler).  Stops a keepalive of id.  Sends one sy.ack more
   for each further delivery of id this session received while it was
   held (see "Durable credit" above).  Returns 0, SY_ENOTFOUND (id is not
   a durable delivery this actor holds: nothing is sent), SY_ECLOSED (not
   connected, or the delivery belongs to a lost connection: nothing is
   sent, the broker delivers it again) or a send error. */
int actor_ack(actor_t *self, const uint8_t id[16]);

/* Refuses the durable delivery id: requeue true gives it back to the
   queue (not before delay_ms; the broker may add its backoff), false
   dead-letters it now.  reason (may be NULL; cut to 256 bytes) is kept
   with a dead letter.  The broker gives the credit back.  Like
   actor_ack(), one sy.nack more per further delivery of id held.
   Returns as actor_ack(). */
int actor_nack(actor_t *self, const uint8_t id[16], const char *reason,
               bool requeue, uint64_t delay_ms);

/* Extends the lease of the held durable delivery id to ms from now
   (1 .. 30 days).  The credit stays held.  Returns 0, SY_ENOTFOUND,
   SY_EINVAL (ms out of range), SY_ECLOSED (no connection, or a delivery
   of a lost connection) or a send error. */
int actor_extend(actor_t *self, const uint8_t id[16], uint64_t ms);

/* Keeps the lease of the held durable delivery id alive until it is
   acked or nacked, with no upper limit: extends it to lease_ms now and
   then every every_ms (every_ms < lease_ms; extend often enough that a
   lost extension or a slow loop turn does not let the lease run out:
   every_ms <= lease_ms / 3 is a good rule).  A second call replaces the
   first.  Stops when the connection is lost (the broker has then given
   the message out again), and starts again if the new session delivers
   id to this actor while it is still held.  Returns 0, SY_ENOTFOUND,
   SY_EINVAL, SY_ECLOSED (a delivery of a lost connection: kept for such
   a new delivery) or SY_ENOMEM. */
int actor_keepalive(actor_t *self, const uint8_t id[16], uint32_t every_ms,
                    uint32_t lease_ms);

/* Number of durable deliveries this actor holds (handlers returned
   ACTOR_KEEP and nothing acked or nacked them yet), stale ones included. */
size_t actor_held_durable(const actor_t *self);

/* A sy.receipt, read. */
typedef struct {
    bool     ok;
    bool     has_id;                /* id present */
    bool     has_corr;              /* corr present in the header */
    uint8_t  id[16];                /* stored id; DUPLICATE: the first one's */
    uint8_t  corr[16];              /* the message this receipt answers */
    int      code;                  /* 0 if ok, else syerr_from_name(code) or
                                       SY_EINTERNAL for a name not known */
    char     code_name[33];         /* "" if ok */
    char     detail[33];
    char     msg[513];
} actor_receipt_t;

/* Reads the sy.receipt msg into *out.  Returns 0, SY_EINVAL (msg is not a
   sy.receipt) or SY_EBAD_BODY (body not a map or ok missing).  No socket
   needed: pure. */
int actor_receipt_parse(const actor_msg_t *msg, actor_receipt_t *out);

/* Runs the loop until the sy.receipt whose corr is id arrives (that
   receipt then goes to out, not to the sy.receipt handler) or timeout_ms
   passes.  Returns 0 (out filled; check out->ok), SY_ETIMEOUT, SY_EINVAL.
   A receipt that arrived before the call is not seen (it went to the
   handler): for pipelined sends use the sy.receipt handler.  Not from
   inside a handler or timer of the same loop. */
int actor_wait_receipt(actor_t *self, const uint8_t id[16], int timeout_ms,
                       actor_receipt_t *out);

/* True between sy.welcome and the loss of the connection. */
bool actor_connected(const actor_t *self);

/* True if the broker refused this device since the last sy.welcome
   (CURVE handshake refused, hello refused, or revoked): for tools that
   want to say why they could not connect. */
bool actor_refused(const actor_t *self);

/* The name, as given (or the certificate's, see actor_opts_t). */
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
