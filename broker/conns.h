/*  conns.h -- which connection of the broker's ROUTER a peer speaks on,
 *  so that a closed connection removes its peer at once.
 *
 *  ZeroMQ does not tell a ROUTER that a peer's connection closed; the
 *  socket monitor does (ZMQ_EVENT_ACCEPTED / ZMQ_EVENT_DISCONNECTED, each
 *  with the connection's file descriptor), and every received frame
 *  carries the descriptor it came in on (ZMQ_SRCFD).  A descriptor number
 *  is reused by the kernel as soon as it is closed, so a number alone
 *  does not name a connection: this table keeps, per descriptor, a
 *  generation bumped at each ACCEPTED, whether the connection is open,
 *  and the routing id of the peer that said sy.hello on it.  A connection
 *  is (fd, generation).
 *
 *  The rule is "when in doubt, do not drop": a hello read on a descriptor
 *  the table does not know as open gets no connection (conns_current()
 *  returns 0) and is left to the liveness sweep; a DISCONNECTED for a
 *  descriptor not known as open names nobody.  Dropping also needs the
 *  routing id recorded for that very generation, which the caller checks
 *  against the peer it finds (peer->fd, peer->fd_gen).
 *
 *  A pure data structure (no sockets), tested on its own.
 *
 *  Ownership: conns_new() returns a table the caller frees with
 *  conns_destroy(); routing ids are copied in and out.
 */
#ifndef CONNS_H
#define CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONNS_FD_MAX  (1 << 20)  /* descriptors above are not tracked */
#define CONNS_RID_MAX 255

typedef struct _conns_t conns_t;

conns_t *conns_new(void);
void conns_destroy(conns_t **self_p);

/* A connection was accepted on fd: its generation is the next one.
   Returns 0, SY_EINVAL (fd out of range) or SY_ENOMEM. */
int conns_accepted(conns_t *self, int fd);

/* The generation of the open connection on fd, or 0 when fd is not known
   as open (never accepted, closed, out of range): in doubt. */
uint32_t conns_current(const conns_t *self, int fd);

/* The peer with routing id rid (rid[0] = length, then the bytes) said
   hello on connection (fd, gen).  Ignored unless that is the open
   connection on fd.  A connection has one routing id: a second, other
   one bound to the same connection means the table is behind, and
   unbinds both (nobody is named by that connection's close).  Returns
   0, SY_EINVAL (not the open connection, or that conflict) or
   SY_ENOMEM. */
int conns_bind(conns_t *self, int fd, uint32_t gen, const uint8_t *rid);

/* The connection on fd closed.  Returns true when it was known as open
   and a peer said hello on it: *gen and rid (1 + CONNS_RID_MAX bytes)
   get the connection's generation and that peer's routing id.  The
   descriptor is closed in the table either way. */
bool conns_disconnected(conns_t *self, int fd, uint32_t *gen,
                        uint8_t rid[1 + CONNS_RID_MAX]);

/* How many connections the table knows as open. */
size_t conns_open(const conns_t *self);

#endif
