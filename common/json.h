/*  json.h -- JSON <-> msgpack for syctl.
 *
 *  syctl lets an operator type a message body as JSON and shows bodies it
 *  receives as JSON.  This module converts in both directions without any
 *  third-party JSON code.
 *
 *  JSON -> msgpack: a strict RFC 8259 parser (objects, arrays, strings
 *  with every escape including \uXXXX surrogate pairs, numbers, true,
 *  false, null).  Integers become msgpack int (negative) or uint; other
 *  numbers, and integers too large for 64 bits, become float 64.  Nesting
 *  deeper than JSON_MAX_DEPTH is refused.  When a message type is given,
 *  the members of the top-level object whose field kind in the table is
 *  MF_ID or MF_BIN take a JSON string of hex digits and become msgpack
 *  bin (there is no binary in JSON).  Errors say what and at which byte
 *  offset of the text.
 *
 *  msgpack -> JSON: one line, every msgpack kind: bin becomes a hex
 *  string, ext becomes {"ext":type,"hex":"..."}, map keys that are not
 *  strings are written as the JSON text of the key inside a string,
 *  control characters and invalid UTF-8 are escaped (U+FFFD for a bad
 *  byte), NaN and infinities become null.  The input is walked with the
 *  allocation-free schemas/mpread.h reader, so hostile counts cost
 *  nothing.
 *
 *  Ownership: both directions return a buffer the caller frees with
 *  free().
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../schemas/msgtypes.h"

#define JSON_MAX_DEPTH 32

typedef struct {
    size_t offset;      /* byte offset in the JSON text of the error */
    char   msg[160];    /* "offset 12: expected ':' after object key" */
} json_err_t;

/* Parses text[0..len) (one JSON value, surrounding white space allowed)
   into msgpack.  t may be NULL; if not, hex strings are decoded for its
   MF_ID / MF_BIN fields at the top level of an object.  On success
   returns 0 and *out (malloc'd, caller frees) / *out_len.  On failure
   returns SY_EINVAL (syntax), SY_EDEPTH (nesting), SY_EBAD_UTF8 or
   SY_ENOMEM, with err filled if not NULL; *out is then NULL. */
int json_to_msgpack(const char *text, size_t len, const msgtype_t *t,
                    uint8_t **out, size_t *out_len, json_err_t *err);

/* Writes buf[0..len) (exactly one msgpack value) as one line of JSON,
   NUL-terminated, into *out (malloc'd, caller frees).  Returns 0, or a
   decoding code (SY_ETRUNCATED, SY_ETRAILING, SY_ECOUNT, SY_EDEPTH,
   SY_EFIELD_TYPE) or SY_ENOMEM; *out is then NULL. */
int json_from_msgpack(const uint8_t *buf, size_t len, char **out);

#endif
