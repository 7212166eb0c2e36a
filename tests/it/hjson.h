/*  hjson.h -- a small strict JSON parser for checking syctl's output.
 *
 *  syctl prints JSON (status --json, the reply of send); the tests must
 *  check that it parses and look values up, without a JSON library in the
 *  build.  This parses RFC 8259 JSON into a tree (strict: no trailing
 *  commas, no comments, one value then only whitespace), depth-limited,
 *  with \uXXXX escapes decoded to UTF-8.
 *
 *  Ownership: hjson_parse() returns a tree freed by hjson_destroy(); every
 *  node and string returned by the look-ups belongs to it.
 */
#ifndef HJSON_H
#define HJSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { HJ_NULL, HJ_BOOL, HJ_NUM, HJ_STR, HJ_ARR, HJ_OBJ } hjson_kind_t;

typedef struct _hjson_t hjson_t;
struct _hjson_t {
    hjson_kind_t kind;
    bool     b;
    double   num;
    char    *str;               /* HJ_STR value */
    char    *key;               /* key in its parent object, else NULL */
    hjson_t *child;             /* first item of an array / object */
    hjson_t *next;              /* next sibling */
    size_t   count;             /* items of an array / object */
};

/* Parses text (NUL-terminated).  Returns NULL if it is not exactly one
   JSON value; err (may be NULL) then says where. */
hjson_t *hjson_parse(const char *text, char *err, size_t errlen);
void hjson_destroy(hjson_t **self_p);

/* Member `key` of an object, or NULL. */
const hjson_t *hjson_member(const hjson_t *obj, const char *key);

/* Item i of an array (or object), or NULL. */
const hjson_t *hjson_item(const hjson_t *arr, size_t i);

/* Dotted path through objects and arrays ("actors.0.name"), or NULL. */
const hjson_t *hjson_path(const hjson_t *root, const char *path);

/* The first member named key anywhere below node (depth first), or NULL. */
const hjson_t *hjson_find(const hjson_t *node, const char *key);

/* Finds the first text in a larger output that parses as a JSON object or
   array: tries each line that starts with '{' or '[' to the end of the
   text, then each line alone.  For tools that print a line before their
   JSON.  Returns NULL if none parses. */
hjson_t *hjson_parse_in(const char *text);

#endif
