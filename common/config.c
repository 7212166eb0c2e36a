/*  config.c -- the settings table and the loader of the one ZPL file.
 *
 *  Ideas:
 *  - One static table, one line per setting, declares everything any binary
 *    may read: path, kind, default (as text, parsed by the same code as the
 *    file so the table reads like the file), range, and a doc line.  The
 *    same table drives validation, the accessors and the documentation
 *    (config_print_table -> docs/CONFIG.md).
 *  - Pattern rows ("service/STAR/lease") accept any one service name in
 *    place of the star and fall back to another row when absent.
 *  - CZMQ's zconfig reads the values but knows no line numbers, so the file
 *    is also scanned here line by line with zconfig's own ZPL rules (4
 *    spaces per level, its name characters, '=' values, quotes, comments).
 *    That scan runs first: it reports a syntax error with its line before
 *    zconfig sees the file (zconfig would only print a bare message to
 *    stderr), and it records the line of every named item.  zconfig adds
 *    items in file order and its tree's pre-order is that same order, so
 *    the k-th item walked is the k-th named line scanned.
 *  - Everything is checked up front: unknown settings (with a "did you
 *    mean"), kinds, ranges, enum words, duplicates, cross-field rules.  The
 *    first error is reported as "file:line: path: what is wrong".
 */
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/envelope.h"
#include "schemas/syerr.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------------------------------------ the table */

typedef enum {
    CONFIG_STR, CONFIG_INT, CONFIG_DURATION, CONFIG_SIZE, CONFIG_BOOL,
    CONFIG_ENUM, CONFIG_ENDPOINT, CONFIG_ENDPOINTS, CONFIG_NAME
} config_kind_t;

static const char *const config_kind_names[] = {
    "string", "int", "duration", "size", "bool", "enum", "endpoint", "endpoints", "name"
};

typedef struct {
    const char *path;      /* "broker/heartbeat"; a "*" segment is a pattern */
    config_kind_t kind;
    const char *def;       /* default as text; NULL on pattern rows */
    const char *min;       /* as text, NULL: unbounded (pattern rows: fallback's) */
    const char *max;
    const char *choices;   /* enums: "a|b|c" */
    const char *fallback;  /* pattern rows: the setting used when absent */
    const char *doc;
} config_setting_t;

#define C_STR(p, d, doc)            { p, CONFIG_STR, d, NULL, NULL, NULL, NULL, doc }
#define C_EP(p, d, doc)             { p, CONFIG_ENDPOINT, d, NULL, NULL, NULL, NULL, doc }
#define C_EPS(p, d, doc)            { p, CONFIG_ENDPOINTS, d, NULL, NULL, NULL, NULL, doc }
/* An actor, service or broker name as the wire allows it (envelope.h). */
#define C_NAME(p, d, doc)           { p, CONFIG_NAME, d, NULL, NULL, NULL, NULL, doc }
#define C_INT(p, d, lo, hi, doc)    { p, CONFIG_INT, d, lo, hi, NULL, NULL, doc }
#define C_DUR(p, d, lo, hi, doc)    { p, CONFIG_DURATION, d, lo, hi, NULL, NULL, doc }
#define C_SIZE(p, d, lo, hi, doc)   { p, CONFIG_SIZE, d, lo, hi, NULL, NULL, doc }
#define C_BOOL(p, d, doc)           { p, CONFIG_BOOL, d, NULL, NULL, NULL, NULL, doc }
#define C_ENUM(p, d, words, doc)    { p, CONFIG_ENUM, d, NULL, NULL, words, NULL, doc }
#define C_EACH(p, kind, from, doc)  { p, kind, NULL, NULL, NULL, NULL, from, doc }

static const config_setting_t config_table[] = {
    C_ENUM("log/level",              "info", "debug|info|warn|error",     "lowest level written to the log"),
    C_STR ("log/file",               "",                                  "file the log is appended to; empty means stderr"),

    C_EPS ("broker/endpoint",        "tcp://127.0.0.1:5570",              "where the broker listens: comma-separated tcp:// and ipc:// endpoints"),
    C_DUR ("broker/heartbeat",       "1s",    "50ms",  "60s",             "how often broker and actors ping each other when idle"),
    C_DUR ("broker/liveness",        "5s",    "150ms", "10m",             "silence after which a peer is dead; at least 2 x heartbeat"),
    C_SIZE("broker/max_msg",         "1M",    "1K",    "256M",            "largest message (all frames) the broker accepts"),
    C_INT ("broker/queue_max",       "10000", "1",     "10000000",        "non-durable messages waiting per service before QUEUE_FULL"),
    C_SIZE("broker/queue_bytes",     "64M",   "64K",   "64G",             "bytes of non-durable messages waiting per service before QUEUE_FULL (each counts as its body plus about 540 bytes of bookkeeping)"),
    C_SIZE("broker/memory_max",      "256M",  "1M",    "64G",             "bytes of non-durable messages waiting in all services before QUEUE_FULL; also caps each connection's pipe at memory_max / max_msg messages (1000 .. 100000)"),
    C_NAME("broker/name",            "broker",                            "the broker's name in logs and events"),

    C_STR ("store/dir",              "var/store",                         "directory of the LMDB durable store (relative to the working directory)"),
    C_SIZE("store/map_size",         "1G",    "1M",    "1T",              "LMDB map size: the most the store can ever hold"),
    C_ENUM("store/sync",             "full",  "full|none",                "full: fsync each group commit; none: no fsync (tests only)"),
    C_DUR ("store/lease",            "30s",   "50ms",  "1d",              "time an actor has to ack a durable delivery before it is redelivered"),
    C_INT ("store/max_attempts",     "5",     "1",     "1000",            "deliveries of a durable message before it is dead-lettered"),
    C_DUR ("store/dedup_window",     "48h",   "0",     "30d",             "how long an idempotency key is remembered"),
    C_DUR ("store/retry_backoff",    "1s",    "0",     "1h",              "first delay before a nacked message is redelivered"),
    C_DUR ("store/retry_backoff_max","5m",    "0",     "1d",              "longest redelivery delay"),
    C_DUR ("store/ttl",              "0",     "0",     "365d",            "default ttl of durable messages that set none; 0 means none"),

    C_EACH("service/*/lease",        CONFIG_DURATION, "store/lease",      "per-service override of store/lease"),
    C_EACH("service/*/ttl",          CONFIG_DURATION, "store/ttl",        "per-service override of store/ttl"),
    C_EACH("service/*/max_attempts", CONFIG_INT,      "store/max_attempts", "per-service override of store/max_attempts"),

    C_EP  ("actor/endpoint",         "tcp://127.0.0.1:5570",              "broker endpoint actors connect to"),
    C_DUR ("actor/reconnect_min",    "100ms", "10ms",  "1m",              "first delay before reconnecting to the broker"),
    C_DUR ("actor/reconnect_max",    "5s",    "10ms",  "10m",             "longest delay between reconnect attempts (doubling from reconnect_min)"),
    C_DUR ("actor/hello_timeout",    "2s",    "100ms", "1m",              "time to wait for sy.welcome after sy.hello"),

    C_NAME("echo/name",              "echo-1",                            "actor name of sy-echo"),
    C_NAME("echo/service",           "echo",                              "service sy-echo offers"),
    C_INT ("echo/credit",            "10",    "1",     "10000",           "messages sy-echo accepts in flight"),

    C_NAME("frontdoor/name",         "frontdoor",                         "actor name of sy-frontdoor (with CURVE: its certificate's name)"),
    C_INT ("frontdoor/credit",       "32",    "1",     "10000",           "messages sy-frontdoor takes in flight"),
    C_STR ("frontdoor/store",        "var/frontdoor",                     "directory of the front door's LMDB (conversations, jobs, outboxes; texts sealed with its key file)"),
    C_SIZE("frontdoor/map_size",     "64M",   "1M",    "64G",             "LMDB map size of the front door's store"),
    C_INT ("frontdoor/history_turns","20",    "0",     "1000",            "most recent turns of a conversation kept and sent along as context"),
    C_SIZE("frontdoor/history_bytes","16K",   "0",     "16M",             "most bytes of history text sent along as context (older turns dropped first)"),
    C_SIZE("frontdoor/max_text",     "8K",    "1",     "64K",             "longest chat message accepted, bytes of UTF-8"),
    C_INT ("frontdoor/rate",         "20",    "1",     "100000",          "chat messages each user may send per minute on average"),
    C_INT ("frontdoor/burst",        "5",     "1",     "100000",          "chat messages a user may send at once above the rate"),
    C_STR ("frontdoor/bridges",      "telegram",                          "actor names trusted to speak for their channel's users (comma list)"),
    C_INT ("frontdoor/outbox",       "100",   "1",     "100000",          "replies and notices kept per direct-client user for chat.sync"),

    C_NAME("router/name",            "router",                            "actor name of sy-router"),
    C_INT ("router/credit",          "32",    "1",     "10000",           "messages sy-router takes in flight"),
    C_STR ("router/heavy",           "분석해줘,전략 수립,브랜드 아이덴티티,analyze,analyse,strategy,brand identity", "phrases that make a request HEAVY (comma list, case-insensitive substrings)"),
    C_STR ("router/light",           "일정 등록,로그 확인,상태 체크,add to calendar,check logs,status check", "phrases that make a request LIGHT"),
    C_STR ("router/scheduled",       "매일,매주,마다,every day at,every week,every morning", "phrases that make a request SCHEDULED"),
    C_STR ("router/heavy_attachments","photo,image/*",                    "attachment kinds or MIME types (trailing * a prefix) that make a request HEAVY"),
    C_ENUM("router/default",         "heavy", "heavy|light|scheduled",    "class of a request no rule matches"),
    C_STR ("router/system_prompt",   "",                                  "system message put before every conversation sent to the model; empty: none"),
    C_STR ("router/model",           "",                                  "model named in every infer.request; empty: the worker's inference/model"),

    C_NAME("inference/name",         "inference-1",                       "actor name of sy-inference"),
    C_ENUM("inference/backend",      "ollama", "ollama|openai",           "ollama: /api/tags and /api/chat; openai: /v1/models and /v1/chat/completions with server-sent events (llama.cpp, vLLM)"),
    C_STR ("inference/url",          "http://127.0.0.1:11434",            "base URL of the LLM backend"),
    C_STR ("inference/model",        "llama3.2",                          "model used when a job names none"),
    C_STR ("inference/api_key_file", "",                                  "openai backend: file (mode 0600) holding the bearer token; empty: none"),
    C_INT ("inference/concurrency",  "1",     "1",     "64",              "jobs generated at once"),
    C_DUR ("inference/health_interval","2s",  "50ms",  "10m",             "how often the backend is asked whether it answers"),
    C_INT ("inference/health_failures","2",   "1",     "100",             "failed health checks in a row that withdraw the worker"),
    C_DUR ("inference/connect_timeout","5s",  "10ms",  "10m",             "longest wait for the backend's TCP connection"),
    C_DUR ("inference/first_token_timeout","120s","10ms","1h",            "longest wait for the first piece of an answer (a cold model loads first)"),
    C_DUR ("inference/idle_timeout", "60s",   "10ms",  "1h",              "longest silence between two pieces of an answer"),
    C_DUR ("inference/token_flush",  "100ms", "0",     "10s",             "streamed pieces are sent to the user in batches at most this often"),
    C_DUR ("inference/busy_retry",   "10s",   "0",     "1h",              "delay before a job refused with 503 (backend queue full) is tried again"),
    C_DUR ("inference/lease_every",  "10s",   "10ms",  "1h",              "how often the lease of a job being generated is extended"),

    C_NAME("telegram/name",          "telegram",                          "actor name of sy-telegram; also the service its replies come to (list it in frontdoor/bridges)"),
    C_STR ("telegram/token_file",    "var/keys/telegram.token",           "file (mode 0600) holding the bot token; never logged"),
    C_STR ("telegram/api_url",       "https://api.telegram.org",          "base URL of the Bot API (tests point it at the fake)"),
    C_DUR ("telegram/poll_timeout",  "30s",   "0",     "50s",             "long-poll timeout of getUpdates"),
    C_STR ("telegram/store",         "var/telegram",                      "directory of the bridge's LMDB (update offset, allowed chats, pairings)"),
    C_DUR ("telegram/edit_interval", "1s",    "100ms", "1m",              "a streamed answer's message is edited at most this often per chat"),
    C_INT ("telegram/chat_rate",     "1",     "1",     "100",             "messages per second sent to one chat at most (Telegram asks for about 1)"),
    C_INT ("telegram/global_rate",   "25",    "1",     "1000",            "messages per second sent over all chats at most (Telegram's limit is about 30)"),
    C_DUR ("telegram/retry_min",     "1s",    "10ms",  "1h",              "first delay after a network error or 5xx, doubling ..."),
    C_DUR ("telegram/retry_max",     "60s",   "10ms",  "1d",              "... up to this"),
    C_DUR ("telegram/pairing_ttl",   "24h",   "1m",    "30d",             "how long a pairing code stays valid"),

    C_DUR ("chat/timeout",           "10m",   "100ms", "7d",              "how long syctl chat --once waits for the answer"),

    C_DUR ("syctl/timeout",          "5s",    "100ms", "10m",             "how long syctl waits for an answer"),

    C_BOOL("security/curve",         "true",                              "CURVE on the broker's endpoints: only enrolled certificates connect (false: plaintext, every peer has security/default_role)"),
    C_STR ("security/certs_dir",     "var/certs",                         "the broker's allow-list: a directory of enrolled public certificates (NAME.cert)"),
    C_STR ("security/broker_cert",   "var/keys/broker.secret",            "the broker's own certificate (secret file, mode 0600; its public half beside it as .cert)"),
    C_STR ("security/broker_key",    "",                                  "the broker's public key (Z85) that peers pin; empty: read the .cert beside security/broker_cert"),
    C_STR ("security/cert",          "",                                  "this peer's own certificate (secret file) for actors and syctl; empty: none"),
    C_STR ("security/store_key_dir", "",                                  "directory of the key file that encrypts stored message bodies (store.key, mode 0600); empty: store/dir"),
    C_DUR ("security/refresh",       "1s",    "100ms", "1m",              "how often the broker re-reads the allow-list (revocations take effect within this)"),
    C_ENUM("security/default_role",  "operator", "client|actor|worker|operator", "role of every peer while security/curve is false (no certificates to take it from)"),

    C_STR ("acl/client/offer",       "",                                  "services a client certificate may offer (comma list; a trailing * is a prefix)"),
    C_STR ("acl/client/send",        "chat.*,echo.*,sy.query:status,sy.query:place", "message types a client may send (sy.query:WHAT names one query)"),
    C_BOOL("acl/client/admin",       "false",                             "whether a client may use queue administration queries"),
    C_STR ("acl/actor/offer",        "frontdoor,router,light,cron,sync,debate,echo,telegram", "services an actor certificate may offer"),
    C_STR ("acl/actor/send",         "*",                                 "message types an actor may send"),
    C_BOOL("acl/actor/admin",        "false",                             "whether an actor may use queue administration queries"),
    C_STR ("acl/worker/offer",       "inference,echo",                    "services a worker certificate may offer"),
    C_STR ("acl/worker/send",        "*",                                 "message types a worker may send"),
    C_BOOL("acl/worker/admin",       "false",                             "whether a worker may use queue administration queries"),
    C_STR ("acl/operator/offer",     "*",                                 "services an operator certificate may offer"),
    C_STR ("acl/operator/send",      "*",                                 "message types an operator may send"),
    C_BOOL("acl/operator/admin",     "true",                              "whether an operator may use queue administration queries"),
    C_STR ("acl/readonly_queries",   "status,place",                      "sy.query whats that are not administration (every other what needs admin)"),

    C_INT ("ratelimit/rate",         "200",   "1",     "1000000",         "messages per second each identity may send on average"),
    C_INT ("ratelimit/burst",        "400",   "1",     "10000000",        "messages an identity may send at once above the rate"),
    C_INT ("ratelimit/max_ids",      "4096",  "16",    "1000000",         "identities tracked at most; the longest idle is forgotten first"),
    C_STR ("ratelimit/roles",        "client,actor,worker",               "roles whose identities are rate limited (comma list; operator is exempt by default)"),
};

#define CONFIG_TABLE_SIZE (sizeof config_table / sizeof config_table[0])

/* "a >= factor x b" rules checked after loading. */
static const struct {
    const char *a;
    int factor;
    const char *b;
} config_rules[] = {
    { "broker/liveness",         2, "broker/heartbeat" },
    { "actor/reconnect_max",     1, "actor/reconnect_min" },
    { "store/retry_backoff_max", 1, "store/retry_backoff" },
    { "telegram/retry_max",      1, "telegram/retry_min" },
};

/* ------------------------------------------------------------ the object */

typedef struct {
    char *path;                     /* owned; a concrete path */
    const config_setting_t *row;
    char *text;                     /* owned; the value as written */
    int64_t num;                    /* ints, durations, sizes, bools, enum index */
    int line;                       /* 0: the default */
    bool from_file;
} config_value_t;

struct _config_t {
    char *source;                   /* path loaded, or "(defaults)" */
    config_value_t *values;
    size_t count, cap;
};

/* One named line of the file, as the scan saw it. */
typedef struct {
    char *path;
    int line;
    bool quoted;                    /* its value was in quotes */
} config_line_t;

typedef struct {
    config_line_t *items;
    size_t count, cap;
} config_index_t;

/* ------------------------------------------------------------ errors */

static void config_fail(char *err, size_t errlen, const char *file, int line,
                        const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Writes "file:line: path: message" (parts left out when unknown). */
static void config_fail(char *err, size_t errlen, const char *file, int line,
                        const char *path, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    int n;
    if (file && line > 0)
        n = snprintf(err, errlen, "%s:%d: ", file, line);
    else if (file)
        n = snprintf(err, errlen, "%s: ", file);
    else
        n = snprintf(err, errlen, "%s", "");
    size_t len = n < 0 ? 0 : (size_t) n < errlen ? (size_t) n : errlen - 1;
    if (path && len < errlen) {
        n = snprintf(err + len, errlen - len, "%s: ", path);
        len += n < 0 ? 0 : (size_t) n;
        if (len >= errlen)
            len = errlen - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + len, errlen - len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ parsers */

/* Reads the unsigned decimal at *s into *out, advancing *s.  Returns false
   if there is no digit or the number exceeds 10^15 (no setting needs
   more, and it keeps every multiplication below overflow). */
static bool config_digits(const char **s, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    if (!isdigit((unsigned char) *p))
        return false;
    while (isdigit((unsigned char) *p)) {
        v = v * 10 + (*p - '0');
        if (v > 1000000000000000LL)
            return false;
        p++;
    }
    *s = p;
    *out = v;
    return true;
}

int config_parse_duration(const char *s, int64_t *ms_out)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
        { "d", 86400000 }, { "", 1 },
    };
    int64_t v;
    if (s == NULL || ms_out == NULL || !config_digits(&s, &v))
        return SY_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s, units[i].unit) == 0) {
            *ms_out = v * units[i].ms;   /* <= 10^15 x 86400000 < 2^63 */
            return 0;
        }
    }
    return SY_EINVAL;
}

int config_parse_size(const char *s, int64_t *bytes_out)
{
    int64_t v;
    if (s == NULL || bytes_out == NULL || !config_digits(&s, &v))
        return SY_EINVAL;
    int shift = 0;
    switch (toupper((unsigned char) *s)) {
        case 'K': shift = 10; s++; break;
        case 'M': shift = 20; s++; break;
        case 'G': shift = 30; s++; break;
        case 'T': shift = 40; s++; break;
        default: break;
    }
    if (shift && *s == 'i')                 /* KiB, MiB, ... */
        s++;
    if (toupper((unsigned char) *s) == 'B')
        s++;
    if (*s != '\0' || v > (INT64_MAX >> shift))
        return SY_EINVAL;
    *bytes_out = v << shift;
    return 0;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    if (s == NULL || out == NULL)
        return SY_EINVAL;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    return SY_EINVAL;
}

static int config_parse_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    if (neg)
        s++;
    int64_t v;
    if (!config_digits(&s, &v) || *s != '\0')
        return SY_EINVAL;
    *out = neg ? -v : v;
    return 0;
}

/* Index of word in "a|b|c", or -1. */
static int config_enum_index(const char *choices, const char *word)
{
    size_t wlen = strlen(word);
    int i = 0;
    for (const char *p = choices; ; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t) (bar - p) : strlen(p);
        if (len == wlen && strncmp(p, word, len) == 0)
            return i;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

/* Writes an enum's "a|b|c" as "a, b, c" into out (capacity cap >= 1; cut
   if it does not fit), for messages and the documentation. */
static void config_choices_text(const char *choices, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *p = choices; *p && j + 3 < cap; p++) {
        if (*p == '|') { out[j++] = ','; out[j++] = ' '; }
        else out[j++] = *p;
    }
    out[j] = '\0';
}

/* Checks one endpoint "tcp://host:port" or "ipc://path" of length len;
   port is digits, or "*" (any port, for binding). */
static bool config_endpoint_ok(const char *s, size_t len)
{
    if (len > 6 && strncmp(s, "ipc://", 6) == 0)
        return true;
    if (len <= 6 || strncmp(s, "tcp://", 6) != 0)
        return false;
    const char *colon = memrchr(s + 6, ':', len - 6);
    const char *end = s + len;
    if (colon == NULL || colon == s + 6 || colon + 1 == end)
        return false;
    if (colon + 2 == end && colon[1] == '*')
        return true;
    for (const char *p = colon + 1; p < end; p++)
        if (!isdigit((unsigned char) *p))
            return false;
    return true;
}

/* Checks an endpoint or comma-separated list; writes why it is not one. */
static int config_parse_endpoints(const char *s, bool list, char *why, size_t whylen)
{
    for (const char *p = s; *p; p++) {
        if (isspace((unsigned char) *p)) {
            snprintf(why, whylen, "\"%s\": spaces are not allowed in an endpoint%s",
                     s, list ? " list" : "");
            return SY_ECONFIG;
        }
    }
    if (!list && strchr(s, ',')) {
        snprintf(why, whylen, "\"%s\": takes one endpoint, not a list", s);
        return SY_ECONFIG;
    }
    const char *p = s;
    do {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen(p);
        if (!config_endpoint_ok(p, len)) {
            snprintf(why, whylen, "\"%.*s\" is not an endpoint "
                     "(use e.g. tcp://127.0.0.1:5570 or ipc:///tmp/switchyard.ipc)",
                     (int) len, p);
            return SY_ECONFIG;
        }
        p = comma ? comma + 1 : NULL;
    } while (p);
    return 0;
}

/* The row whose limits and fallback default apply to row (itself, or the
   row a pattern falls back to). */
static const config_setting_t *config_row_base(const config_setting_t *row);

/* Parses text as row's kind and checks its range.  Returns 0 with *num
   set, or SY_ECONFIG with the reason in why. */
static int config_parse_value(const config_setting_t *row, const char *text,
                              int64_t *num, char *why, size_t whylen)
{
    const config_setting_t *base = config_row_base(row);
    int rc = 0;
    bool b = false;
    *num = 0;
    if (row->kind != CONFIG_STR && *text == '\0') {
        snprintf(why, whylen, "no value (expected a%s %s)",
                 row->kind == CONFIG_INT || row->kind == CONFIG_ENUM
                 || row->kind == CONFIG_ENDPOINT || row->kind == CONFIG_ENDPOINTS ? "n" : "",
                 config_kind_names[row->kind]);
        return SY_ECONFIG;
    }
    switch (row->kind) {
        case CONFIG_STR:
            return 0;
        case CONFIG_ENDPOINT:
        case CONFIG_ENDPOINTS:
            return config_parse_endpoints(text, row->kind == CONFIG_ENDPOINTS, why, whylen);
        case CONFIG_NAME:
            if (!envelope_valid_name(text, strlen(text))) {
                snprintf(why, whylen, "\"%s\" is not a name (1..%d of A-Z a-z 0-9 . _ : @ -)",
                         text, ENVELOPE_NAME_MAX);
                return SY_ECONFIG;
            }
            return 0;
        case CONFIG_BOOL:
            rc = config_parse_bool(text, &b);
            *num = b;
            if (rc)
                snprintf(why, whylen, "\"%s\" is not a boolean (use true or false)", text);
            return rc ? SY_ECONFIG : 0;
        case CONFIG_ENUM: {
            int i = config_enum_index(base->choices, text);
            if (i < 0) {
                char list[256];
                config_choices_text(base->choices, list, sizeof list);
                snprintf(why, whylen, "\"%s\" is not one of %s", text, list);
                return SY_ECONFIG;
            }
            *num = i;
            return 0;
        }
        case CONFIG_INT:
            if (config_parse_int(text, num)) {
                snprintf(why, whylen, "\"%s\" is not an integer", text);
                return SY_ECONFIG;
            }
            break;
        case CONFIG_DURATION:
            if (config_parse_duration(text, num)) {
                snprintf(why, whylen, "\"%s\" is not a duration (use e.g. 500ms, 2s, 1m)", text);
                return SY_ECONFIG;
            }
            break;
        case CONFIG_SIZE:
            if (config_parse_size(text, num)) {
                snprintf(why, whylen, "\"%s\" is not a size (use e.g. 512, 64K, 16M, 1G)", text);
                return SY_ECONFIG;
            }
            break;
    }
    /* numeric kinds: the range, whose bounds are text of the same kind */
    const config_setting_t bound_row = { base->path, row->kind, NULL, NULL, NULL, NULL, NULL, NULL };
    int64_t lo, hi;
    char ignored[8];
    if (base->min && config_parse_value(&bound_row, base->min, &lo, ignored, sizeof ignored) == 0
        && *num < lo) {
        snprintf(why, whylen, "%s is below the minimum %s", text, base->min);
        return SY_ECONFIG;
    }
    if (base->max && config_parse_value(&bound_row, base->max, &hi, ignored, sizeof ignored) == 0
        && *num > hi) {
        snprintf(why, whylen, "%s is above the maximum %s", text, base->max);
        return SY_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------ table look-up */

/* True if path matches pattern segment by segment, "*" matching any one
   non-empty segment. */
static bool config_path_match(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (pattern[0] == '*' && (pattern[1] == '/' || pattern[1] == '\0')) {
            const char *end = strchr(path, '/');
            size_t len = end ? (size_t) (end - path) : strlen(path);
            if (len == 0)
                return false;
            pattern++;
            path += len;
        }
        else if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

static const config_setting_t *config_table_find(const char *path)
{
    for (size_t i = 0; i < CONFIG_TABLE_SIZE; i++)
        if (config_path_match(config_table[i].path, path))
            return &config_table[i];
    return NULL;
}

static const config_setting_t *config_row_base(const config_setting_t *row)
{
    if (row->fallback) {
        const config_setting_t *base = config_table_find(row->fallback);
        if (base)
            return base;
    }
    return row;
}

/* Length of the first segment of s (up to '/' or the end). */
static size_t config_seg_len(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash ? (size_t) (slash - s) : strlen(s);
}

/* True if path is a section: some row continues it with "/...", a row's
   star matching any one segment of path. */
static bool config_is_section(const char *path)
{
    for (size_t i = 0; i < CONFIG_TABLE_SIZE; i++) {
        const char *rp = config_table[i].path, *pp = path;
        for (;;) {
            size_t rl = config_seg_len(rp), pl = config_seg_len(pp);
            bool star = rl == 1 && rp[0] == '*';
            if (pl == 0 || !(star || (rl == pl && strncmp(rp, pp, pl) == 0)))
                break;
            rp += rl;
            pp += pl;
            if (*rp == '\0')
                break;                      /* the row ends: not deeper */
            rp++;                           /* past the row's '/' */
            if (*pp == '\0')
                return true;                /* path ends inside the row */
            pp++;
        }
    }
    return false;
}

/* ------------------------------------------------------------ suggestions */

static size_t config_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127)
        return SIZE_MAX;
    size_t row[128];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Writes into out the declared path closest to path (a pattern row taking
   path's own segment for its star), or "" when none is close. */
static void config_suggest(const char *path, char *out, size_t cap)
{
    size_t best = SIZE_MAX;
    out[0] = '\0';
    for (size_t i = 0; i < CONFIG_TABLE_SIZE; i++) {
        char cand[128];
        size_t o = 0;
        const char *rp = config_table[i].path, *pp = path;
        bool ok = true;
        while (ok && *rp) {
            size_t rl = config_seg_len(rp), pl = config_seg_len(pp);
            const char *seg = rp;
            size_t len = rl;
            if (rl == 1 && rp[0] == '*') {  /* the star takes path's segment */
                seg = pp;
                len = pl;
                ok = pl > 0;
            }
            if (o + len + 2 >= sizeof cand)
                ok = false;
            if (ok) {
                if (o)
                    cand[o++] = '/';
                memcpy(cand + o, seg, len);
                o += len;
            }
            rp += rl + (rp[rl] == '/');
            pp += pl + (pp[pl] == '/');
        }
        if (!ok || o == 0)
            continue;
        cand[o] = '\0';
        size_t d = config_distance(path, cand);
        if (d < best) {
            best = d;
            snprintf(out, cap, "%s", cand);
        }
    }
    if (best == SIZE_MAX || !(best <= 2 || best * 4 <= strlen(path)))
        out[0] = '\0';
}

/* ------------------------------------------------------------ the scan */

static bool config_namechar(char c)
{
    return isalnum((unsigned char) c) || (c && strchr("$-_@.&+/", c));
}

static int config_index_add(config_index_t *ix, const char *path, int line, bool quoted)
{
    if (ix->count == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 32;
        config_line_t *items = realloc(ix->items, cap * sizeof *items);
        if (items == NULL)
            return SY_ENOMEM;
        ix->items = items;
        ix->cap = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return SY_ENOMEM;
    ix->items[ix->count++] = (config_line_t) { copy, line, quoted };
    return 0;
}

static void config_index_free(config_index_t *ix)
{
    for (size_t i = 0; i < ix->count; i++)
        free(ix->items[i].path);
    free(ix->items);
    memset(ix, 0, sizeof *ix);
}

/* True if rest is blank or a comment; else writes why. */
static bool config_rest_ok(const char *rest, const char *after, char *why, size_t whylen)
{
    while (isspace((unsigned char) *rest))
        rest++;
    if (*rest == '\0' || *rest == '#')
        return true;
    snprintf(why, whylen, "unexpected \"%.40s\" after %s", rest, after);
    return false;
}

#define CONFIG_MAX_DEPTH 16

/* Scans one line (already right-trimmed, NUL-terminated, writable) the way
   zconfig does.  Returns 0, or SY_ECONFIG with the reason in why. */
static int config_scan_line(char *text, int lineno, char names[][128], int *chain,
                            config_index_t *ix, char *why, size_t whylen)
{
    char *p = text;
    while (*p == ' ')
        p++;
    size_t spaces = (size_t) (p - text);
    if (spaces % 4) {
        snprintf(why, whylen, "indented by %zu spaces: ZPL indents by 4 spaces per level"
                 "%s", spaces, *p == '#' ? " (comments too)" : "");
        return SY_ECONFIG;
    }
    int level = (int) (spaces / 4);
    char *name = p;
    while (config_namechar(*p))
        p++;
    size_t nlen = (size_t) (p - name);
    if (nlen == 0) {
        if (*p == '\t') {
            snprintf(why, whylen, "a tab: ZPL indents with 4 spaces per level, not tabs");
            return SY_ECONFIG;
        }
        if (*p == '=') {
            snprintf(why, whylen, "a value with no name before '='");
            return SY_ECONFIG;
        }
        if (*p && *p != '#' && !isspace((unsigned char) *p)) {
            snprintf(why, whylen, "'%c' cannot start a name (names use letters, digits and $-_@.&+/)", *p);
            return SY_ECONFIG;
        }
        return config_rest_ok(p, "the indentation", why, whylen) ? 0 : SY_ECONFIG;
    }
    if (name[0] == '/' || name[nlen - 1] == '/') {
        snprintf(why, whylen, "a name cannot start or end with '/'");
        return SY_ECONFIG;
    }
    char saved = *p;
    *p = '\0';
    char namebuf[128];
    snprintf(namebuf, sizeof namebuf, "%s", name);
    *p = saved;

    bool quoted = false;
    while (isspace((unsigned char) *p))
        p++;
    if (*p == '=') {
        p++;
        while (isspace((unsigned char) *p))
            p++;
        if (*p == '"' || *p == '\'') {
            char *end = strchr(p + 1, *p);
            if (end == NULL) {
                snprintf(why, whylen, "%s: missing closing %c", namebuf, *p);
                return SY_ECONFIG;
            }
            if (!config_rest_ok(end + 1, "the quoted value", why, whylen))
                return SY_ECONFIG;
            quoted = true;
        }
    }
    else if (*p && *p != '#') {
        snprintf(why, whylen, "expected '=' after the name \"%s\", found \"%.40s\"",
                 namebuf, p);
        return SY_ECONFIG;
    }
    if (level > *chain) {
        snprintf(why, whylen, "%s: indented %d level%s but the line above it opens no section "
                 "that deep", namebuf, level, level == 1 ? "" : "s");
        return SY_ECONFIG;
    }
    if (level >= CONFIG_MAX_DEPTH || nlen >= 128) {
        snprintf(why, whylen, "%s: nested or named too deep/long", namebuf);
        return SY_ECONFIG;
    }
    snprintf(names[level], 128, "%s", namebuf);
    *chain = level + 1;
    char path[CONFIG_MAX_DEPTH * 128];
    size_t o = 0;
    for (int i = 0; i <= level; i++)
        o += (size_t) snprintf(path + o, sizeof path - o, "%s%s", i ? "/" : "", names[i]);
    return config_index_add(ix, path, lineno, quoted);
}

/* Scans the whole file text.  Returns 0 or SY_ECONFIG / SY_ENOMEM with err
   set. */
static int config_scan(const char *file, char *data, size_t size, config_index_t *ix,
                       char *err, size_t errlen)
{
    char names[CONFIG_MAX_DEPTH][128];
    int chain = 0;
    int lineno = 0;
    char *p = data, *end = data + size;
    if (memchr(data, '\0', size)) {
        config_fail(err, errlen, file, 0, NULL, "holds a NUL byte: not a text file");
        return SY_ECONFIG;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t) (end - p));
        char *stop = nl ? nl : end;
        lineno++;
        *stop = '\0';                                /* data has a spare byte */
        char *t = stop;
        while (t > p && isspace((unsigned char) t[-1]))
            *--t = '\0';
        char why[256];
        int rc = config_scan_line(p, lineno, names, &chain, ix, why, sizeof why);
        if (rc == SY_ENOMEM) {
            config_fail(err, errlen, file, lineno, NULL, "out of memory");
            return rc;
        }
        if (rc) {
            config_fail(err, errlen, file, lineno, NULL, "ZPL syntax: %s", why);
            return rc;
        }
        p = stop + 1;
    }
    return 0;
}

/* Reads the whole file (plus a spare NUL).  Returns 0 or SY_EIO. */
static int config_read_file(const char *path, char **data, size_t *size,
                            char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        config_fail(err, errlen, path, 0, NULL, "cannot open: %s", strerror(errno));
        return SY_EIO;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        if (cap >= (16u << 20)) {
            free(buf);
            fclose(f);
            config_fail(err, errlen, path, 0, NULL, "larger than 16 MiB: not a configuration file");
            return SY_EIO;
        }
        char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        free(buf);
        config_fail(err, errlen, path, 0, NULL, "cannot read: %s",
                    failed ? "I/O error" : "out of memory");
        return SY_EIO;
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return 0;
}

/* ------------------------------------------------------------ values */

static config_value_t *config_find(const config_t *self, const char *path)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->values[i].path, path) == 0)
            return &self->values[i];
    return NULL;
}

/* Adds or replaces the value of path (text already validated). */
static int config_store(config_t *self, const char *path, const config_setting_t *row,
                        const char *text, int64_t num, int line, bool from_file)
{
    config_value_t *v = config_find(self, path);
    if (v == NULL) {
        if (self->count == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            config_value_t *values = realloc(self->values, cap * sizeof *values);
            if (values == NULL)
                return SY_ENOMEM;
            self->values = values;
            self->cap = cap;
        }
        v = &self->values[self->count];
        memset(v, 0, sizeof *v);
        v->path = strdup(path);
        if (v->path == NULL)
            return SY_ENOMEM;
        self->count++;
    }
    char *copy = strdup(text);
    if (copy == NULL)
        return SY_ENOMEM;
    free(v->text);
    v->text = copy;
    v->row = row;
    v->num = num;
    v->line = line;
    v->from_file = from_file;
    return 0;
}

static int config_set_defaults(config_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < CONFIG_TABLE_SIZE; i++) {
        const config_setting_t *row = &config_table[i];
        if (row->def == NULL)
            continue;                         /* pattern rows fall back */
        int64_t num;
        char why[256];
        if (config_parse_value(row, row->def, &num, why, sizeof why)) {
            /* a broken table is a bug; say so rather than run with it */
            config_fail(err, errlen, "(defaults)", 0, row->path, "%s", why);
            return SY_ECONFIG;
        }
        int rc = config_store(self, row->path, row, row->def, num, 0, false);
        if (rc) {
            config_fail(err, errlen, NULL, 0, NULL, "out of memory");
            return rc;
        }
    }
    return 0;
}

/* State of one walk over the zconfig tree. */
typedef struct {
    config_t *self;
    const config_index_t *ix;
    size_t next;                      /* index item the next node should be */
    const char *file;
    char *err;
    size_t errlen;
} config_walk_t;

/* The scanned line for the node at path (matched by order, checked by
   path). */
static const config_line_t *config_walk_line(config_walk_t *w, const char *path)
{
    if (w->next < w->ix->count && strcmp(w->ix->items[w->next].path, path) == 0)
        return &w->ix->items[w->next++];
    return NULL;
}

static int config_walk_setting(config_walk_t *w, const char *path, const config_setting_t *row,
                               const char *value, const config_line_t *at)
{
    int line = at ? at->line : 0;
    config_value_t *old = config_find(w->self, path);
    if (old && old->from_file) {
        config_fail(w->err, w->errlen, w->file, line, path,
                    "set twice (first at line %d)", old->line);
        return SY_ECONFIG;
    }
    if (at && !at->quoted && value[0] == '#') {
        config_fail(w->err, w->errlen, w->file, line, path,
                    "no value before the comment (ZPL would read \"%s\" as the value; "
                    "write \"\" for an empty one)", value);
        return SY_ECONFIG;
    }
    int64_t num;
    char why[300];
    if (config_parse_value(row, value, &num, why, sizeof why)) {
        config_fail(w->err, w->errlen, w->file, line, path, "%s", why);
        return SY_ECONFIG;
    }
    if (config_store(w->self, path, row, value, num, line, true)) {
        config_fail(w->err, w->errlen, NULL, 0, NULL, "out of memory");
        return SY_ENOMEM;
    }
    return 0;
}

static int config_walk(config_walk_t *w, zconfig_t *node, const char *prefix)
{
    for (zconfig_t *c = zconfig_child(node); c; c = zconfig_next(c)) {
        char path[1024];
        const char *name = zconfig_name(c);
        const char *value = zconfig_value(c) ? zconfig_value(c) : "";
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", name ? name : "");
        const config_line_t *at = config_walk_line(w, path);
        int line = at ? at->line : 0;
        const config_setting_t *row = config_table_find(path);
        bool section = config_is_section(path);
        int rc = 0;
        if (row)
            rc = config_walk_setting(w, path, row, value, at);
        else if (section && *value) {
            config_fail(w->err, w->errlen, w->file, line, path,
                        "is a section, not a setting: its settings go on the lines "
                        "below it, indented 4 more spaces");
            rc = SY_ECONFIG;
        }
        else if (!section && zconfig_child(c) == NULL) {
            char guess[128];
            config_suggest(path, guess, sizeof guess);
            if (*guess)
                config_fail(w->err, w->errlen, w->file, line, path,
                            "unknown setting (did you mean %s?)", guess);
            else
                config_fail(w->err, w->errlen, w->file, line, path,
                            "unknown setting (see docs/CONFIG.md or --help-config)");
            rc = SY_ECONFIG;
        }
        /* an unknown node with children: its children report themselves */
        if (rc == 0)
            rc = config_walk(w, c, path);
        if (rc)
            return rc;
    }
    return 0;
}

static int config_cross_check(config_t *self, const char *file, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof config_rules / sizeof config_rules[0]; i++) {
        const config_value_t *a = config_find(self, config_rules[i].a);
        const config_value_t *b = config_find(self, config_rules[i].b);
        if (a == NULL || b == NULL)
            continue;
        if (a->num >= config_rules[i].factor * b->num)
            continue;
        int line = a->from_file ? a->line : b->line;
        if (config_rules[i].factor == 1)
            config_fail(err, errlen, file, line, a->path, "%s must be at least %s (%s)",
                        a->text, b->path, b->text);
        else
            config_fail(err, errlen, file, line, a->path, "%s must be at least %d x %s (%s)",
                        a->text, config_rules[i].factor, b->path, b->text);
        return SY_ECONFIG;
    }
    return 0;
}

/* Reads, scans, parses and checks path into self. */
static int config_load_file(config_t *self, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t size = 0;
    int rc = config_read_file(path, &data, &size, err, errlen);
    if (rc)
        return rc;
    config_index_t ix = { 0 };
    rc = config_scan(path, data, size, &ix, err, errlen);
    free(data);
    if (rc == 0) {
        zconfig_t *root = zconfig_load(path);
        if (root == NULL) {
            /* our scan found no fault, yet zconfig refused it */
            config_fail(err, errlen, path, 0, NULL, "zconfig could not read it as ZPL");
            rc = SY_ECONFIG;
        }
        else {
            config_walk_t w = { self, &ix, 0, path, err, errlen };
            rc = config_walk(&w, root, "");
            zconfig_destroy(&root);
        }
    }
    if (rc == 0)
        rc = config_cross_check(self, path, err, errlen);
    config_index_free(&ix);
    return rc;
}

int config_load(const char *path, config_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (out == NULL)
        return SY_EINVAL;
    *out = NULL;
    config_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return SY_ENOMEM;
    self->source = strdup(path ? path : "(defaults)");
    int rc = self->source ? config_set_defaults(self, err, errlen) : SY_ENOMEM;
    if (rc == 0 && path)
        rc = config_load_file(self, path, err, errlen);
    if (rc) {
        config_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void config_destroy(config_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    config_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->values[i].path);
        free(self->values[i].text);
    }
    free(self->values);
    free(self->source);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ accessors */

static void config_misuse(const char *what, const char *path)
{
    sylog_error("config: %s \"%s\" (a bug: see the table in common/config.c)", what, path);
    abort();
}

/* The value of path: set, or by a pattern row's fallback rule. */
static const config_value_t *config_lookup(const config_t *self, const char *path)
{
    if (self == NULL || path == NULL)
        config_misuse("lookup without a config or path", path ? path : "(null)");
    const config_value_t *v = config_find(self, path);
    if (v)
        return v;
    const config_setting_t *row = config_table_find(path);
    if (row == NULL)
        config_misuse("asked for undeclared setting", path);
    if (row->fallback == NULL || strcmp(row->fallback, path) == 0)
        config_misuse("no value for", path);
    return config_lookup(self, row->fallback);
}

const char *config_str(const config_t *self, const char *path)
{
    return config_lookup(self, path)->text;
}

int64_t config_int(const config_t *self, const char *path)
{
    const config_value_t *v = config_lookup(self, path);
    switch (v->row->kind) {
        case CONFIG_INT: case CONFIG_DURATION: case CONFIG_SIZE: case CONFIG_ENUM:
            return v->num;
        default:
            config_misuse("config_int of a non-numeric setting", path);
            return 0;
    }
}

bool config_bool(const config_t *self, const char *path)
{
    const config_value_t *v = config_lookup(self, path);
    if (v->row->kind != CONFIG_BOOL)
        config_misuse("config_bool of a non-boolean setting", path);
    return v->num != 0;
}

const char *config_source(const config_t *self)
{
    return self ? self->source : "(defaults)";
}

const char *config_pick_path(const char *from_argv)
{
    if (from_argv && *from_argv)
        return from_argv;
    const char *env = getenv("SWITCHYARD_CONFIG");
    if (env && *env)
        return env;
    if (access("etc/switchyard.cfg", F_OK) == 0)
        return "etc/switchyard.cfg";
    return NULL;
}

/* ------------------------------------------------------------ the docs */

/* The default and range columns of row, as text. */
static void config_row_columns(const config_setting_t *row, bool markdown,
                               char *def, size_t dcap, char *range, size_t rcap)
{
    const config_setting_t *base = config_row_base(row);
    const char *q = markdown ? "`" : "";
    if (row->fallback)
        snprintf(def, dcap, "%s%s%s", q, row->fallback, q);
    else if (row->def[0] == '\0')
        snprintf(def, dcap, "%s\"\"%s", q, q);
    else
        snprintf(def, dcap, "%s%s%s", q, row->def, q);

    range[0] = '\0';
    if (row->kind == CONFIG_ENUM)
        config_choices_text(base->choices, range, rcap);
    else if (base->min && base->max)
        snprintf(range, rcap, "%s .. %s", base->min, base->max);
    else if (base->min)
        snprintf(range, rcap, ">= %s", base->min);
    else if (base->max)
        snprintf(range, rcap, "<= %s", base->max);
}

void config_print_table(FILE *f, bool markdown)
{
    char def[160], range[160];
    if (markdown) {
        fprintf(f, "| Setting | Kind | Default | Range | Meaning |\n");
        fprintf(f, "|---|---|---|---|---|\n");
    }
    else
        fprintf(f, "%-26s %-9s %-22s %-25s %s\n", "SETTING", "KIND", "DEFAULT", "RANGE", "MEANING");
    for (size_t i = 0; i < CONFIG_TABLE_SIZE; i++) {
        const config_setting_t *row = &config_table[i];
        config_row_columns(row, markdown, def, sizeof def, range, sizeof range);
        const char *kind = config_kind_names[row->kind];
        if (markdown)
            fprintf(f, "| `%s` | %s | %s%s | %s | %s |\n", row->path, kind,
                    row->fallback ? "as " : "", def, range, row->doc);
        else
            fprintf(f, "%-26s %-9s %s%-*s %-25s %s\n", row->path, kind,
                    row->fallback ? "as " : "", row->fallback ? 19 : 22, def,
                    range, row->doc);
    }
}
