/*  rules.c -- the router's classification rules (see rules.h).
 *
 *  Ideas:
 *  - Each list is parsed once into items kept twice: as configured (for
 *    the `why` people read) and folded to ASCII lower case (for matching).
 *  - A request's text is folded the same way once, into a scratch copy,
 *    and each phrase is looked up with memmem(): linear in the text, so a
 *    64 KiB message against hundreds of phrases stays cheap whatever the
 *    phrases look like.
 *  - Folding touches only 'A'..'Z'; every other byte, in particular the
 *    bytes of multi-byte UTF-8 characters, compares exactly.  UTF-8 is
 *    self-synchronising, so a valid phrase found in valid text always
 *    starts and ends on character boundaries.
 *  - Attachments are read with the bounded reader, never unpacked.
 */
#include "actors/rules.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

#define RULES_ATT_DEPTH 16      /* nesting accepted in attachments */
#define RULES_SHOW_MAX  64      /* bytes of an attachment value in `why` */

typedef struct {
    char   *orig;               /* as configured, trimmed */
    char   *low;                /* ASCII-folded */
    size_t  len;
    bool    prefix;             /* patterns: a trailing '*' was removed */
} rules_item_t;

typedef struct {
    rules_item_t *items;
    size_t        n;
} rules_list_t;

struct _rules_t {
    rules_list_t  heavy, light, scheduled, attach;
    rules_class_t dflt;
};

static const char *const rules_names[] = { "HEAVY", "LIGHT", "SCHEDULED" };

const char *rules_class_name(rules_class_t cls)
{
    if ((unsigned) cls >= sizeof rules_names / sizeof rules_names[0])
        return "?";
    return rules_names[cls];
}

static char rules_fold(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

static void rules_list_free(rules_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].orig);
        free(l->items[i].low);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* ------------------------------------------------------------ parsing */

static bool rules_pattern_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+'
           || c == '-' || c == '/';
}

/* Checks one trimmed item of setting.  Returns 0 or SY_ECONFIG. */
static int rules_item_check(const char *setting, const char *s, size_t n,
                            bool pattern, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (n > RULES_ITEM_MAX)
        bad = "is longer than 128 bytes";
    else if (!msgtypes_utf8_valid((const uint8_t *) s, n))
        bad = "is not valid UTF-8";
    for (size_t i = 0; !bad && i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c == 0x7f)
            bad = "holds a control character";
        else if (c == '"')
            bad = "holds a '\"'";
        else if (pattern && c == '*' && i + 1 != n)
            bad = "has a '*' that is not at its end";
        else if (pattern && c != '*' && !rules_pattern_char((char) c))
            bad = "is not a kind or MIME type (letters, digits, . _ + - / "
                  "and a trailing *)";
    }
    if (!bad)
        return 0;
    snprintf(err, errlen, "%s: the item \"%.*s\" %s", setting,
             (int) (n > 40 ? 40 : n), s, bad);
    for (char *p = err; *p; p++)        /* the quoted item may hold anything */
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return SY_ECONFIG;
}

static int rules_item_add(rules_list_t *l, const char *s, size_t n,
                          bool pattern)
{
    rules_item_t *grown = realloc(l->items, (l->n + 1) * sizeof *grown);
    if (!grown)
        return SY_ENOMEM;
    l->items = grown;
    rules_item_t *it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->orig = strndup(s, n);
    if (pattern && n > 0 && s[n - 1] == '*') {
        it->prefix = true;
        n--;
    }
    it->low = strndup(s, n);
    if (!it->orig || !it->low) {
        free(it->orig);
        free(it->low);
        return SY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        it->low[i] = rules_fold(it->low[i]);
    it->len = n;
    l->n++;
    return 0;
}

static bool rules_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses the comma list value of setting into l. */
static int rules_list_parse(const char *setting, const char *value,
                            bool pattern, rules_list_t *l, char *err,
                            size_t errlen)
{
    const char *p = value ? value : "";
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && rules_space(*a))
            a++;
        while (b > a && rules_space(b[-1]))
            b--;
        if (b > a) {
            int rc = rules_item_check(setting, a, (size_t) (b - a), pattern,
                                      err, errlen);
            if (rc)
                return rc;
            if (l->n == RULES_ITEMS_MAX) {
                snprintf(err, errlen, "%s: more than %d items", setting,
                         RULES_ITEMS_MAX);
                return SY_ECONFIG;
            }
            if ((rc = rules_item_add(l, a, (size_t) (b - a), pattern)) != 0) {
                snprintf(err, errlen, "%s: out of memory", setting);
                return rc;
            }
        }
        if (!*end)
            return 0;
        p = end + 1;
    }
}

int rules_new_from(const char *heavy, const char *light, const char *scheduled,
                   const char *heavy_attachments, rules_class_t dflt,
                   rules_t **out, char *err, size_t errlen)
{
    if (!out || !err || errlen == 0)
        return SY_EINVAL;
    *out = NULL;
    err[0] = 0;
    if ((unsigned) dflt > RULES_SCHEDULED) {
        snprintf(err, errlen, "router/default: not heavy, light or scheduled");
        return SY_ECONFIG;
    }
    rules_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "router: out of memory");
        return SY_ENOMEM;
    }
    self->dflt = dflt;
    int rc = rules_list_parse("router/heavy", heavy, false, &self->heavy,
                              err, errlen);
    if (!rc)
        rc = rules_list_parse("router/light", light, false, &self->light,
                              err, errlen);
    if (!rc)
        rc = rules_list_parse("router/scheduled", scheduled, false,
                              &self->scheduled, err, errlen);
    if (!rc)
        rc = rules_list_parse("router/heavy_attachments", heavy_attachments,
                              true, &self->attach, err, errlen);
    if (rc) {
        rules_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

int rules_new(const config_t *cfg, rules_t **out, char *err, size_t errlen)
{
    if (!cfg)
        return SY_EINVAL;
    return rules_new_from(config_str(cfg, "router/heavy"),
                          config_str(cfg, "router/light"),
                          config_str(cfg, "router/scheduled"),
                          config_str(cfg, "router/heavy_attachments"),
                          (rules_class_t) config_int(cfg, "router/default"),
                          out, err, errlen);
}

void rules_destroy(rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rules_t *self = *self_p;
    rules_list_free(&self->heavy);
    rules_list_free(&self->light);
    rules_list_free(&self->scheduled);
    rules_list_free(&self->attach);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ matching */

/* The first phrase of l found in the folded text, or NULL. */
static const rules_item_t *rules_find_phrase(const rules_list_t *l,
                                             const char *low, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        const rules_item_t *it = &l->items[i];
        if (it->len <= len && memmem(low, len, it->low, it->len))
            return &l->items[i];
    }
    return NULL;
}

static void rules_why_phrase(rules_result_t *out, rules_class_t cls,
                             const rules_item_t *it, const char *setting)
{
    out->cls = cls;
    snprintf(out->why, sizeof out->why, "phrase \"%s\" (%s)", it->orig,
             setting);
}

/* True if the string value v matches pattern it (folded, or a prefix). */
static bool rules_pattern_match(const rules_item_t *it, const mpval_t *v)
{
    if (v->kind != MP_STR || v->len < it->len)
        return false;
    if (!it->prefix && v->len != it->len)
        return false;
    for (size_t i = 0; i < it->len; i++)
        if (rules_fold((char) v->ptr[i]) != it->low[i])
            return false;
    return true;
}

/* Reads one attachment item (its header is v) into kind and mime (kind
   MP_NIL when absent or not strings).  Consumes the item. */
static int rules_att_read(mpread_t *r, const mpval_t *v, mpval_t *kind,
                          mpval_t *mime)
{
    kind->kind = MP_NIL;
    mime->kind = MP_NIL;
    if (v->kind != MP_MAP)
        return mpread_skip_max(r, v, 1, RULES_ATT_DEPTH);
    for (uint32_t i = 0; i < v->len; i++) {
        mpval_t k, val;
        int rc = mpread_next(r, &k);
        if (!rc)
            rc = mpread_skip_max(r, &k, 2, RULES_ATT_DEPTH);
        if (!rc)
            rc = mpread_next(r, &val);
        if (!rc)
            rc = mpread_skip_max(r, &val, 2, RULES_ATT_DEPTH);
        if (rc)
            return rc;
        if (val.kind != MP_STR)
            continue;
        if (mpval_str_eq(&k, "kind"))
            *kind = val;
        else if (mpval_str_eq(&k, "mime"))
            *mime = val;
    }
    return 0;
}

/* Which attachment, if any, matches a heavy pattern.  Returns 0 (with
   *hit true and out filled when one does) or SY_EBAD_BODY. */
static int rules_find_attachment(const rules_t *self, const uint8_t *att,
                                 size_t att_len, rules_result_t *out,
                                 bool *hit)
{
    *hit = false;
    if (!att || att_len == 0)
        return 0;
    mpread_t r;
    mpval_t arr;
    mpread_init(&r, att, att_len);
    if (mpread_next(&r, &arr) || arr.kind != MP_ARRAY)
        return SY_EBAD_BODY;
    for (uint32_t i = 0; i < arr.len && !*hit; i++) {
        mpval_t item, kind, mime;
        if (mpread_next(&r, &item) || rules_att_read(&r, &item, &kind, &mime))
            return SY_EBAD_BODY;
        for (size_t p = 0; p < self->attach.n && !*hit; p++) {
            const rules_item_t *it = &self->attach.items[p];
            const mpval_t *v = rules_pattern_match(it, &kind) ? &kind
                             : rules_pattern_match(it, &mime) ? &mime : NULL;
            if (!v)
                continue;
            char shown[RULES_SHOW_MAX + 1];
            mpval_printable(v, shown, sizeof shown);
            out->cls = RULES_HEAVY;
            snprintf(out->why, sizeof out->why,
                     "attachment %s (router/heavy_attachments)", shown);
            *hit = true;
        }
    }
    return 0;
}

/* True if att is empty or one well-formed array. */
static bool rules_att_valid(const uint8_t *att, size_t att_len)
{
    if (!att || att_len == 0)
        return true;
    mpread_t r;
    mpval_t arr;
    mpread_init(&r, att, att_len);
    return mpread_check(att, att_len, RULES_ATT_DEPTH) == 0
           && mpread_next(&r, &arr) == 0 && arr.kind == MP_ARRAY;
}

/* The rules in their order, on the folded text. */
static int rules_decide(const rules_t *self, const char *low, size_t len,
                        const uint8_t *att, size_t att_len,
                        rules_result_t *out)
{
    const rules_item_t *it;
    bool hit = false;
    if ((it = rules_find_phrase(&self->scheduled, low, len)) != NULL) {
        rules_why_phrase(out, RULES_SCHEDULED, it, "router/scheduled");
        return 0;
    }
    if ((it = rules_find_phrase(&self->heavy, low, len)) != NULL) {
        rules_why_phrase(out, RULES_HEAVY, it, "router/heavy");
        return 0;
    }
    int rc = rules_find_attachment(self, att, att_len, out, &hit);
    if (rc || hit)
        return rc;
    if ((it = rules_find_phrase(&self->light, low, len)) != NULL) {
        rules_why_phrase(out, RULES_LIGHT, it, "router/light");
        return 0;
    }
    out->cls = self->dflt;
    snprintf(out->why, sizeof out->why, "no rule matched (router/default)");
    return 0;
}

int rules_classify(const rules_t *self, const char *text, size_t len,
                   const uint8_t *attachments, size_t att_len,
                   rules_result_t *out)
{
    if (!self || !out || (!text && len))
        return SY_EINVAL;
    memset(out, 0, sizeof *out);
    if (!rules_att_valid(attachments, att_len))
        return SY_EBAD_BODY;
    char *low = malloc(len + 1);
    if (!low)
        return SY_ENOMEM;
    for (size_t i = 0; i < len; i++)
        low[i] = rules_fold(text[i]);
    low[len] = 0;
    int rc = rules_decide(self, low, len, attachments, att_len, out);
    free(low);
    return rc;
}
