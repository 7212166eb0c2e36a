/*  syerr.h -- every error code in switchyard, and its wire name.
 *
 *  Functions across the project return 0 on success or one of these
 *  negative codes.  Codes from -1 to -19 are the *wire* codes: they are what
 *  the broker and actors send back to a client in a `sy.receipt` body's
 *  `code` field, as the upper-case name given by syerr_wire_name().  Codes
 *  from -20 down are *detail* codes: they say exactly what was wrong, and
 *  each maps onto one wire code (a malformed header is BAD_ENVELOPE on the
 *  wire, with the detail name and a readable message beside it).
 *
 *  The numbering is part of no wire format; only the names are.  Do not
 *  renumber the wire codes though: tests and logs use them.
 */
#ifndef SYERR_H
#define SYERR_H

#include <stddef.h>

enum {
    SY_OK = 0,

    /* wire codes: answered to clients by name */
    SY_ENO_SERVICE   = -1,   /* NO_SERVICE: nobody offers the `to` service */
    SY_EBAD_ENVELOPE = -2,   /* BAD_ENVELOPE: header frame malformed or invalid */
    SY_ETOO_LARGE    = -3,   /* TOO_LARGE: message over the configured limit */
    SY_EDENIED       = -4,   /* DENIED: not allowed (role, not registered, ...) */
    SY_ERATE_LIMITED = -5,   /* RATE_LIMITED: per-identity rate limit hit */
    SY_EQUEUE_FULL   = -6,   /* QUEUE_FULL: queue or store has no room */
    SY_EDUPLICATE    = -7,   /* DUPLICATE: idempotency key seen in window */
    SY_EEXPIRED      = -8,   /* EXPIRED: ttl passed before delivery */
    SY_EBAD_BODY     = -9,   /* BAD_BODY: body does not match its type's schema */
    SY_EINTERNAL     = -10,  /* INTERNAL: the server failed (I/O, memory) */
    SY_ETIMEOUT      = -11,  /* TIMEOUT: no answer in time (client side) */

    /* detail codes for msgpack / envelope / body decoding (BAD_ENVELOPE
       when they concern the header, BAD_BODY when they concern a body) */
    SY_ETRUNCATED    = -20,  /* the msgpack ends in the middle of a value */
    SY_ETRAILING     = -21,  /* bytes follow the one top-level value */
    SY_ENOT_MAP      = -22,  /* the top-level value is not a map */
    SY_ECOUNT        = -23,  /* a container claims more items than bytes left */
    SY_EDEPTH        = -24,  /* containers nested deeper than allowed */
    SY_EKEY_TYPE     = -25,  /* a map key is not a string */
    SY_EUNKNOWN_FIELD= -26,  /* a key that the schema does not declare */
    SY_EDUP_FIELD    = -27,  /* the same key twice in one map */
    SY_EFIELD_TYPE   = -28,  /* a field of the wrong msgpack type */
    SY_EFIELD_RANGE  = -29,  /* a value or length out of its allowed range */
    SY_EMISSING      = -30,  /* a required field is absent */
    SY_EVERSION      = -31,  /* `v` is a protocol version we do not speak */
    SY_EUNKNOWN_TYPE = -32,  /* `type` is not in the message-type table */
    SY_EFIELD_CHARS  = -33,  /* a name or string holds characters not allowed */
    SY_EFRAMES       = -34,  /* wrong number of frames in a message */
    SY_EBAD_UTF8     = -35,  /* a string is not valid UTF-8 */
    SY_ENOT_REGISTERED = -36,/* a peer sent before sy.hello (DENIED) */

    /* local, never on the wire (mapped to INTERNAL if they must be) */
    SY_ENOMEM        = -40,
    SY_EIO           = -41,
    SY_EINVAL        = -42,  /* API misuse: bad argument from our own code */
    SY_ECONFIG       = -43,  /* configuration invalid */
    SY_ENOSPACE      = -44,  /* caller's buffer too small */
    SY_ENOTFOUND     = -45,
    SY_ESTORE        = -46,  /* durable store unusable (corrupt, version) */
    SY_ECLOSED       = -47,  /* connection or object closed */
    SY_ECRYPTO       = -48,  /* sealed data failed authentication: wrong key or tampered */
};

/* The code's upper-case name as used on the wire and in logs:
   "NO_SERVICE", "FIELD_TYPE", ...  Never NULL ("UNKNOWN" for a code not in
   the list).  The string is static. */
const char *syerr_name(int code);

/* The wire code a detail code is reported as (SY_ETRUNCATED ->
   SY_EBAD_ENVELOPE, ...).  `is_body` picks BAD_BODY over BAD_ENVELOPE for
   the decoding detail codes.  Wire codes map to themselves. */
int syerr_wire(int code, int is_body);

/* A one-line English description ("container count exceeds the bytes
   left").  Static, never NULL. */
const char *syerr_text(int code);

/* The code for a wire name, or 0 if the name is not a code. */
int syerr_from_name(const char *name);

/* Writes a printf-style message into err (capacity errlen, always
   NUL-terminated) and returns code, so error paths read
       return syerr_fmt(err, errlen, SY_ECONFIG, "%s: bad value", path);
   err may be NULL or errlen 0: then nothing is written. */
int syerr_fmt(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
