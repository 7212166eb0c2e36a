/*  broker.c -- the ROUTER socket, the loop, and what each message does.
 *
 *  Hot path.  Frames are raw zmq_msg_t.  The header is decoded with
 *  envelope_decode() (no allocation) into an envelope_t on the stack,
 *  changed (`from`, `ts`), and encoded again into a stack buffer; the body
 *  frame is handed to zmq_msg_send(), which moves it without a copy.  The
 *  socket is drained with ZMQ_DONTWAIT each time zloop finds it readable,
 *  up to BROKER_BATCH messages, so that one wake-up serves a burst (and a
 *  durable store can later commit a burst in one transaction).
 *
 *  Durable messages (docs/DURABLE.md) go into the store's batch of the
 *  current loop turn (durable.c), and so do the acks, nacks and lease
 *  extensions read in it, the releases of actors that left, and the takes
 *  that lease stored messages to actors with credit: one write
 *  transaction, one fsync per turn.  At the end of the turn
 *  (broker_durable_turn) the takes run, the batch commits, and only then
 *  the receipts go out, then the deliveries taken in it: a delivery is
 *  never on the wire before the lease it stands for is on disk.  The
 *  credit a take uses is spent when the message is taken (so that the
 *  next take of the turn goes elsewhere) and given back if its batch
 *  fails to commit or its send fails.  broker_service_ready() is called
 *  whenever credit may have appeared on a service; it serves the
 *  in-memory waiting queue, then -- only when the service's `stored` hint
 *  says the store may hold something -- marks it for the end of the
 *  turn.  The non-durable path never calls the store.
 *
 *  Peers are found by routing id (every message) and by name (direct
 *  routing, takeover) in the registry; subscriptions live in topics.
 *  A peer whose connection turns out closed during a send (EHOSTUNREACH,
 *  thanks to ZMQ_ROUTER_MANDATORY) is only marked gone there and removed
 *  by the next sweep, because removing it may free the very service the
 *  sending code is walking.
 *
 *  Closed connections.  ZeroMQ does not tell a ROUTER that a peer's
 *  connection closed, so a socket monitor does (ZMQ_EVENT_ACCEPTED /
 *  DISCONNECTED with the descriptor, read from an inproc PAIR in the same
 *  loop), and sy.hello notes the descriptor its frames came in on
 *  (ZMQ_SRCFD, read on hello only: the hot path pays nothing).  conns.h
 *  keeps a generation per descriptor, so that the close of an old
 *  connection is never taken for the new one that got its number; the
 *  rule is "in doubt, keep the peer" (liveness stays the backstop).  The
 *  monitor is read when it is readable and before each hello, so a hello
 *  is judged with the ACCEPTED of its own connection known (libzmq emits
 *  it before the connection's handshake can complete).  A close is applied only once the ROUTER has been
 *  drained (or after BROKER_DROP_WAIT_MS), because the connection's last
 *  messages -- an ack, a sy.bye -- may still sit in the socket and must
 *  be read first.  Then the peer leaves with reason "disconnected" and
 *  what it held in the durable store is deliverable again at once.
 *
 *  Security (broker/guard.h) sits in broker_handle, before anything else
 *  looks at a message: who sent it (the certificate's name and role with
 *  CURVE, security/default_role without), whether it is over its rate,
 *  whether its role may send that type; sy.hello must carry the
 *  certificate's own name and only services the role may offer.  With
 *  CURVE, `from` is the certificate's name by construction (hello name ==
 *  certificate name, and a connection whose certificate does not match
 *  the name registered for its routing id is treated as unknown).  A
 *  certificate revoked while connected is dropped at once (sy.bye
 *  "revoked", presence.leave "revoked"); its later messages are DENIED.
 *
 *  Queries (sy.query) are answered from the registry and the store, never
 *  on the hot path: the store's pending batch is committed first (its
 *  receipts are built in the scratch buffer, so before an answer starts
 *  there).  place counts the live actors of a service here and asks the
 *  store the rest; cancel is owner-checked (acl.h): the guard's rules
 *  (guard_acl) decide, and the broker knows who offers the reply_to
 *  service.
 *
 *  Errors to a client are sy.receipt {ok:false, code, detail, msg} with
 *  corr = the failed message's id when its header could be read.  Bodies
 *  of application messages are never decoded nor logged.
 */
#include "broker/broker.h"

#include <czmq.h>
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <string.h>

#include "broker/acl.h"
#include "broker/conns.h"
#include "broker/durable.h"
#include "broker/guard.h"
#include "broker/queues.h"
#include "broker/registry.h"
#include "broker/status.h"
#include "broker/topics.h"
#include "common/sylog.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

#define BROKER_BATCH   1024     /* messages read per wake-up */
/* Messages queued per pipe either way: memory_max / max_msg, so that a
   peer that stops reading holds at most about memory_max in its pipe, but
   never fewer than BROKER_HWM_MIN (a burst of small messages must not be
   refused) nor more than BROKER_HWM_MAX. */
#define BROKER_HWM_MIN 1000
#define BROKER_HWM_MAX 100000
#define BROKER_LINGER  1000     /* ms to flush on close */
#define BROKER_ERRMSG  256
#define BROKER_EXPIRE_MAX 1000  /* leases / ttls handled per timer tick */
#define BROKER_PROBE_MS 1000    /* how often idle services ask the store */
#define BROKER_DROP_WAIT_MS 500 /* a close waits at most this for the
                                   connection's last messages to be read */
#define BROKER_MONITOR_EVENTS (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)

/* A connection that closed, waiting for its last messages to be read. */
typedef struct {
    int      fd;
    uint32_t gen;
    uint64_t at;                /* monotonic ms of the event */
    uint8_t  rid[1 + CONNS_RID_MAX];
} broker_drop_t;

struct _broker_t {
    zsock_t  *router;
    void     *sock;             /* raw handle of router, for zmq_msg_* */
    zloop_t  *loop;
    int       timer;
    registry_t *reg;
    topics_t *topics;
    syid_t    ids;
    msgpack_sbuffer sbuf;       /* scratch for bodies the broker writes */
    char     *endpoint;         /* as bound */
    char      name[ENVELOPE_NAME_MAX + 1];
    uint32_t  hb_ms, liveness_ms;
    size_t    max_msg;
    size_t    memory_max;       /* bytes all waiting messages may take */
    uint64_t  started;          /* monotonic ms */
    bool      stop;
    durable_t *durable;         /* the durable queues, NULL without a store */
    bool      pump;             /* some service may have durable work */
    uint64_t  last_probe;       /* monotonic ms of the last idle probe */
    guard_t  *guard;            /* identity, roles, rate limits */
    config_t *own_cfg;          /* defaults, when the caller gave none */
    zsock_t  *monitor;          /* PAIR reading the ROUTER's socket monitor */
    conns_t  *conns;            /* descriptor -> connection generation */
    broker_drop_t *drops;       /* closed connections not applied yet */
    size_t    ndrops, capdrops;
    /* ok receipts of a commit gathered for one peer that asked for
       batch_receipts (broker_on_receipt): sent as one sy.receipt {ids} */
    uint8_t   grp_rid[1 + DURABLE_RID_MAX];
    uint8_t (*grp_ids)[ENVELOPE_ID_LEN];   /* DURABLE_BATCH of them */
    size_t    ngrp;
};

/* A message waiting in a service's queue: header already stamped. */
typedef struct {
    envelope_t hdr;
    zmq_msg_t  body;
    uint64_t   deadline;        /* monotonic ms, 0: none */
    size_t     bytes;           /* what it costs while it waits: the item
                                   and the body (registry byte budget) */
} broker_item_t;

static void broker_durable_release(broker_t *self, const char *name);
static void broker_durable_turn(broker_t *self);

static uint64_t broker_now(void)
{
    return (uint64_t) zclock_mono();
}

/* Up to the first 16 bytes of a routing id in hex, for debug logs. */
#define BROKER_RID_HEX 33
static const char *broker_rid_hex(const uint8_t *rid, char out[BROKER_RID_HEX])
{
    out[0] = '\0';
    for (size_t i = 0; i < rid[0] && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", rid[1 + i]);
    return out;
}

static void broker_item_free(void *p)
{
    broker_item_t *it = p;
    zmq_msg_close(&it->body);
    free(it);
}

/* ---------------------------------------------------------------- sending */

/* Sends rid, header, then body: copied from (data, len) when body is NULL,
   else moved out of *body on success.  Returns 0, SY_ECLOSED (the peer is
   not connected), SY_EQUEUE_FULL (its pipe is full) or SY_EINTERNAL. */
static int broker_send_encoded(broker_t *self, const uint8_t *rid, const uint8_t *hbuf,
                               size_t hlen, zmq_msg_t *body, const void *data, size_t len)
{
    if (zmq_send(self->sock, rid + 1, rid[0], ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EHOSTUNREACH ? SY_ECLOSED
             : errno == EAGAIN ? SY_EQUEUE_FULL : SY_EINTERNAL;
    /* once the first frame is taken, the rest of the message is too */
    if (zmq_send(self->sock, hbuf, hlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return SY_EINTERNAL;
    int rc = body ? zmq_msg_send(body, self->sock, ZMQ_DONTWAIT)
                  : zmq_send(self->sock, data, len, ZMQ_DONTWAIT);
    return rc < 0 ? SY_EINTERNAL : 0;
}

/* Same, with a header to encode first. */
static int broker_send(broker_t *self, const uint8_t *rid, const envelope_t *hdr,
                       zmq_msg_t *body, const void *data, size_t len)
{
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    /* Every header sent here was decoded (and so checked) or built with
       the envelope setters: no need to check its characters again. */
    int hlen = envelope_encode_trusted(hdr, hbuf, sizeof hbuf);
    if (hlen < 0) {
        sylog_error("cannot encode a %s header: %s", hdr->type, syerr_name(hlen));
        return SY_EINTERNAL;
    }
    return broker_send_encoded(self, rid, hbuf, (size_t) hlen, body, data, len);
}

/* A header for something the broker says itself. */
static void broker_own_header(broker_t *self, envelope_t *hdr, const char *type,
                              const uint8_t *corr)
{
    envelope_init(hdr);
    syid_next(&self->ids, hdr->id);
    envelope_set_type(hdr, type);
    envelope_set_from(hdr, self->name);
    hdr->ts = syid_now_ms();
    hdr->present |= ENV_HAS_TS;
    if (corr) {
        memcpy(hdr->corr, corr, ENVELOPE_ID_LEN);
        hdr->present |= ENV_HAS_CORR;
    }
}

/* Sends a broker message whose body is in self->sbuf.  Failures are only
   logged: a control message to a vanished peer has nobody to tell. */
static void broker_send_own(broker_t *self, const uint8_t *rid, const char *type,
                            const uint8_t *corr)
{
    envelope_t hdr;
    broker_own_header(self, &hdr, type, corr);
    int rc = broker_send(self, rid, &hdr, NULL, self->sbuf.data, self->sbuf.size);
    if (rc)
        sylog_debug("%s not sent: %s", type, syerr_name(rc));
}

static msgpack_packer broker_body_start(broker_t *self)
{
    msgpack_sbuffer_clear(&self->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->sbuf, msgpack_sbuffer_write);
    return pk;
}

static void broker_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Receipt {ok:false, code, detail, msg} for error `err` (a wire or a
   detail code; is_body picks BAD_BODY for decoding details). */
static void broker_refuse(broker_t *self, const uint8_t *rid, const uint8_t *corr,
                          int err, bool is_body, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void broker_refuse(broker_t *self, const uint8_t *rid, const uint8_t *corr,
                          int err, bool is_body, const char *fmt, ...)
{
    char msg[BROKER_ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int wire = syerr_wire(err, is_body);

    msgpack_packer pk = broker_body_start(self);
    msgpack_pack_map(&pk, wire != err ? 4 : 3);
    broker_pack_str(&pk, "ok");
    msgpack_pack_false(&pk);
    broker_pack_str(&pk, "code");
    broker_pack_str(&pk, syerr_name(wire));
    if (wire != err) {
        broker_pack_str(&pk, "detail");
        broker_pack_str(&pk, syerr_name(err));
    }
    broker_pack_str(&pk, "msg");
    broker_pack_str(&pk, msg);
    sylog_debug("refused: %s %s: %s", syerr_name(wire), syerr_name(err), msg);
    broker_send_own(self, rid, "sy.receipt", corr);
}

/* Refusal to the sender of a message that was accepted earlier (it
   waited): found by name, since it may have reconnected since. */
static void broker_refuse_item(broker_t *self, broker_item_t *it, int err,
                               const char *msg)
{
    registry_peer_t *to = registry_peer_by_name(self->reg, it->hdr.from);
    if (to)
        broker_refuse(self, to->rid, it->hdr.id, err, false, "%s (to %s)",
                      msg, it->hdr.to);
}

static void broker_item_expired(void *p, void *arg)
{
    broker_item_t *it = p;
    broker_refuse_item(arg, it, SY_EEXPIRED, "ttl passed while waiting for credit");
    broker_item_free(it);
}

static void broker_item_orphaned(void *p, void *arg)
{
    broker_item_t *it = p;
    broker_refuse_item(arg, it, SY_ENO_SERVICE, "the last actor of the service left");
    broker_item_free(it);
}

/* ---------------------------------------------------------------- events */

typedef struct {
    broker_t *self;
    const uint8_t *hbuf;
    size_t hlen;
    const zmq_msg_t *body;      /* copied per subscriber */
    const void *data;           /* or these bytes */
    size_t len;
} broker_fanout_t;

static void broker_fanout_one(void *who, void *arg)
{
    broker_fanout_t *f = arg;
    registry_peer_t *p = who;
    if (p->gone)
        return;
    void *sock = f->self->sock;
    if (zmq_send(sock, p->rid + 1, p->rid[0], ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EHOSTUNREACH)
            registry_peer_mark_gone(p);
        return;
    }
    zmq_send(sock, f->hbuf, f->hlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (!f->body) {
        zmq_send(sock, f->data, f->len, ZMQ_DONTWAIT);
        return;
    }
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, (zmq_msg_t *) f->body);   /* refcounted, no byte copy */
    if (zmq_msg_send(&copy, sock, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&copy);
}

/* Sends an event (header hdr, body from body or data/len) to everyone
   subscribed to topic. */
static void broker_fanout(broker_t *self, const envelope_t *hdr, const char *topic,
                          size_t tlen, const zmq_msg_t *body, const void *data,
                          size_t len)
{
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode_trusted(hdr, hbuf, sizeof hbuf);
    if (hlen < 0)
        return;
    broker_fanout_t f = { self, hbuf, (size_t) hlen, body, data, len };
    topics_match(self->topics, topic, tlen, broker_fanout_one, &f);
}

/* The broker's own presence events. */
static void broker_presence(broker_t *self, const registry_peer_t *p,
                            const char *name, const char *reason)
{
    if (topics_count(self->topics) == 0)
        return;
    const char *topic = p ? "presence.join" : "presence.leave";
    msgpack_packer pk = broker_body_start(self);
    msgpack_pack_map(&pk, 2);
    broker_pack_str(&pk, "topic");
    broker_pack_str(&pk, topic);
    broker_pack_str(&pk, "data");
    if (p) {
        msgpack_pack_map(&pk, 3);
        broker_pack_str(&pk, "name");
        broker_pack_str(&pk, p->name);
        broker_pack_str(&pk, "services");
        msgpack_pack_array(&pk, p->nservices);
        for (size_t i = 0; i < p->nservices; i++)
            broker_pack_str(&pk, registry_service_name(p->services[i]));
        broker_pack_str(&pk, "credit");
        msgpack_pack_uint32(&pk, p->credit);
    }
    else {
        msgpack_pack_map(&pk, 2);
        broker_pack_str(&pk, "name");
        broker_pack_str(&pk, name);
        broker_pack_str(&pk, "reason");
        broker_pack_str(&pk, reason);
    }
    envelope_t hdr;
    broker_own_header(self, &hdr, "sy.event", NULL);
    broker_fanout(self, &hdr, topic, strlen(topic), NULL, self->sbuf.data,
                  self->sbuf.size);
}

/* ---------------------------------------------------------------- peers */

/* Removes a peer: subscriptions, registry (orphans get NO_SERVICE), then
   tells the subscribers. */
static void broker_leave(broker_t *self, registry_peer_t *peer, const char *reason)
{
    char name[ENVELOPE_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", peer->name);
    sylog_info("actor %s left (%s)", name, reason);
    topics_drop(self->topics, peer);
    registry_peer_remove(self->reg, &peer, broker_item_orphaned, self);
    broker_durable_release(self, name);
    broker_presence(self, NULL, name, reason);
}

/* ---------------------------------------------------------------- connections */

/* Remembers a closed connection whose peer is to leave once the ROUTER
   holds nothing more of it. */
static void broker_drop_later(broker_t *self, int fd, uint32_t gen, const uint8_t *rid)
{
    if (self->ndrops == self->capdrops) {
        size_t cap = self->capdrops ? 2 * self->capdrops : 16;
        broker_drop_t *p = realloc(self->drops, cap * sizeof *p);
        if (!p) {
            sylog_warn("out of memory: the close of connection %d is left to liveness", fd);
            return;
        }
        self->drops = p;
        self->capdrops = cap;
    }
    broker_drop_t *d = &self->drops[self->ndrops++];
    d->fd = fd;
    d->gen = gen;
    d->at = broker_now();
    memcpy(d->rid, rid, 1 + (size_t) rid[0]);
}

/* One monitor event: ACCEPTED opens a connection generation, DISCONNECTED
   closes it (and names the peer that said hello on it, if any). */
static void broker_on_conn_event(broker_t *self, uint16_t event, int32_t fd)
{
    if (event == ZMQ_EVENT_ACCEPTED) {
        if (conns_accepted(self->conns, fd) != 0)
            sylog_debug("connection on descriptor %d not tracked", fd);
        return;
    }
    if (event != ZMQ_EVENT_DISCONNECTED)
        return;
    uint32_t gen = 0;
    uint8_t rid[1 + CONNS_RID_MAX];
    if (conns_disconnected(self->conns, fd, &gen, rid))
        broker_drop_later(self, fd, gen, rid);
}

/* Reads every monitor event there is, without waiting.  Each event is
   two frames: 6 bytes (uint16 event, uint32 value = the descriptor, host
   order), then the endpoint. */
static void broker_monitor_drain(broker_t *self)
{
    if (!self->monitor)
        return;
    void *mon = zsock_resolve(self->monitor);
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        int32_t value = -1;
        bool ok = zmq_msg_size(&ev) == 6;
        if (ok) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (uint8_t *) zmq_msg_data(&ev) + 2, 4);
        }
        while (zmq_msg_more(&ev) && zmq_msg_recv(&ev, mon, 0) >= 0)
            ;                   /* the endpoint: not needed */
        zmq_msg_close(&ev);
        if (ok)
            broker_on_conn_event(self, event, value);
    }
}

/* The peers of closed connections leave: all of them when the ROUTER was
   drained (their last messages were read), else those that waited long
   enough.  A peer is found by the routing id that said hello on the
   connection and must still be on that very connection (fd, generation):
   anything else is left alone. */
static void broker_apply_drops(broker_t *self, bool drained)
{
    uint64_t now = broker_now();
    size_t kept = 0;
    for (size_t i = 0; i < self->ndrops; i++) {
        broker_drop_t *d = &self->drops[i];
        if (!drained && now - d->at < BROKER_DROP_WAIT_MS) {
            self->drops[kept++] = *d;
            continue;
        }
        registry_peer_t *p = registry_peer_by_key(self->reg, d->rid);
        if (p && p->fd == d->fd && p->fd_gen == d->gen && d->gen != 0)
            broker_leave(self, p, "disconnected");
    }
    self->ndrops = kept;
}

/* Notes the connection a hello came in on (fd from ZMQ_SRCFD), when the
   monitor knows it as open; else the peer has none and only liveness
   removes it. */
static void broker_conn_hello(broker_t *self, registry_peer_t *peer, int fd)
{
    peer->fd = fd;
    peer->fd_gen = 0;
    if (fd < 0 || !self->monitor)
        return;
    broker_monitor_drain(self);         /* its own ACCEPTED came before it */
    uint32_t gen = conns_current(self->conns, fd);
    if (gen && conns_bind(self->conns, fd, gen, peer->rid) == 0)
        peer->fd_gen = gen;
    else
        sylog_debug("actor %s: connection on descriptor %d not known open; "
                    "liveness only", peer->name, fd);
}

/* Starts the socket monitor on the ROUTER (before any bind, so that every
   connection's ACCEPTED is seen).  Without it -- it cannot fail in
   practice -- the broker still works, with liveness only. */
static void broker_monitor_start(broker_t *self)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://sy-broker-monitor-%p", (void *) self);
    self->conns = conns_new();
    if (!self->conns || zmq_socket_monitor(self->sock, ep, BROKER_MONITOR_EVENTS) != 0) {
        sylog_warn("no socket monitor (%s): closed connections are seen at liveness only",
                   zmq_strerror(errno));
        return;
    }
    self->monitor = zsock_new(ZMQ_PAIR);
    if (self->monitor) {
        zsock_set_rcvhwm(self->monitor, 0);     /* never lose, never block an event */
        if (zsock_connect(self->monitor, "%s", ep) != 0)
            zsock_destroy(&self->monitor);
    }
    if (!self->monitor) {
        zmq_socket_monitor(self->sock, NULL, 0);
        sylog_warn("no socket monitor reader: closed connections are seen at liveness only");
    }
}

/* Stops the monitor before the ROUTER closes (the close's events would
   have no reader). */
static void broker_monitor_stop(broker_t *self)
{
    if (self->monitor && self->sock)
        zmq_socket_monitor(self->sock, NULL, 0);
    zsock_destroy(&self->monitor);
}

/* Delivers one message to one chosen actor: the header gets the actor's
   turn (nothing to change for now: from/ts were stamped on arrival), the
   body is moved.  On SY_ECLOSED the actor is marked gone. */
static int broker_deliver(broker_t *self, registry_peer_t *peer,
                          const envelope_t *hdr, zmq_msg_t *body)
{
    int rc = broker_send(self, peer->rid, hdr, body, NULL, 0);
    if (rc == SY_ECLOSED)
        registry_peer_mark_gone(peer);
    return rc;
}

/* Delivers to the best actor of svc with credit, trying the next one when
   an actor turns out gone.  Returns 0, SY_ENOTFOUND (nobody has credit),
   or the send error. */
static int broker_deliver_service(broker_t *self, registry_service_t *svc,
                                  const envelope_t *hdr, zmq_msg_t *body)
{
    for (size_t tries = registry_service_actors(svc); tries > 0; tries--) {
        registry_peer_t *peer = registry_service_pick(svc);
        if (!peer)
            return SY_ENOTFOUND;
        int rc = broker_deliver(self, peer, hdr, body);
        if (rc == 0) {
            registry_peer_use(peer);
            return 0;
        }
        if (rc != SY_ECLOSED)
            return rc;
    }
    return SY_ENOTFOUND;
}

static void broker_durable_ready(broker_t *self, registry_service_t *svc);

/* Credit may have appeared on svc: hand it waiting messages while an
   actor can take them, then (only if the store may hold some: one flag,
   no store call on the non-durable path) durable ones. */
static void broker_service_ready(broker_t *self, registry_service_t *svc)
{
    uint64_t now = broker_now();
    while (registry_service_waiting(svc) > 0 && registry_service_has_credit(svc)) {
        broker_item_t *it = registry_wait_pop(svc, now, broker_item_expired, self);
        if (!it)
            break;
        int rc = broker_deliver_service(self, svc, &it->hdr, &it->body);
        if (rc == SY_ENOTFOUND || rc == SY_EQUEUE_FULL) {
            /* every actor with credit turned out gone, or the chosen one's
               pipe is full (it is not reading): it keeps its turn and
               waits for the next credit (ttl and the queue's bounds still
               apply) instead of being refused with all behind it */
            if (registry_wait_unpop(svc, it, it->hdr.prio, it->deadline, it->bytes) != 0) {
                broker_refuse_item(self, it, SY_EQUEUE_FULL, "the queue is full");
                broker_item_free(it);
            }
            break;
        }
        if (rc != 0)
            broker_refuse_item(self, it, SY_EINTERNAL, "delivery failed");
        broker_item_free(it);
    }
    if (registry_service_stored(svc))
        broker_durable_ready(self, svc);
}

static void broker_peer_ready(broker_t *self, registry_peer_t *peer)
{
    for (size_t i = 0; i < peer->nservices; i++)
        broker_service_ready(self, peer->services[i]);
}


/* ---------------------------------------------------------------- durable */

/* The failure of a nack or lease extension, after its batch. */
static void broker_on_settle_receipt(broker_t *self, const durable_receipt_t *r)
{
    char hex[33];
    envelope_id_hex(r->msg_id, hex);
    if (r->rc == SY_ENOTFOUND)
        broker_refuse(self, r->rid, r->id, SY_EEXPIRED, false,
                      "%s is not in flight for %s (its lease ran out?)", hex, r->holder);
    else
        broker_refuse(self, r->rid, r->id, SY_EINTERNAL, false,
                      "the durable store failed: %s", syerr_name(r->rc));
}

_Static_assert(DURABLE_BATCH <= MSGTYPES_ACK_IDS_MAX,
               "a gathered receipt carries at most a batch of ids");

/* Sends the gathered ok receipts: sy.receipt {ok: true, ids} without
   corr, each id a stored message's (and the sent message's) id. */
static void broker_receipts_flush(broker_t *self)
{
    if (self->ngrp == 0)
        return;
    msgpack_packer pk = broker_body_start(self);
    msgpack_pack_map(&pk, 2);
    broker_pack_str(&pk, "ok");
    msgpack_pack_true(&pk);
    broker_pack_str(&pk, "ids");
    msgpack_pack_array(&pk, self->ngrp);
    for (size_t i = 0; i < self->ngrp; i++) {
        msgpack_pack_bin(&pk, ENVELOPE_ID_LEN);
        msgpack_pack_bin_body(&pk, self->grp_ids[i], ENVELOPE_ID_LEN);
    }
    self->ngrp = 0;
    broker_send_own(self, self->grp_rid, "sy.receipt", NULL);
}

/* An ok receipt for a peer that takes them gathered: kept (true), to go
   out with the others of its commit.  Receipts of one peer keep their
   order: a different peer's, or any receipt sent alone, flushes first. */
static bool broker_receipt_gather(broker_t *self, const durable_receipt_t *r)
{
    registry_peer_t *peer = r->rc == 0 && r->kind == DURABLE_RECEIPT_PUT
                            ? registry_peer_by_key(self->reg, r->rid) : NULL;
    bool same = self->ngrp && memcmp(self->grp_rid, r->rid, 1 + (size_t) r->rid[0]) == 0;
    if (!peer || !peer->batch_receipts || !same || self->ngrp == DURABLE_BATCH)
        broker_receipts_flush(self);
    if (!peer || !peer->batch_receipts)
        return false;
    memcpy(self->grp_rid, r->rid, 1 + (size_t) r->rid[0]);
    memcpy(self->grp_ids[self->ngrp++], r->id, ENVELOPE_ID_LEN);
    return true;
}

/* What a batch owed, after it committed (or failed). */
static void broker_on_receipt(const durable_receipt_t *r, void *arg)
{
    broker_t *self = arg;
    if (r->kind == DURABLE_RECEIPT_END) {
        broker_receipts_flush(self);
        return;
    }
    if (broker_receipt_gather(self, r))
        return;
    if (r->kind != DURABLE_RECEIPT_PUT) {
        broker_on_settle_receipt(self, r);
        return;
    }
    if (r->rc == SY_EDUPLICATE || r->rc == 0) {
        msgpack_packer pk = broker_body_start(self);
        msgpack_pack_map(&pk, r->rc ? 4 : 2);
        broker_pack_str(&pk, "ok");
        if (r->rc)
            msgpack_pack_false(&pk);
        else
            msgpack_pack_true(&pk);
        broker_pack_str(&pk, "id");
        msgpack_pack_bin(&pk, ENVELOPE_ID_LEN);
        msgpack_pack_bin_body(&pk, r->rc ? r->first_id : r->id, ENVELOPE_ID_LEN);
        if (r->rc) {
            broker_pack_str(&pk, "code");
            broker_pack_str(&pk, syerr_name(SY_EDUPLICATE));
            broker_pack_str(&pk, "msg");
            broker_pack_str(&pk, "the key was seen inside the dedup window; id is the first message's");
        }
        broker_send_own(self, r->rid, "sy.receipt", r->id);
    }
    else if (r->rc == SY_EQUEUE_FULL)
        broker_refuse(self, r->rid, r->id, r->rc, false, "the durable store is full (to %s)",
                      r->service);
    else
        broker_refuse(self, r->rid, r->id, r->rc, false, "the durable store failed (to %s)",
                      r->service);
}

static void broker_body_free(void *data, void *hint)
{
    (void) hint;
    free(data);
}

/* A committed delivery that did not go out: its lease is undone without
   using an attempt (durable_undeliver), after delay_ms, and its service
   may take it again. */
static void broker_durable_unsent(broker_t *self, const durable_delivery_t *dl,
                                  uint64_t delay_ms)
{
    durable_undeliver(self->durable, dl->id, dl->holder, delay_ms, syid_now_ms());
    registry_service_t *svc = registry_service_find(self->reg, dl->service);
    if (svc && delay_ms == 0)
        registry_service_set_stored(svc, true);
    self->pump = true;
}

/* The stored header of a delivery with `attempt` added, into out.  A
   header kept in memory since its put (dl->fresh) was written by this
   broker's encoder a moment ago: a fixmap without `attempt`, which gets
   the field appended and its count raised, a byte patch instead of a
   decode and an encode.  A header read from the store is decoded (and so
   checked: the store keeps no checksums) and encoded again.  Returns the
   length or a negative error (the stored header is unreadable). */
static int broker_delivery_header(const durable_delivery_t *dl, uint32_t attempt,
                                  uint8_t *out, size_t cap)
{
    static const uint8_t key[] = "\xa7" "attempt";
    size_t len = dl->header_len;
    if (dl->fresh && len > 0 && dl->header[0] >= 0x81 && dl->header[0] < 0x8f
        && len + sizeof key - 1 + 5 <= cap) {
        memcpy(out, dl->header, len);
        out[0]++;                       /* one more field in the fixmap */
        memcpy(out + len, key, sizeof key - 1);
        len += sizeof key - 1;
        if (attempt < 0x80) {           /* the smallest form, as the encoder */
            out[len++] = (uint8_t) attempt;
            return (int) len;
        }
        out[len++] = 0xce;              /* uint 32, big-endian */
        out[len++] = (uint8_t) (attempt >> 24);
        out[len++] = (uint8_t) (attempt >> 16);
        out[len++] = (uint8_t) (attempt >> 8);
        out[len++] = (uint8_t) attempt;
        return (int) len;
    }
    envelope_t env;
    int rc = envelope_decode(&env, dl->header, dl->header_len, NULL, 0);
    if (rc)
        return rc;
    env.attempt = attempt;
    env.present |= ENV_HAS_ATTEMPT;
    return envelope_encode_trusted(&env, out, cap);
}

/* Sends one committed delivery to the actor that holds its lease: the
   stored header gets `attempt`, the plaintext body goes without a copy.
   The credit was spent at the take.  A send that cannot go out (the
   connection is closed, the pipe is full) gives the message back
   without counting an attempt; one the broker cannot produce (internal
   error) counts, so that a message that always fails ends in the
   dead-letter queue instead of looping. */
static void broker_durable_send(broker_t *self, registry_peer_t *peer,
                                durable_delivery_t *dl)
{
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    uint64_t now = syid_now_ms();
    uint32_t attempt = dl->attempt < ENVELOPE_ATTEMPT_MAX ? dl->attempt
                                                          : ENVELOPE_ATTEMPT_MAX;
    int hlen = broker_delivery_header(dl, attempt, hbuf, sizeof hbuf);
    if (hlen < 0) {
        durable_nack(self->durable, NULL, NULL, dl->id, dl->holder,
                     "unreadable stored header", false, false, 0, now);
        registry_peer_give(peer, 1);
        return;
    }
    zmq_msg_t body;
    if (zmq_msg_init_data(&body, dl->body, dl->body_len, broker_body_free, NULL) != 0) {
        durable_nack(self->durable, NULL, NULL, dl->id, dl->holder, NULL, true, true, 0, now);
        registry_peer_give(peer, 1);
        return;
    }
    dl->body = NULL;                    /* the frame owns it now */
    int rc = broker_send_encoded(self, peer->rid, hbuf, (size_t) hlen, &body, NULL, 0);
    zmq_msg_close(&body);               /* frees it if it was not sent */
    if (rc == SY_ECLOSED) {
        registry_peer_mark_gone(peer);  /* its leave releases the rest */
        broker_durable_unsent(self, dl, 0);
    }
    else if (rc == SY_EQUEUE_FULL) {
        /* its pipe is full: later, not at once (it would fail again) */
        broker_durable_unsent(self, dl, durable_backoff_ms(self->durable, 1));
        registry_peer_give(peer, 1);
    }
    else if (rc) {
        durable_nack(self->durable, NULL, NULL, dl->id, dl->holder, NULL, true, true, 0, now);
        registry_peer_give(peer, 1);
    }
}

/* A delivery of a batch, after the batch's commit. */
static void broker_on_delivery(durable_delivery_t *dl, void *arg)
{
    broker_t *self = arg;
    registry_peer_t *peer = registry_peer_by_name(self->reg, dl->holder);
    if (!dl->committed) {
        /* the store never leased it: it is ready again; the credit too */
        if (peer)
            registry_peer_give(peer, 1);
        registry_service_t *svc = registry_service_find(self->reg, dl->service);
        if (svc)
            registry_service_set_stored(svc, true);
        self->pump = true;
        return;
    }
    if (!peer || peer->gone) {
        /* never sent (a leaving actor's deliveries are dropped at its
           release; a gone one cannot take them): back at once, without
           using an attempt, rather than at the lease's end */
        broker_durable_unsent(self, dl, 0);
        return;
    }
    broker_durable_send(self, peer, dl);
}

/* Leases stored messages of svc to its actors, in this turn's batch,
   while they have credit, never more than that credit; the credit is
   spent now, the messages go out after the commit.  A short take clears
   the service's hint. */
static void broker_durable_pump(broker_t *self, registry_service_t *svc)
{
    const char *name = registry_service_name(svc);
    uint64_t now = syid_now_ms();
    while (registry_service_stored(svc) && registry_service_has_credit(svc)) {
        registry_peer_t *peer = registry_service_pick(svc);
        if (!peer)
            break;
        size_t max = peer->credit_left < DURABLE_BATCH ? peer->credit_left : DURABLE_BATCH;
        size_t n = 0;
        int rc = durable_deliver(self->durable, name, peer->name, max, now, &n);
        if (rc) {
            sylog_error("store: cannot take from %s: %s", name, syerr_name(rc));
            registry_service_set_stored(svc, false);   /* the probe retries */
            break;
        }
        for (size_t i = 0; i < n; i++)
            registry_peer_use(peer);
        if (n < max)
            registry_service_set_stored(svc, false);
        if (n == 0)
            break;
    }
}

/* Credit or stored messages appeared on svc: the takes run at the end
   of the turn, in its batch. */
static void broker_durable_ready(broker_t *self, registry_service_t *svc)
{
    if (self->durable && registry_service_has_credit(svc))
        self->pump = true;
}

/* Every service may have durable work (messages came back). */
static void broker_durable_mark_all(broker_t *self)
{
    for (registry_service_t *s = registry_service_first(self->reg); s;
         s = registry_service_next(self->reg))
        registry_service_set_stored(s, true);
    self->pump = true;
}

/* Runs the deferred takes of every service that may have some. */
static void broker_durable_pump_all(broker_t *self)
{
    if (!self->durable || !self->pump)
        return;
    self->pump = false;
    for (registry_service_t *s = registry_service_first(self->reg); s;
         s = registry_service_next(self->reg))
        if (registry_service_stored(s) && registry_service_has_credit(s))
            broker_durable_pump(self, s);
}

/* The end of a loop turn: the takes the turn made possible go into its
   batch, the batch commits (one fsync), then its receipts and its
   deliveries go out.  Deliveries given back (a failed commit, a failed
   send) may make more takes possible: a few more rounds, bounded; what
   is left waits for the next turn (the timer makes one at least every
   250 ms). */
static void broker_durable_turn(broker_t *self)
{
    if (!self->durable)
        return;
    for (int round = 0; round < 3; round++) {
        broker_durable_pump_all(self);
        if (!durable_pending(self->durable))
            break;
        durable_flush(self->durable);
    }
}

/* Idle services with credit ask the store once in a while whether
   messages became ready (a nack's delay ran out). */
static void broker_durable_probe(broker_t *self)
{
    store_t *store = durable_store(self->durable);
    for (registry_service_t *s = registry_service_first(self->reg); s;
         s = registry_service_next(self->reg)) {
        if (registry_service_stored(s) || !registry_service_has_credit(s))
            continue;
        store_counts_t c;
        if (store_counts(store, registry_service_name(s), &c) == 0
            && c.ready[0] + c.ready[1] + c.ready[2] + c.delayed > 0) {
            registry_service_set_stored(s, true);
            self->pump = true;
        }
    }
}

/* An actor is gone: what it held is deliverable again at once. */
static void broker_durable_release(broker_t *self, const char *name)
{
    if (!self->durable)
        return;
    size_t n = 0;
    int rc = durable_release(self->durable, name, &n);
    if (rc)
        sylog_error("store: cannot release what %s held: %s", name, syerr_name(rc));
    if (n) {
        sylog_info("%zu durable message(s) held by %s are deliverable again", n, name);
        broker_durable_mark_all(self);
    }
}

/* True if a header of hlen bytes still fits once broker_durable_send()
   adds `attempt` to it, whatever the attempt, so that a header stored now
   can always be delivered (else it would fail at every delivery and end in
   the dead-letter queue). */
static bool broker_durable_fits(int hlen)
{
    /* The stored header has no attempt (broker_stamp clears it); adding it
       costs the key (1 + 7 bytes) and at most a uint32 (5 bytes).  Maps of
       at most 15 fields keep a one-byte header, and a header has at most
       13. */
    return hlen + 13 <= ENVELOPE_MAX_ENCODED;
}

/* A durable send: into this burst's batch; the receipt follows the commit. */
static void broker_route_durable(broker_t *self, registry_peer_t *peer, envelope_t *env,
                                 zmq_msg_t *body)
{
    if (envelope_is_direct(env)) {
        broker_refuse(self, peer->rid, env->id, SY_EFIELD_RANGE, false,
                      "durable: a durable message goes to a service, not to one actor (%s)",
                      env->to);
        return;
    }
    if (!self->durable) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false,
                      "this broker has no durable store");
        return;
    }
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode_trusted(env, hbuf, sizeof hbuf);
    if (hlen < 0) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false,
                      "cannot encode the header: %s", syerr_name(hlen));
        return;
    }
    if (!broker_durable_fits(hlen)) {
        broker_refuse(self, peer->rid, env->id, SY_EFIELD_RANGE, false,
                      "header: %d bytes leave no room for the attempt field the broker "
                      "adds at delivery (limit %d with it); shorten key, to or reply_to",
                      hlen, ENVELOPE_MAX_ENCODED);
        return;
    }
    int rc = durable_put(self->durable, peer->rid, env, hbuf, (size_t) hlen,
                         zmq_msg_data(body), zmq_msg_size(body), syid_now_ms());
    if (rc == 0) {
        /* visible to this turn's takes already: they share its batch */
        registry_service_t *svc = registry_service_find(self->reg, env->to);
        if (svc) {
            registry_service_set_stored(svc, true);
            broker_durable_ready(self, svc);
        }
    }
}

/* ---------------------------------------------------------------- bodies */

/* Finds field key of a map body (mpread: safe on any bytes).  The
   readers below return true if it is present with their type. */
static bool broker_body_field_at(const zmq_msg_t *body, const char *key, mpval_t *v,
                                 mpread_t *at)
{
    mpread_t r;
    mpval_t map;
    mpread_init(&r, zmq_msg_data((zmq_msg_t *) body), zmq_msg_size((zmq_msg_t *) body));
    return mpread_next(&r, &map) == 0 && map.kind == MP_MAP
        && mpread_map_find(&r, &map, key, v, at) == 0;
}

/* As above; a container's items are then read from *at (may be NULL). */
static bool broker_body_field(const zmq_msg_t *body, const char *key, mpval_t *v)
{
    return broker_body_field_at(body, key, v, NULL);
}

/* A string field, copied into out (capacity cap, NUL-terminated). */
static bool broker_body_str(const zmq_msg_t *body, const char *key, char *out,
                            size_t cap)
{
    mpval_t v;
    if (!broker_body_field(body, key, &v) || v.kind != MP_STR || v.len >= cap)
        return false;
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return true;
}

static bool broker_body_uint(const zmq_msg_t *body, const char *key, uint64_t *out)
{
    mpval_t v;
    return broker_body_field(body, key, &v) && mpval_as_uint(&v, out);
}

static bool broker_body_id(const zmq_msg_t *body, const char *key,
                           uint8_t out[ENVELOPE_ID_LEN])
{
    mpval_t v;
    if (!broker_body_field(body, key, &v) || v.kind != MP_BIN || v.len != ENVELOPE_ID_LEN)
        return false;
    memcpy(out, v.ptr, ENVELOPE_ID_LEN);
    return true;
}

static bool broker_body_bool(const zmq_msg_t *body, const char *key, bool *out)
{
    mpval_t v;
    if (!broker_body_field(body, key, &v) || v.kind != MP_BOOL)
        return false;
    *out = v.b;
    return true;
}

/* ---------------------------------------------------------------- session */

static void broker_welcome(broker_t *self, const registry_peer_t *peer,
                           const uint8_t *corr)
{
    msgpack_packer pk = broker_body_start(self);
    msgpack_pack_map(&pk, 4);
    broker_pack_str(&pk, "name");
    broker_pack_str(&pk, peer->name);
    broker_pack_str(&pk, "hb");
    msgpack_pack_uint32(&pk, self->hb_ms);
    broker_pack_str(&pk, "liveness");
    msgpack_pack_uint32(&pk, self->liveness_ms);
    broker_pack_str(&pk, "max_msg");
    msgpack_pack_uint64(&pk, self->max_msg);
    broker_send_own(self, peer->rid, "sy.welcome", corr);
}

static void broker_on_hello(broker_t *self, const uint8_t *rid, const envelope_t *env,
                            const zmq_msg_t *body, const guard_peer_t *who, int fd)
{
    /* the body passed msgtypes_validate: name is a name, services names */
    char name[ENVELOPE_NAME_MAX + 1] = "";
    uint64_t credit = 1;
    bool batch_receipts = false;
    broker_body_str(body, "name", name, sizeof name);
    broker_body_uint(body, "credit", &credit);
    broker_body_bool(body, "batch_receipts", &batch_receipts);
    if (name[0] == '@') {
        broker_refuse(self, rid, env->id, SY_EFIELD_CHARS, true,
                      "name: must not begin with @");
        return;
    }
    if (who->name && strcmp(name, who->name) != 0) {
        sylog_warn("certificate %s tried to say hello as %s: denied", who->name, name);
        broker_refuse(self, rid, env->id, SY_EDENIED, false,
                      "name: your certificate is %s; you cannot appear as %s",
                      who->name, name);
        return;
    }

    char svcbuf[REGISTRY_SERVICES_MAX][ENVELOPE_NAME_MAX + 1];
    const char *svcs[REGISTRY_SERVICES_MAX];
    size_t nsvc = 0;
    mpread_t r, at;
    mpval_t map, arr, v;
    mpread_init(&r, zmq_msg_data((zmq_msg_t *) body), zmq_msg_size((zmq_msg_t *) body));
    if (mpread_next(&r, &map) == 0
        && mpread_map_find(&r, &map, "services", &arr, &at) == 0 && arr.kind == MP_ARRAY) {
        for (uint32_t i = 0; i < arr.len && nsvc < REGISTRY_SERVICES_MAX; i++) {
            if (mpread_next(&at, &v) != 0 || v.kind != MP_STR || v.len > ENVELOPE_NAME_MAX)
                break;
            if (v.len && v.ptr[0] == '@') {
                broker_refuse(self, rid, env->id, SY_EFIELD_CHARS, true,
                              "services: a service name must not begin with @");
                return;
            }
            memcpy(svcbuf[nsvc], v.ptr, v.len);
            svcbuf[nsvc][v.len] = '\0';
            if (!guard_may_offer(self->guard, who->role, svcbuf[nsvc])) {
                sylog_warn("%s (role %s) may not offer %s: hello denied", name,
                           certs_role_name(who->role), svcbuf[nsvc]);
                broker_refuse(self, rid, env->id, SY_EDENIED, false,
                              "services: the role %s may not offer %s",
                              certs_role_name(who->role), svcbuf[nsvc]);
                return;
            }
            svcs[nsvc] = svcbuf[nsvc];
            nsvc++;
        }
    }

    registry_peer_t *peer, *displaced[2];
    int rc = registry_peer_add(self->reg, rid + 1, rid[0], name, svcs, nsvc,
                               (uint32_t) credit, broker_now(), &peer, displaced);
    if (rc) {
        broker_refuse(self, rid, env->id, rc == SY_ENOMEM ? SY_EINTERNAL : SY_EFIELD_RANGE,
                      true, "hello refused: %s", syerr_text(rc));
        return;
    }
    peer->batch_receipts = batch_receipts;
    snprintf(peer->role, sizeof peer->role, "%s", certs_role_name(who->role));
    snprintf(peer->cert, sizeof peer->cert, "%s", who->name ? who->name : "");
    broker_conn_hello(self, peer, fd);
    for (int i = 0; i < 2; i++) {
        registry_peer_t *old = displaced[i];
        if (!old)
            continue;
        bool same_conn = old->rid[0] == rid[0] && memcmp(old->rid + 1, rid + 1, rid[0]) == 0;
        if (!same_conn) {
            /* tell the old connection it lost its name */
            msgpack_packer pk = broker_body_start(self);
            msgpack_pack_map(&pk, 1);
            broker_pack_str(&pk, "reason");
            broker_pack_str(&pk, "replaced");
            broker_send_own(self, old->rid, "sy.bye", NULL);
        }
        broker_leave(self, old, same_conn ? "hello again" : "replaced");
    }
    char hex[BROKER_RID_HEX];
    sylog_debug("actor %s is connection %s (descriptor %d, generation %u)", peer->name,
                broker_rid_hex(rid, hex), peer->fd, peer->fd_gen);
    sylog_info("actor %s joined (%zu service%s, credit %u)", peer->name,
               peer->nservices, peer->nservices == 1 ? "" : "s", peer->credit);
    broker_welcome(self, peer, env->id);
    broker_presence(self, peer, NULL, NULL);
    broker_peer_ready(self, peer);
}

static void broker_on_event(broker_t *self, registry_peer_t *peer, envelope_t *env,
                            const zmq_msg_t *body)
{
    char topic[TOPICS_PREFIX_MAX + 1];
    if (!broker_body_str(body, "topic", topic, sizeof topic)) {
        broker_refuse(self, peer->rid, env->id, SY_EMISSING, true, "topic: missing");
        return;
    }
    broker_fanout(self, env, topic, strlen(topic), body, NULL, 0);
}

static void broker_on_sub(broker_t *self, registry_peer_t *peer, const envelope_t *env,
                          const zmq_msg_t *body, bool sub)
{
    char topic[TOPICS_PREFIX_MAX + 1];
    if (!broker_body_str(body, "topic", topic, sizeof topic)) {
        broker_refuse(self, peer->rid, env->id, SY_EMISSING, true, "topic: missing");
        return;
    }
    if (!sub) {
        topics_unsub(self->topics, peer, topic, strlen(topic));   /* idempotent */
        return;
    }
    int rc = topics_sub(self->topics, peer, topic, strlen(topic));
    if (rc)
        broker_refuse(self, peer->rid, env->id, rc == SY_ENOMEM ? SY_EINTERNAL : rc,
                      true, "topic: at most %d subscriptions per peer", TOPICS_PER_SUB);
}

/* sy.ack / sy.nack / sy.lease on a durable delivery.  Ack and nack end
   the delivery: its credit comes back whatever the store says (a late ack
   after a lease ran out must not leave the actor without credit). */
/* sy.ack {ids: [...]}: every id into this turn's batch, one credit back
   for each.  The body was validated (an array of 16-byte binaries). */
static void broker_on_ack_many(broker_t *self, registry_peer_t *peer,
                               const mpval_t *ids, mpread_t *at)
{
    if (ids->kind != MP_ARRAY)
        return;
    uint32_t n = 0;
    for (uint32_t i = 0; i < ids->len; i++) {
        mpval_t item;
        if (mpread_next(at, &item) != 0 || item.kind != MP_BIN
            || item.len != ENVELOPE_ID_LEN)
            break;
        durable_ack(self->durable, item.ptr, peer->name);
        n++;
    }
    registry_peer_give(peer, n);
    broker_peer_ready(self, peer);
}

static void broker_on_settle(broker_t *self, registry_peer_t *peer, const envelope_t *env,
                             const zmq_msg_t *body, char kind)
{
    if (!self->durable) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false,
                      "this broker has no durable store");
        return;
    }
    uint8_t id[ENVELOPE_ID_LEN];
    bool one = broker_body_id(body, "id", id);
    mpval_t many;
    mpread_t at;                        /* the items of ids */
    bool several = kind == 'a' && broker_body_field_at(body, "ids", &many, &at);
    if (one == several) {
        broker_refuse(self, peer->rid, env->id, SY_EMISSING, true,
                      "%s: give exactly one of id and ids", env->type);
        return;
    }
    if (several) {
        broker_on_ack_many(self, peer, &many, &at);
        return;
    }
    /* all into this turn's batch; a failure is answered after its commit */
    uint64_t now = syid_now_ms();
    if (kind == 'a')
        durable_ack(self->durable, id, peer->name);
    else if (kind == 'n') {
        char reason[STORE_REASON_MAX + 1] = "";
        bool requeue = true;
        uint64_t delay = 0;
        broker_body_str(body, "reason", reason, sizeof reason);
        broker_body_bool(body, "requeue", &requeue);
        bool has_delay = broker_body_uint(body, "delay_ms", &delay);
        int rc = durable_nack(self->durable, peer->rid, env->id, id, peer->name, reason,
                              requeue, has_delay, delay, now);
        if (rc == 0 && requeue && has_delay && delay == 0)
            broker_durable_mark_all(self);
    }
    else {
        uint64_t ms = 0;
        broker_body_uint(body, "ms", &ms);
        durable_extend(self->durable, peer->rid, env->id, id, peer->name, ms, now);
    }
    if (kind != 'l') {
        registry_peer_give(peer, 1);
        broker_peer_ready(self, peer);
    }
}

static int broker_pack_queues(msgpack_packer *pk, void *arg)
{
    broker_t *self = arg;
    return queues_pack_list(durable_store(self->durable), pk, syid_now_ms());
}

/* The store for a query, NULL without one.  Its pending batch is
   committed first, and that hands out receipts built in self->sbuf: so
   call this before an answer is started in self->sbuf, never while one
   is being built. */
static store_t *broker_query_store(broker_t *self)
{
    return self->durable ? durable_store(self->durable) : NULL;
}

/* The durable-queue queries (queues.h). */
static void broker_on_queue_query(broker_t *self, registry_peer_t *peer,
                                  const envelope_t *env, const zmq_msg_t *body,
                                  const char *what)
{
    if (!self->durable) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false,
                      "this broker has no durable store");
        return;
    }
    char service[ENVELOPE_NAME_MAX + 1] = "";
    queues_query_t q = { 0 };
    if (broker_body_str(body, "service", service, sizeof service))
        q.service = service;
    q.has_n = broker_body_uint(body, "n", &q.n);
    q.has_id = broker_body_id(body, "id", q.id);
    broker_body_bool(body, "all", &q.all);
    char err[BROKER_ERRMSG] = "";
    bool changed = false;
    store_t *store = broker_query_store(self);
    msgpack_sbuffer_clear(&self->sbuf);
    int rc = queues_answer(store, what, &q, syid_now_ms(),
                           &self->sbuf, &changed, err, sizeof err);
    if (rc == SY_EMISSING || rc == SY_EFIELD_RANGE)
        broker_refuse(self, peer->rid, env->id, rc, true, "%s", err);
    else if (rc)
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false, "%s", err);
    else
        broker_send_own(self, peer->rid, "sy.answer", env->id);
    if (changed)
        broker_durable_mark_all(self);
}

/* The live actors offering service (0 when nobody does). */
static uint64_t broker_live_workers(broker_t *self, const char *service)
{
    registry_service_t *svc = registry_service_find(self->reg, service);
    uint64_t n = 0;
    for (size_t i = 0; svc && i < registry_service_actors(svc); i++)
        n += !registry_service_actor(svc, i)->gone;
    return n;
}

/* sy.query {what:"place", service, id?}: read-only, for every role
   (acl/readonly_queries).  See queues_place(). */
static void broker_on_place(broker_t *self, registry_peer_t *peer, const envelope_t *env,
                            const zmq_msg_t *body)
{
    char service[ENVELOPE_NAME_MAX + 1] = "";
    uint8_t id[ENVELOPE_ID_LEN];
    bool has_service = broker_body_str(body, "service", service, sizeof service);
    bool has_id = broker_body_id(body, "id", id);
    char err[BROKER_ERRMSG] = "";
    store_t *store = broker_query_store(self);
    msgpack_sbuffer_clear(&self->sbuf);
    int rc = queues_place(store, has_service ? service : NULL, has_id ? id : NULL,
                          has_service ? broker_live_workers(self, service) : 0,
                          &self->sbuf, err, sizeof err);
    if (rc == SY_EMISSING)
        broker_refuse(self, peer->rid, env->id, rc, true, "%s", err);
    else if (rc)
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false, "%s", err);
    else
        broker_send_own(self, peer->rid, "sy.answer", env->id);
}

/* Who asks a cancel, for broker_may_cancel(). */
typedef struct {
    broker_t        *self;
    registry_peer_t *peer;
} broker_canceller_t;

/* Whether the peer offers the service named svc right now. */
static bool broker_peer_offers(const registry_peer_t *peer, const char *svc)
{
    for (size_t i = 0; i < peer->nservices; i++)
        if (strcmp(registry_service_name(peer->services[i]), svc) == 0)
            return true;
    return false;
}

/* queues_may_cancel_fn: the ownership rule of acl_may_cancel(). */
static int broker_may_cancel(const envelope_t *stored, void *arg, char *why, size_t whylen)
{
    broker_canceller_t *c = arg;
    const char *from = stored->present & ENV_HAS_FROM ? stored->from : NULL;
    const char *reply_to = stored->present & ENV_HAS_REPLY_TO ? stored->reply_to : NULL;
    bool offers = reply_to && broker_peer_offers(c->peer, reply_to);
    return acl_may_cancel(guard_acl(c->self->guard), certs_role_parse(c->peer->role), c->peer->name,
                          from, reply_to, offers, why, whylen);
}

/* sy.query {what:"cancel", service, id}: owner-checked (acl.h).  The
   removal has committed before the answer goes out. */
static void broker_on_cancel(broker_t *self, registry_peer_t *peer, const envelope_t *env,
                             const zmq_msg_t *body)
{
    if (!self->durable) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false,
                      "this broker has no durable store");
        return;
    }
    char service[ENVELOPE_NAME_MAX + 1] = "";
    uint8_t id[ENVELOPE_ID_LEN];
    bool has_service = broker_body_str(body, "service", service, sizeof service);
    bool has_id = broker_body_id(body, "id", id);
    char err[BROKER_ERRMSG] = "";
    broker_canceller_t who = { self, peer };
    store_t *store = broker_query_store(self);
    msgpack_sbuffer_clear(&self->sbuf);
    int rc = queues_cancel(store, has_service ? service : NULL, has_id ? id : NULL,
                           broker_may_cancel, &who, &self->sbuf, err, sizeof err);
    if (rc == SY_EMISSING)
        broker_refuse(self, peer->rid, env->id, rc, true, "%s", err);
    else if (rc == SY_EDENIED) {
        sylog_warn("%s (role %s) tried to cancel a message of %s it does not own: denied",
                   peer->name, peer->role[0] ? peer->role : "?", service);
        broker_refuse(self, peer->rid, env->id, SY_EDENIED, false, "%s", err);
    }
    else if (rc)
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false, "%s", err);
    else
        broker_send_own(self, peer->rid, "sy.answer", env->id);
}

static void broker_on_query(broker_t *self, registry_peer_t *peer, const envelope_t *env,
                            const zmq_msg_t *body)
{
    char what[40] = "";
    broker_body_str(body, "what", what, sizeof what);
    if (queues_knows(what)) {
        broker_on_queue_query(self, peer, env, body, what);
        return;
    }
    if (strcmp(what, "place") == 0) {
        broker_on_place(self, peer, env, body);
        return;
    }
    if (strcmp(what, "cancel") == 0) {
        broker_on_cancel(self, peer, env, body);
        return;
    }
    if (strcmp(what, "status") != 0) {
        broker_refuse(self, peer->rid, env->id, SY_EFIELD_RANGE, true,
                      "what: unknown query \"%s\" (known: status, place, cancel, queues, "
                      "peek, inflight, dlq, dlq.retry, dlq.purge)", what);
        return;
    }
    status_info_t info = { BROKER_VERSION, self->endpoint, broker_now() - self->started,
                           self->durable ? broker_pack_queues : NULL, self };
    broker_query_store(self);       /* receipts out before the answer starts */
    msgpack_sbuffer_clear(&self->sbuf);
    if (status_build(self->reg, &info, broker_now(), &self->sbuf) != 0) {
        broker_refuse(self, peer->rid, env->id, SY_EINTERNAL, false, "out of memory");
        return;
    }
    broker_send_own(self, peer->rid, "sy.answer", env->id);
}

/* ---------------------------------------------------------------- routing */

static void broker_route(broker_t *self, registry_peer_t *peer, envelope_t *env,
                         zmq_msg_t *body)
{
    if (!(env->present & ENV_HAS_TO)) {
        broker_refuse(self, peer->rid, env->id, SY_EMISSING, false,
                      "to: required for %s", env->type);
        return;
    }
    if ((env->present & ENV_HAS_DURABLE) && env->durable) {
        broker_route_durable(self, peer, env, body);
        return;
    }
    if (envelope_is_direct(env)) {
        registry_peer_t *to = registry_peer_by_name(self->reg, env->to + 1);
        int rc = to && !to->gone ? broker_deliver(self, to, env, body) : SY_ECLOSED;
        if (rc == SY_ECLOSED)
            broker_refuse(self, peer->rid, env->id, SY_ENO_SERVICE, false,
                          "%s is not connected", env->to);
        else if (rc)
            broker_refuse(self, peer->rid, env->id, rc, false, "%s cannot take it", env->to);
        return;
    }
    registry_service_t *svc = registry_service_find(self->reg, env->to);
    if (!svc) {
        broker_refuse(self, peer->rid, env->id, SY_ENO_SERVICE, false,
                      "no actor offers %s", env->to);
        return;
    }
    int rc = registry_service_waiting(svc) ? SY_ENOTFOUND
                                           : broker_deliver_service(self, svc, env, body);
    /* no actor with credit, or the chosen one's pipe is full: it waits
       (within the service's bounds) for the next credit */
    if (rc == SY_ENOTFOUND || rc == SY_EQUEUE_FULL) {
        broker_item_t *it = malloc(sizeof *it);
        uint64_t deadline = env->present & ENV_HAS_TTL ? broker_now() + env->ttl : 0;
        if (!it) {
            rc = SY_EINTERNAL;
        }
        else {
            it->hdr = *env;
            it->deadline = deadline;
            it->bytes = sizeof *it + zmq_msg_size(body);
            zmq_msg_init(&it->body);
            zmq_msg_move(&it->body, body);
            rc = registry_wait_push(self->reg, svc, it, env->prio, deadline, it->bytes);
            if (rc) {
                zmq_msg_move(body, &it->body);
                free(it);
            }
            else if (registry_service_has_credit(svc))
                broker_service_ready(self, svc);    /* queued behind others */
        }
    }
    if (rc == SY_EQUEUE_FULL)
        broker_refuse(self, peer->rid, env->id, rc, false,
                      "%s has %zu messages (%zu bytes) waiting; %zu bytes wait in all",
                      env->to, registry_service_waiting(svc), registry_service_bytes(svc),
                      registry_bytes(self->reg));
    else if (rc)
        broker_refuse(self, peer->rid, env->id, rc, false, "delivery to %s failed", env->to);
}

/* ---------------------------------------------------------------- dispatch */

/* Stamps a header the broker passes on: `from` is who the broker knows
   (peer names are valid names: the copy cannot fail), never what the
   sender said; `attempt` is the broker's alone; `ts` is set if absent. */
static void broker_stamp(envelope_t *env, const registry_peer_t *peer)
{
    envelope_set_from(env, peer->name);
    env->present &= ~(uint32_t) ENV_HAS_ATTEMPT;
    if (!(env->present & ENV_HAS_TS)) {
        env->ts = syid_now_ms();
        env->present |= ENV_HAS_TS;
    }
}

static bool broker_is_sy(const envelope_t *env)
{
    return env->type[0] == 's' && env->type[1] == 'y' && env->type[2] == '.';
}

/* sy.* messages addressed to the broker: body validated, then handled.
   Returns false if the type is not one the broker answers. */
static bool broker_on_control(broker_t *self, registry_peer_t *peer, envelope_t *env,
                              zmq_msg_t *body, const msgtype_t *mt)
{
    const char *t = env->type + 3;
    bool known = !strcmp(t, "ping") || !strcmp(t, "bye") || !strcmp(t, "credit")
              || !strcmp(t, "sub") || !strcmp(t, "unsub") || !strcmp(t, "event")
              || !strcmp(t, "query") || !strcmp(t, "ack") || !strcmp(t, "nack")
              || !strcmp(t, "lease");
    if (!known)
        return false;
    char err[BROKER_ERRMSG];
    int rc = msgtypes_validate(mt, zmq_msg_data(body), zmq_msg_size(body), err, sizeof err);
    if (rc) {
        broker_refuse(self, peer->rid, env->id, rc, true, "%s", err);
        return true;
    }
    if (!strcmp(t, "ping")) {
        msgpack_sbuffer_clear(&self->sbuf);
        msgpack_sbuffer_write(&self->sbuf, "\x80", 1);       /* {} */
        broker_send_own(self, peer->rid, "sy.pong", env->id);
    }
    else if (!strcmp(t, "credit")) {
        uint64_t n = 0;
        broker_body_uint(body, "n", &n);
        registry_peer_give(peer, (uint32_t) n);
        broker_peer_ready(self, peer);
    }
    else if (!strcmp(t, "bye"))
        broker_leave(self, peer, "bye");
    else if (!strcmp(t, "sub") || !strcmp(t, "unsub"))
        broker_on_sub(self, peer, env, body, t[0] == 's');
    else if (!strcmp(t, "event")) {
        broker_stamp(env, peer);
        env->present &= ~(uint32_t) ENV_HAS_TO;
        broker_on_event(self, peer, env, body);
    }
    else if (!strcmp(t, "query"))
        broker_on_query(self, peer, env, body);
    else if (!strcmp(t, "ack") || !strcmp(t, "nack") || !strcmp(t, "lease"))
        broker_on_settle(self, peer, env, body, t[0] == 'a' ? 'a' : t[0] == 'n' ? 'n' : 'l');
    return true;
}

/* The security checks of one message (guard.h): identity, rate, role.
   *peer becomes NULL when the connection's certificate is not the one its
   registered name belongs to (a reused routing id).  Returns false when
   the message was refused (the receipt is sent). */
static bool broker_admit(broker_t *self, const uint8_t *rid, registry_peer_t **peer,
                         const envelope_t *env, const zmq_msg_t *hdr_msg,
                         const zmq_msg_t *body, const msgtype_t *mt, uint64_t now,
                         guard_peer_t *who)
{
    if (guard_identify(self->guard, hdr_msg, who) != 0) {
        broker_refuse(self, rid, env->id, SY_EDENIED, false,
                      "your certificate is not enrolled (revoked?)");
        return false;
    }
    if (who->name && *peer && strcmp((*peer)->name, who->name) != 0)
        *peer = NULL;
    const char *id = who->name ? who->name : *peer ? (*peer)->name : NULL;
    if (guard_rate(self->guard, who->role, id, mt, (int64_t) now) != 0) {
        broker_refuse(self, rid, env->id, SY_ERATE_LIMITED, false,
                      "%s is over its rate limit", id);
        return false;
    }
    char what[40] = "";
    if (mt->type[0] == 's' && strcmp(mt->type, "sy.query") == 0)
        broker_body_str(body, "what", what, sizeof what);
    if (guard_may_send(self->guard, who->role, mt, what) != 0) {
        broker_refuse(self, rid, env->id, SY_EDENIED, false, "the role %s may not send %s%s%s",
                      certs_role_name(who->role), env->type, what[0] ? ":" : "", what);
        return false;
    }
    return true;
}

/* A certificate was revoked: the peer using it goes at once. */
static void broker_on_revoked(const char *name, void *arg)
{
    broker_t *self = arg;
    registry_peer_t *peer = registry_peer_by_name(self->reg, name);
    if (!peer || strcmp(peer->cert, name) != 0)
        return;
    msgpack_packer pk = broker_body_start(self);
    msgpack_pack_map(&pk, 1);
    broker_pack_str(&pk, "reason");
    broker_pack_str(&pk, "revoked");
    broker_send_own(self, peer->rid, "sy.bye", NULL);
    broker_leave(self, peer, "revoked");
    broker_durable_turn(self);          /* a turn of its own: commit it */
}

static void broker_handle(broker_t *self, zmq_msg_t *rid_msg, zmq_msg_t *hdr_msg,
                          zmq_msg_t *body, int nframes)
{
    size_t rid_len = zmq_msg_size(rid_msg);
    if (rid_len == 0 || rid_len > REGISTRY_RID_MAX)
        return;                 /* cannot happen on a ROUTER */
    uint8_t rid[1 + REGISTRY_RID_MAX];
    rid[0] = (uint8_t) rid_len;
    memcpy(rid + 1, zmq_msg_data(rid_msg), rid_len);

    uint64_t now = broker_now();
    registry_peer_t *peer = registry_peer_by_key(self->reg, rid);
    if (peer)
        peer->last_seen_ms = now;       /* any message is proof of life */

    envelope_t env;
    char err[BROKER_ERRMSG];    /* written by envelope_decode, not zeroed:
                                   this runs for every message */
    err[0] = '\0';
    size_t hlen = nframes >= 1 ? zmq_msg_size(hdr_msg) : 0;
    int rc = nframes >= 1
           ? envelope_decode(&env, zmq_msg_data(hdr_msg), hlen, err, sizeof err)
           : SY_EFRAMES;
    const uint8_t *corr = rc == 0 ? env.id : NULL;

    if (nframes != 2) {
        broker_refuse(self, rid, corr, SY_EFRAMES, false,
                      "a message is 2 frames (header, body), not %d", nframes);
        return;
    }
    size_t blen = zmq_msg_size(body);
    if (hlen + blen > self->max_msg) {
        broker_refuse(self, rid, corr, SY_ETOO_LARGE, false,
                      "%zu bytes, limit %zu", hlen + blen, self->max_msg);
        return;
    }
    if (rc) {
        broker_refuse(self, rid, corr, rc, false, "%s", err[0] ? err : syerr_text(rc));
        return;
    }
    const msgtype_t *mt = msgtypes_find(env.type, strlen(env.type));
    if (!mt) {
        broker_refuse(self, rid, env.id, SY_EUNKNOWN_TYPE, false,
                      "type: %s is not a known message type", env.type);
        return;
    }
    guard_peer_t who;
    if (!broker_admit(self, rid, &peer, &env, hdr_msg, body, mt, now, &who))
        return;
    bool sy = broker_is_sy(&env);
    if (sy && strcmp(env.type, "sy.hello") == 0) {
        rc = msgtypes_validate(mt, zmq_msg_data(body), blen, err, sizeof err);
        if (rc)
            broker_refuse(self, rid, env.id, rc, true, "%s", err);
        else
            broker_on_hello(self, rid, &env, body, &who,
                            zmq_msg_get(hdr_msg, ZMQ_SRCFD));   /* the routing
                                         id frame may lack the metadata */
        return;
    }
    if (!peer) {
        char hex[BROKER_RID_HEX];
        sylog_debug("%s from unknown connection %s", env.type, broker_rid_hex(rid, hex));
        broker_refuse(self, rid, env.id, SY_ENOT_REGISTERED, false,
                      "say sy.hello first");
        return;
    }
    if (sy && broker_on_control(self, peer, &env, body, mt))
        return;

    broker_stamp(&env, peer);
    broker_route(self, peer, &env, body);
}

/* Reads up to BROKER_BATCH messages without waiting.  Returns true when
   the socket had nothing more. */
static bool broker_read_batch(broker_t *self)
{
    for (int n = 0; n < BROKER_BATCH; n++) {
        zmq_msg_t rid, hdr, body, extra;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return true;        /* EAGAIN: drained (EINTR: the loop decides) */
        }
        zmq_msg_init(&hdr);
        zmq_msg_init(&body);
        int nframes = 0;
        while (zmq_msg_more(&rid) && nframes == 0) {
            if (zmq_msg_recv(&hdr, self->sock, 0) < 0)
                break;
            nframes = 1;
        }
        if (nframes == 1 && zmq_msg_more(&hdr) && zmq_msg_recv(&body, self->sock, 0) >= 0)
            nframes = 2;
        if (nframes == 2 && zmq_msg_more(&body)) {
            /* too many frames: count and drop the rest */
            zmq_msg_init(&extra);
            int more = 1;
            while (more && zmq_msg_recv(&extra, self->sock, 0) >= 0) {
                nframes++;
                more = zmq_msg_more(&extra);
            }
            zmq_msg_close(&extra);
        }
        broker_handle(self, &rid, &hdr, &body, nframes);
        zmq_msg_close(&rid);
        zmq_msg_close(&hdr);
        zmq_msg_close(&body);
    }
    return false;
}

/* A batch of messages, the closes whose last messages were read, then
   the group commit: everything durable of the turn in one transaction;
   receipts, then deliveries, after it.  (The monitor is not read here:
   the hot path does not pay for it; a hello reads it itself.) */
static int broker_on_readable(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    broker_t *self = arg;
    bool drained = broker_read_batch(self);
    if (self->ndrops)
        broker_apply_drops(self, drained);
    broker_durable_turn(self);
    return self->stop ? -1 : 0;
}

/* Connections opened or closed: a close is applied after the ROUTER
   gave up what it still holds of the connection (read now). */
static int broker_on_monitor(zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    broker_t *self = arg;
    broker_monitor_drain(self);
    if (self->ndrops)
        broker_apply_drops(self, broker_read_batch(self));
    broker_durable_turn(self);
    return self->stop ? -1 : 0;
}

/* The durable queues' share of the timer: leases and ttls (bounded per
   tick), and the idle probe. */
static void broker_durable_tick(broker_t *self, uint64_t now)
{
    if (now - self->last_probe >= BROKER_PROBE_MS) {
        self->last_probe = now;
        broker_durable_probe(self);     /* reads the store: before the batch */
    }
    size_t n = 0;
    int rc = durable_expire(self->durable, syid_now_ms(), BROKER_EXPIRE_MAX, &n);
    if (rc)
        sylog_error("store: expiry failed: %s", syerr_name(rc));
    if (n)
        broker_durable_mark_all(self);
}

/* Liveness and ttl sweep. */
static int broker_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    broker_t *self = arg;
    if (self->ndrops)
        broker_apply_drops(self, false);        /* those that waited enough */
    uint64_t now = broker_now();
    registry_peer_t *p;
    while ((p = registry_peer_stale(self->reg, now, self->liveness_ms)))
        broker_leave(self, p, p->gone ? "gone" : "expired");
    registry_wait_expire(self->reg, now, broker_item_expired, self);
    if (self->durable)
        broker_durable_tick(self, now);
    broker_durable_turn(self);
    return self->stop ? -1 : 0;
}

/* ---------------------------------------------------------------- life */

static int broker_open(broker_t *self, const broker_opts_t *o, char *err, size_t errlen)
{
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router)
        return syerr_fmt(err, errlen, SY_EIO, "cannot create the ROUTER socket: %s",
                         zmq_strerror(errno));
    size_t maxmsg = 4 * o->max_msg;
    if (maxmsg < o->max_msg + 65536)
        maxmsg = o->max_msg + 65536;
    zsock_set_router_mandatory(self->router, 1);
    zsock_set_maxmsgsize(self->router, (int) (maxmsg > INT32_MAX ? INT32_MAX : maxmsg));
    size_t hwm = self->memory_max / o->max_msg;
    hwm = hwm < BROKER_HWM_MIN ? BROKER_HWM_MIN : hwm > BROKER_HWM_MAX ? BROKER_HWM_MAX : hwm;
    zsock_set_sndhwm(self->router, (int) hwm);
    zsock_set_rcvhwm(self->router, (int) hwm);
    sylog_debug("pipes hold at most %zu messages each way", hwm);
    zsock_set_linger(self->router, BROKER_LINGER);
    /* CURVE is a socket option: it must be set before the first bind */
    int grc = guard_prepare(self->guard, self->router, o->endpoint, err, errlen);
    if (grc)
        return grc;
    self->sock = zsock_resolve(self->router);
    broker_monitor_start(self);
    /* broker/endpoint is a comma-separated list: bind each, and remember
       what was bound (ports filled in) for status and logs */
    char *list = strdup(o->endpoint), *save = NULL;
    size_t cap = strlen(o->endpoint) + 256, used = 0;
    self->endpoint = calloc(1, cap);
    if (!list || !self->endpoint) {
        free(list);
        return syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    }
    for (char *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (zsock_bind(self->router, "%s", ep) < 0) {
            int rc = syerr_fmt(err, errlen, SY_EIO, "cannot bind %s: %s", ep,
                               zmq_strerror(errno));
            free(list);
            return rc;
        }
        char *bound = zsock_last_endpoint(self->router);
        const char *shown = bound ? bound : ep;
        if (used + strlen(shown) + 2 < cap)
            used += (size_t) snprintf(self->endpoint + used, cap - used, "%s%s",
                                      used ? "," : "", shown);
        free(bound);
    }
    free(list);
    if (used == 0)
        return syerr_fmt(err, errlen, SY_ECONFIG, "no endpoint to bind in \"%s\"",
                         o->endpoint);
    return 0;
}

broker_t *broker_new(const broker_opts_t *o, char *err, size_t errlen)
{
    if (!o || !o->endpoint || !o->name || !envelope_valid_name(o->name, strlen(o->name))
        || o->heartbeat_ms == 0 || o->liveness_ms == 0 || o->max_msg == 0) {
        snprintf(err, errlen, "invalid broker options");
        return NULL;
    }
    broker_t *self = calloc(1, sizeof *self);
    if (self)
        self->grp_ids = calloc(DURABLE_BATCH, sizeof *self->grp_ids);
    if (!self || !self->grp_ids) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&self->sbuf);
    syid_init(&self->ids);
    snprintf(self->name, sizeof self->name, "%s", o->name);
    self->hb_ms = o->heartbeat_ms;
    self->liveness_ms = o->liveness_ms;
    self->max_msg = o->max_msg;
    self->memory_max = o->memory_max ? o->memory_max : BROKER_MEMORY_MAX_DEFAULT;
    self->started = broker_now();
    self->reg = registry_new(o->queue_max, broker_item_free);
    if (self->reg)
        registry_set_budget(self->reg, o->queue_bytes ? o->queue_bytes
                                                      : BROKER_QUEUE_BYTES_DEFAULT,
                            self->memory_max);
    self->topics = topics_new();
    self->loop = zloop_new();
    if (!self->reg || !self->topics || !self->loop) {
        snprintf(err, errlen, "out of memory");
        broker_destroy(&self);
        return NULL;
    }
    const config_t *cfg = o->cfg;
    if (!cfg && config_load(NULL, &self->own_cfg, err, errlen) != 0) {
        broker_destroy(&self);
        return NULL;
    }
    if (!cfg)
        cfg = self->own_cfg;
    /* security before any socket: the ZAP handler must exist before a
       CURVE endpoint is bound, or libzmq admits every client */
    if (guard_new(cfg, self->loop, broker_on_revoked, self, &self->guard, err,
                  errlen) != 0) {
        broker_destroy(&self);
        return NULL;
    }
    /* the store first: a broker that cannot keep its promises must not
       take a connection */
    if (o->cfg && durable_new(o->cfg, broker_on_receipt, self, &self->durable,
                              err, errlen) != 0) {
        broker_destroy(&self);
        return NULL;
    }
    if (self->durable)
        durable_set_deliver(self->durable, broker_on_delivery, self);
    if (broker_open(self, o, err, errlen) != 0) {
        broker_destroy(&self);
        return NULL;
    }
    /* sweep often enough that expiry and ttl are late by a fraction only */
    size_t sweep = o->heartbeat_ms / 4;
    sweep = sweep < 10 ? 10 : sweep > 250 ? 250 : sweep;
    self->timer = zloop_timer(self->loop, sweep, 0, broker_on_timer, self);
    zloop_reader(self->loop, self->router, broker_on_readable, self);
    if (self->monitor)
        zloop_reader(self->loop, self->monitor, broker_on_monitor, self);
    return self;
}

void broker_destroy(broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *self = *self_p;
    durable_destroy(&self->durable);     /* commits, sends the last receipts */
    guard_destroy(&self->guard);         /* its ZAP socket leaves the loop */
    zloop_destroy(&self->loop);
    broker_monitor_stop(self);
    zsock_destroy(&self->router);
    conns_destroy(&self->conns);
    free(self->drops);
    config_destroy(&self->own_cfg);
    topics_destroy(&self->topics);
    registry_destroy(&self->reg);
    msgpack_sbuffer_destroy(&self->sbuf);
    free(self->grp_ids);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

int broker_run(broker_t *self)
{
    sylog_info("listening on %s (hb %ums, liveness %ums, max_msg %zu)",
               self->endpoint, self->hb_ms, self->liveness_ms, self->max_msg);
    zloop_start(self->loop);
    return 0;
}

void broker_stop(broker_t *self)
{
    self->stop = true;
}

const char *broker_endpoint(const broker_t *self)
{
    return self->endpoint;
}
