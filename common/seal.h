/*  seal.h -- encryption at rest: sealing stored records with one key file.
 *
 *  The durable store (and the front door's history) keep message bodies on
 *  disk.  A seal_t turns a plaintext into a sealed record and back, with
 *  libsodium's XChaCha20-Poly1305 (IETF) AEAD.  Each record carries its own
 *  random 24-byte nonce, so no counter has to be kept on disk; the
 *  associated data binds a record to something the caller stores beside it
 *  (the message id), so a body copied from one record into another does
 *  not open.
 *
 *  Record layout (SEAL_OVERHEAD = 41 bytes more than the plaintext):
 *      byte 0        format, SEAL_FORMAT_V1 (1); lets the layout change later
 *      bytes 1..24   nonce
 *      bytes 25..    ciphertext, then the 16-byte authentication tag
 *
 *  The key file: DIR/store.key, exactly 32 random bytes, mode 0600, created
 *  by the first seal_open(create_if_missing = true).  It is refused (with a
 *  message naming the file and what is wrong) if its mode is wider than
 *  0600, it is not a regular file, or its size is not 32.  Losing it loses
 *  the sealed data: the message says so rather than making a new key.
 *
 *  Guarantees: seal_decrypt never hands back bytes that were not sealed
 *  with this key and this associated data: a wrong key, a flipped bit or a
 *  swapped body is SY_ECRYPTO ("cannot be opened"), distinct from every
 *  other error of this module.  The key lives in sodium_malloc'd memory
 *  (guard pages, locked, never swapped where the system allows), kept
 *  PROT_NONE between calls and wiped by seal_destroy.  It is never logged.
 *
 *  Threads: a seal_t is used by one thread at a time (each call flips the
 *  key's page protection).
 *
 *  Error codes (0 or negative, schemas/syerr.h):
 *      SY_ENOTFOUND  key file missing (and create_if_missing false)
 *      SY_ECONFIG    key file mode wider than 0600, or not a regular file
 *      SY_ESTORE     key file of the wrong size
 *      SY_ECRYPTO    a record that does not open (wrong key, tampered,
 *                    truncated, swapped between ids)
 *      SY_EVERSION   a record of a format this code does not know
 *      SY_ENOSPACE   the output buffer is too small
 *      SY_EIO        the file system failed (message says how)
 *      SY_ENOMEM, SY_EINVAL
 */
#ifndef SEAL_H
#define SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SEAL_FORMAT_V1   1
#define SEAL_KEY_BYTES   32
#define SEAL_NONCE_BYTES 24
#define SEAL_TAG_BYTES   16
#define SEAL_OVERHEAD    (1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)
#define SEAL_KEY_FILE    "store.key"
#define SEAL_FINGERPRINT_BYTES 16

typedef struct _seal_t seal_t;

/* Opens DIR/store.key.  If it does not exist: with create_if_missing,
   creates DIR (mode 0700) if needed and a new random key (mode 0600,
   fsync'd); without, SY_ENOTFOUND with a message saying that data sealed
   with the lost key cannot be read (callers pass false when their store
   already holds data).  On error err (may be NULL) receives one line.
   On success *out is a seal_t the caller destroys. */
int seal_open(const char *dir, bool create_if_missing, seal_t **out,
              char *err, size_t errlen);

/* Wipes the key and frees it; NULLs *self_p.  NULL-safe. */
void seal_destroy(seal_t **self_p);

/* Seals plain[0..len) bound to ad[0..adlen) into out (capacity cap).
   Needs cap >= len + SEAL_OVERHEAD; *outlen receives the record's size.
   ad may be NULL when adlen is 0.  Returns 0, SY_ENOSPACE, SY_EINVAL. */
int seal_encrypt(seal_t *self, const uint8_t *ad, size_t adlen,
                 const uint8_t *plain, size_t len,
                 uint8_t *out, size_t cap, size_t *outlen);

/* Opens the record rec[0..reclen) sealed with the same ad.  Needs
   cap >= reclen - SEAL_OVERHEAD; *outlen receives the plaintext's size.
   Returns 0, SY_ECRYPTO (wrong key, tampered, wrong ad, too short),
   SY_EVERSION (unknown format byte), SY_ENOSPACE, SY_EINVAL.  On any error
   nothing of out is meaningful (it is zeroed). */
int seal_decrypt(seal_t *self, const uint8_t *ad, size_t adlen,
                 const uint8_t *rec, size_t reclen,
                 uint8_t *out, size_t cap, size_t *outlen);

/* A one-way fingerprint of the key (BLAKE2b with a domain label), for a
   store to remember in its metadata and so say "this is not the key the
   store was written with" up front instead of failing on every record. */
void seal_fingerprint(seal_t *self, uint8_t out[SEAL_FINGERPRINT_BYTES]);

/* The key file's path, for messages.  Owned by self. */
const char *seal_path(const seal_t *self);

#endif
