/*  actor.c -- the client side of docs/PROTOCOL.md (see actor.h).
 *
 *  Ideas:
 *  - One DEALER socket and a small state machine: DOWN (no socket, a
 *    backoff timer pending) -> HELLO (socket connected, sy.hello sent, a
 *    hello timer pending) -> UP (sy.welcome received; a periodic tick
 *    sends sy.ping when we have been quiet for `hb` ms and declares the
 *    broker gone after `liveness` ms of silence).  Losing the broker goes
 *    back to DOWN; a DENIED/NOT_REGISTERED receipt (broker restarted)
 *    goes straight back to HELLO on the same socket.
 *  - A socket is never destroyed inside its own reader callback: a lost
 *    link unregisters the reader, sets linger 0 and disconnects the socket
 *    at once (a hello still queued on it must never reach the broker
 *    after the next socket's hello and take the name back), and parks it
 *    in `dead`, which the backoff timer destroys before making the new
 *    one.  Only the final destroy keeps the linger, for the sy.bye.
 *  - sy.bye goes out on destroy whenever a hello went out on the current
 *    socket (`hello_sent`), welcomed or not: the broker may have
 *    registered us already.
 *  - CURVE: the certificate file is read at every connect, applied to
 *    the new socket and wiped (certs_destroy), so no secret stays in our
 *    memory.  A refused handshake is invisible on the DEALER (libzmq just
 *    retries it every 100 ms), so a socket monitor watches the handshakes
 *    and turns a refusal into a logged error and a normal backoff.  The
 *    monitor's PAIR socket is parked with the DEALER, for the same reason.
 *  - Credit is counted here, not by handlers: a delivery addressed to a
 *    service (not "@name", not sy.*) consumes one.  Finished ones are
 *    `owed` to the broker and returned in one sy.credit when half the
 *    window is owed, when the socket has no more input (end of a burst),
 *    or, for actor_release() from a timer, from a 1 ms one-shot timer so
 *    several releases in one loop turn share one sy.credit.  Credits kept
 *    across a reconnect belong to the dead session (`stale`): releasing
 *    them returns nothing, because the new hello restored the window.
 *  - actor_stop() sets a flag and arms a 1 ms timer whose handler ends the
 *    loop, so it works from any callback, ours or the caller's.
 *  - zloop timer rules (CZMQ 4.2): once a loop has returned, it is marked
 *    terminated for good and zloop_timer_end() frees a timer at once, even
 *    during a later zloop_start(); a timer whose handler returns -1 is not
 *    removed even if it was a one-shot.  Hence: no callback here ever ends
 *    the timer that is running it (the tick is a one-shot re-armed each
 *    time; each one-shot clears its id first), only the stop and run
 *    timers return -1, and actor_run_loop() / actor_run_for() remove
 *    those once the loop has returned.
 *  - Durable deliveries are kept in `leases`, a hash by id hex, from just
 *    before their handler runs until ack or nack: so the runtime can tell
 *    after the handler whether it already acked (nothing more to send),
 *    kept it (ACTOR_KEEP) or finished it (send sy.ack).  Their credit is
 *    never counted in `owed`: the broker returns it on ack / nack.  A
 *    keepalive is a one-shot timer per lease, re-armed by itself, so no
 *    callback ever ends the timer that runs it; its argument is the actor
 *    and the lease is found by timer id, because zloop may still fire a
 *    timer that another handler ended (and whose lease it freed) in the
 *    same pass.
 *  - Durable credit is exact: in one session every durable delivery
 *    received is answered by exactly one sy.ack or sy.nack (the broker
 *    returns one credit per settle, late ones included), and deliveries
 *    of a dead session by none (the new hello restored the window).  A
 *    message delivered again while we hold it (its lease ran out) does
 *    not run its handler twice: the lease counts it (`extra`) and its
 *    final settle is sent once more per copy.  Two rings of recent ids
 *    help: `done` (acked: a new delivery of it is acked at once) and
 *    `quiet` (extra nacks: their EXPIRED receipts are dropped).
 *  - actor_wait_receipt() arms `wait` with the id; dispatch hands the
 *    matching sy.receipt to it instead of the handler and stops the loop.
 *  - All messages go through envelope_encode (a header we send is one we
 *    would accept) and bodies through msgtypes_validate.
 *
 *  Exiting: a process must actor_destroy() its actors and then call
 *  zsys_shutdown() before it exits; the socket's linger (1 s) then gets a
 *  final send (a reply, sy.bye) out instead of dropping it.
 */
#include "actors/actor.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/certs.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

#define ACTOR_LINGER_MS        1000
#define ACTOR_BATCH            256     /* messages per reader wake-up */
#define ACTOR_DEFAULT_HB       1000
#define ACTOR_DEFAULT_LIVENESS 3000
#define ACTOR_DEFAULT_MAX_MSG  (1024 * 1024)
#define ACTOR_CREDIT_MAX       10000
#define ACTOR_SERVICES_MAX     64      /* as sy.hello allows */

typedef enum { ACTOR_DOWN, ACTOR_HELLO, ACTOR_UP } actor_state_t;

#define ACTOR_REASON_MAX 256    /* sy.nack reason, bytes */

/* A durable delivery held by this actor (between its dispatch and its
   ack or nack). */
typedef struct {
    uint8_t          id[16];
    char             key[33];   /* id hex: the key in actor->leases */
    int              timer;     /* keepalive one-shot, -1 if none */
    uint32_t         every_ms, lease_ms;
    uint32_t         extra;     /* more deliveries of it in this session */
    bool             stale;     /* from a previous session */
} actor_lease_t;

/* A small ring of message ids, remembered for a while (the oldest is
   forgotten first).  An all-zero slot is empty: ids start with their
   time and are never all zero. */
#define ACTOR_RING_IDS 64
typedef struct {
    uint8_t  ids[ACTOR_RING_IDS][16];
    uint32_t next;
} actor_ring_t;

typedef struct {
    char             *type;
    actor_handler_fn *fn;
    void             *arg;
} actor_route_t;

struct _actor_t {
    char          *name;
    char          *endpoint;
    char         **services;
    size_t         nservices;
    uint32_t       credit;
    uint32_t       reconnect_min;
    uint32_t       reconnect_max;
    uint32_t       hello_timeout;

    zloop_t       *loop;
    zsock_t       *sock;          /* current socket, NULL when DOWN */
    zsock_t       *dead;          /* dropped socket awaiting destruction */
    zsock_t       *mon;           /* CURVE: monitor of sock's handshakes */
    zsock_t       *dead_mon;      /* monitor of dead */
    uint32_t       mon_seq;       /* makes each monitor endpoint unique */
    bool           hello_sent;    /* a hello went out on sock */
    uint32_t       refusals;      /* handshake / hello refusals in a row */
    bool           refused;       /* refused (not just failed) since welcome */

    char          *cert_path;     /* CURVE: our NAME.secret; NULL: plaintext */
    char           broker_key[41];    /* CURVE: the broker's public key, Z85 */
    char           own_key[41];       /* CURVE: our public key (for logs) */
    actor_state_t  state;
    syid_t         ids;
    uint8_t        hello_id[16];
    uint32_t       hb_ms, liveness_ms;
    uint64_t       max_msg;
    int64_t        last_sent, last_heard;     /* zclock_mono() */
    uint32_t       attempt;                   /* reconnects since welcome */
    uint64_t       rng;

    int            tick_timer, hello_timer, backoff_timer;
    int            credit_timer, stop_timer, run_timer;

    uint32_t       owed;          /* finished deliveries not yet returned */
    uint32_t       held;          /* deliveries kept by ACTOR_KEEP */
    uint32_t       stale;         /* of held: from a previous session */
    bool           in_dispatch;
    zhashx_t      *leases;        /* id hex -> actor_lease_t, owned */
    actor_ring_t   done;          /* durable ids acked lately */
    actor_ring_t   quiet;         /* ids of extra sy.nacks (their receipts) */

    bool           wait_got;
    uint8_t        wait_id[16];
    actor_receipt_t *wait_out;    /* actor_wait_receipt() is waiting */

    actor_route_t *routes;
    size_t         nroutes;
    char         **subs;
    size_t         nsubs;
    actor_state_fn *state_fn;
    void          *state_arg;

    bool           stopping, timed_out, want_connected;
};

static void actor_link_lost(actor_t *self, const char *why);
static int  actor_send_hello(actor_t *self);

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint32_t actor_rand(actor_t *self)
{
    /* xorshift64: jitter only, no security meaning */
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return (uint32_t) (x >> 32);
}

static void actor_timer_end(actor_t *self, int *id)
{
    if (*id >= 0) {
        zloop_timer_end(self->loop, *id);
        *id = -1;
    }
}

static int actor_loop_rc(const actor_t *self)
{
    return self->stopping ? -1 : 0;
}

static uint32_t actor_half_window(const actor_t *self)
{
    return self->credit / 2 ? self->credit / 2 : 1;
}

/* msgpack-c sbuffer helpers: pack a string */
static void actor_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

/* Sends header env + body as two frames.  Never blocks. */
static int actor_send_frames(actor_t *self, envelope_t *env,
                             const uint8_t *body, size_t len)
{
    static const uint8_t empty_map = 0x80;
    if (!self->sock)
        return SY_ECLOSED;
    if (!body || len == 0) {
        body = &empty_map;
        len = 1;
    }
    syid_next(&self->ids, env->id);
    uint8_t hdr[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(env, hdr, sizeof hdr);
    if (hlen < 0) {
        sylog_warn("actor %s: cannot encode header for %s: %s", self->name,
                   env->type, syerr_name(hlen));
        return SY_EINVAL;
    }
    if ((uint64_t) hlen + len > self->max_msg)
        return SY_ETOO_LARGE;
    void *handle = zsock_resolve(self->sock);
    if (zmq_send(handle, hdr, (size_t) hlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? SY_EQUEUE_FULL : SY_ECLOSED;
    /* Once the first part is queued the rest of the message is too. */
    if (zmq_send(handle, body, len, ZMQ_DONTWAIT) < 0)
        return SY_ECLOSED;
    self->last_sent = zclock_mono();
    return 0;
}

/* A control message to the broker itself (no `to`).  Its id goes to
   id_out when not NULL. */
static int actor_send_ctl(actor_t *self, const char *type,
                          const uint8_t *body, size_t len, uint8_t *id_out)
{
    envelope_t env;
    envelope_init(&env);
    if (envelope_set_type(&env, type))
        return SY_EINVAL;
    int rc = actor_send_frames(self, &env, body, len);
    if (rc == 0 && id_out)
        memcpy(id_out, env.id, 16);
    return rc;
}

/* Validates body against the table entry of type; unknown types are
   refused since the broker would refuse them. */
static int actor_check_body(actor_t *self, const char *type,
                            const uint8_t *body, size_t len)
{
    static const uint8_t empty_map = 0x80;
    const msgtype_t *t = msgtypes_find(type, strlen(type));
    if (!t) {
        sylog_warn("actor %s: type %s is not in the message table",
                   self->name, type);
        return SY_EINVAL;
    }
    if (!body || len == 0) {
        body = &empty_map;
        len = 1;
    }
    char err[160];
    int rc = msgtypes_validate(t, body, len, err, sizeof err);
    if (rc) {
        sylog_warn("actor %s: refusing to send bad %s body: %s", self->name,
                   type, err);
        return SY_EBAD_BODY;
    }
    return 0;
}

/* Sends a sy.* message of the caller's to the broker: the body checked
   against the table first, then only within a session. */
static int actor_send_ctl_up(actor_t *self, const char *type,
                             const uint8_t *body, size_t len, uint8_t *id_out)
{
    int rc = actor_check_body(self, type, body, len);
    if (rc == 0 && self->state != ACTOR_UP)
        rc = SY_ECLOSED;
    return rc ? rc : actor_send_ctl(self, type, body, len, id_out);
}

/* Builds a one-field map {key: u} and sends it as type. */
static int actor_send_ctl_uint(actor_t *self, const char *type,
                               const char *key, uint64_t u)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    actor_pack_str(&pk, key);
    msgpack_pack_uint64(&pk, u);
    int rc = actor_send_ctl(self, type, (const uint8_t *) sb.data, sb.size,
                            NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int actor_send_ctl_str(actor_t *self, const char *type,
                              const char *key, const char *s)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    actor_pack_str(&pk, key);
    actor_pack_str(&pk, s);
    int rc = actor_send_ctl(self, type, (const uint8_t *) sb.data, sb.size,
                            NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ------------------------------------------------------------------ */
/* credit                                                              */

static void actor_credit_flush(actor_t *self)
{
    actor_timer_end(self, &self->credit_timer);
    if (self->owed == 0 || self->state != ACTOR_UP)
        return;
    if (actor_send_ctl_uint(self, "sy.credit", "n", self->owed) == 0)
        self->owed = 0;
}

static int actor_credit_timer_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    actor_t *self = arg;
    self->credit_timer = -1;
    actor_credit_flush(self);
    return 0;
}

/* Credit became owed outside a reader burst: return it soon, batched. */
static void actor_credit_later(actor_t *self)
{
    if (self->owed >= actor_half_window(self))
        actor_credit_flush(self);
    else if (self->owed && !self->in_dispatch && self->credit_timer < 0)
        self->credit_timer = zloop_timer(self->loop, 1, 1,
                                         actor_credit_timer_cb, self);
}

void actor_release(actor_t *self, uint32_t n)
{
    if (!self || n == 0)
        return;
    if (n > self->held) {
        sylog_warn("actor %s: release of %u credits, only %u held",
                   self->name, n, self->held);
        n = self->held;
    }
    self->held -= n;
    uint32_t old = n < self->stale ? n : self->stale;
    self->stale -= old;
    self->owed += n - old;
    actor_credit_later(self);
}

/* ------------------------------------------------------------------ */
/* durable deliveries: ack, nack, lease                                */

/* Sends a sy.ack / sy.nack / sy.lease body built by the caller after
   checking it against the table; its id to id_out if not NULL. */
static int actor_send_checked(actor_t *self, const char *type,
                              msgpack_sbuffer *sb, uint8_t *id_out)
{
    int rc = actor_check_body(self, type, (const uint8_t *) sb->data,
                              sb->size);
    if (rc == 0)
        rc = actor_send_ctl(self, type, (const uint8_t *) sb->data, sb->size,
                            id_out);
    msgpack_sbuffer_destroy(sb);
    return rc;
}

static void actor_pack_id(msgpack_packer *pk, const uint8_t id[16])
{
    actor_pack_str(pk, "id");
    msgpack_pack_bin(pk, 16);
    msgpack_pack_bin_body(pk, id, 16);
}

static int actor_send_ack(actor_t *self, const uint8_t id[16])
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    actor_pack_id(&pk, id);
    return actor_send_checked(self, "sy.ack", &sb, NULL);
}

/* The length of reason cut to ACTOR_REASON_MAX bytes without splitting
   a UTF-8 sequence; 0 if the text is not valid UTF-8 (then no reason is
   sent rather than a body the broker would refuse). */
static size_t actor_reason_len(const char *reason)
{
    size_t n = strlen(reason);
    if (n > ACTOR_REASON_MAX) {
        n = ACTOR_REASON_MAX;
        while (n > 0 && ((uint8_t) reason[n] & 0xc0) == 0x80)
            n--;
    }
    return msgtypes_utf8_valid((const uint8_t *) reason, n) ? n : 0;
}

/* Sends sy.nack; its own id to id_out if not NULL. */
static int actor_send_nack(actor_t *self, const uint8_t id[16],
                           const char *reason, bool requeue,
                           uint64_t delay_ms, uint8_t *id_out)
{
    size_t rlen = reason ? actor_reason_len(reason) : 0;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2 + (rlen > 0) + (delay_ms > 0));
    actor_pack_id(&pk, id);
    if (rlen) {
        actor_pack_str(&pk, "reason");
        msgpack_pack_str(&pk, rlen);
        msgpack_pack_str_body(&pk, reason, rlen);
    }
    actor_pack_str(&pk, "requeue");
    if (requeue)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (delay_ms) {
        actor_pack_str(&pk, "delay_ms");
        msgpack_pack_uint64(&pk, delay_ms);
    }
    return actor_send_checked(self, "sy.nack", &sb, id_out);
}

static int actor_send_lease(actor_t *self, const uint8_t id[16], uint64_t ms)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    actor_pack_id(&pk, id);
    actor_pack_str(&pk, "ms");
    msgpack_pack_uint64(&pk, ms);
    return actor_send_checked(self, "sy.lease", &sb, NULL);
}

/* The slot of ring r holding id, or -1. */
static int actor_ring_find(const actor_ring_t *r, const uint8_t id[16])
{
    static const uint8_t zero[16];
    if (memcmp(id, zero, 16) == 0)
        return -1;
    for (int i = 0; i < ACTOR_RING_IDS; i++)
        if (memcmp(r->ids[i], id, 16) == 0)
            return i;
    return -1;
}

/* Remembers id in r, forgetting the oldest when r is full. */
static void actor_ring_put(actor_ring_t *r, const uint8_t id[16])
{
    if (actor_ring_find(r, id) >= 0)
        return;
    memcpy(r->ids[r->next], id, 16);
    r->next = (r->next + 1) % ACTOR_RING_IDS;
}

/* Forgets id if r holds it; returns whether it did. */
static bool actor_ring_take(actor_ring_t *r, const uint8_t id[16])
{
    int i = actor_ring_find(r, id);
    if (i < 0)
        return false;
    memset(r->ids[i], 0, 16);
    return true;
}

static actor_lease_t *actor_lease_find(actor_t *self, const uint8_t id[16])
{
    char key[33];
    envelope_id_hex(id, key);
    return zhashx_lookup(self->leases, key);
}

/* Starts holding the durable delivery id (not held yet). */
static actor_lease_t *actor_lease_add(actor_t *self, const uint8_t id[16])
{
    actor_lease_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    memcpy(l->id, id, 16);
    envelope_id_hex(id, l->key);
    l->timer = -1;
    if (zhashx_insert(self->leases, l->key, l) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

/* Stops holding l and frees it. */
static void actor_lease_remove(actor_t *self, actor_lease_t *l)
{
    actor_timer_end(self, &l->timer);
    zhashx_delete(self->leases, l->key);
    free(l);
}

/* The connection is gone: the broker hands held deliveries out again and
   the next hello restores the whole credit window, so their keepalives
   stop and the further deliveries counted in `extra` are owed nothing. */
static void actor_leases_stale(actor_t *self)
{
    for (actor_lease_t *l = zhashx_first(self->leases); l;
         l = zhashx_next(self->leases)) {
        l->stale = true;
        l->extra = 0;
        actor_timer_end(self, &l->timer);
    }
}

/* The lease whose keepalive timer is timer_id, or NULL. */
static actor_lease_t *actor_lease_by_timer(actor_t *self, int timer_id)
{
    for (actor_lease_t *l = zhashx_first(self->leases); l;
         l = zhashx_next(self->leases))
        if (l->timer == timer_id)
            return l;
    return NULL;
}

/* The argument is the actor, not the lease: zloop may still run a timer
   ended earlier in the same pass over its timers (an ack from another
   timer's handler), when the lease is already freed.  zloop timer ids
   are never reused, so a lookup by id finds nothing then. */
static int actor_keepalive_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    actor_t *self = arg;
    actor_lease_t *l = actor_lease_by_timer(self, id);
    if (!l)
        return actor_loop_rc(self);
    l->timer = -1;
    if (l->stale)
        return 0;
    int rc = actor_send_lease(self, l->id, l->lease_ms);
    if (rc)
        sylog_debug("actor %s: lease extension of %s not sent: %s",
                    self->name, l->key, syerr_name(rc));
    l->timer = zloop_timer(self->loop, l->every_ms, 1, actor_keepalive_cb,
                           self);
    return actor_loop_rc(self);
}

/* (Re)starts l's keepalive: extends its lease now and every every_ms. */
static int actor_lease_keep(actor_t *self, actor_lease_t *l)
{
    actor_timer_end(self, &l->timer);
    actor_send_lease(self, l->id, l->lease_ms);
    l->timer = zloop_timer(self->loop, l->every_ms, 1, actor_keepalive_cb,
                           self);
    return l->timer < 0 ? SY_ENOMEM : 0;
}

/* How a held delivery ends. */
typedef struct {
    bool        ack;
    const char *reason;         /* nack only; may be NULL */
    bool        requeue;
    uint64_t    delay_ms;
} actor_settle_t;

/* Sends one sy.ack or sy.nack of id.  The id of an extra nack goes to
   `quiet`: the receipt it gets (EXPIRED, as the first nack settled the
   message) is expected and shown to no handler. */
static int actor_settle_send(actor_t *self, const uint8_t id[16],
                             const actor_settle_t *s, bool extra)
{
    if (s->ack)
        return actor_send_ack(self, id);
    uint8_t nid[16];
    int rc = actor_send_nack(self, id, s->reason, s->requeue, s->delay_ms,
                             extra ? nid : NULL);
    if (rc == 0 && extra)
        actor_ring_put(&self->quiet, nid);
    return rc;
}

/* Stops holding l and settles it as s says.  The credit rule
   (docs/DURABLE.md section 3): each durable delivery uses a credit and
   only its sy.ack or sy.nack gives it back; a settle for a message that
   is not in flight for us any more is a late one and only returns the
   credit.  So:
   - one settle for the delivery, and one more for each further delivery
     of the same message in this session (l->extra: the lease ran out
     while we held it and the broker gave it to us again without giving
     the first credit back).  The extra ones follow the first: after an
     ack the message is gone, after a nack it is not ours (ready or dead).
     Extra nacks, not acks, after a nack: should the broker lease the
     requeued message to us again before reading them, an ack would
     remove it unhandled, a nack only requeues it once more;
   - nothing for a delivery of a dead session (`stale`): the broker
     released it when the connection ended and gave the new session a
     full window, so a settle now would return a credit the new session
     never spent (one job more in flight than the credit says, for as
     long as the queue stays busy).  The message comes again; if it was
     acked, `done` has it acked at once without running the handler.
   Returns 0, SY_ECLOSED (stale, or no connection) or a send error of
   the first settle. */
static int actor_lease_settle(actor_t *self, actor_lease_t *l,
                              const actor_settle_t *s)
{
    uint8_t id[16];
    memcpy(id, l->id, 16);
    char key[33];
    memcpy(key, l->key, sizeof key);
    uint32_t extra = l->extra;
    bool stale = l->stale;
    actor_lease_remove(self, l);
    if (s->ack)
        actor_ring_put(&self->done, id);
    if (stale) {
        sylog_debug("actor %s: %s of %s not sent: its delivery belongs to a "
                    "lost connection (the broker gives it out again)",
                    self->name, s->ack ? "sy.ack" : "sy.nack", key);
        return SY_ECLOSED;
    }
    int rc = actor_settle_send(self, id, s, false);
    for (uint32_t i = 0; i < extra; i++) {
        int xrc = actor_settle_send(self, id, s, true);
        if (xrc)
            sylog_debug("actor %s: extra %s of %s not sent: %s", self->name,
                        s->ack ? "sy.ack" : "sy.nack", key, syerr_name(xrc));
    }
    return rc;
}

/* A delivery of a message this actor holds already: its handler is not
   run a second time.  In this session the broker leased it again (the
   lease ran out while the handler kept it) and spent one more credit:
   one more settle is owed (`extra`).  From a dead session: the new
   delivery takes the old one's place (nothing is owed for the old one)
   and its keepalive, if it had one, starts again. */
static void actor_lease_again(actor_t *self, actor_lease_t *l,
                              const actor_msg_t *m)
{
    if (l->stale) {
        l->stale = false;
        sylog_info("actor %s: %s delivered again (attempt %u) after a "
                   "reconnect while its handler still holds it: not run "
                   "twice", self->name, l->key, m->hdr.attempt);
        if (l->every_ms && actor_lease_keep(self, l) != 0)
            sylog_warn("actor %s: keepalive of %s not restarted", self->name,
                       l->key);
        return;
    }
    l->extra++;
    sylog_info("actor %s: %s delivered again (attempt %u) while its handler "
               "still holds it (its lease ran out: extend long jobs with "
               "actor_keepalive()): not run twice", self->name, l->key,
               m->hdr.attempt);
}

/* A receipt answering one of our extra nacks: expected, dropped. */
static bool actor_settle_receipt(actor_t *self, const actor_msg_t *m)
{
    if (strcmp(m->hdr.type, "sy.receipt") != 0
        || !(m->hdr.present & ENV_HAS_CORR)
        || !actor_ring_take(&self->quiet, m->hdr.corr))
        return false;
    sylog_debug("actor %s: receipt of an extra sy.nack dropped", self->name);
    return true;
}

int actor_ack(actor_t *self, const uint8_t id[16])
{
    if (!self || !id)
        return SY_EINVAL;
    actor_lease_t *l = actor_lease_find(self, id);
    if (!l)
        return SY_ENOTFOUND;
    actor_settle_t s = { .ack = true };
    return actor_lease_settle(self, l, &s);
}

int actor_nack(actor_t *self, const uint8_t id[16], const char *reason,
               bool requeue, uint64_t delay_ms)
{
    if (!self || !id || delay_ms > ENVELOPE_TTL_MAX)
        return SY_EINVAL;
    actor_lease_t *l = actor_lease_find(self, id);
    if (!l)
        return SY_ENOTFOUND;
    actor_settle_t s = { .ack = false, .reason = reason, .requeue = requeue,
                         .delay_ms = delay_ms };
    return actor_lease_settle(self, l, &s);
}

int actor_extend(actor_t *self, const uint8_t id[16], uint64_t ms)
{
    if (!self || !id || ms == 0 || ms > ENVELOPE_TTL_MAX)
        return SY_EINVAL;
    actor_lease_t *l = actor_lease_find(self, id);
    if (!l)
        return SY_ENOTFOUND;
    if (l->stale)
        return SY_ECLOSED;
    return actor_send_lease(self, id, ms);
}

int actor_keepalive(actor_t *self, const uint8_t id[16], uint32_t every_ms,
                    uint32_t lease_ms)
{
    if (!self || !id || every_ms == 0 || lease_ms <= every_ms)
        return SY_EINVAL;
    actor_lease_t *l = actor_lease_find(self, id);
    if (!l)
        return SY_ENOTFOUND;
    l->every_ms = every_ms;
    l->lease_ms = lease_ms;
    if (l->stale)
        return SY_ECLOSED;
    return actor_lease_keep(self, l);
}

size_t actor_held_durable(const actor_t *self)
{
    return self ? zhashx_size(self->leases) : 0;
}

/* ------------------------------------------------------------------ */
/* receipts                                                            */

static void actor_copy_str(char *dst, size_t cap, const mpval_t *v)
{
    size_t n = v->len < cap - 1 ? v->len : cap - 1;
    memcpy(dst, v->ptr, n);
    dst[n] = 0;
}

int actor_receipt_parse(const actor_msg_t *msg, actor_receipt_t *out)
{
    if (!msg || !out || strcmp(msg->hdr.type, "sy.receipt") != 0)
        return SY_EINVAL;
    memset(out, 0, sizeof *out);
    if (msg->hdr.present & ENV_HAS_CORR) {
        out->has_corr = true;
        memcpy(out->corr, msg->hdr.corr, 16);
    }
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, msg->body, msg->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP
        || mpread_map_find(&r, &map, "ok", &v, NULL) || v.kind != MP_BOOL)
        return SY_EBAD_BODY;
    out->ok = v.b;
    if (mpread_map_find(&r, &map, "id", &v, NULL) == 0 && v.kind == MP_BIN
        && v.len == 16) {
        out->has_id = true;
        memcpy(out->id, v.ptr, 16);
    }
    if (mpread_map_find(&r, &map, "code", &v, NULL) == 0 && v.kind == MP_STR)
        actor_copy_str(out->code_name, sizeof out->code_name, &v);
    if (mpread_map_find(&r, &map, "detail", &v, NULL) == 0 && v.kind == MP_STR)
        actor_copy_str(out->detail, sizeof out->detail, &v);
    if (mpread_map_find(&r, &map, "msg", &v, NULL) == 0 && v.kind == MP_STR)
        actor_copy_str(out->msg, sizeof out->msg, &v);
    if (!out->ok) {
        int code = out->code_name[0] ? syerr_from_name(out->code_name) : 0;
        out->code = code < 0 ? code : SY_EINTERNAL;
    }
    return 0;
}

/* If a caller waits for this receipt, hands it over and stops the loop.
   Returns true when consumed. */
static bool actor_receipt_catch(actor_t *self, const actor_msg_t *m)
{
    if (!self->wait_out || self->wait_got
        || strcmp(m->hdr.type, "sy.receipt") != 0
        || !(m->hdr.present & ENV_HAS_CORR)
        || memcmp(m->hdr.corr, self->wait_id, 16) != 0)
        return false;
    if (actor_receipt_parse(m, self->wait_out) != 0)
        return false;
    self->wait_got = true;
    actor_stop(self);
    return true;
}

/* ------------------------------------------------------------------ */
/* CURVE                                                               */

#define ACTOR_MON_EVENTS (ZMQ_EVENT_HANDSHAKE_SUCCEEDED                  \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL         \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL          \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static bool actor_ends_with(const char *s, size_t n, const char *ext)
{
    size_t e = strlen(ext);
    return n > e && strcmp(s + n - e, ext) == 0;
}

int actor_cert_paths(const char *cert, char *secret, char *pub, size_t cap)
{
    if (!cert || !*cert || cap == 0)
        return SY_EINVAL;
    size_t n = strlen(cert), base = n;
    if (actor_ends_with(cert, n, CERTS_SECRET_EXT))
        base = n - strlen(CERTS_SECRET_EXT);
    else if (actor_ends_with(cert, n, CERTS_PUBLIC_EXT))
        base = n - strlen(CERTS_PUBLIC_EXT);
    if (cert[base - 1] == '/' || base > INT32_MAX)
        return SY_EINVAL;       /* "DIR/.secret": no name */
    int a = 0, b = 0;
    if (secret)
        a = snprintf(secret, cap, "%.*s%s", (int) base, cert, CERTS_SECRET_EXT);
    if (pub)
        b = snprintf(pub, cap, "%.*s%s", (int) base, cert, CERTS_PUBLIC_EXT);
    if (a < 0 || b < 0 || (size_t) a >= cap || (size_t) b >= cap)
        return SY_EINVAL;
    return 0;
}

int actor_opts_security(actor_opts_t *opts, const config_t *cfg,
                        const char *cert_override, char *err, size_t errlen)
{
    if (!opts || !cfg)
        return SY_EINVAL;
    opts->cert = opts->broker_key = opts->broker_cert = NULL;
    if (!config_bool(cfg, "security/curve"))
        return 0;
    const char *cert = cert_override ? cert_override
                                     : config_str(cfg, "security/cert");
    if (!cert || !*cert) {
        if (err && errlen)
            snprintf(err, errlen, "security/curve is on but this peer has no "
                     "certificate: set security/cert or pass --cert "
                     "DIR/NAME.secret (make one with syctl keys new)");
        return SY_ECONFIG;
    }
    opts->cert = cert;
    opts->broker_key = config_str(cfg, "security/broker_key");
    opts->broker_cert = config_str(cfg, "security/broker_cert");
    return 0;
}

/* Loads our certificate and checks that it can be used: it holds a
   secret key and, when name is not NULL, is that name's.  Returns 0 with
   *out (free it with certs_destroy) or a code, the reason logged. */
static int actor_cert_load(const char *path, const char *name, zcert_t **out)
{
    char err[400];
    int rc = certs_load(path, out, err, sizeof err);
    if (rc) {
        sylog_error("actor: cannot use the certificate: %s", err);
        return rc;
    }
    if (!certs_has_secret(*out)) {
        sylog_error("actor: %s holds no secret key (give the NAME%s file,"
                    " not the NAME%s)", path, CERTS_SECRET_EXT,
                    CERTS_PUBLIC_EXT);
        certs_destroy(out);
        return SY_ECONFIG;
    }
    if (name && strcmp(certs_name(*out), name) != 0) {
        sylog_error("actor: the certificate %s belongs to %s: a device can "
                    "only appear under its certificate's name, not as %s",
                    path, certs_name(*out), name);
        certs_destroy(out);
        return SY_ECONFIG;
    }
    return 0;
}

/* The broker's public key from opts: the pinned Z85 string, else the
   public certificate file.  Returns 0 or SY_ECONFIG (logged). */
static int actor_broker_key(actor_t *self, const actor_opts_t *o)
{
    if (o->broker_key && *o->broker_key) {
        uint8_t bin[32];
        if (strlen(o->broker_key) != 40
            || !zmq_z85_decode(bin, o->broker_key)) {
            sylog_error("actor: the broker key \"%.8s...\" is not a public "
                        "key (40 characters of Z85)", o->broker_key);
            return SY_ECONFIG;
        }
        memcpy(self->broker_key, o->broker_key, 41);
        return 0;
    }
    char pub[1024], err[400];
    if (!o->broker_cert || actor_cert_paths(o->broker_cert, NULL, pub,
                                            sizeof pub)) {
        sylog_error("actor: CURVE needs the broker's public key: set "
                    "security/broker_key or security/broker_cert");
        return SY_ECONFIG;
    }
    zcert_t *cert = NULL;
    if (certs_load(pub, &cert, err, sizeof err)) {
        sylog_error("actor: cannot read the broker's public key: %s (copy "
                    "the broker's .cert here, or set security/broker_key; "
                    "syctl keys broker prints it)", err);
        return SY_ECONFIG;
    }
    snprintf(self->broker_key, sizeof self->broker_key, "%s",
             zcert_public_txt(cert));
    certs_destroy(&cert);
    return 0;
}

/* Reads the CURVE settings at actor_new: the certificate (its name
   becomes ours when opts->name is NULL) and the broker's key.  Returns 0
   or a code (logged). */
static int actor_curve_init(actor_t *self, const actor_opts_t *o)
{
    if (!zsys_has_curve()) {
        sylog_error("actor: this libzmq has no CURVE support");
        return SY_ECONFIG;
    }
    char secret[1024];
    if (actor_cert_paths(o->cert, secret, NULL, sizeof secret)) {
        sylog_error("actor: \"%s\" is not a certificate path", o->cert);
        return SY_ECONFIG;
    }
    zcert_t *cert = NULL;
    int rc = actor_cert_load(secret, o->name, &cert);
    if (rc)
        return rc;
    self->name = strdup(certs_name(cert));
    snprintf(self->own_key, sizeof self->own_key, "%s",
             zcert_public_txt(cert));
    certs_destroy(&cert);
    self->cert_path = strdup(secret);
    if (!self->name || !self->cert_path)
        return SY_ENOMEM;
    return actor_broker_key(self, o);
}

/* Makes the new socket a CURVE client: our key pair, read again now so
   that the secret lives in this process only as long as it takes to hand
   it to libzmq, and the broker's public key.  Returns 0 or a code. */
static int actor_curve_apply(actor_t *self)
{
    zcert_t *cert = NULL;
    int rc = actor_cert_load(self->cert_path, self->name, &cert);
    if (rc)
        return rc;
    zcert_apply(cert, self->sock);
    certs_destroy(&cert);
    zsock_set_curve_serverkey(self->sock, self->broker_key);
    return 0;
}

/* Counts a refusal; true when this one should be logged (the first of a
   run, then every tenth, so a device left refused does not fill the
   log). */
static bool actor_refusal_logged(actor_t *self)
{
    self->refusals++;
    return self->refusals == 1 || self->refusals % 10 == 0;
}

static void actor_on_handshake(actor_t *self, uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        sylog_debug("actor %s: CURVE handshake with %s done", self->name,
                    self->endpoint);
        return;
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        self->refused = true;
        if (actor_refusal_logged(self))
            sylog_error("actor %s: the broker refused this device: its "
                        "certificate (key %.8s...) is not enrolled or was "
                        "revoked (status %u); enroll it on the broker's host"
                        " with syctl keys enroll %s.cert; retrying with "
                        "backoff", self->name, self->own_key, value,
                        self->name);
        actor_link_lost(self, "CURVE handshake refused");
        return;
    }
    if (actor_refusal_logged(self))
        sylog_warn("actor %s: CURVE handshake with the broker at %s failed "
                   "(is the broker key %.8s... right, and is the broker's "
                   "security/curve on?); retrying with backoff", self->name,
                   self->endpoint, self->broker_key);
    actor_link_lost(self, "CURVE handshake failed");
}

/* Reads the monitor's events: two frames, [u16 event, u32 value] and
   the endpoint. */
static int actor_on_monitor(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    actor_t *self = arg;
    void *handle = zsock_resolve(sock);
    for (int i = 0; i < 16 && self->mon == sock; i++) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            break;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&part) >= 6) {
            memcpy(&event, zmq_msg_data(&part), 2);
            memcpy(&value, (uint8_t *) zmq_msg_data(&part) + 2, 4);
        }
        bool more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        while (more) {
            zmq_msg_init(&part);
            more = zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) >= 0
                   && zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
        actor_on_handshake(self, event, value);
    }
    return actor_loop_rc(self);
}

/* Watches the new socket's handshakes, so a refusal is reported (and the
   socket dropped, instead of libzmq retrying it every 100 ms) at once.
   Without a monitor the hello timer still notices; so failing here only
   costs the diagnosis. */
static void actor_monitor_start(actor_t *self)
{
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://sy-actor-mon-%p-%u-%08x",
             (void *) self, self->mon_seq++, actor_rand(self));
    void *handle = zsock_resolve(self->sock);
    if (zmq_socket_monitor(handle, ep, ACTOR_MON_EVENTS) != 0) {
        sylog_debug("actor %s: no handshake monitor: %s", self->name,
                    zmq_strerror(zmq_errno()));
        return;
    }
    self->mon = zsock_new(ZMQ_PAIR);
    if (!self->mon || zsock_connect(self->mon, "%s", ep) < 0) {
        zmq_socket_monitor(handle, NULL, 0);
        zsock_destroy(&self->mon);
        return;
    }
    zloop_reader(self->loop, self->mon, actor_on_monitor, self);
    zloop_reader_set_tolerant(self->loop, self->mon);
}

static void actor_destroy_dead(actor_t *self)
{
    if (self->dead) {
        zsock_set_linger(self->dead, 0);
        zsock_destroy(&self->dead);
    }
    if (self->dead_mon) {
        zsock_set_linger(self->dead_mon, 0);
        zsock_destroy(&self->dead_mon);
    }
}

/* Abandons the current socket (and its monitor): it stops talking at
   once -- linger 0 and disconnected, so a hello still queued on it can
   never reach the broker after the next socket's hello and take the
   name back, and a refused handshake is not retried by libzmq -- and is
   parked in `dead` because this may run inside its own reader. */
static void actor_sock_abandon(actor_t *self)
{
    actor_destroy_dead(self);
    if (self->mon) {
        zloop_reader_end(self->loop, self->mon);
        zmq_socket_monitor(zsock_resolve(self->sock), NULL, 0);
        self->dead_mon = self->mon;
        self->mon = NULL;
    }
    zloop_reader_end(self->loop, self->sock);
    zsock_set_linger(self->sock, 0);
    zsock_disconnect(self->sock, "%s", self->endpoint);
    self->dead = self->sock;
    self->sock = NULL;
    self->hello_sent = false;
}

/* ------------------------------------------------------------------ */
/* connection life cycle                                               */

/* Tells the state callback that the session is over, if one was up. */
static void actor_session_down(actor_t *self)
{
    if (self->state == ACTOR_UP && self->state_fn)
        self->state_fn(self, false, self->state_arg);
}

/* A new session starts: the broker forgets our credit accounting. */
static void actor_session_reset(actor_t *self)
{
    self->owed = 0;
    self->stale = self->held;
    actor_leases_stale(self);
    actor_timer_end(self, &self->credit_timer);
    actor_timer_end(self, &self->tick_timer);
}

static int actor_hello_timer_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    actor_t *self = arg;
    self->hello_timer = -1;
    if (self->state == ACTOR_HELLO)
        actor_link_lost(self, "no sy.welcome in time");
    return 0;
}

static int actor_send_hello(actor_t *self)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    actor_pack_str(&pk, "name");
    actor_pack_str(&pk, self->name);
    actor_pack_str(&pk, "services");
    msgpack_pack_array(&pk, self->nservices);
    for (size_t i = 0; i < self->nservices; i++)
        actor_pack_str(&pk, self->services[i]);
    actor_pack_str(&pk, "credit");
    msgpack_pack_uint32(&pk, self->credit);

    envelope_t env;
    envelope_init(&env);
    envelope_set_type(&env, "sy.hello");
    int rc = actor_send_frames(self, &env, (const uint8_t *) sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        memcpy(self->hello_id, env.id, 16);
        self->hello_sent = true;
    } else
        sylog_warn("actor %s: sending sy.hello failed: %s", self->name,
                   syerr_name(rc));
    self->state = ACTOR_HELLO;
    actor_timer_end(self, &self->hello_timer);
    self->hello_timer = zloop_timer(self->loop, self->hello_timeout, 1,
                                    actor_hello_timer_cb, self);
    return rc;
}

static int actor_on_readable(zloop_t *loop, zsock_t *sock, void *arg);

/* Makes the socket, connects it and says hello. */
static void actor_connect(actor_t *self)
{
    actor_destroy_dead(self);
    self->hello_sent = false;
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        actor_link_lost(self, "cannot create a socket");
        return;
    }
    if (self->cert_path && actor_curve_apply(self) != 0) {
        zsock_destroy(&self->sock);
        actor_link_lost(self, "certificate not usable");
        return;
    }
    zsock_set_linger(self->sock, ACTOR_LINGER_MS);
    zsock_set_maxmsgsize(self->sock, (int) (self->max_msg > INT32_MAX / 4
                                            ? INT32_MAX
                                            : 4 * self->max_msg));
    zsock_set_sndhwm(self->sock, 10000);
    zsock_set_rcvhwm(self->sock, 10000);
    /* the monitor first: it must see this connection's first handshake */
    if (self->cert_path)
        actor_monitor_start(self);
    if (zsock_connect(self->sock, "%s", self->endpoint) < 0) {
        sylog_error("actor %s: cannot connect to %s", self->name,
                    self->endpoint);
        actor_link_lost(self, "connect failed");     /* parks the socket */
        return;
    }
    zloop_reader(self->loop, self->sock, actor_on_readable, self);
    zloop_reader_set_tolerant(self->loop, self->sock);
    self->last_heard = zclock_mono();
    actor_send_hello(self);
}

static int actor_backoff_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    actor_t *self = arg;
    self->backoff_timer = -1;
    actor_connect(self);
    return 0;
}

/* The delay before the next connect: base = reconnect_min doubled per
   failed attempt, a random point in [base, 2 x base], all clamped to
   [reconnect_min, reconnect_max]; at the cap the range is the top
   quarter, so actors that lost the broker together do not come back in
   lock step. */
static uint32_t actor_backoff_ms(actor_t *self)
{
    uint64_t lo = self->reconnect_min, max = self->reconnect_max;
    for (uint32_t i = 0; i < self->attempt && lo < max; i++)
        lo *= 2;
    if (lo > max)
        lo = max;
    uint64_t hi = 2 * lo > max ? max : 2 * lo;
    if (lo == hi) {
        lo = hi - hi / 4;
        if (lo < self->reconnect_min)
            lo = self->reconnect_min;
    }
    if (self->attempt < 64)
        self->attempt++;
    return (uint32_t) (lo + actor_rand(self) % (hi - lo + 1));
}

static void actor_link_lost(actor_t *self, const char *why)
{
    if (self->state == ACTOR_UP)
        sylog_warn("actor %s: lost the broker (%s), reconnecting",
                   self->name, why);
    else
        sylog_debug("actor %s: %s", self->name, why);
    actor_session_down(self);
    self->state = ACTOR_DOWN;
    actor_session_reset(self);
    actor_timer_end(self, &self->hello_timer);
    if (self->sock)
        actor_sock_abandon(self);
    if (self->backoff_timer < 0)
        self->backoff_timer = zloop_timer(self->loop, actor_backoff_ms(self),
                                          1, actor_backoff_cb, self);
}

/* Broker restarted (it does not know us): say hello again at once. */
static void actor_rehello(actor_t *self)
{
    if (self->state != ACTOR_UP)
        return;     /* a hello is already on its way */
    sylog_info("actor %s: broker does not know us, saying hello again",
               self->name);
    actor_session_down(self);
    actor_session_reset(self);
    actor_send_hello(self);
}

static int actor_tick_cb(zloop_t *loop, int id, void *arg);

/* The tick is a one-shot timer armed again by each tick, so that no
   callback ever cancels the timer that is running it (see the top). */
static void actor_tick_arm(actor_t *self)
{
    uint32_t tick = self->hb_ms / 4;
    if (tick > self->liveness_ms / 4)
        tick = self->liveness_ms / 4;
    actor_timer_end(self, &self->tick_timer);
    self->tick_timer = zloop_timer(self->loop, tick ? tick : 1, 1,
                                   actor_tick_cb, self);
}

static int actor_tick_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    actor_t *self = arg;
    self->tick_timer = -1;
    if (self->state != ACTOR_UP)
        return 0;
    int64_t now = zclock_mono();
    if (now - self->last_heard >= (int64_t) self->liveness_ms)
        actor_link_lost(self, "broker silent");
    else if (now - self->last_sent >= (int64_t) self->hb_ms)
        actor_send_ctl(self, "sy.ping", NULL, 0, NULL);
    if (self->state == ACTOR_UP)
        actor_tick_arm(self);
    return 0;
}

/* ------------------------------------------------------------------ */
/* incoming                                                            */

static void actor_on_welcome(actor_t *self, const actor_msg_t *m)
{
    if (self->state != ACTOR_HELLO || !(m->hdr.present & ENV_HAS_CORR)
        || memcmp(m->hdr.corr, self->hello_id, 16) != 0)
        return;     /* a welcome for an older hello */
    mpread_t r;
    mpval_t map, v;
    uint64_t u;
    mpread_init(&r, m->body, m->body_len);
    self->hb_ms = ACTOR_DEFAULT_HB;
    self->liveness_ms = ACTOR_DEFAULT_LIVENESS;
    if (mpread_next(&r, &map) == 0 && map.kind == MP_MAP) {
        if (mpread_map_find(&r, &map, "hb", &v, NULL) == 0
            && mpval_as_uint(&v, &u) && u > 0 && u < 3600000)
            self->hb_ms = (uint32_t) u;
        if (mpread_map_find(&r, &map, "liveness", &v, NULL) == 0
            && mpval_as_uint(&v, &u) && u > 0 && u < 3600000)
            self->liveness_ms = (uint32_t) u;
        if (mpread_map_find(&r, &map, "max_msg", &v, NULL) == 0
            && mpval_as_uint(&v, &u) && u > 0)
            self->max_msg = u;
    }
    actor_timer_end(self, &self->hello_timer);
    self->attempt = 0;
    self->refusals = 0;
    self->refused = false;
    self->state = ACTOR_UP;
    actor_tick_arm(self);
    sylog_info("actor %s: registered (hb %u ms, liveness %u ms)", self->name,
               self->hb_ms, self->liveness_ms);
    for (size_t i = 0; i < self->nsubs; i++)
        actor_send_ctl_str(self, "sy.sub", "topic", self->subs[i]);
    if (self->state_fn)
        self->state_fn(self, true, self->state_arg);
    if (self->want_connected)
        actor_stop(self);
}

/* True if the receipt body says DENIED / NOT_REGISTERED. */
static bool actor_is_not_registered(const actor_msg_t *m)
{
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP)
        return false;
    return mpread_map_find(&r, &map, "code", &v, NULL) == 0
        && mpval_str_eq(&v, "DENIED")
        && mpread_map_find(&r, &map, "detail", &v, NULL) == 0
        && mpval_str_eq(&v, "NOT_REGISTERED");
}

/* A receipt refusing our hello: the broker will not take this device
   under this name or with these services (DENIED: not the certificate's
   name, a service its role may not offer; or a bad hello).  Saying the
   same hello again at once would be refused again: log it and retry
   with the backoff.  Returns true when m was that refusal. */
static bool actor_hello_refused(actor_t *self, const actor_msg_t *m)
{
    actor_receipt_t r;
    if (self->state != ACTOR_HELLO || strcmp(m->hdr.type, "sy.receipt") != 0
        || !(m->hdr.present & ENV_HAS_CORR)
        || memcmp(m->hdr.corr, self->hello_id, 16) != 0
        || actor_receipt_parse(m, &r) != 0 || r.ok)
        return false;
    self->refused = true;
    if (actor_refusal_logged(self))
        sylog_error("actor %s: the broker refused this device: %s%s%s; "
                    "retrying with backoff", self->name, r.code_name,
                    r.msg[0] ? ": " : "", r.msg);
    actor_link_lost(self, "hello refused");
    return true;
}

/* sy.bye from the broker: the session is over.  "revoked" means the
   device's certificate was taken off the allow-list: say so clearly. */
static void actor_on_bye(actor_t *self, const actor_msg_t *m)
{
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) == 0 && map.kind == MP_MAP
        && mpread_map_find(&r, &map, "reason", &v, NULL) == 0
        && mpval_str_eq(&v, "revoked")) {
        self->refusals++;
        self->refused = true;
        sylog_error("actor %s: the broker refused this device: its "
                    "certificate was revoked", self->name);
    }
    actor_link_lost(self, "broker said bye");
}

/* Answers a bad body to its sender with sy.receipt BAD_BODY. */
static void actor_reply_bad_body(actor_t *self, const actor_msg_t *m, int rc,
                                 const char *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    actor_pack_str(&pk, "ok");
    msgpack_pack_false(&pk);
    actor_pack_str(&pk, "code");
    actor_pack_str(&pk, "BAD_BODY");
    actor_pack_str(&pk, "detail");
    actor_pack_str(&pk, syerr_name(rc));
    actor_pack_str(&pk, "msg");
    actor_pack_str(&pk, err);
    int src = actor_reply(self, m, "sy.receipt", (const uint8_t *) sb.data,
                          sb.size);
    if (src)
        sylog_debug("actor %s: could not answer BAD_BODY: %s", self->name,
                    syerr_name(src));
    msgpack_sbuffer_destroy(&sb);
}

static const actor_route_t *actor_route_find(const actor_t *self,
                                             const char *type)
{
    const actor_route_t *any = NULL;
    for (size_t i = 0; i < self->nroutes; i++) {
        if (strcmp(self->routes[i].type, type) == 0)
            return &self->routes[i];
        if (strcmp(self->routes[i].type, "*") == 0)
            any = &self->routes[i];
    }
    return any;
}

/* Handles sy.* control types; returns true when consumed here. */
static bool actor_on_control(actor_t *self, const actor_msg_t *m)
{
    const char *type = m->hdr.type;
    if (strcmp(type, "sy.welcome") == 0) {
        actor_on_welcome(self, m);
        return true;
    }
    if (strcmp(type, "sy.pong") == 0 || strcmp(type, "sy.ping") == 0)
        return true;
    if (strcmp(type, "sy.bye") == 0) {
        actor_on_bye(self, m);
        return true;
    }
    if (actor_hello_refused(self, m))
        return true;
    if (strcmp(type, "sy.receipt") == 0 && actor_is_not_registered(m)) {
        actor_rehello(self);
        return true;
    }
    return false;
}

bool actor_msg_uses_credit(const actor_msg_t *msg)
{
    return msg && strncmp(msg->hdr.type, "sy.", 3) != 0
        && (msg->hdr.present & ENV_HAS_TO) && msg->hdr.to[0] != '@';
}

bool actor_msg_is_durable(const actor_msg_t *msg)
{
    return actor_msg_uses_credit(msg) && (msg->hdr.present & ENV_HAS_DURABLE)
        && msg->hdr.durable;
}

/* Runs the handler of a durable delivery and acks, nacks or keeps it by
   the handler's result, unless the handler already acked or nacked.  A
   delivery of a message held already does not run it again (see
   actor_lease_again()); one of a message acked lately (in `done`: the
   ack was late, or not sent as it belonged to a lost connection) is
   acked at once: the work is done, and the broker spent a credit on
   this delivery that only a settle gives back. */
static void actor_dispatch_durable(actor_t *self, const actor_msg_t *m,
                                   const actor_route_t *route)
{
    actor_lease_t *l = actor_lease_find(self, m->hdr.id);
    if (l) {
        actor_lease_again(self, l, m);
        return;
    }
    if (actor_ring_find(&self->done, m->hdr.id) >= 0) {
        char key[33];
        envelope_id_hex(m->hdr.id, key);
        sylog_info("actor %s: %s delivered again (attempt %u) after this "
                   "actor acked it: acked again, not run", self->name, key,
                   m->hdr.attempt);
        actor_send_ack(self, m->hdr.id);
        return;
    }
    if (!route) {
        char reason[120];
        snprintf(reason, sizeof reason, "no handler for %s in %s",
                 m->hdr.type, self->name);
        sylog_warn("actor %s: dead-lettering a durable %s: no handler",
                   self->name, m->hdr.type);
        actor_send_nack(self, m->hdr.id, reason, false, 0, NULL);
        return;
    }
    if (!actor_lease_add(self, m->hdr.id)) {
        sylog_error("actor %s: out of memory holding a durable delivery",
                    self->name);
        actor_send_nack(self, m->hdr.id, "worker out of memory", true, 0,
                        NULL);
        return;
    }
    int rc = route->fn(self, m, route->arg);
    l = actor_lease_find(self, m->hdr.id);
    if (!l || rc == ACTOR_KEEP)
        return;     /* acked or nacked inside, or kept */
    actor_settle_t s = { .ack = rc == 0, .reason = syerr_name(rc),
                         .requeue = true };
    int src = actor_lease_settle(self, l, &s);
    if (src)
        sylog_debug("actor %s: %s not sent: %s", self->name,
                    rc == 0 ? "sy.ack" : "sy.nack", syerr_name(src));
}

static void actor_dispatch(actor_t *self, const actor_msg_t *m)
{
    const char *type = m->hdr.type;
    bool control = strncmp(type, "sy.", 3) == 0;
    bool counts = actor_msg_uses_credit(m);
    bool durable = actor_msg_is_durable(m);

    self->last_heard = zclock_mono();
    const msgtype_t *t = msgtypes_find(type, strlen(type));
    if (t) {
        char err[160];
        int rc = msgtypes_validate(t, m->body, m->body_len, err, sizeof err);
        if (rc) {
            sylog_warn("actor %s: bad %s body from %s: %s", self->name, type,
                       m->hdr.from, err);
            if (!control)
                actor_reply_bad_body(self, m, rc, err);
            if (durable) {
                char reason[200];
                snprintf(reason, sizeof reason, "BAD_BODY: %s", err);
                actor_send_nack(self, m->hdr.id, reason, false, 0, NULL);
            } else if (counts)
                self->owed++;
            return;
        }
    }
    if (control && actor_on_control(self, m)) {
        actor_receipt_catch(self, m);
        return;
    }
    if (actor_settle_receipt(self, m) || actor_receipt_catch(self, m))
        return;
    const actor_route_t *route = actor_route_find(self, type);
    if (durable)
        actor_dispatch_durable(self, m, route);
    else {
        int rc = 0;
        if (route)
            rc = route->fn(self, m, route->arg);
        else
            sylog_debug("actor %s: no handler for %s", self->name, type);
        if (counts) {
            if (rc == ACTOR_KEEP)
                self->held++;
            else
                self->owed++;
        }
    }
}

/* Receives one message.  Returns 1 when the socket had nothing. */
static int actor_recv_one(actor_t *self, void *handle)
{
    zmq_msg_t hdr, body;
    zmq_msg_init(&hdr);
    if (zmq_msg_recv(&hdr, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&hdr);
        return 1;
    }
    bool two = zmq_msg_more(&hdr);
    zmq_msg_init(&body);
    if (two)
        zmq_msg_recv(&body, handle, ZMQ_DONTWAIT);
    bool extra = two && zmq_msg_more(&body);
    while (extra) {     /* drain and drop frames beyond two */
        zmq_msg_t x;
        zmq_msg_init(&x);
        zmq_msg_recv(&x, handle, ZMQ_DONTWAIT);
        extra = zmq_msg_more(&x);
        zmq_msg_close(&x);
    }
    actor_msg_t m;
    char err[160];
    int rc = two && !zmq_msg_more(&body) ? 0 : SY_EFRAMES;
    if (rc == 0)
        rc = envelope_decode(&m.hdr, zmq_msg_data(&hdr), zmq_msg_size(&hdr),
                             err, sizeof err);
    else
        snprintf(err, sizeof err, "not two frames");
    if (rc == 0) {
        m.body = zmq_msg_data(&body);
        m.body_len = zmq_msg_size(&body);
        actor_dispatch(self, &m);
    } else
        sylog_warn("actor %s: dropping a message from the broker: %s",
                   self->name, err);
    zmq_msg_close(&hdr);
    zmq_msg_close(&body);
    return 0;
}

static int actor_on_readable(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    actor_t *self = arg;
    void *handle = zsock_resolve(sock);
    bool drained = false;
    self->in_dispatch = true;
    for (int i = 0; i < ACTOR_BATCH; i++) {
        if (actor_recv_one(self, handle)) {
            drained = true;
            break;
        }
        /* the link may have been dropped, or the caller asked to stop */
        if (self->sock != sock || self->stopping)
            break;
        /* half the window done: let the broker send more while we work */
        if (self->owed >= actor_half_window(self))
            actor_credit_flush(self);
    }
    self->in_dispatch = false;
    if (drained || self->stopping || self->owed >= actor_half_window(self))
        actor_credit_flush(self);
    return actor_loop_rc(self);
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

void actor_opts_from_config(actor_opts_t *opts, const config_t *cfg)
{
    if (!opts || !cfg)
        return;
    opts->endpoint = config_str(cfg, "actor/endpoint");
    opts->reconnect_min_ms = (uint32_t) config_int(cfg, "actor/reconnect_min");
    opts->reconnect_max_ms = (uint32_t) config_int(cfg, "actor/reconnect_max");
    opts->hello_timeout_ms = (uint32_t) config_int(cfg, "actor/hello_timeout");
}

/* Checks opts; name is the actor's name (opts->name, or the
   certificate's). */
static bool actor_opts_valid(const actor_opts_t *o, const char *name)
{
    if (!name || !envelope_valid_name(name, strlen(name))) {
        sylog_error("actor: invalid actor name");
        return false;
    }
    if (!o->endpoint || !*o->endpoint) {
        sylog_error("actor %s: no endpoint", name);
        return false;
    }
    if (o->nservices && !o->services)
        return false;
    for (size_t i = 0; i < o->nservices; i++)
        if (!o->services[i]
            || !envelope_valid_name(o->services[i], strlen(o->services[i]))) {
            sylog_error("actor %s: invalid service name", name);
            return false;
        }
    if (o->credit > ACTOR_CREDIT_MAX) {
        sylog_error("actor %s: credit %u above %u", name, o->credit,
                    ACTOR_CREDIT_MAX);
        return false;
    }
    return true;
}

static void actor_free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

actor_t *actor_new(const actor_opts_t *opts)
{
    if (!opts)
        return NULL;
    bool curve = opts->cert && *opts->cert;
    if (!curve && !actor_opts_valid(opts, opts->name))
        return NULL;
    actor_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->tick_timer = self->hello_timer = self->backoff_timer = -1;
    self->credit_timer = self->stop_timer = self->run_timer = -1;
    self->rng = (uint64_t) zclock_usecs() ^ ((uint64_t) getpid() << 32)
                ^ (uint64_t) (uintptr_t) self;
    if (!self->rng)
        self->rng = 88172645463325252ULL;
    if (curve) {
        /* the certificate decides the name */
        if (actor_curve_init(self, opts) != 0
            || !actor_opts_valid(opts, self->name)) {
            actor_destroy(&self);
            return NULL;
        }
    } else
        self->name = strdup(opts->name);
    self->endpoint = strdup(opts->endpoint);
    self->services = calloc(opts->nservices + 1, sizeof(char *));
    self->loop = zloop_new();
    self->leases = zhashx_new();
    bool ok = self->name && self->endpoint && self->services && self->loop
              && self->leases;
    for (size_t i = 0; ok && i < opts->nservices; i++) {
        self->services[i] = strdup(opts->services[i]);
        ok = self->services[i] != NULL;
        self->nservices = i + 1;
    }
    self->credit = opts->credit ? opts->credit : 1;
    self->reconnect_min = opts->reconnect_min_ms ? opts->reconnect_min_ms : 100;
    self->reconnect_max = opts->reconnect_max_ms ? opts->reconnect_max_ms : 5000;
    if (self->reconnect_max < self->reconnect_min)
        self->reconnect_max = self->reconnect_min;
    self->hello_timeout = opts->hello_timeout_ms ? opts->hello_timeout_ms : 2000;
    self->hb_ms = ACTOR_DEFAULT_HB;
    self->liveness_ms = ACTOR_DEFAULT_LIVENESS;
    self->max_msg = ACTOR_DEFAULT_MAX_MSG;
    syid_init(&self->ids);
    if (!ok) {
        actor_destroy(&self);
        return NULL;
    }
    /* Connect when the loop first runs, so the hello timer does not
       start counting before anyone reads the socket. */
    self->state = ACTOR_DOWN;
    self->backoff_timer = zloop_timer(self->loop, 1, 1, actor_backoff_cb, self);
    return self;
}

void actor_destroy(actor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    actor_t *self = *self_p;
    /* A hello on this socket may have registered us even if its welcome
       has not come yet: say bye so the broker forgets us now rather than
       after its liveness. */
    if (self->sock && self->hello_sent) {
        if (self->state == ACTOR_UP)
            actor_credit_flush(self);
        actor_send_ctl_str(self, "sy.bye", "reason", "shutdown");
    }
    if (self->mon) {
        if (self->loop)
            zloop_reader_end(self->loop, self->mon);
        zmq_socket_monitor(zsock_resolve(self->sock), NULL, 0);
        zsock_set_linger(self->mon, 0);
        zsock_destroy(&self->mon);
    }
    if (self->sock) {
        if (self->loop)
            zloop_reader_end(self->loop, self->sock);
        zsock_destroy(&self->sock);     /* linger: the bye goes out */
    }
    actor_destroy_dead(self);
    if (self->leases) {
        for (actor_lease_t *l = zhashx_first(self->leases); l;
             l = zhashx_next(self->leases))
            free(l);    /* their timers die with the loop below */
        zhashx_destroy(&self->leases);
    }
    zloop_destroy(&self->loop);
    for (size_t i = 0; i < self->nroutes; i++)
        free(self->routes[i].type);
    free(self->routes);
    actor_free_strs(self->subs, self->nsubs);
    actor_free_strs(self->services, self->nservices);
    free(self->name);
    free(self->endpoint);
    free(self->cert_path);
    free(self);
    *self_p = NULL;
}

static bool actor_list_has(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Whether services[0..n) names the same set as the actor's list (order
   and repeats aside). */
static bool actor_services_same(const actor_t *self,
                                const char *const *services, size_t n)
{
    const char *const *mine = (const char *const *) self->services;
    for (size_t i = 0; i < n; i++)
        if (!actor_list_has(mine, self->nservices, services[i]))
            return false;
    for (size_t i = 0; i < self->nservices; i++)
        if (!actor_list_has(services, n, mine[i]))
            return false;
    return true;
}

/* A copy of services[0..n) after checking every name as the broker
   would; NULL with *rc set otherwise. */
static char **actor_services_copy(const actor_t *self,
                                  const char *const *services, size_t n,
                                  int *rc)
{
    *rc = SY_EINVAL;
    if (n > ACTOR_SERVICES_MAX || (n && !services))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!services[i] || services[i][0] == '@'
            || !envelope_valid_name(services[i], strlen(services[i]))) {
            sylog_warn("actor %s: invalid service name", self->name);
            return NULL;
        }
    *rc = SY_ENOMEM;
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = strdup(services[i]))) {
            actor_free_strs(v, i);
            return NULL;
        }
    if (v)
        *rc = 0;
    return v;
}

/* The new list is announced with a new hello on the same socket: the
   broker takes a second hello on a connection as "hello again" (the old
   session leaves, what it held is given out again), so this is a new
   session here too, as after a reconnect -- but the connection is not
   lost, so the state callback does not hear up = false, only up = true
   after the new welcome.  Between the hello and its welcome the state is
   HELLO: sends answer SY_ECLOSED for that round trip, and no welcome in
   time drops the link as for any hello.  An unchanged set sends nothing,
   so a state callback that sets the services it wants cannot loop. */
int actor_set_services(actor_t *self, const char *const *services, size_t n)
{
    if (!self)
        return SY_EINVAL;
    int rc;
    char **v = actor_services_copy(self, services, n, &rc);
    if (!v)
        return rc;
    if (actor_services_same(self, services, n)) {
        actor_free_strs(v, n);
        return 0;
    }
    actor_free_strs(self->services, self->nservices);
    self->services = v;
    self->nservices = n;
    sylog_info("actor %s: now offering %zu service%s", self->name, n,
               n == 1 ? "" : "s");
    if (!self->sock || !self->hello_sent)
        return 0;       /* the next connect says hello with the new list */
    if (self->state == ACTOR_UP)
        actor_session_reset(self);
    actor_send_hello(self);
    return 0;
}

int actor_on(actor_t *self, const char *type, actor_handler_fn *fn, void *arg)
{
    if (!self || !type || !fn
        || (strcmp(type, "*") != 0 && !envelope_valid_type(type, strlen(type))))
        return SY_EINVAL;
    for (size_t i = 0; i < self->nroutes; i++)
        if (strcmp(self->routes[i].type, type) == 0) {
            self->routes[i].fn = fn;
            self->routes[i].arg = arg;
            return 0;
        }
    actor_route_t *r = realloc(self->routes,
                               (self->nroutes + 1) * sizeof *r);
    if (!r)
        return SY_ENOMEM;
    self->routes = r;
    char *copy = strdup(type);
    if (!copy)
        return SY_ENOMEM;
    r[self->nroutes++] = (actor_route_t) { copy, fn, arg };
    return 0;
}

void actor_on_state(actor_t *self, actor_state_fn *fn, void *arg)
{
    if (!self)
        return;
    self->state_fn = fn;
    self->state_arg = arg;
}

int actor_send(actor_t *self, const char *to, const char *type,
               const uint8_t *body, size_t len,
               const actor_send_opts_t *opts, uint8_t id_out[16])
{
    if (!self || !to || !type)
        return SY_EINVAL;
    envelope_t env;
    envelope_init(&env);
    if (envelope_set_type(&env, type) || envelope_set_to(&env, to))
        return SY_EINVAL;
    if (opts) {
        if (opts->prio > ENVELOPE_PRIO_LOW || opts->ttl_ms > ENVELOPE_TTL_MAX)
            return SY_EINVAL;
        if (opts->prio != ENVELOPE_PRIO_NORMAL) {
            env.prio = opts->prio;
            env.present |= ENV_HAS_PRIO;
        }
        if (opts->ttl_ms) {
            env.ttl = opts->ttl_ms;
            env.present |= ENV_HAS_TTL;
        }
        if (opts->durable) {
            env.durable = true;
            env.present |= ENV_HAS_DURABLE;
        }
        if (opts->key && envelope_set_key(&env, opts->key))
            return SY_EINVAL;
        if (opts->reply_to && envelope_set_reply_to(&env, opts->reply_to))
            return SY_EINVAL;
        if (opts->corr) {
            memcpy(env.corr, opts->corr, 16);
            env.present |= ENV_HAS_CORR;
        }
    }
    int rc = actor_check_body(self, type, body, len);
    if (rc)
        return rc;
    if (self->state != ACTOR_UP)
        return SY_ECLOSED;
    rc = actor_send_frames(self, &env, body, len);
    if (rc == 0 && id_out)
        memcpy(id_out, env.id, 16);
    return rc;
}

int actor_send_broker(actor_t *self, const char *type,
                      const uint8_t *body, size_t len, uint8_t id_out[16])
{
    if (!self || !type || strncmp(type, "sy.", 3) != 0)
        return SY_EINVAL;
    return actor_send_ctl_up(self, type, body, len, id_out);
}

int actor_reply(actor_t *self, const actor_msg_t *req, const char *type,
                const uint8_t *body, size_t len)
{
    if (!self || !req || !type)
        return SY_EINVAL;
    char to[ENVELOPE_NAME_MAX + 2];
    if (req->hdr.present & ENV_HAS_REPLY_TO)
        snprintf(to, sizeof to, "%s", req->hdr.reply_to);
    else if (req->hdr.present & ENV_HAS_FROM)
        snprintf(to, sizeof to, "@%s", req->hdr.from);
    else
        return SY_EINVAL;
    actor_send_opts_t o = { .prio = ENVELOPE_PRIO_NORMAL,
                            .corr = req->hdr.id };
    return actor_send(self, to, type, body, len, &o, NULL);
}

int actor_publish(actor_t *self, const char *topic,
                  const uint8_t *data, size_t len)
{
    static const uint8_t nil = 0xc0;
    if (!self || !topic)
        return SY_EINVAL;
    if (!data || len == 0) {
        data = &nil;
        len = 1;
    }
    if (mpread_check(data, len, MPREAD_MAX_DEPTH - 1))
        return SY_EINVAL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    actor_pack_str(&pk, "topic");
    actor_pack_str(&pk, topic);
    actor_pack_str(&pk, "data");
    msgpack_sbuffer_write(&sb, (const char *) data, len);
    int rc = actor_send_ctl_up(self, "sy.event", (const uint8_t *) sb.data,
                               sb.size, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int actor_subscribe(actor_t *self, const char *prefix)
{
    if (!self || !prefix || strlen(prefix) > ENVELOPE_NAME_MAX)
        return SY_EINVAL;
    for (size_t i = 0; i < self->nsubs; i++)
        if (strcmp(self->subs[i], prefix) == 0)
            return 0;
    char **v = realloc(self->subs, (self->nsubs + 1) * sizeof *v);
    if (!v)
        return SY_ENOMEM;
    self->subs = v;
    if (!(v[self->nsubs] = strdup(prefix)))
        return SY_ENOMEM;
    self->nsubs++;
    if (self->state == ACTOR_UP)
        actor_send_ctl_str(self, "sy.sub", "topic", prefix);
    return 0;
}

int actor_unsubscribe(actor_t *self, const char *prefix)
{
    if (!self || !prefix)
        return SY_EINVAL;
    for (size_t i = 0; i < self->nsubs; i++)
        if (strcmp(self->subs[i], prefix) == 0) {
            free(self->subs[i]);
            self->subs[i] = self->subs[--self->nsubs];
            if (self->state == ACTOR_UP)
                actor_send_ctl_str(self, "sy.unsub", "topic", prefix);
            return 0;
        }
    return 0;
}

bool actor_connected(const actor_t *self)
{
    return self && self->state == ACTOR_UP;
}

bool actor_refused(const actor_t *self)
{
    return self && self->refused;
}

const char *actor_name(const actor_t *self)
{
    return self ? self->name : NULL;
}

zloop_t *actor_loop(actor_t *self)
{
    return self ? self->loop : NULL;
}

static int actor_stop_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    (void) arg;
    return -1;      /* the id stays set: actor_run_loop() removes it */
}

void actor_stop(actor_t *self)
{
    if (!self)
        return;
    self->stopping = true;
    if (self->stop_timer < 0)
        self->stop_timer = zloop_timer(self->loop, 1, 1, actor_stop_cb, self);
}

/* Runs the loop once until a handler ends it; resets the stop state. */
static void actor_run_loop(actor_t *self)
{
    zloop_start(self->loop);
    self->stopping = false;
    actor_timer_end(self, &self->stop_timer);
}

int actor_run(actor_t *self)
{
    if (!self)
        return SY_EINVAL;
    actor_run_loop(self);
    return 0;
}

static int actor_run_timeout_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    actor_t *self = arg;
    self->timed_out = true;
    return -1;      /* the id stays set: actor_run_for() removes it */
}

int actor_run_for(actor_t *self, int timeout_ms)
{
    if (!self)
        return SY_EINVAL;
    self->timed_out = false;
    self->run_timer = zloop_timer(self->loop,
                                  (size_t) (timeout_ms > 0 ? timeout_ms : 1),
                                  1, actor_run_timeout_cb, self);
    actor_run_loop(self);
    actor_timer_end(self, &self->run_timer);
    bool to = self->timed_out;
    self->timed_out = false;
    return to ? SY_ETIMEOUT : 0;
}

int actor_wait_connected(actor_t *self, int timeout_ms)
{
    if (!self)
        return SY_EINVAL;
    if (self->state == ACTOR_UP)
        return 0;
    self->want_connected = true;
    actor_run_for(self, timeout_ms);
    self->want_connected = false;
    return self->state == ACTOR_UP ? 0 : SY_ETIMEOUT;
}

int actor_wait_receipt(actor_t *self, const uint8_t id[16], int timeout_ms,
                       actor_receipt_t *out)
{
    if (!self || !id || !out)
        return SY_EINVAL;
    self->wait_got = false;
    memcpy(self->wait_id, id, 16);
    self->wait_out = out;
    int64_t deadline = zclock_mono() + (timeout_ms > 0 ? timeout_ms : 0);
    while (!self->wait_got && !zsys_interrupted) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0 || actor_run_for(self, (int) left) == SY_ETIMEOUT)
            break;
    }
    self->wait_out = NULL;
    return self->wait_got ? 0 : SY_ETIMEOUT;
}
