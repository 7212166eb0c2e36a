/*  hsec.h -- helpers shared by the security integration tests
 *  (test_security_*.c, issue 3): syctl run under a device's certificate,
 *  the broker's status as JSON, sy-echo with its certificate, and raw
 *  byte searches in files (logs, packet captures, the store's data.mdb).
 *
 *  Identities are the harness's (harness_identity(): <dir>/ids/NAME.secret
 *  made by the real `syctl keys new`).
 *
 *  Ownership: hsec_slurp() returns a buffer the caller frees; nothing
 *  else returned needs freeing.
 */
#ifndef HSEC_H
#define HSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Runs bin/syctl --config <cfg> [--cert <dir>/ids/ID.secret] ARGS...
   (id NULL: no --cert) to completion; timeout_ms is scaled by
   harness_slow().  Returns syctl's exit code (-1: timed out); *r holds
   its output (hrun_clear() it). */
int hsec_syctl(harness_t *h, hrun_t *r, const char *id, int timeout_ms, ...)
    __attribute__((sentinel));

/* Asks `syctl --cert ID status --json` and says whether actor is listed
   (and, if service is not NULL, offers it).  Fails the test if syctl
   does not answer with JSON and exit 0. */
bool hsec_status_lists(harness_t *h, const char *id, const char *actor,
                       const char *service);

/* Polls hsec_status_lists() until it says `present`, at most timeout_ms.
   Returns true on success. */
bool hsec_wait_status(harness_t *h, const char *id, const char *actor,
                      bool present, int timeout_ms);

/* Starts sy-echo NAME offering service (credit 4) with --cert
   <dir>/ids/NAME.secret, plus extra arguments (NULL-terminated, may be
   NULL).  wait: until the broker lists it (through the harness probe). */
hproc_t *hsec_echo_start(harness_t *h, const char *name, const char *service,
                         bool wait, const char *const *extra);

/* The whole file (NUL added after the end, not counted in *len), or NULL
   if it cannot be read. */
uint8_t *hsec_slurp(const char *path, size_t *len);

/* How many times needle occurs in the raw bytes of path (0 if the file
   cannot be read; *size, if not NULL, gets the file's size or -1). */
int hsec_file_count(const char *path, const char *needle, long *size);

/* Polls path until one line holds every one of the strings given
   (NULL-terminated), at most timeout_ms.  Returns true if such a line
   came. */
bool hsec_wait_line(const char *path, int timeout_ms, ...)
    __attribute__((sentinel));

#endif
