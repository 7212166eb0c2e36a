/*  syctl_fmt.c -- parsing and printing for syctl, without a socket (see
 *  syctl_fmt.h).
 *
 *  Ideas:
 *  - Values are read with the allocation-free schemas/mpread.h reader;
 *    a table is built in two passes (cells into a grid, then widths from
 *    the widest cell) so columns line up whatever the data.
 *  - Every number a person types is parsed strictly: the whole string
 *    must be a number and a known unit, in range.  --timeout is read by
 *    the configuration's own duration parser (common/config.h), so it
 *    takes what syctl/timeout takes; --ttl also takes decimals and bare
 *    seconds.
 */
#include "tools/syctl_fmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define SYCTL_FMT_CELL 160      /* bytes of one table cell */

/* ------------------------------------------------------------------ */
/* parsing                                                             */

int syctl_fmt_parse_prio(const char *s, uint8_t *prio)
{
    if (!s || !prio)
        return SY_EINVAL;
    if (strcmp(s, "high") == 0 || strcmp(s, "0") == 0)
        *prio = ENVELOPE_PRIO_HIGH;
    else if (strcmp(s, "normal") == 0 || strcmp(s, "1") == 0)
        *prio = ENVELOPE_PRIO_NORMAL;
    else if (strcmp(s, "low") == 0 || strcmp(s, "2") == 0)
        *prio = ENVELOPE_PRIO_LOW;
    else
        return SY_EINVAL;
    return 0;
}

/* A ttl: a number (decimals allowed) and a unit, or bare seconds.
   Returns the value in ms as a double, or -1. */
static double syctl_fmt_ttl_ms(const char *s)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v))
        return -1;
    double mult;
    if (*end == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    return v * mult;
}

int syctl_fmt_parse_ttl(const char *s, uint64_t *ms)
{
    double v = syctl_fmt_ttl_ms(s);
    if (!ms || !(v >= 1 && v <= (double) ENVELOPE_TTL_MAX))
        return SY_EINVAL;
    *ms = (uint64_t) v;
    return 0;
}

int syctl_fmt_parse_duration(const char *s, int *ms)
{
    /* the configuration's parser (syctl/timeout is read with it), less
       its day unit: a wait is at most a day, given in ms .. h */
    int64_t v;
    size_t n = s ? strlen(s) : 0;
    if (!ms || n == 0 || s[n - 1] == 'd' || config_parse_duration(s, &v)
        || v < 1 || v > 24 * 3600000)
        return SY_EINVAL;
    *ms = (int) v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* receipts                                                            */

void syctl_fmt_age(uint64_t ms, char *out, size_t cap)
{
    unsigned long long v = (unsigned long long) ms;
    if (ms < 1000)
        snprintf(out, cap, "%llums", v);
    else if (ms < 60000)
        snprintf(out, cap, "%llus", v / 1000);
    else if (ms < 3600000)
        snprintf(out, cap, "%llum", v / 60000);
    else
        snprintf(out, cap, "%lluh", v / 3600000);
}

static bool syctl_fmt_is_duplicate(const actor_receipt_t *r)
{
    return !r->ok && strcmp(r->code_name, "DUPLICATE") == 0;
}

int syctl_fmt_receipt_exit(const actor_receipt_t *r)
{
    if (r->ok)
        return SYCTL_OK;
    return syctl_fmt_is_duplicate(r) ? SYCTL_EDUPLICATE : SYCTL_EREMOTE;
}

void syctl_fmt_receipt_text(const actor_receipt_t *r, long long seq,
                            char *out, size_t cap)
{
    char prefix[40] = "", hex[33] = "";
    if (seq >= 0)
        snprintf(prefix, sizeof prefix, "seq %lld ", seq);
    if (r->has_id)
        envelope_id_hex(r->id, hex);
    if (r->ok)
        snprintf(out, cap, "%sid %s", prefix, r->has_id ? hex : "?");
    else if (syctl_fmt_is_duplicate(r))
        snprintf(out, cap, "%sDUPLICATE %s", prefix, r->has_id ? hex : "?");
    else {
        const char *msg = r->msg[0] ? r->msg
                        : r->detail[0] ? r->detail : syerr_text(r->code);
        snprintf(out, cap, "%s%s: %s", prefix,
                 r->code_name[0] ? r->code_name : "ERROR", msg);
    }
}

/* Appends s as a JSON string (quoted, escaped) at out[*used]. */
static void syctl_fmt_json_str(char *out, size_t cap, size_t *used,
                               const char *s)
{
    size_t u = *used;
    if (u + 1 < cap)
        out[u++] = '"';
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        char esc[8];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *p;
            n = 2;
        } else if (*p < 0x20) {
            n = (size_t) snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            esc[0] = (char) *p;
            n = 1;
        }
        if (u + n + 1 >= cap)
            break;
        memcpy(out + u, esc, n);
        u += n;
    }
    if (u + 1 < cap)
        out[u++] = '"';
    out[u < cap ? u : cap - 1] = 0;
    *used = u;
}

/* Appends formatted text at out[*used]. */
static void syctl_fmt_cat(char *out, size_t cap, size_t *used,
                          const char *text)
{
    size_t n = strlen(text);
    if (*used + n + 1 > cap)
        n = *used + 1 < cap ? cap - *used - 1 : 0;
    memcpy(out + *used, text, n);
    *used += n;
    out[*used] = 0;
}

void syctl_fmt_receipt_json(const actor_receipt_t *r, long long seq,
                            char *out, size_t cap)
{
    size_t used = 0;
    char part[80];
    if (cap == 0)
        return;
    out[0] = 0;
    syctl_fmt_cat(out, cap, &used, "{");
    if (seq >= 0) {
        snprintf(part, sizeof part, "\"seq\":%lld,", seq);
        syctl_fmt_cat(out, cap, &used, part);
    }
    syctl_fmt_cat(out, cap, &used, r->ok ? "\"ok\":true" : "\"ok\":false");
    if (!r->ok) {
        syctl_fmt_cat(out, cap, &used, ",\"code\":");
        syctl_fmt_json_str(out, cap, &used,
                           r->code_name[0] ? r->code_name : "ERROR");
    }
    if (r->has_id) {
        char hex[33];
        envelope_id_hex(r->id, hex);
        snprintf(part, sizeof part, ",\"id\":\"%s\"", hex);
        syctl_fmt_cat(out, cap, &used, part);
    }
    if (r->detail[0]) {
        syctl_fmt_cat(out, cap, &used, ",\"detail\":");
        syctl_fmt_json_str(out, cap, &used, r->detail);
    }
    if (r->msg[0]) {
        syctl_fmt_cat(out, cap, &used, ",\"msg\":");
        syctl_fmt_json_str(out, cap, &used, r->msg);
    }
    syctl_fmt_cat(out, cap, &used, "}");
}

/* ------------------------------------------------------------------ */
/* values                                                              */

static void syctl_fmt_hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 15];
    }
    out[o] = 0;
}

/* Renders the value whose header is v (items follow at r) as short text
   and consumes it. */
static int syctl_fmt_value(mpread_t *r, const mpval_t *v, char *buf,
                           size_t cap)
{
    buf[0] = 0;
    switch (v->kind) {
    case MP_STR:
        snprintf(buf, cap, "%.*s", (int) v->len, (const char *) v->ptr);
        return 0;
    case MP_UINT:
        snprintf(buf, cap, "%llu", (unsigned long long) v->u);
        return 0;
    case MP_INT:
        snprintf(buf, cap, "%lld", (long long) v->i);
        return 0;
    case MP_FLOAT:
        snprintf(buf, cap, "%g", v->f);
        return 0;
    case MP_BOOL:
        snprintf(buf, cap, "%s", v->b ? "true" : "false");
        return 0;
    case MP_NIL:
        snprintf(buf, cap, "-");
        return 0;
    case MP_BIN:
        syctl_fmt_hex(v->ptr, v->len, buf, cap);
        return 0;
    case MP_ARRAY: {
        size_t used = 0;
        for (uint32_t i = 0; i < v->len; i++) {
            mpval_t item;
            char one[SYCTL_FMT_CELL];
            int rc = mpread_next(r, &item);
            if (rc == 0)
                rc = syctl_fmt_value(r, &item, one, sizeof one);
            if (rc)
                return rc;
            if (i)
                syctl_fmt_cat(buf, cap, &used, ",");
            syctl_fmt_cat(buf, cap, &used, one);
        }
        if (v->len == 0)
            snprintf(buf, cap, "-");
        return 0;
    }
    default:
        snprintf(buf, cap, "?");
        return mpread_skip(r, v, 1);
    }
}

/* The cell of column c for value v (header read; items follow at r);
   consumes the value. */
static int syctl_fmt_cell(mpread_t *r, const mpval_t *v,
                          const syctl_col_t *c, char *cell, size_t cap)
{
    uint64_t u;
    if (c->kind == SYCTL_COL_AGE && mpval_as_uint(v, &u)) {
        syctl_fmt_age(u, cell, cap);
        return 0;
    }
    if (c->kind == SYCTL_COL_KEY && v->kind == MP_STR
        && v->len > SYCTL_FMT_KEY_PREFIX) {
        snprintf(cell, cap, "%.*s...", SYCTL_FMT_KEY_PREFIX,
                 (const char *) v->ptr);
        return 0;
    }
    if (c->kind == SYCTL_COL_YESNO && v->kind == MP_BOOL) {
        snprintf(cell, cap, "%s", v->b ? "yes" : "no");
        return 0;
    }
    if (c->kind == SYCTL_COL_PRIO && mpval_as_uint(v, &u) && u <= 2) {
        static const char *const names[] = { "high", "normal", "low" };
        snprintf(cell, cap, "%s", names[u]);
        return 0;
    }
    if (c->kind == SYCTL_COL_ITEM && v->kind == MP_ARRAY) {
        snprintf(cell, cap, "-");
        for (uint32_t i = 0; i < v->len; i++) {
            mpval_t item;
            char one[SYCTL_FMT_CELL];
            int rc = mpread_next(r, &item);
            if (rc == 0)
                rc = syctl_fmt_value(r, &item, one, sizeof one);
            if (rc)
                return rc;
            if ((int) i == c->index)
                snprintf(cell, cap, "%s", one);
        }
        return 0;
    }
    return syctl_fmt_value(r, v, cell, cap);
}

/* ------------------------------------------------------------------ */
/* tables                                                              */

/* Reads one row (a map) into cells[0..ncols).  Other kinds are skipped
   and leave the row's cells "-".  A key may feed several columns (ready
   -> HIGH, NORMAL, LOW): each reads the value again from the same place. */
static int syctl_fmt_row(mpread_t *r, const syctl_col_t *cols, size_t ncols,
                         char (*cells)[SYCTL_FMT_CELL])
{
    mpval_t row, k, v;
    char credit_left[32] = "";
    int rc = mpread_next(r, &row);
    if (rc)
        return rc;
    for (size_t c = 0; c < ncols; c++)
        snprintf(cells[c], SYCTL_FMT_CELL, "-");
    if (row.kind != MP_MAP)
        return mpread_skip(r, &row, 1);
    for (uint32_t j = 0; j < row.len; j++) {
        if ((rc = mpread_next(r, &k)) || (rc = mpread_next(r, &v)))
            return rc;
        const mpread_t at = *r;     /* the value's items, if any */
        bool used = false;
        for (size_t c = 0; rc == 0 && c < ncols; c++)
            if (mpval_str_eq(&k, cols[c].key)) {
                *r = at;
                rc = syctl_fmt_cell(r, &v, &cols[c], cells[c], SYCTL_FMT_CELL);
                used = true;
            }
        if (!used && mpval_str_eq(&k, "credit_left")) {
            char text[SYCTL_FMT_CELL];
            rc = syctl_fmt_value(r, &v, text, sizeof text);
            snprintf(credit_left, sizeof credit_left, "%.30s", text);
        } else if (!used)
            rc = mpread_skip(r, &v, 1);
        if (rc)
            return rc;
    }
    for (size_t c = 0; c < ncols; c++)
        if (cols[c].kind == SYCTL_COL_CREDIT) {
            char total[64];
            snprintf(total, sizeof total, "%.60s", cells[c]);
            snprintf(cells[c], SYCTL_FMT_CELL, "%s/%s",
                     *credit_left ? credit_left : "?", total);
        }
    return 0;
}

static void syctl_fmt_print_line(FILE *f, char (*cells)[SYCTL_FMT_CELL],
                                 const char *const *titles, size_t ncols,
                                 const size_t *widths)
{
    for (size_t c = 0; c < ncols; c++) {
        const char *text = cells ? cells[c] : titles[c];
        if (c + 1 < ncols)
            fprintf(f, "%-*s  ", (int) widths[c], text);
        else
            fprintf(f, "%s\n", text);
    }
}

int syctl_fmt_table(FILE *f, const uint8_t *data, size_t len,
                    const syctl_col_t *cols, size_t ncols)
{
    mpread_t r;
    mpval_t arr;
    mpread_init(&r, data, len);
    int rc = mpread_next(&r, &arr);
    if (rc)
        return rc;
    if (arr.kind != MP_ARRAY || ncols == 0)
        return SY_EFIELD_TYPE;
    if (arr.len == 0)
        return 0;
    char (*grid)[SYCTL_FMT_CELL] = calloc((size_t) arr.len * ncols,
                                          SYCTL_FMT_CELL);
    size_t *widths = calloc(ncols, sizeof *widths);
    const char **titles = calloc(ncols, sizeof *titles);
    if (!grid || !widths || !titles) {
        free(grid);
        free(widths);
        free(titles);
        return SY_ENOMEM;
    }
    for (size_t c = 0; c < ncols; c++) {
        titles[c] = cols[c].title;
        widths[c] = strlen(cols[c].title);
    }
    for (uint32_t i = 0; rc == 0 && i < arr.len; i++) {
        rc = syctl_fmt_row(&r, cols, ncols, grid + (size_t) i * ncols);
        for (size_t c = 0; rc == 0 && c < ncols; c++) {
            size_t w = strlen(grid[(size_t) i * ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    if (rc == 0) {
        syctl_fmt_print_line(f, NULL, titles, ncols, widths);
        for (uint32_t i = 0; i < arr.len; i++)
            syctl_fmt_print_line(f, grid + (size_t) i * ncols, titles, ncols,
                                 widths);
    }
    free(grid);
    free(widths);
    free(titles);
    return rc < 0 ? rc : (int) arr.len;
}

/* A table, or `empty` when it has no rows. */
static int syctl_fmt_list(FILE *f, const uint8_t *data, size_t len,
                          const syctl_col_t *cols, size_t ncols,
                          const char *empty)
{
    int rc = syctl_fmt_table(f, data, len, cols, ncols);
    if (rc == 0)
        fprintf(f, "%s\n", empty);
    return rc < 0 ? rc : 0;
}

#define SYCTL_NCOLS(a) (sizeof(a) / sizeof((a)[0]))

int syctl_fmt_queues(FILE *f, const uint8_t *data, size_t len)
{
    static const syctl_col_t cols[] = {
        { "service",   "SERVICE",  SYCTL_COL_TEXT, 0 },
        { "ready",     "HIGH",     SYCTL_COL_ITEM, 0 },
        { "ready",     "NORMAL",   SYCTL_COL_ITEM, 1 },
        { "ready",     "LOW",      SYCTL_COL_ITEM, 2 },
        { "delayed",   "DELAYED",  SYCTL_COL_TEXT, 0 },
        { "inflight",  "INFLIGHT", SYCTL_COL_TEXT, 0 },
        { "dead",      "DEAD",     SYCTL_COL_TEXT, 0 },
        { "oldest_ms", "OLDEST",   SYCTL_COL_AGE,  0 },
    };
    return syctl_fmt_list(f, data, len, cols, SYCTL_NCOLS(cols),
                          "no durable queues");
}

/* A list of one queue's messages; "queue <service>: <none>" when empty. */
static int syctl_fmt_queue_list(FILE *f, const uint8_t *data, size_t len,
                                const syctl_col_t *cols, size_t ncols,
                                const char *service, const char *none)
{
    char empty[120];
    snprintf(empty, sizeof empty, "queue %.64s: %s", service ? service : "", none);
    return syctl_fmt_list(f, data, len, cols, ncols, empty);
}

int syctl_fmt_peek(FILE *f, const uint8_t *data, size_t len,
                   const char *service)
{
    static const syctl_col_t cols[] = {
        { "id",      "ID",      SYCTL_COL_ID,   0 },
        { "prio",    "PRIO",    SYCTL_COL_PRIO, 0 },
        { "attempt", "ATTEMPT", SYCTL_COL_TEXT, 0 },
        { "age_ms",  "AGE",     SYCTL_COL_AGE,  0 },
        { "size",    "SIZE",    SYCTL_COL_TEXT, 0 },
        { "type",    "TYPE",    SYCTL_COL_TEXT, 0 },
        { "from",    "FROM",    SYCTL_COL_TEXT, 0 },
        { "key",     "KEY",     SYCTL_COL_TEXT, 0 },
    };
    return syctl_fmt_queue_list(f, data, len, cols, SYCTL_NCOLS(cols), service,
                                "nothing waiting");
}

int syctl_fmt_inflight(FILE *f, const uint8_t *data, size_t len,
                       const char *service)
{
    static const syctl_col_t cols[] = {
        { "id",            "ID",         SYCTL_COL_ID,   0 },
        { "holder",        "HOLDER",     SYCTL_COL_TEXT, 0 },
        { "attempt",       "ATTEMPT",    SYCTL_COL_TEXT, 0 },
        { "lease_left_ms", "LEASE LEFT", SYCTL_COL_AGE,  0 },
    };
    return syctl_fmt_queue_list(f, data, len, cols, SYCTL_NCOLS(cols), service,
                                "nothing in flight");
}

int syctl_fmt_dlq(FILE *f, const uint8_t *data, size_t len)
{
    static const syctl_col_t cols[] = {
        { "id",      "ID",      SYCTL_COL_ID,   0 },
        { "service", "SERVICE", SYCTL_COL_TEXT, 0 },
        { "attempt", "ATTEMPT", SYCTL_COL_TEXT, 0 },
        { "age_ms",  "AGE",     SYCTL_COL_AGE,  0 },
        { "type",    "TYPE",    SYCTL_COL_TEXT, 0 },
        { "reason",  "REASON",  SYCTL_COL_TEXT, 0 },
    };
    return syctl_fmt_list(f, data, len, cols, SYCTL_NCOLS(cols),
                          "no dead letters");
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

int syctl_fmt_revoked_line(const char *line, char key[41], char name[65])
{
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
        return 1;
    size_t k = strcspn(p, " \t\r\n");
    if (k != 40)
        return SY_EINVAL;
    memcpy(key, p, 40);
    key[40] = '\0';
    p += k;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    if (n > 64)
        return SY_EINVAL;
    if (n == 0)
        snprintf(name, 65, "?");
    else {
        memcpy(name, p, n);
        name[n] = '\0';
    }
    return 0;
}

int syctl_fmt_keys_dir(const char *dir_opt, const char *cert_setting,
                       char *out, size_t cap)
{
    int n;
    const char *slash = cert_setting ? strrchr(cert_setting, '/') : NULL;
    if (dir_opt && *dir_opt)
        n = snprintf(out, cap, "%s", dir_opt);
    else if (slash == cert_setting && slash)
        n = snprintf(out, cap, "/");
    else if (slash && slash[1])
        n = snprintf(out, cap, "%.*s", (int) (slash - cert_setting),
                     cert_setting);
    else if (!slash && cert_setting && *cert_setting)
        n = snprintf(out, cap, ".");
    else
        n = snprintf(out, cap, "var/keys");
    return n < 0 || (size_t) n >= cap ? SY_EINVAL : 0;
}

int syctl_fmt_keys(FILE *f, const uint8_t *data, size_t len)
{
    static const syctl_col_t cols[] = {
        { "name",    "NAME",    SYCTL_COL_TEXT,  0 },
        { "role",    "ROLE",    SYCTL_COL_TEXT,  0 },
        { "key",     "KEY",     SYCTL_COL_KEY,   0 },
        { "revoked", "REVOKED", SYCTL_COL_YESNO, 0 },
    };
    return syctl_fmt_list(f, data, len, cols, SYCTL_NCOLS(cols),
                          "no certificates enrolled");
}

int syctl_fmt_count(FILE *f, const uint8_t *data, size_t len,
                    const char *key)
{
    mpread_t r;
    mpval_t map, v;
    uint64_t n;
    mpread_init(&r, data, len);
    int rc = mpread_next(&r, &map);
    if (rc)
        return rc;
    if (map.kind != MP_MAP)
        return SY_EFIELD_TYPE;
    rc = mpread_map_find(&r, &map, key, &v, NULL);
    if (rc)
        return rc;
    if (!mpval_as_uint(&v, &n))
        return SY_EFIELD_TYPE;
    fprintf(f, "%s %llu\n", key, (unsigned long long) n);
    return 0;
}

/* ------------------------------------------------------------------ */
/* status                                                              */

static int syctl_fmt_status_broker(FILE *f, mpread_t *r, const mpval_t *v)
{
    int rc = 0;
    fprintf(f, "BROKER");
    for (uint32_t j = 0; rc == 0 && j < v->len; j++) {
        mpval_t bk, bv;
        char text[SYCTL_FMT_CELL];
        if ((rc = mpread_next(r, &bk)) || (rc = mpread_next(r, &bv)))
            break;
        if (bk.kind == MP_STR && mpval_str_eq(&bk, "uptime_ms")
            && bv.kind == MP_UINT) {
            syctl_fmt_age(bv.u, text, sizeof text);
            fprintf(f, "  uptime %s", text);
        } else if ((rc = syctl_fmt_value(r, &bv, text, sizeof text)) == 0
                   && bk.kind == MP_STR)
            fprintf(f, "  %.*s %s", (int) bk.len, (const char *) bk.ptr,
                    text);
    }
    fprintf(f, "\n\n");
    return rc;
}

/* The bytes of the value whose header v was just read at r (items
   follow), consumed. */
static int syctl_fmt_span(mpread_t *r, const uint8_t *start, const mpval_t *v,
                          const uint8_t **p, size_t *n)
{
    int rc = mpread_skip(r, v, 1);
    *p = start;
    *n = (size_t) (r->p - start);
    return rc;
}

/* One array section of the status: its key, its title, its columns. */
typedef struct {
    const char *key;
    const char *title;
    const syctl_col_t *cols;
    size_t ncols;
} syctl_fmt_section_t;

int syctl_fmt_status(FILE *f, const uint8_t *data, size_t len)
{
    static const syctl_col_t acols[] = {
        { "name",     "NAME",       SYCTL_COL_TEXT,   0 },
        { "services", "SERVICES",   SYCTL_COL_TEXT,   0 },
        { "credit",   "CREDIT",     SYCTL_COL_CREDIT, 0 },
        { "age_ms",   "LAST HEARD", SYCTL_COL_AGE,    0 },
    };
    static const syctl_col_t scols[] = {
        { "name",    "NAME",    SYCTL_COL_TEXT, 0 },
        { "actors",  "ACTORS",  SYCTL_COL_TEXT, 0 },
        { "waiting", "WAITING", SYCTL_COL_TEXT, 0 },
    };
    /* the array sections, in the order they may come; queues have their
       own row format (cols NULL) */
    static const syctl_fmt_section_t sections[] = {
        { "actors",   "ACTORS",   acols, SYCTL_NCOLS(acols) },
        { "services", "SERVICES", scols, SYCTL_NCOLS(scols) },
        { "queues",   "QUEUES",   NULL,  0 },
    };
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, data, len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        if ((rc = mpread_next(&r, &k)))
            break;
        const uint8_t *start = r.p, *p;
        size_t n;
        if ((rc = mpread_next(&r, &v)))
            break;
        if (v.kind == MP_MAP && mpval_str_eq(&k, "broker")) {
            rc = syctl_fmt_status_broker(f, &r, &v);
            continue;
        }
        if ((rc = syctl_fmt_span(&r, start, &v, &p, &n)) || v.kind != MP_ARRAY)
            continue;
        for (size_t j = 0; j < SYCTL_NCOLS(sections); j++) {
            const syctl_fmt_section_t *sec = &sections[j];
            if (!mpval_str_eq(&k, sec->key))
                continue;
            fprintf(f, "%s (%u)\n", sec->title, v.len);
            rc = sec->cols ? syctl_fmt_list(f, p, n, sec->cols, sec->ncols, "none")
                           : syctl_fmt_queues(f, p, n);
            fprintf(f, "\n");
        }
    }
    fflush(f);
    return rc;
}

int syctl_fmt_map_value(const uint8_t *body, size_t len, const char *key,
                        const uint8_t **val, size_t *val_len)
{
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc)
        return rc;
    if (map.kind != MP_MAP)
        return SY_ENOT_MAP;
    for (uint32_t i = 0; i < map.len; i++) {
        if ((rc = mpread_next(&r, &k)))
            return rc;
        const uint8_t *start = r.p, *p;
        size_t n;
        if ((rc = mpread_next(&r, &v)) || (rc = syctl_fmt_span(&r, start, &v, &p, &n)))
            return rc;
        if (mpval_str_eq(&k, key)) {
            *val = p;
            *val_len = n;
            return 0;
        }
    }
    return SY_ENOTFOUND;
}
