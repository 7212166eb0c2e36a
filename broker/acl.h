/*  acl.h -- what each certificate role may do: authorisation rules.
 *
 *  Each role (client, actor, worker, operator; certs.h) has, from the
 *  configuration (acl/ROLE/offer, acl/ROLE/send, acl/ROLE/admin):
 *    - offer: the services it may offer in sy.hello;
 *    - send:  the message types it may send;
 *    - admin: whether it may use queue administration.
 *  Lists are comma-separated patterns: an exact name, or a prefix ending
 *  in '*' ("chat.*"; "*" alone is everything).  For `sy.query` a pattern
 *  may name one query as "sy.query:WHAT" ("sy.query:status"); a pattern
 *  matching the type itself ("sy.query", "sy.*", "*") allows every query.
 *
 *  Administration: a sy.query whose `what` does not match
 *  acl/readonly_queries (default "status,place") and is not one of the
 *  owner-checked queries below is administration (purge, requeue, ...)
 *  and needs admin = true in addition to a send pattern.  So a new query
 *  is administration until declared read-only: the safe side.
 *
 *  Owner-checked queries (ACL_OWNER_QUERIES, fixed in the code: "cancel")
 *  change one message, and whether a peer may do that depends on the
 *  message, not only on the role.  The send check lets them through
 *  without admin (a send pattern must still name them: "sy.query",
 *  "sy.query:cancel", "sy.*" or "*"), and the broker then asks
 *  acl_may_cancel() with the stored message: an admin role may; so may
 *  the message's sender (its stored `from` is the requester's name), and
 *  a peer that currently offers the service its `reply_to` names (the
 *  front door cancels the jobs the router queued with reply_to
 *  "frontdoor").  Anyone else is DENIED.
 *
 *  Always allowed, whatever the lists say: sy.hello, sy.ping and sy.bye,
 *  the minimum to hold a session (a hello's services are still checked
 *  with acl_may_offer).
 *
 *  Defaults (common/config.c): client offers nothing and sends chat.*,
 *  echo.*, sy.query:status and sy.query:place; actor offers frontdoor, router, light, cron,
 *  sync, debate, echo and sends anything not administration; worker offers
 *  inference and echo and sends anything not administration; operator may
 *  do everything.
 *
 *  The checks never allocate and take time linear in the pattern lists.
 *  Ownership: acl_new returns an acl_t the caller destroys; it keeps no
 *  pointer into the config.
 */
#ifndef ACL_H
#define ACL_H

#include "common/certs.h"
#include "common/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct _acl_t acl_t;

/* Reads the acl/ settings of cfg.  Returns 0 with *out, or SY_ECONFIG
   with a message naming the setting and the bad pattern, or SY_ENOMEM. */
int acl_new(const config_t *cfg, acl_t **out, char *err, size_t errlen);

void acl_destroy(acl_t **self_p);

/* Whether role may offer service. */
bool acl_may_offer(const acl_t *self, certs_role_t role, const char *service);

/* Whether role may send a message of type; what is the body's `what` for
   sy.query (NULL or "" otherwise).  0 or SY_EDENIED. */
int acl_check_send(const acl_t *self, certs_role_t role, const char *type,
                   const char *what);

/* Whether a sy.query with this what is administration (neither
   read-only nor owner-checked). */
bool acl_is_admin_query(const acl_t *self, const char *what);

/* The queries whose permission is decided per message (see above). */
#define ACL_OWNER_QUERIES "cancel"

/* Whether what is an owner-checked query. */
bool acl_is_owner_query(const char *what);

/* Whether role has admin = true. */
bool acl_role_admin(const acl_t *self, certs_role_t role);

/* Whether requester (role role) may cancel a stored message whose header
   says stored_from and stored_reply_to (NULL or "" when absent);
   offers_reply_to: whether requester currently offers the service
   stored_reply_to names (the caller knows who offers what).  0, or
   SY_EDENIED with a line for the refusal in why (if not NULL). */
int acl_may_cancel(const acl_t *self, certs_role_t role, const char *requester,
                   const char *stored_from, const char *stored_reply_to,
                   bool offers_reply_to, char *why, size_t whylen);

/* Whether a comma list of patterns is well formed: items of
   [a-z0-9A-Z._:@-], at most one '*' and only at an item's end, no empty
   item (an empty list is fine).  For config checks and syctl. */
bool acl_valid_list(const char *list);

/* Whether the comma list of patterns matches name (exported for tests and
   for the front door's own lists). */
bool acl_list_match(const char *list, const char *name);

#endif
