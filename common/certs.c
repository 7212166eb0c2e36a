/*  certs.c -- device certificates on CZMQ's zcert (see certs.h).
 *
 *  Ideas:
 *  - A certificate is a plain zcert whose metadata holds "name" and "role";
 *    no new file format, so CZMQ's own tools and zauth can read the files.
 *  - The secret file is created empty with O_EXCL and mode 0600 before
 *    zcert writes into it, so it is never readable by others, not even for
 *    an instant, and an existing key is never overwritten.
 *  - Loading re-checks what the file system could have changed: a secret
 *    file whose mode is wider than 0600 is refused, like ssh does.
 *  - Nothing here formats a secret key; certs_destroy wipes the copies the
 *    zcert holds (binary and Z85) before CZMQ frees it.
 */
#include "common/certs.h"
#include "schemas/envelope.h"
#include "schemas/syerr.h"

#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const certs_role_names[CERTS_ROLE_COUNT] = {
    "client", "actor", "worker", "operator"
};

/* Writes a message into the caller's err buffer (see syerr_fmt). */
#define certs_err(err, errlen, ...) ((void) syerr_fmt((err), (errlen), 0, __VA_ARGS__))

const char *certs_role_name(certs_role_t role)
{
    if (role < 0 || role >= CERTS_ROLE_COUNT)
        return "none";
    return certs_role_names[role];
}

certs_role_t certs_role_parse(const char *s)
{
    if (s == NULL)
        return CERTS_ROLE_NONE;
    for (int i = 0; i < CERTS_ROLE_COUNT; i++)
        if (strcmp(s, certs_role_names[i]) == 0)
            return (certs_role_t) i;
    return CERTS_ROLE_NONE;
}

bool certs_valid_name(const char *name)
{
    if (name == NULL || name[0] == '@' || name[0] == '.')
        return false;
    return envelope_valid_name(name, strlen(name));
}

bool certs_has_secret(zcert_t *cert)
{
    static const unsigned char zero[32];
    return cert && sodium_memcmp(zcert_secret_key(cert), zero, 32) != 0;
}

const char *certs_name(zcert_t *cert)
{
    return cert ? zcert_meta(cert, "name") : NULL;
}

certs_role_t certs_role(zcert_t *cert)
{
    return cert ? certs_role_parse(zcert_meta(cert, "role")) : CERTS_ROLE_NONE;
}

void certs_destroy(zcert_t **cert_p)
{
    if (cert_p == NULL || *cert_p == NULL)
        return;
    /* The two arrays live inside the zcert object; they are const only in
       the accessor's signature. */
    sodium_memzero((void *) zcert_secret_key(*cert_p), 32);
    char *txt = (char *) zcert_secret_txt(*cert_p);
    sodium_memzero(txt, strlen(txt));
    zcert_destroy(cert_p);
    *cert_p = NULL;
}

/* Writes "DIR/NAME.EXT" into out.  Returns false if it does not fit. */
static bool certs_path(char *out, size_t cap, const char *dir, const char *name,
                       const char *ext)
{
    int n = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    return n > 0 && (size_t) n < cap;
}

int certs_new(const char *dir, const char *name, const char *role,
              zcert_t **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (dir == NULL || !certs_valid_name(name)) {
        certs_err(err, errlen, "\"%s\" is not a valid device name: 1..64 of "
                  "A-Z a-z 0-9 . _ : @ - (not starting with @ or .)", name ? name : "");
        return SY_EINVAL;
    }
    certs_role_t r = certs_role_parse(role);
    if (r == CERTS_ROLE_NONE) {
        certs_err(err, errlen, "\"%s\" is not a role: use client, actor, worker or operator",
                  role ? role : "");
        return SY_EINVAL;
    }
    char pub[1024], sec[1024];
    if (!certs_path(pub, sizeof pub, dir, name, CERTS_PUBLIC_EXT)
        || !certs_path(sec, sizeof sec, dir, name, CERTS_SECRET_EXT)) {
        certs_err(err, errlen, "%s: path too long", dir);
        return SY_EINVAL;
    }
    if (access(pub, F_OK) == 0) {
        certs_err(err, errlen, "%s already exists; not replacing a key", pub);
        return SY_EDUPLICATE;
    }
    int fd = open(sec, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        certs_err(err, errlen, "%s: %s", sec,
                  e == EEXIST ? "already exists; not replacing a key" : strerror(e));
        return e == EEXIST ? SY_EDUPLICATE : SY_EIO;
    }
    (void) fchmod(fd, 0600);
    close(fd);

    zcert_t *cert = zcert_new();
    if (cert == NULL) {
        unlink(sec);
        certs_err(err, errlen, "cannot make a key pair (out of memory?)");
        return SY_ENOMEM;
    }
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "role", "%s", certs_role_name(r));
    /* The secret file exists with mode 0600: zcert rewrites it in place. */
    if (zcert_save_secret(cert, sec) != 0 || chmod(sec, 0600) != 0
        || zcert_save_public(cert, pub) != 0) {
        int e = errno;
        unlink(sec);
        unlink(pub);
        certs_destroy(&cert);
        certs_err(err, errlen, "%s: cannot write certificate: %s", dir, strerror(e));
        return SY_EIO;
    }
    if (out)
        *out = cert;
    else
        certs_destroy(&cert);
    return 0;
}

/* Refuses a secret-holding file (mode as certs_load stat'ed it) that
   others may read. */
static int certs_check_mode(const char *path, mode_t mode, char *err, size_t errlen)
{
    if ((mode & 07777 & ~(mode_t) 0600) != 0) {
        certs_err(err, errlen, "%s: holds a secret key but its mode %04o is wider "
                  "than 0600; run chmod 600 on it", path, (unsigned) (mode & 07777));
        return SY_ECONFIG;
    }
    return 0;
}

/* Whether the file is ZPL that zconfig can parse.  zcert_load leaks
   CZMQ 4.2.1's zfile on a syntax error, so junk is caught here first, from
   a copy in memory that is wiped afterwards (it may hold a secret key). */
static bool certs_parses(const char *path, off_t size)
{
    if (size <= 0 || size > 65536)
        return false;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char *text = calloc(1, (size_t) size + 1);
    size_t n = text ? fread(text, 1, (size_t) size, f) : 0;
    fclose(f);
    if (text == NULL)
        return false;
    text[n] = '\0';
    zconfig_t *root = memchr(text, '\0', n) ? NULL : zconfig_str_load(text);
    sodium_memzero(text, n);
    free(text);
    bool ok = root != NULL;
    zconfig_destroy(&root);
    return ok;
}

int certs_load(const char *path, zcert_t **out, char *err, size_t errlen)
{
    if (out == NULL || path == NULL)
        return SY_EINVAL;
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        certs_err(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? SY_ENOTFOUND : SY_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        certs_err(err, errlen, "%s: not a regular file", path);
        return SY_ECONFIG;
    }
    /* zcert_load would prefer PATH_secret; make sure none shadows PATH */
    char shadow[1100];
    snprintf(shadow, sizeof shadow, "%s_secret", path);
    if (access(shadow, F_OK) == 0) {
        certs_err(err, errlen, "%s: a file %s beside it would be read instead; remove it",
                  path, shadow);
        return SY_ECONFIG;
    }
    if (!certs_parses(path, st.st_size)) {
        certs_err(err, errlen, "%s: not a certificate (not ZPL text)", path);
        return SY_ECONFIG;
    }
    zcert_t *cert = zcert_load(path);
    if (cert == NULL) {
        certs_err(err, errlen, "%s: not a certificate (no curve public-key)", path);
        return SY_ECONFIG;
    }
    int rc = 0;
    if (certs_has_secret(cert))
        rc = certs_check_mode(path, st.st_mode, err, errlen);
    if (rc == 0 && !certs_valid_name(certs_name(cert))) {
        certs_err(err, errlen, "%s: metadata name \"%s\" missing or not a valid device name",
                  path, certs_name(cert) ? certs_name(cert) : "");
        rc = SY_ECONFIG;
    }
    if (rc == 0 && certs_role(cert) == CERTS_ROLE_NONE) {
        const char *role = zcert_meta(cert, "role");
        certs_err(err, errlen, "%s: metadata role \"%s\" missing or not one of "
                  "client, actor, worker, operator", path, role ? role : "");
        rc = SY_ECONFIG;
    }
    if (rc != 0) {
        certs_destroy(&cert);
        return rc;
    }
    *out = cert;
    return 0;
}
