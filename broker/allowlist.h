/*  allowlist.h -- the broker's list of enrolled device certificates.
 *
 *  Only a device whose public key is enrolled may connect (broker/zap.c asks
 *  this list on every CURVE handshake).  The list lives in a directory
 *  (security/certs_dir), one public certificate per device:
 *      DIR/NAME.cert    a certs.h public certificate whose metadata name is
 *                       NAME (a file whose name differs is ignored, with a
 *                       warning) and whose role is one of the four roles
 *      DIR/revoked      lines "Z85-PUBLIC-KEY NAME": keys once revoked.  A
 *                       key listed here is refused even if its certificate
 *                       is copied back into DIR, until it is enrolled again
 *                       with allowlist_enroll (syctl keys enroll).
 *  The path may instead name one certificate file: then that one device is
 *  enrolled, and enroll/revoke are not available.
 *
 *  Changes: enroll and revoke write through a temporary file and rename(),
 *  so the directory's mtime changes; allowlist_refresh() compares the mtimes
 *  of the directory and of the revoked file, and the mtime and size of each
 *  .cert file, with what the last load saw (one stat call each, so an edit
 *  in place of a certificate is seen too), and reloads when they differ,
 *  or when they are so recent that a second change within the file
 *  system's timestamp granularity could hide behind the first.  The broker
 *  calls it about once a second, so a revocation made by another process
 *  (syctl) takes effect within about a second.
 *
 *  Duplicates: two certificates with the same name or the same key: the
 *  first in file-name order wins; the other is ignored with a warning.
 *
 *  Ownership: entries returned by the lookups belong to the list and stay
 *  valid until the next reload (refresh, reload, enroll, revoke) or
 *  destroy.  Lists of names returned are the caller's (zlist with autofree).
 *  Public keys are not secret and may be logged; no secret key is ever read
 *  into the list (a secret file in DIR is refused with a warning).
 */
#ifndef ALLOWLIST_H
#define ALLOWLIST_H

#include "common/certs.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALLOWLIST_REVOKED_FILE "revoked"

typedef struct _allowlist_t allowlist_t;

typedef struct {
    char         name[65];
    certs_role_t role;
    char         key[41];          /* public key, Z85 */
} allowlist_entry_t;

/* Loads the list from path (a directory, created mode 0700 if missing, or
   one .cert file).  Returns 0 with *out, or a negative code with a line in
   err (SY_EIO, SY_ENOMEM, SY_ECONFIG). */
int allowlist_new(const char *path, allowlist_t **out, char *err, size_t errlen);

void allowlist_destroy(allowlist_t **self_p);

/* The enrolled entry with this Z85 public key (40 characters), or NULL. */
const allowlist_entry_t *allowlist_lookup(allowlist_t *self, const char *key_z85);

/* The same by binary 32-byte key (as a ZAP request carries it). */
const allowlist_entry_t *allowlist_lookup_bin(allowlist_t *self, const uint8_t key[32]);

/* The enrolled entry named name, or NULL. */
const allowlist_entry_t *allowlist_lookup_name(allowlist_t *self, const char *name);

/* Number of enrolled entries; the i-th in name order (NULL past the end). */
size_t allowlist_size(allowlist_t *self);
const allowlist_entry_t *allowlist_at(allowlist_t *self, size_t i);

/* True if the key is in the revoked list. */
bool allowlist_is_revoked(allowlist_t *self, const char *key_z85);

/* Reloads if the directory, the revoked file or a certificate file
   changed since the last load.  Returns 0, or a negative code (the
   previous list stays in force).  *changed (if not NULL) is set true when
   it reloaded or had removed names to hand out, else false.  If removed
   is not NULL, *removed receives the names whose enrolled key went away
   since they were last handed out (revoked, deleted or replaced by
   another key): the broker disconnects those; else *removed is set to
   NULL. */
int allowlist_refresh(allowlist_t *self, bool *changed, zlist_t **removed);

/* Reloads unconditionally; otherwise as allowlist_refresh (returns 0 or a
   negative code). */
int allowlist_reload(allowlist_t *self, zlist_t **removed);

/* Enrolls the certificate file at cert_path (NAME.cert or NAME.secret;
   only the public part is copied): writes DIR/NAME.cert and takes its key
   off the revoked list.  Refuses (SY_EDUPLICATE) a name already enrolled
   with another key (revoke it first) or a key enrolled under another name.
   Enrolling the same certificate again is a no-op success. */
int allowlist_enroll(allowlist_t *self, const char *cert_path,
                     char *err, size_t errlen);

/* Revokes NAME: adds its key to the revoked list, then removes
   DIR/NAME.cert.  SY_ENOTFOUND if NAME is not enrolled. */
int allowlist_revoke(allowlist_t *self, const char *name,
                     char *err, size_t errlen);

#endif
