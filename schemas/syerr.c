/*  syerr.c -- names, texts and wire mapping of the SY_E* codes.
 *
 *  One table holds every code with its upper-case name (the name is what
 *  travels on the wire in a sy.receipt's `code` / `detail`), a one-line
 *  text, and how it maps onto a wire code.  Lookups are linear: the table
 *  is small and these calls sit on error paths only.
 */
#include "schemas/syerr.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* How a code maps to the wire. */
typedef enum {
    SYERR_MAP_SELF,      /* a wire code: itself */
    SYERR_MAP_DECODE,    /* BAD_ENVELOPE, or BAD_BODY when about a body */
    SYERR_MAP_HEADER,    /* always BAD_ENVELOPE (only headers have it) */
    SYERR_MAP_DENIED,    /* DENIED */
    SYERR_MAP_INTERNAL,  /* local code: INTERNAL */
} syerr_map_t;

typedef struct {
    int         code;
    const char *name;
    const char *text;
    syerr_map_t map;
} syerr_entry_t;

static const syerr_entry_t syerr_table[] = {
    { SY_OK, "OK", "success", SYERR_MAP_SELF },
    { SY_ENO_SERVICE, "NO_SERVICE", "no live actor offers the addressed service", SYERR_MAP_SELF },
    { SY_EBAD_ENVELOPE, "BAD_ENVELOPE", "the header frame is malformed or invalid", SYERR_MAP_SELF },
    { SY_ETOO_LARGE, "TOO_LARGE", "the message is larger than the configured limit", SYERR_MAP_SELF },
    { SY_EDENIED, "DENIED", "not allowed", SYERR_MAP_SELF },
    { SY_ERATE_LIMITED, "RATE_LIMITED", "the sender's rate limit was hit", SYERR_MAP_SELF },
    { SY_EQUEUE_FULL, "QUEUE_FULL", "the queue or store has no room", SYERR_MAP_SELF },
    { SY_EDUPLICATE, "DUPLICATE", "the idempotency key was already seen in the dedup window", SYERR_MAP_SELF },
    { SY_EEXPIRED, "EXPIRED", "the ttl passed before delivery", SYERR_MAP_SELF },
    { SY_EBAD_BODY, "BAD_BODY", "the body does not match its type's schema", SYERR_MAP_SELF },
    { SY_EINTERNAL, "INTERNAL", "internal failure on the server", SYERR_MAP_SELF },
    { SY_ETIMEOUT, "TIMEOUT", "no answer in time", SYERR_MAP_SELF },

    { SY_ETRUNCATED, "TRUNCATED", "the msgpack data ends in the middle of a value", SYERR_MAP_DECODE },
    { SY_ETRAILING, "TRAILING", "bytes follow the top-level value", SYERR_MAP_DECODE },
    { SY_ENOT_MAP, "NOT_MAP", "the top-level value is not a map", SYERR_MAP_DECODE },
    { SY_ECOUNT, "COUNT", "a container count exceeds the bytes left", SYERR_MAP_DECODE },
    { SY_EDEPTH, "DEPTH", "containers are nested too deeply", SYERR_MAP_DECODE },
    { SY_EKEY_TYPE, "KEY_TYPE", "a map key is not a string", SYERR_MAP_DECODE },
    { SY_EUNKNOWN_FIELD, "UNKNOWN_FIELD", "a field the schema does not declare", SYERR_MAP_DECODE },
    { SY_EDUP_FIELD, "DUP_FIELD", "the same field appears twice", SYERR_MAP_DECODE },
    { SY_EFIELD_TYPE, "FIELD_TYPE", "a field has the wrong type", SYERR_MAP_DECODE },
    { SY_EFIELD_RANGE, "FIELD_RANGE", "a value or length is out of its allowed range", SYERR_MAP_DECODE },
    { SY_EMISSING, "MISSING", "a required field is absent", SYERR_MAP_DECODE },
    { SY_EVERSION, "VERSION", "unsupported protocol version", SYERR_MAP_HEADER },
    { SY_EUNKNOWN_TYPE, "UNKNOWN_TYPE", "the message type is not known", SYERR_MAP_HEADER },
    { SY_EFIELD_CHARS, "FIELD_CHARS", "a field holds characters that are not allowed", SYERR_MAP_DECODE },
    { SY_EFRAMES, "FRAMES", "wrong number of frames in a message", SYERR_MAP_HEADER },
    { SY_EBAD_UTF8, "BAD_UTF8", "a string is not valid UTF-8", SYERR_MAP_DECODE },
    { SY_ENOT_REGISTERED, "NOT_REGISTERED", "the peer has not said sy.hello", SYERR_MAP_DENIED },

    { SY_ENOMEM, "NOMEM", "out of memory", SYERR_MAP_INTERNAL },
    { SY_EIO, "IO", "input/output error", SYERR_MAP_INTERNAL },
    { SY_EINVAL, "INVAL", "invalid argument", SYERR_MAP_INTERNAL },
    { SY_ECONFIG, "CONFIG", "invalid configuration", SYERR_MAP_INTERNAL },
    { SY_ENOSPACE, "NOSPACE", "buffer too small", SYERR_MAP_INTERNAL },
    { SY_ENOTFOUND, "NOTFOUND", "not found", SYERR_MAP_INTERNAL },
    { SY_ESTORE, "STORE", "the durable store is unusable", SYERR_MAP_INTERNAL },
    { SY_ECLOSED, "CLOSED", "closed", SYERR_MAP_INTERNAL },
    { SY_ECRYPTO, "CRYPTO", "sealed data failed authentication (wrong key or tampered)", SYERR_MAP_INTERNAL },
};

#define SYERR_COUNT (sizeof syerr_table / sizeof syerr_table[0])

static const syerr_entry_t *syerr_lookup(int code)
{
    for (size_t i = 0; i < SYERR_COUNT; i++)
        if (syerr_table[i].code == code)
            return &syerr_table[i];
    return NULL;
}

const char *syerr_name(int code)
{
    const syerr_entry_t *e = syerr_lookup(code);
    return e ? e->name : "UNKNOWN";
}

const char *syerr_text(int code)
{
    const syerr_entry_t *e = syerr_lookup(code);
    return e ? e->text : "unknown error";
}

int syerr_wire(int code, int is_body)
{
    const syerr_entry_t *e = syerr_lookup(code);
    if (!e)
        return SY_EINTERNAL;
    switch (e->map) {
    case SYERR_MAP_SELF:     return code;
    case SYERR_MAP_DECODE:   return is_body ? SY_EBAD_BODY : SY_EBAD_ENVELOPE;
    case SYERR_MAP_HEADER:   return SY_EBAD_ENVELOPE;
    case SYERR_MAP_DENIED:   return SY_EDENIED;
    case SYERR_MAP_INTERNAL: return SY_EINTERNAL;
    }
    return SY_EINTERNAL;
}

int syerr_from_name(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 1; i < SYERR_COUNT; i++)   /* 0 = "OK" is not a code */
        if (strcmp(syerr_table[i].name, name) == 0)
            return syerr_table[i].code;
    return 0;
}

int syerr_fmt(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
