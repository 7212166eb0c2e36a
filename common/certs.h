/*  certs.h -- device certificates: CURVE key pairs with a name and a role.
 *
 *  A device (a phone, a laptop, an actor, syctl) proves who it is with a
 *  CURVE key pair, kept as two CZMQ zcert files (ZPL text):
 *      NAME.cert    the public key and the metadata name and role; safe to
 *                   copy (it is what the broker's allow-list holds)
 *      NAME.secret  the same plus the secret key; mode 0600, stays on the
 *                   device
 *  The name is what the broker calls the device everywhere (its `from`);
 *  it obeys the protocol's name rule (1..64 of [A-Za-z0-9._:@-], no '@'
 *  first).  The role is one of client, actor, worker, operator and decides
 *  what the device may do (broker/acl.h).
 *
 *  Secrets: nothing here prints or logs a secret key; certs_destroy wipes
 *  the secret key inside the zcert before freeing it (zcert_destroy alone
 *  does not).  Use certs_destroy, not zcert_destroy, on certificates that
 *  hold a secret.
 *
 *  Ownership: certs_new and certs_load return a zcert_t the caller frees
 *  with certs_destroy.  Strings returned by certs_name/certs_role_name
 *  belong to the certificate / are static.
 */
#ifndef CERTS_H
#define CERTS_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CERTS_ROLE_CLIENT = 0,
    CERTS_ROLE_ACTOR,
    CERTS_ROLE_WORKER,
    CERTS_ROLE_OPERATOR,
    CERTS_ROLE_COUNT,
    CERTS_ROLE_NONE = -1
} certs_role_t;

#define CERTS_PUBLIC_EXT ".cert"
#define CERTS_SECRET_EXT ".secret"

/* "client", "actor", "worker", "operator"; "none" for anything else. */
const char *certs_role_name(certs_role_t role);

/* The role named s, or CERTS_ROLE_NONE. */
certs_role_t certs_role_parse(const char *s);

/* True if name is a valid device name (the protocol's name rule, and not
   starting with '@' or '.' so it can be a file name and an address). */
bool certs_valid_name(const char *name);

/* Makes a new key pair for NAME with ROLE and writes DIR/NAME.cert and
   DIR/NAME.secret (mode 0600).  DIR must exist.  Refuses (SY_EINVAL) an
   invalid name or role, and (SY_EDUPLICATE) if either file exists: a key is
   never silently replaced.  If out is not NULL *out receives the
   certificate (with its secret), else it is destroyed.  Returns 0 or a
   negative code with a line in err. */
int certs_new(const char *dir, const char *name, const char *role,
              zcert_t **out, char *err, size_t errlen);

/* Loads a NAME.cert or NAME.secret file.  Checks that it holds a valid
   name and role in its metadata and, for a file holding a secret key, that
   its mode is at most 0600 (SY_ECONFIG otherwise).  Returns 0 with *out,
   or SY_ENOTFOUND, SY_ECONFIG (bad mode, bad metadata, not a certificate),
   SY_EIO, with a line in err. */
int certs_load(const char *path, zcert_t **out, char *err, size_t errlen);

/* Whether the certificate holds a secret key (not all zeros). */
bool certs_has_secret(zcert_t *cert);

/* The certificate's metadata name (NULL if none) and role. */
const char *certs_name(zcert_t *cert);
certs_role_t certs_role(zcert_t *cert);

/* Wipes the secret key held in the certificate, then destroys it and
   NULLs *cert_p.  NULL-safe. */
void certs_destroy(zcert_t **cert_p);

#endif
