/*  zap.h -- the broker's ZAP handler: who may complete a CURVE handshake.
 *
 *  libzmq asks a ZAP handler (RFC 27, a REP socket bound to
 *  inproc://zeromq.zap.01 in the same context) about every handshake on a
 *  socket with ZMQ_CURVE_SERVER set.  CZMQ's zauth only knows "any
 *  certificate in a directory"; this handler answers from allowlist.h:
 *      enrolled public key  -> 200, User-Id = the certificate's name, and
 *                              two connection properties:
 *                              ZAP_PROP_ROLE ("X-Sy-Role") = role name,
 *                              ZAP_PROP_KEY  ("X-Sy-Key")  = Z85 public key
 *      anything else        -> 400 (unknown or revoked key, or a mechanism
 *                              other than CURVE)
 *  libzmq attaches User-Id and the properties to every message received on
 *  that connection: zmq_msg_gets(&msg, "User-Id").  Because a connection
 *  outlives its handshake, zap_peer() re-checks a message's key against
 *  the current list, so a revoked device is refused from its next message
 *  on, even on a connection opened before the revocation.
 *
 *  The handler also runs a timer that calls allowlist_refresh() every
 *  refresh_ms and reports each name whose key went away to on_revoked, so
 *  the broker can forget that peer at once (presence.leave "revoked").
 *
 *  Order matters: create the handler before binding any CURVE endpoint;
 *  libzmq admits every CURVE client while no handler is bound.  Only one
 *  ZAP handler may exist per ZeroMQ context (do not also start zauth).
 *
 *  Logging: accepted and refused handshakes are logged with the name, the
 *  first 8 characters of the public key and the peer address; no secret
 *  ever passes through here.
 *
 *  Ownership: zap_new returns a zap_t the caller destroys (before the
 *  loop); the loop and the allow-list are the caller's and must outlive it.
 */
#ifndef ZAP_H
#define ZAP_H

#include "broker/allowlist.h"

#include <czmq.h>
#include <stdint.h>

#define ZAP_ENDPOINT  "inproc://zeromq.zap.01"
#define ZAP_PROP_ROLE "X-Sy-Role"
#define ZAP_PROP_KEY  "X-Sy-Key"

typedef struct _zap_t zap_t;

/* Called from the loop for each name revoked (or otherwise removed) since
   the last refresh.  name belongs to the caller of the callback. */
typedef void (zap_revoked_fn)(const char *name, void *arg);

/* Binds the ZAP socket, registers it and the refresh timer (refresh_ms >
   0; 0 means no timer) in loop.  Returns 0 with *out, or SY_EIO (the
   endpoint is taken: another handler or zauth runs) / SY_ENOMEM with a line
   in err. */
int zap_new(zloop_t *loop, allowlist_t *allow, int refresh_ms,
            zap_revoked_fn *on_revoked, void *arg, zap_t **out,
            char *err, size_t errlen);

/* Unregisters from the loop and closes the socket.  NULL-safe. */
void zap_destroy(zap_t **self_p);

/* Handshakes accepted and refused so far. */
void zap_stats(zap_t *self, uint64_t *accepted, uint64_t *refused);

/* The allow-list entry of the device that sent msg (a frame received on
   the CURVE socket), or NULL when the message carries no ZAP identity or
   its key is no longer enrolled under that name.  The broker calls this
   for every message it receives, then uses entry->name as `from` and
   entry->role for authorisation. */
const allowlist_entry_t *zap_peer(allowlist_t *allow, const zmq_msg_t *msg);

#endif
