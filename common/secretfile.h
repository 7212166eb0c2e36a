/*  secretfile.h -- reading a small secret (an API token) from a file.
 *
 *  Actors that talk to outside services keep their bearer or bot token in
 *  a file of its own (inference/api_key_file, telegram/token_file).  The
 *  file is trusted only if nobody else could have read or changed it: a
 *  regular file (not followed through a symlink), owned by the effective
 *  user, with no group or other permission bits (0600 or 0400).
 *  Anything else is refused with a message that says how to fix it.
 *
 *  The token is the file's content with trailing blanks and newlines cut;
 *  it must be non-empty and hold only printable ASCII without spaces
 *  (0x21..0x7e), so it can go into a header line or URL as it is.
 *
 *  Secrets: the token is never put in err or logged; the read buffer is
 *  wiped (sodium_memzero) before returning.  Ownership: the caller gives
 *  the output buffer and wipes it after use.
 */
#ifndef SECRETFILE_H
#define SECRETFILE_H

#include <stddef.h>

/* Reads the token in path into out (NUL-terminated, at most cap - 1
   bytes) and its length into *len.  `what` names the setting in
   messages (e.g. "inference/api_key_file").  Returns 0, or SY_ECONFIG
   (missing, unreadable, not a regular file, not ours, readable or
   writable by others, empty, too long, a space or control character)
   with a line in err; out is then wiped. */
int secretfile_read(const char *path, const char *what, char *out,
                    size_t cap, size_t *len, char *err, size_t errlen);

#endif
