/*  hjson.c -- a small strict JSON parser for checking syctl's output.
 *
 *  Recursive descent over a NUL-terminated string; every node is its own
 *  allocation, children linked as a list.  Depth is limited so a runaway
 *  output cannot overflow the test's stack.  See hjson.h.
 */
#include "hjson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HJSON_MAX_DEPTH 64

typedef struct {
    const char *p;
    const char *start;
    char       *err;
    size_t      errlen;
    bool        failed;
} hjson_parser_t;

static hjson_t *hjson_value(hjson_parser_t *ps, int depth);

static void hjson_fail(hjson_parser_t *ps, const char *what)
{
    if (!ps->failed && ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "%s at offset %zu", what,
                 (size_t)(ps->p - ps->start));
    ps->failed = true;
}

static void hjson_ws(hjson_parser_t *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static hjson_t *hjson_node(hjson_kind_t kind)
{
    hjson_t *n = calloc(1, sizeof *n);
    if (n)
        n->kind = kind;
    return n;
}

static void hjson_free_node(hjson_t *n)
{
    while (n) {
        hjson_t *next = n->next;
        hjson_free_node(n->child);
        free(n->str);
        free(n->key);
        free(n);
        n = next;
    }
}

static int hjson_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t hjson_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses a string literal at ps->p (on the opening quote); returns a
   malloc'd copy with escapes decoded. */
static char *hjson_string(hjson_parser_t *ps)
{
    if (*ps->p != '"') { hjson_fail(ps, "expected string"); return NULL; }
    ps->p++;
    const char *s = ps->p;
    size_t cap = 0;
    while (s[cap] && s[cap] != '"') {       /* upper bound of the length */
        if (s[cap] == '\\' && s[cap + 1]) cap++;
        cap++;
    }
    char *out = malloc(cap * 2 + 8);        /* \uXXXX may grow to 4 bytes */
    if (!out) { hjson_fail(ps, "out of memory"); return NULL; }
    size_t n = 0;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == 0) { hjson_fail(ps, "unterminated string"); free(out); return NULL; }
        if (c == '"') { ps->p++; break; }
        if (c < 0x20) { hjson_fail(ps, "control character in string"); free(out); return NULL; }
        if (c != '\\') { out[n++] = (char)c; ps->p++; continue; }
        char e = ps->p[1];
        ps->p += 2;
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hjson_hex4(ps->p, &cp) < 0) {
                hjson_fail(ps, "bad \\u escape"); free(out); return NULL;
            }
            ps->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                unsigned lo;
                if (hjson_hex4(ps->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    ps->p += 6;
                }
            }
            n += hjson_utf8(cp, out + n);
            break;
        }
        default:
            hjson_fail(ps, "bad escape"); free(out); return NULL;
        }
    }
    out[n] = 0;
    return out;
}

static hjson_t *hjson_number(hjson_parser_t *ps)
{
    const char *s = ps->p;
    const char *q = s;
    if (*q == '-') q++;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (*q >= '0' && *q <= '9') q++;
    else { hjson_fail(ps, "bad number"); return NULL; }
    if (*q == '.') {
        q++;
        if (!(*q >= '0' && *q <= '9')) { hjson_fail(ps, "bad fraction"); return NULL; }
        while (*q >= '0' && *q <= '9') q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!(*q >= '0' && *q <= '9')) { hjson_fail(ps, "bad exponent"); return NULL; }
        while (*q >= '0' && *q <= '9') q++;
    }
    hjson_t *n = hjson_node(HJ_NUM);
    if (!n) { hjson_fail(ps, "out of memory"); return NULL; }
    n->num = strtod(s, NULL);
    ps->p = q;
    return n;
}

static hjson_t *hjson_container(hjson_parser_t *ps, int depth, bool obj)
{
    hjson_t *n = hjson_node(obj ? HJ_OBJ : HJ_ARR);
    if (!n) { hjson_fail(ps, "out of memory"); return NULL; }
    char close = obj ? '}' : ']';
    ps->p++;
    hjson_ws(ps);
    if (*ps->p == close) { ps->p++; return n; }
    hjson_t **tail = &n->child;
    for (;;) {
        char *key = NULL;
        if (obj) {
            hjson_ws(ps);
            key = hjson_string(ps);
            if (!key) break;
            hjson_ws(ps);
            if (*ps->p != ':') { hjson_fail(ps, "expected ':'"); free(key); break; }
            ps->p++;
        }
        hjson_t *item = hjson_value(ps, depth + 1);
        if (!item) { free(key); break; }
        item->key = key;
        *tail = item;
        tail = &item->next;
        n->count++;
        hjson_ws(ps);
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == close) { ps->p++; return n; }
        hjson_fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    hjson_free_node(n);
    return NULL;
}

static hjson_t *hjson_value(hjson_parser_t *ps, int depth)
{
    if (depth > HJSON_MAX_DEPTH) { hjson_fail(ps, "too deep"); return NULL; }
    hjson_ws(ps);
    char c = *ps->p;
    if (c == '{') return hjson_container(ps, depth, true);
    if (c == '[') return hjson_container(ps, depth, false);
    if (c == '"') {
        char *s = hjson_string(ps);
        if (!s) return NULL;
        hjson_t *n = hjson_node(HJ_STR);
        if (!n) { free(s); hjson_fail(ps, "out of memory"); return NULL; }
        n->str = s;
        return n;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return hjson_number(ps);
    static const struct { const char *word; hjson_kind_t kind; bool b; } words[] = {
        { "true", HJ_BOOL, true }, { "false", HJ_BOOL, false }, { "null", HJ_NULL, false },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t len = strlen(words[i].word);
        if (strncmp(ps->p, words[i].word, len) == 0) {
            hjson_t *n = hjson_node(words[i].kind);
            if (!n) { hjson_fail(ps, "out of memory"); return NULL; }
            n->b = words[i].b;
            ps->p += len;
            return n;
        }
    }
    hjson_fail(ps, "unexpected character");
    return NULL;
}

hjson_t *hjson_parse(const char *text, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!text) return NULL;
    hjson_parser_t ps = { text, text, err, errlen, false };
    hjson_t *root = hjson_value(&ps, 0);
    if (!root) return NULL;
    hjson_ws(&ps);
    if (*ps.p) {
        hjson_fail(&ps, "trailing characters");
        hjson_free_node(root);
        return NULL;
    }
    return root;
}

void hjson_destroy(hjson_t **self_p)
{
    if (!self_p || !*self_p) return;
    hjson_free_node(*self_p);
    *self_p = NULL;
}

const hjson_t *hjson_member(const hjson_t *obj, const char *key)
{
    if (!obj || obj->kind != HJ_OBJ) return NULL;
    for (const hjson_t *c = obj->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0) return c;
    return NULL;
}

const hjson_t *hjson_item(const hjson_t *arr, size_t i)
{
    if (!arr || (arr->kind != HJ_ARR && arr->kind != HJ_OBJ)) return NULL;
    const hjson_t *c = arr->child;
    while (c && i--) c = c->next;
    return c;
}

const hjson_t *hjson_path(const hjson_t *root, const char *path)
{
    const hjson_t *n = root;
    char seg[128];
    while (n && *path) {
        size_t len = strcspn(path, ".");
        if (len >= sizeof seg) return NULL;
        memcpy(seg, path, len);
        seg[len] = 0;
        path += len;
        if (*path == '.') path++;
        if (n->kind == HJ_ARR) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            if (*end || !len) return NULL;
            n = hjson_item(n, i);
        } else {
            n = hjson_member(n, seg);
        }
    }
    return n;
}

const hjson_t *hjson_find(const hjson_t *node, const char *key)
{
    if (!node) return NULL;
    for (const hjson_t *c = node->child; c; c = c->next) {
        if (c->key && strcmp(c->key, key) == 0) return c;
        const hjson_t *f = hjson_find(c, key);
        if (f) return f;
    }
    return NULL;
}

hjson_t *hjson_parse_in(const char *text)
{
    if (!text) return NULL;
    /* First: from a line that opens an object/array to the end. */
    for (const char *line = text; line && *line; ) {
        const char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '{' || *s == '[') {
            hjson_t *j = hjson_parse(s, NULL, 0);
            if (j) return j;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    /* Then: each line alone (JSON lines). */
    for (const char *line = text; line && *line; ) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *copy = malloc(len + 1);
        if (!copy) return NULL;
        memcpy(copy, line, len);
        copy[len] = 0;
        const char *s = copy;
        while (*s == ' ' || *s == '\t') s++;
        hjson_t *j = (*s == '{' || *s == '[') ? hjson_parse(s, NULL, 0) : NULL;
        free(copy);
        if (j) return j;
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}
