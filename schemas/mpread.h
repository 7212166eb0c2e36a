/*  mpread.h -- a bounded, allocation-free msgpack reader.
 *
 *  Why not msgpack_unpack()?  Debian's msgpack-c 4.0.0 allocates whatever
 *  an array or map header claims before it has seen the items, so six
 *  hostile bytes can ask for 32 GiB.  This reader never allocates: it walks
 *  a caller's buffer with a cursor and hands back values that point into
 *  it.  Every container count is checked against the bytes that remain
 *  (an array of n items needs at least n bytes, a map of n pairs 2n), every
 *  length against the end of the buffer, and nesting against a depth limit.
 *
 *  Encoding stays with msgpack-c's packer (msgpack_pack_*), which is safe
 *  since our own code decides the sizes there.  One exception: the
 *  envelope header, the broker's hottest encoding, writes its bytes itself
 *  (schemas/envelope.c); its tests compare them with the packer's.
 *
 *  Ownership: mpval_t.ptr points into the buffer given to mpread_init();
 *  it is valid as long as that buffer is.
 */
#ifndef MPREAD_H
#define MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting mpread_skip() and mpread_check() accept. */
#define MPREAD_MAX_DEPTH 32

typedef enum {
    MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT,
    MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT
} mp_kind_t;

typedef struct {
    mp_kind_t kind;
    bool      b;        /* MP_BOOL */
    uint64_t  u;        /* MP_UINT; also set for MP_INT values >= 0 */
    int64_t   i;        /* MP_INT (negative, or signed encodings) */
    double    f;        /* MP_FLOAT (float 32 widened) */
    const uint8_t *ptr; /* MP_STR / MP_BIN / MP_EXT: first byte of data */
    uint32_t  len;      /* STR/BIN/EXT: bytes; ARRAY: items; MAP: pairs */
    int8_t    ext_type; /* MP_EXT */
} mpval_t;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} mpread_t;

void mpread_init(mpread_t *r, const uint8_t *buf, size_t len);

/* Bytes not yet read. */
size_t mpread_left(const mpread_t *r);

/* Reads one value.  Scalars, strings and binaries are consumed whole.  For
   an array or map only its header is consumed: the caller then reads `len`
   items (or 2*len for a map) or calls mpread_skip().  Returns 0,
   SY_ETRUNCATED, or SY_ECOUNT when a container claims more items than bytes
   remain.  Reserved byte 0xc1 is SY_EFIELD_TYPE. */
int mpread_next(mpread_t *r, mpval_t *v);

/* Skips the items of a container whose header `v` was just read (a no-op
   for other kinds).  `depth` is the depth of `v` itself (0 at top level).
   Returns 0, SY_ETRUNCATED, SY_ECOUNT or SY_EDEPTH. */
int mpread_skip(mpread_t *r, const mpval_t *v, int depth);

/* As mpread_skip() with a tighter depth limit: containers may sit at
   depths 0 .. max_depth-1 (max_depth is capped at MPREAD_MAX_DEPTH), so
   max_depth = 1 allows [1,2] but not [[1]].  Bodies use 16. */
int mpread_skip_max(mpread_t *r, const mpval_t *v, int depth, int max_depth);

/* Checks that buf holds exactly one well-formed msgpack value nested at
   most max_depth deep (<= MPREAD_MAX_DEPTH).  Returns 0, or SY_ETRUNCATED,
   SY_ETRAILING, SY_ECOUNT, SY_EDEPTH, SY_EFIELD_TYPE (0xc1).  After it
   returns 0 msgpack_unpack() on the same bytes allocates at most a small
   multiple of len. */
int mpread_check(const uint8_t *buf, size_t len, int max_depth);

/* True if v is a string equal to the NUL-terminated s. */
bool mpval_str_eq(const mpval_t *v, const char *s);

/* The kind's name for messages: "nil", "bool", "uint", ... "ext". */
const char *mpval_kind_name(mp_kind_t kind);

/* Writes a printable copy of the bytes of v (a str or bin) into out
   (capacity cap >= 1, NUL-terminated, cut to cap - 1 bytes): control
   bytes, bytes >= 0x7f and '"' become '?', so hostile key bytes can be
   quoted in an error message. */
void mpval_printable(const mpval_t *v, char *out, size_t cap);

/* True if v is an integer >= 0 (MP_UINT, or MP_INT holding >= 0); its
   value in *out. */
bool mpval_as_uint(const mpval_t *v, uint64_t *out);

/* Looks up key in the map whose header is `map` and whose pairs follow at
   reader `r` (r is not advanced).  Returns 0 with the value in *out (for
   containers: its header, items follow at *at if at != NULL), SY_ENOTFOUND,
   or a decoding error. */
int mpread_map_find(const mpread_t *r, const mpval_t *map, const char *key,
                    mpval_t *out, mpread_t *at);

#endif
