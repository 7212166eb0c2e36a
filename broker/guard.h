/*  guard.h -- who a message comes from and what it may do: the broker's
 *  security checks in one place.
 *
 *  The guard puts together the security modules (allowlist, zap, acl,
 *  ratelimit, certs) for broker.c:
 *
 *  - Identity.  With security/curve = true the broker's ROUTER is a CURVE
 *    server (its own key pair from security/broker_cert, made at the first
 *    start if missing, secret file mode 0600) and the ZAP handler
 *    (broker/zap.h) admits enrolled keys only; guard_identify() then reads
 *    every received message's certificate name and role (zap_peer: the
 *    key is re-checked against the current allow-list, so a revoked key
 *    is refused from its next message on, even on an old connection).
 *    With curve = false (tests, and until every client speaks CURVE)
 *    nobody has a certificate: every peer gets security/default_role and
 *    is known by the name it gave in sy.hello.
 *
 *  - Endpoints.  CURVE is a property of the socket, so with curve on it
 *    applies to every endpoint of broker/endpoint, tcp:// and ipc://
 *    alike: a local actor on ipc:// authenticates with its certificate
 *    and gets its certificate's role like anyone else.  In addition an
 *    ipc:// socket file must lie in a directory that only the broker's
 *    user can open (no group or other permission bits): guard_prepare()
 *    refuses the configuration otherwise, and refuses abstract sockets
 *    (ipc://@...), which have no permissions at all.
 *
 *  - Authorisation.  guard_may_send() answers acl_check_send() for every
 *    message; the answer for each (role, type) pair is computed once at
 *    start, so the per-message check is one table read.  Only sy.query
 *    asks the acl each time (it depends on the query's `what`).
 *
 *  - Rate limits.  guard_rate() takes a token from the identity's bucket
 *    (ratelimit.h) for the roles listed in ratelimit/roles; sy.ack,
 *    sy.nack, sy.lease, sy.credit and sy.bye are never limited (they
 *    settle what the broker handed out; refusing them would only cause
 *    redeliveries).
 *
 *  Cost per message: a table read, one hash lookup in the rate limiter
 *  and, with CURVE, two metadata reads and one hash lookup in the
 *  allow-list.  Nothing allocates.
 *
 *  Secrets: the broker's secret key is read, applied to the socket and
 *  wiped (certs_destroy); it is never logged.
 *
 *  Ownership: guard_new() returns a guard the caller destroys (before the
 *  loop it was given); strings returned belong to the guard or to its
 *  allow-list (valid until the next allow-list reload, i.e. the next loop
 *  timer: use them within the handling of one message).
 */
#ifndef GUARD_H
#define GUARD_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/acl.h"
#include "common/certs.h"
#include "common/config.h"
#include "schemas/msgtypes.h"

typedef struct _guard_t guard_t;

/* The sender of one message. */
typedef struct {
    const char  *name;        /* certificate name (CURVE), else NULL */
    certs_role_t role;
} guard_peer_t;

/* Called from the loop for each identity revoked (or removed from the
   allow-list); name is valid during the call. */
typedef void (guard_revoked_fn)(const char *name, void *arg);

/* Reads the security/, acl/ and ratelimit/ settings; with curve on loads
   (or makes) the broker's certificate, loads the allow-list and starts
   the ZAP handler in loop -- so call it before binding anything.
   Returns 0 with *out, or SY_ECONFIG / SY_EIO / SY_ENOMEM with a line in
   err naming the setting or file. */
int guard_new(const config_t *cfg, zloop_t *loop, guard_revoked_fn *on_revoked,
              void *arg, guard_t **out, char *err, size_t errlen);

void guard_destroy(guard_t **self_p);

/* Whether CURVE is on. */
bool guard_curve(const guard_t *self);

/* Makes router a CURVE server with the broker's key (curve on) and checks
   the ipc:// endpoints of the comma list endpoints (see above).  Call
   before binding.  Returns 0 or SY_ECONFIG / SY_EIO with a line in err. */
int guard_prepare(guard_t *self, zsock_t *router, const char *endpoints,
                  char *err, size_t errlen);

/* The broker's public key (Z85), "" with curve off.  Owned by self. */
const char *guard_public_key(const guard_t *self);

/* Who sent frame (a frame received on the router).  Curve off: name
   NULL, role security/default_role, always 0.  Curve on: 0 with the
   certificate's name and role, or SY_EDENIED when the frame carries no
   identity or its key is no longer enrolled under that name. */
int guard_identify(guard_t *self, const zmq_msg_t *frame, guard_peer_t *out);

/* Whether role may send a message of type mt (from msgtypes_find); what
   is a sy.query's `what` ("" if absent, ignored for other types).
   Returns 0 or SY_EDENIED. */
int guard_may_send(const guard_t *self, certs_role_t role, const msgtype_t *mt,
                   const char *what);

/* Whether role may offer service in sy.hello. */
bool guard_may_offer(const guard_t *self, certs_role_t role, const char *service);

/* Takes one token for a message of type mt from id (role role) at now_ms.
   Returns 0, or SY_ERATE_LIMITED.  id NULL (not known yet), a role that
   is not limited and the settling types always pass. */
int guard_rate(guard_t *self, certs_role_t role, const char *id, const msgtype_t *mt,
               int64_t now_ms);

/* Handshakes accepted and refused (0 with curve off). */
void guard_stats(guard_t *self, uint64_t *accepted, uint64_t *refused);

/* The authorisation rules the guard applies (borrowed; lives as long as
   the guard), for decisions that need more than a message's type, such
   as who may cancel a message (acl_may_cancel). */
const acl_t *guard_acl(const guard_t *self);

#endif
