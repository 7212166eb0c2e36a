/*  syctl_fmt.h -- what syctl parses and prints, apart from the socket.
 *
 *  syctl (tools/syctl.c) talks to the broker; this module holds the parts
 *  of it that need no broker, so unit tests can check them: parsing of
 *  --prio, --ttl and --timeout values, the receipt lines `syctl send
 *  --durable` prints (text and JSON), ages as "850ms" / "3s" / "5m" /
 *  "2h", and the tables drawn from sy.answer data (status, queue ls,
 *  queue peek, queue inflight, dlq ls); for `syctl keys`: the allow-list's
 *  revoked file, the directory new keys go to, the keys ls table.
 *
 *  Tables: the data is a msgpack array of maps; each column names a key
 *  and how to show its value.  Widths follow the widest cell, so long
 *  service names do not break the layout.  A key a row lacks shows "-".
 *
 *  Ownership: nothing returned needs freeing; output goes to the FILE or
 *  buffer the caller passes.
 */
#ifndef SYCTL_FMT_H
#define SYCTL_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../actors/actor.h"

/* syctl's exit codes (see `syctl help`). */
enum {
    SYCTL_OK = 0,
    SYCTL_EREMOTE = 1,      /* the broker or service answered an error */
    SYCTL_EUSAGE = 2,
    SYCTL_ENOANSWER = 3,    /* no broker, or no answer in time */
    SYCTL_ECONFIG = 4,
    SYCTL_EDUPLICATE = 5,   /* send --durable: DUPLICATE (not queued again) */
};

/* "high" / "normal" / "low" (or 0 / 1 / 2) -> ENVELOPE_PRIO_*.
   Returns 0 or SY_EINVAL. */
int syctl_fmt_parse_prio(const char *s, uint8_t *prio);

/* A ttl: a bare number is seconds ("90"), or a number with a unit: ms,
   s, m, h, d ("250ms", "1.5h", "2d").  1 ms .. 30 days.  Returns 0 or
   SY_EINVAL. */
int syctl_fmt_parse_ttl(const char *s, uint64_t *ms);

/* A wait (--timeout): a whole number, bare (ms) or with ms / s / m / h,
   as config_parse_duration() reads it; 1 ms .. 24 h.  Returns 0 or
   SY_EINVAL. */
int syctl_fmt_parse_duration(const char *s, int *ms);

/* Writes ms as an age: "850ms", "3s", "5m", "2h" (rounded down). */
void syctl_fmt_age(uint64_t ms, char *out, size_t cap);

/* The exit code for a durable send's receipt: SYCTL_OK, SYCTL_EDUPLICATE
   or SYCTL_EREMOTE. */
int syctl_fmt_receipt_exit(const actor_receipt_t *r);

/* The receipt as one text line (no newline): "id <hex>",
   "DUPLICATE <first id hex>", or "CODE: message".  seq >= 0 prefixes
   "seq <seq> ". */
void syctl_fmt_receipt_text(const actor_receipt_t *r, long long seq,
                            char *out, size_t cap);

/* The receipt as one JSON object (no newline): {"seq":N,"ok":true,
   "id":"hex"} or {"ok":false,"code":"...","id":..,"detail":..,"msg":..};
   "seq" only when seq >= 0, absent fields left out. */
void syctl_fmt_receipt_json(const actor_receipt_t *r, long long seq,
                            char *out, size_t cap);

/* How a column shows its value. */
typedef enum {
    SYCTL_COL_TEXT,     /* str as is, numbers, bool, arrays joined by "," */
    SYCTL_COL_AGE,      /* uint ms -> syctl_fmt_age() */
    SYCTL_COL_ID,       /* bin -> hex */
    SYCTL_COL_PRIO,     /* 0/1/2 -> high/normal/low */
    SYCTL_COL_ITEM,     /* item `index` of an array value */
    SYCTL_COL_CREDIT,   /* "credit_left/credit" of the row */
    SYCTL_COL_KEY,      /* str: its first SYCTL_FMT_KEY_PREFIX chars + "..." */
    SYCTL_COL_YESNO,    /* bool -> yes/no */
} syctl_col_kind_t;

#define SYCTL_FMT_KEY_PREFIX 12

typedef struct {
    const char      *key;
    const char      *title;
    syctl_col_kind_t kind;
    int              index;     /* SYCTL_COL_ITEM */
} syctl_col_t;

/* Prints the msgpack array of maps data[0..len) as a table with a title
   row.  Returns the number of rows (>= 0; with no rows nothing is
   printed), or a decoding error (SY_ETRUNCATED, SY_EFIELD_TYPE if data is
   not an array, ...) or SY_ENOMEM. */
int syctl_fmt_table(FILE *f, const uint8_t *data, size_t len,
                    const syctl_col_t *cols, size_t ncols);

/* The tables of the answers to sy.query what = "queues", "peek",
   "inflight", "dlq".  An empty list prints one line saying so.  Return 0
   or a decoding error. */
int syctl_fmt_queues(FILE *f, const uint8_t *data, size_t len);
int syctl_fmt_peek(FILE *f, const uint8_t *data, size_t len,
                   const char *service);
int syctl_fmt_inflight(FILE *f, const uint8_t *data, size_t len,
                       const char *service);
int syctl_fmt_dlq(FILE *f, const uint8_t *data, size_t len);

/* Prints "<key> <n>" (e.g. "retried 3") from a map {key: n}.  Returns 0,
   SY_ENOTFOUND (no such key) or a decoding error. */
int syctl_fmt_count(FILE *f, const uint8_t *data, size_t len,
                    const char *key);

/* Prints a status answer's data {broker, actors, services, queues} as
   tables.  Returns 0 or a decoding error. */
int syctl_fmt_status(FILE *f, const uint8_t *data, size_t len);

/* One line of the allow-list's revoked file (broker/allowlist.h): "KEY
   NAME" with a 40-character Z85 key.  Returns 0 with key and name (name
   "?" when the line has none), 1 for a comment ('#') or blank line, or
   SY_EINVAL for anything else. */
int syctl_fmt_revoked_line(const char *line, char key[41], char name[65]);

/* The directory `syctl keys new` writes into: dir_opt (--dir) if given,
   else the directory of cert_setting (security/cert; "." for a bare
   file name) when it is set, else "var/keys".  Returns 0 or SY_EINVAL (does not
   fit cap). */
int syctl_fmt_keys_dir(const char *dir_opt, const char *cert_setting,
                       char *out, size_t cap);

/* The `syctl keys ls` table from a msgpack array of maps {name, role,
   key, revoked}: NAME ROLE KEY (a prefix) REVOKED.  An empty list prints
   a line saying so.  Returns 0 or a decoding error. */
int syctl_fmt_keys(FILE *f, const uint8_t *data, size_t len);

/* The bytes of the value of `key` in the msgpack map body[0..len), e.g.
   the data of a sy.answer.  Returns 0 with *val / *val_len, or
   SY_ENOTFOUND, or a decoding error. */
int syctl_fmt_map_value(const uint8_t *body, size_t len, const char *key,
                        const uint8_t **val, size_t *val_len);

#endif
