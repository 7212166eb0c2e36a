/*  msgtypes.h -- the table of message types and their body fields.
 *
 *  Every message type that may cross the broker is declared once, in the
 *  table in msgtypes.c.  That table drives:
 *    - validation: msgtypes_validate() checks a body against its type
 *      (the actor runtime does this before a handler sees a body, and
 *      before a body is sent: what we send is what we would accept);
 *    - the broker's check that a header's `type` is known;
 *    - encoding help: syctl turns JSON into msgpack using the field kinds
 *      (a JSON string for a bin field is hex);
 *    - the protocol document: `sy-schema --markdown` prints the message
 *      section of docs/PROTOCOL.md from this table.
 *
 *  Bodies are msgpack maps with string keys.  Unknown keys are refused
 *  (SY_EUNKNOWN_FIELD): a newer sender must bump the protocol version.
 *
 *  Ownership: everything returned points into static tables.
 */
#ifndef MSGTYPES_H
#define MSGTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most ids one sy.ack may carry. */
#define MSGTYPES_ACK_IDS_MAX 1024

typedef enum {
    MF_STR,     /* UTF-8 string, length in bytes within [min, max] */
    MF_NAME,    /* string obeying envelope_valid_name(), [min, max] bytes */
    MF_UINT,    /* integer >= 0 within [min, max] */
    MF_INT,     /* signed integer (min/max ignored) */
    MF_BOOL,
    MF_FLOAT,   /* float or any integer */
    MF_BIN,     /* binary, length within [min, max] */
    MF_ID,      /* binary of exactly 16 bytes (a message id) */
    MF_STRS,    /* array of strings: count within [min, max], each string
                   at most item_max bytes of valid UTF-8 */
    MF_NAMES,   /* array of names: count within [min, max] */
    MF_IDS,     /* array of message ids (binary, 16 bytes each): count
                   within [min, max] */
    MF_MAP,     /* any map (free-form data), depth-checked only */
    MF_ARRAY,   /* any array, depth-checked only */
    MF_ANY,     /* any value, depth-checked only */
} msgfield_kind_t;

typedef struct {
    const char     *name;
    msgfield_kind_t kind;
    bool            required;
    uint64_t        min, max;   /* see the kinds above */
    uint32_t        item_max;   /* MF_STRS: bytes per item */
    const char     *doc;        /* one line for PROTOCOL.md */
} msgfield_t;

typedef struct {
    const char       *type;     /* e.g. "sy.hello", "chat.request" */
    const char       *flow;     /* e.g. "actor -> broker" */
    const char       *doc;      /* a sentence or two for PROTOCOL.md */
    const msgfield_t *fields;
    size_t            nfields;
    size_t            typelen;  /* strlen(type), fixed when the table is
                                   compiled: lookups never measure names */
} msgtype_t;

/* The message type named type[0..len) (no terminator needed), or NULL.
   Constant cost: one hash of four bytes, one table slot, one memcmp. */
const msgtype_t *msgtypes_find(const char *type, size_t len);

/* All types, in table order; *count receives how many. */
const msgtype_t *msgtypes_all(size_t *count);

/* Validates a body against t.  Returns 0 or a detail code; err (may be
   NULL) receives a message naming the field.  Never allocates. */
int msgtypes_validate(const msgtype_t *t, const uint8_t *body, size_t len,
                      char *err, size_t errlen);

/* The field `name` of t, or NULL. */
const msgfield_t *msgtypes_field(const msgtype_t *t, const char *name);

/* The kind's name as used in PROTOCOL.md ("str", "uint", "id", ...). */
const char *msgtypes_kind_name(msgfield_kind_t kind);

/* Deepest nesting of containers in a body (the body map is depth 0). */
#define MSGTYPES_MAX_DEPTH 16

/* True if p[0..len) is valid UTF-8: no overlong forms, no surrogates
   (U+D800..U+DFFF), nothing above U+10FFFF. */
bool msgtypes_utf8_valid(const uint8_t *p, size_t len);

/* Writes the message-type section of PROTOCOL.md (markdown) to f. */
int msgtypes_markdown(FILE *f);

#endif
