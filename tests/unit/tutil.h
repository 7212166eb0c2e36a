/*  tutil.h -- shared support for the unit tests: temporary directories,
 *  the real sy-broker as a child process, and raw DEALER messages in the
 *  wire codec (envelope frame + msgpack body frame).
 *
 *  Linked into every test binary (tests/unit and tests/it) by the
 *  Makefile; nothing here asserts, so that a caller decides how strong
 *  each check is (and so that the helpers work in a forked child).
 *
 *  Ownership: nothing returned is owned by tutil.  Sockets from
 *  tutil_dealer belong to the caller (zmq_close); a pid from
 *  tutil_broker_start is reaped by tutil_broker_stop.
 */
#ifndef SY_TESTS_TUTIL_H
#define SY_TESTS_TUTIL_H

#include "schemas/envelope.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------ files */

/* Makes /tmp/sy-<tag>-XXXXXX into dir (cap bytes); 0 or -1. */
int tutil_tmpdir(char *dir, size_t cap, const char *tag);

/* Removes dir and everything below it (best effort). */
void tutil_rmtree(const char *dir);

/* Writes the printf-style text to path (a config file); 0 or -1. */
int tutil_write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies the file at path to stderr, each line indented (a broker's log
   for a failing test). */
void tutil_print_log(const char *path);

/* ------------------------------------------------------------ broker */

/* A free tcp port on 127.0.0.1, or -1. */
int tutil_free_port(void);

/* Starts $SY_BIN_DIR/sy-broker (default bin/) with --config cfg, its
   stdout and stderr appended to log; it dies with the test.  The child's
   pid, or -1 when fork failed. */
pid_t tutil_broker_start(const char *cfg, const char *log);

/* SIGTERM, up to 3 s for the exit, then SIGKILL; reaps the child.  True
   when it exited cleanly (status 0). */
bool tutil_broker_stop(pid_t pid);

/* ------------------------------------------------------------ messages */

typedef struct {
    envelope_t env;
    uint8_t body[8192];
    size_t blen;
} tutil_msg_t;

/* A DEALER of ctx (libzmq) connected to ep, linger 0; NULL on failure. */
void *tutil_dealer(void *ctx, const char *ep);

void tutil_pack_str(msgpack_packer *pk, const char *s);

/* Sends one message on libzmq socket s: an envelope of type with a fresh
   id (to, from: NULL for none; durable marks it), then body (NULL: an
   empty map).  Its id into id when not NULL.  0 or -1. */
int tutil_send(void *s, const char *type, const char *to, const char *from,
               bool durable, const void *body, size_t blen,
               uint8_t id[ENVELOPE_ID_LEN]);

/* Sends sy.hello {name, credit[, services: [service]]}; 0 or -1. */
int tutil_hello(void *s, const char *name, const char *service, uint32_t credit);

/* Receives one message within timeout_ms: 1, 0 on silence, -1 when what
   came is not an envelope and a body. */
int tutil_recv(void *s, int timeout_ms, tutil_msg_t *m);

/* Receives until a message of type comes (others are skipped): 1, 0 on
   silence until timeout_ms, -1 on a malformed message. */
int tutil_expect(void *s, const char *type, int timeout_ms, tutil_msg_t *m);

/* The string at key of a map body, or at data.key when in_data, into out
   ("" and false when absent or too long). */
bool tutil_field(const tutil_msg_t *m, bool in_data, const char *key, char *out,
                 size_t cap);

#endif
