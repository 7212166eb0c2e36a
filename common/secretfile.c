/*  secretfile.c -- reading a small secret from an owner-only file.
 *
 *  See secretfile.h.  One read of at most cap bytes: a token is short, and
 *  a file longer than the buffer is refused rather than cut (a cut token
 *  would fail later with a less helpful error).  fstat() on the open
 *  descriptor, not stat() on the path, so the checks are about the file
 *  actually read.
 */
#include "common/secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "schemas/syerr.h"

/* Checks the open file: regular, ours, owner-only. */
static int secretfile_check(int fd, const char *path, const char *what,
                            char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        return syerr_fmt(err, errlen, SY_ECONFIG, "%s %s: not a regular "
                         "file", what, path);
    if (st.st_uid != geteuid())
        return syerr_fmt(err, errlen, SY_ECONFIG, "%s %s: owned by uid %u, "
                         "not by this user: refused", what, path,
                         (unsigned) st.st_uid);
    if (st.st_mode & 077)
        return syerr_fmt(err, errlen, SY_ECONFIG, "%s %s is open to others "
                         "(mode %04o): refused; chmod 600 it", what, path,
                         (unsigned) (st.st_mode & 07777));
    return 0;
}

static bool secretfile_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int secretfile_read(const char *path, const char *what, char *out,
                    size_t cap, size_t *len, char *err, size_t errlen)
{
    *len = 0;
    if (!out || cap < 2)
        return syerr_fmt(err, errlen, SY_ECONFIG, "%s: no room", what);
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return syerr_fmt(err, errlen, SY_ECONFIG, "%s %s: %s", what, path,
                         strerror(errno));
    int rc = secretfile_check(fd, path, what, err, errlen);
    ssize_t n = rc ? 0 : read(fd, out, cap);
    close(fd);
    if (rc == 0 && (n < 0 || (size_t) n >= cap))
        rc = syerr_fmt(err, errlen, SY_ECONFIG, "%s %s: cannot be read or "
                       "longer than %zu bytes", what, path, cap - 1);
    size_t k = rc == 0 ? (size_t) n : 0;
    while (k && secretfile_blank(out[k - 1]))
        k--;
    for (size_t i = 0; rc == 0 && i < k; i++)
        if ((unsigned char) out[i] < 0x21 || (unsigned char) out[i] > 0x7e)
            rc = syerr_fmt(err, errlen, SY_ECONFIG, "%s %s: the token holds "
                           "a space or control character", what, path);
    if (rc == 0 && k == 0)
        rc = syerr_fmt(err, errlen, SY_ECONFIG, "%s %s is empty", what,
                       path);
    if (rc) {
        sodium_memzero(out, cap);
        return rc;
    }
    sodium_memzero(out + k, cap - k);   /* the blanks cut, and NUL */
    *len = k;
    return 0;
}
