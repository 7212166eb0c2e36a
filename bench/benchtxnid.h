/*  benchtxnid.h -- how many commits an LMDB environment has made.
 *
 *  LMDB numbers its write transactions and gives a number only to those
 *  that changed something, so the last transaction id read before and
 *  after a run differs by the number of commits -- of fsyncs, with full
 *  sync -- made in between.  The durable benchmark reads the broker's
 *  store this way (read-only, beside the running broker: LMDB allows any
 *  number of readers next to its one writer) to learn how many messages
 *  the broker put in each commit.
 *
 *  Ownership: nothing is returned but the number; no global state.
 */
#ifndef BENCHTXNID_H
#define BENCHTXNID_H

#include <stdint.h>

/* Reads the last committed transaction id of the environment in dir into
   *out.  Returns 0 or SY_EIO (no environment there, or unreadable). */
int benchtxnid_read(const char *dir, uint64_t *out);

#endif
