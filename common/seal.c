/*  seal.c -- encryption at rest with one key file (see seal.h).
 *
 *  Ideas:
 *  - A random nonce per record (XChaCha20's 24 bytes make collisions a
 *    non-issue), so sealing needs no state beyond the key and records can
 *    be written in any order by anyone holding it.
 *  - The key file is checked before it is trusted: a regular file, not a
 *    symlink (O_NOFOLLOW), mode at most 0600, exactly 32 bytes.  It is
 *    created with O_EXCL so two processes starting at once cannot each
 *    write a different key.
 *  - The key is read straight into sodium_malloc'd memory and kept
 *    PROT_NONE except inside seal_encrypt/seal_decrypt; nothing here ever
 *    formats key bytes into a message.
 */
#include "common/seal.h"
#include "schemas/syerr.h"

#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _seal_t {
    unsigned char *key;       /* sodium_malloc'd, SEAL_KEY_BYTES */
    char *path;               /* DIR/store.key */
};

/* Writes a message into the caller's err buffer (see syerr_fmt). */
#define seal_err(err, errlen, ...) ((void) syerr_fmt((err), (errlen), 0, __VA_ARGS__))

/* Reads exactly len bytes from fd.  0 or SY_EIO (short file: SY_ESTORE). */
static int seal_read_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SY_EIO;
        if (n == 0)
            return SY_ESTORE;
        got += (size_t) n;
    }
    return 0;
}

static int seal_write_all(int fd, const unsigned char *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, buf + put, len - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SY_EIO;
        put += (size_t) n;
    }
    return 0;
}

/* fsyncs the directory so a freshly created key file survives a crash. */
static void seal_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void) fsync(fd);
        close(fd);
    }
}

/* Creates the key file with a fresh random key.  The key passes through
   self->key (already allocated, writable) only. */
static int seal_create(seal_t *self, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        seal_err(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        return SY_EIO;
    }
    int fd = open(self->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)        /* another process won the race: read theirs */
            return 1;
        seal_err(err, errlen, "%s: cannot create key file: %s", self->path, strerror(errno));
        return SY_EIO;
    }
    /* umask may have removed bits, never added: still force exactly 0600 */
    (void) fchmod(fd, 0600);
    randombytes_buf(self->key, SEAL_KEY_BYTES);
    int rc = seal_write_all(fd, self->key, SEAL_KEY_BYTES);
    if (rc == 0 && fsync(fd) != 0)
        rc = SY_EIO;
    if (close(fd) != 0)
        rc = SY_EIO;
    if (rc != 0) {
        seal_err(err, errlen, "%s: cannot write key file: %s", self->path, strerror(errno));
        unlink(self->path);
        return rc;
    }
    seal_sync_dir(dir);
    return 0;
}

/* Opens and checks an existing key file, reading it into self->key. */
static int seal_load(seal_t *self, char *err, size_t errlen)
{
    int fd = open(self->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return SY_ENOTFOUND;
        if (errno == ELOOP) {
            seal_err(err, errlen, "%s: key file is a symbolic link; refusing it", self->path);
            return SY_ECONFIG;
        }
        seal_err(err, errlen, "%s: cannot open key file: %s", self->path, strerror(errno));
        return SY_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        seal_err(err, errlen, "%s: cannot stat key file: %s", self->path, strerror(errno));
        rc = SY_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        seal_err(err, errlen, "%s: key file is not a regular file", self->path);
        rc = SY_ECONFIG;
    } else if ((st.st_mode & 07777 & ~(mode_t) 0600) != 0) {
        seal_err(err, errlen, "%s: key file mode %04o is wider than 0600; "
                 "run chmod 600 on it (and check who could have read it)",
                 self->path, (unsigned) (st.st_mode & 07777));
        rc = SY_ECONFIG;
    } else if (st.st_size != SEAL_KEY_BYTES) {
        seal_err(err, errlen, "%s: key file is %lld bytes, a key file is exactly %d: "
                 "it is damaged or not a switchyard key", self->path,
                 (long long) st.st_size, SEAL_KEY_BYTES);
        rc = SY_ESTORE;
    } else {
        rc = seal_read_all(fd, self->key, SEAL_KEY_BYTES);
        if (rc != 0)
            seal_err(err, errlen, "%s: cannot read key file: %s", self->path,
                     rc == SY_EIO ? strerror(errno) : "file shrank while read");
    }
    close(fd);
    return rc;
}

int seal_open(const char *dir, bool create_if_missing, seal_t **out,
              char *err, size_t errlen)
{
    if (dir == NULL || out == NULL) {
        seal_err(err, errlen, "seal_open: no directory given");
        return SY_EINVAL;
    }
    *out = NULL;
    if (sodium_init() < 0) {
        seal_err(err, errlen, "libsodium failed to initialise");
        return SY_EINTERNAL;
    }
    seal_t *self = calloc(1, sizeof *self);
    size_t plen = strlen(dir) + 1 + sizeof SEAL_KEY_FILE;
    if (self)
        self->path = malloc(plen);
    if (self)
        self->key = sodium_malloc(SEAL_KEY_BYTES);
    if (self == NULL || self->path == NULL || self->key == NULL) {
        seal_destroy(&self);
        seal_err(err, errlen, "out of memory");
        return SY_ENOMEM;
    }
    snprintf(self->path, plen, "%s/%s", dir, SEAL_KEY_FILE);

    int rc = seal_load(self, err, errlen);
    if (rc == SY_ENOTFOUND && create_if_missing) {
        rc = seal_create(self, dir, err, errlen);
        if (rc == 1)
            rc = seal_load(self, err, errlen);
    } else if (rc == SY_ENOTFOUND) {
        seal_err(err, errlen, "%s: key file is missing, but the store already holds "
                 "data sealed with it; restore the key file from its backup "
                 "(a new key cannot open the old data)", self->path);
    }
    if (rc != 0) {
        seal_destroy(&self);
        return rc;
    }
    sodium_mprotect_noaccess(self->key);
    *out = self;
    return 0;
}

void seal_destroy(seal_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    seal_t *self = *self_p;
    if (self->key) {
        sodium_mprotect_readwrite(self->key);
        sodium_memzero(self->key, SEAL_KEY_BYTES);
        sodium_free(self->key);       /* wipes again and unlocks */
    }
    free(self->path);
    free(self);
    *self_p = NULL;
}

int seal_encrypt(seal_t *self, const uint8_t *ad, size_t adlen,
                 const uint8_t *plain, size_t len,
                 uint8_t *out, size_t cap, size_t *outlen)
{
    if (self == NULL || out == NULL || outlen == NULL
        || (plain == NULL && len > 0) || (ad == NULL && adlen > 0))
        return SY_EINVAL;
    if (len > SIZE_MAX - SEAL_OVERHEAD || cap < len + SEAL_OVERHEAD)
        return SY_ENOSPACE;
    out[0] = SEAL_FORMAT_V1;
    uint8_t *nonce = out + 1;
    randombytes_buf(nonce, SEAL_NONCE_BYTES);
    unsigned long long clen = 0;
    sodium_mprotect_readonly(self->key);
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + 1 + SEAL_NONCE_BYTES, &clen, plain, len, ad, adlen,
        NULL, nonce, self->key);
    sodium_mprotect_noaccess(self->key);
    if (rc != 0)
        return SY_EINTERNAL;
    *outlen = 1 + SEAL_NONCE_BYTES + (size_t) clen;
    return 0;
}

int seal_decrypt(seal_t *self, const uint8_t *ad, size_t adlen,
                 const uint8_t *rec, size_t reclen,
                 uint8_t *out, size_t cap, size_t *outlen)
{
    if (self == NULL || rec == NULL || outlen == NULL || (out == NULL && cap > 0)
        || (ad == NULL && adlen > 0))
        return SY_EINVAL;
    *outlen = 0;
    if (reclen < SEAL_OVERHEAD)
        return reclen > 0 && rec[0] != SEAL_FORMAT_V1 ? SY_EVERSION : SY_ECRYPTO;
    if (rec[0] != SEAL_FORMAT_V1)
        return SY_EVERSION;
    size_t plen = reclen - SEAL_OVERHEAD;
    if (cap < plen)
        return SY_ENOSPACE;
    unsigned long long mlen = 0;
    sodium_mprotect_readonly(self->key);
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, &mlen, NULL, rec + 1 + SEAL_NONCE_BYTES, reclen - 1 - SEAL_NONCE_BYTES,
        ad, adlen, rec + 1, self->key);
    sodium_mprotect_noaccess(self->key);
    if (rc != 0) {
        if (plen > 0)
            sodium_memzero(out, plen);
        return SY_ECRYPTO;
    }
    *outlen = (size_t) mlen;
    return 0;
}

void seal_fingerprint(seal_t *self, uint8_t out[SEAL_FINGERPRINT_BYTES])
{
    static const unsigned char label[] = "switchyard seal key fingerprint v1";
    crypto_generichash_state st;
    sodium_mprotect_readonly(self->key);
    crypto_generichash_init(&st, self->key, SEAL_KEY_BYTES, SEAL_FINGERPRINT_BYTES);
    sodium_mprotect_noaccess(self->key);
    crypto_generichash_update(&st, label, sizeof label - 1);
    crypto_generichash_final(&st, out, SEAL_FINGERPRINT_BYTES);
    sodium_memzero(&st, sizeof st);
}

const char *seal_path(const seal_t *self)
{
    return self ? self->path : "";
}
