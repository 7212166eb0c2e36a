/*  syctl.c -- the operator's command-line tool.
 *
 *  syctl is an ordinary client of the broker built on the actor runtime:
 *  it connects as "syctl-<pid>" (no services), does one thing and exits
 *  with a code a script can test (see syctl_usage).  Commands:
 *    status  sy.query {what:"status"}, shown as tables or, with --json, as
 *            the answer's data in one JSON line;
 *    send    a JSON body converted to msgpack (tools/json.c; hex strings
 *            for bin/id fields of the type), checked against the message
 *            table, sent to a service; the reply (corr = our id) is
 *            printed as one JSON line, an error receipt as "CODE: message"
 *            on stderr;
 *    tail    subscribes to a topic prefix and prints one JSON line per
 *            event until SIGINT (or --count events).
 *  Every wait is bounded by --timeout (syctl/timeout): connecting and the
 *  answer share one deadline.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "tools/json.h"

enum {
    SYCTL_OK = 0,
    SYCTL_EREMOTE = 1,      /* the broker or service answered an error */
    SYCTL_EUSAGE = 2,
    SYCTL_ENOANSWER = 3,    /* no broker, or no answer in time */
    SYCTL_ECONFIG = 4,
};

#define SYCTL_NOWAIT_LINGER_MS 200

typedef struct {
    const char *config, *endpoint, *timeout;
    bool        json, no_wait, help;
    long        count;          /* tail: events before exiting; 0 = no limit */
    const char *pos[8];         /* command and its arguments */
    int         npos;
} syctl_args_t;

/* State shared with the handlers while waiting for one answer. */
typedef struct {
    uint8_t     id[16];         /* the message we wait an answer for */
    bool        done;
    int         exit_code;
    bool        json;
    bool        quiet;          /* --no-wait: do not print a reply */
    long        count, seen;    /* tail */
    actor_t    *actor;
} syctl_wait_t;

static void syctl_usage(FILE *f)
{
    fprintf(f,
        "usage: syctl [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  status                     actors (name, services, credit left/credit,\n"
        "                             last heard) and services (actors, waiting)\n"
        "  send SERVICE TYPE 'JSON'   send a message whose body is given as JSON\n"
        "                             (bin and id fields as hex strings); print the\n"
        "                             reply's body as one line of JSON\n"
        "  tail [TOPIC]               print one JSON line {\"topic\",\"from\",\"data\"}\n"
        "                             per event whose topic starts with TOPIC\n"
        "                             (default: every event) until SIGINT\n"
        "  help                       this text\n"
        "\n"
        "Options:\n"
        "  --config FILE      configuration (default: $SWITCHYARD_CONFIG, else\n"
        "                     ./etc/switchyard.cfg if present, else defaults)\n"
        "  --endpoint EP      broker endpoint (default: actor/endpoint)\n"
        "  --timeout DUR      how long to wait for the broker and the answer,\n"
        "                     e.g. 500ms, 5s, 1m (default: syctl/timeout, 5s)\n"
        "  --json             status: print the raw answer as one JSON line\n"
        "  --no-wait          send: do not wait for a reply (an error the\n"
        "                     broker returns at once is still reported)\n"
        "  --count N          tail: exit after N events\n"
        "  --help             this text\n"
        "\n"
        "Exit codes:\n"
        "  0  ok\n"
        "  1  the broker or the service answered an error (printed on stderr\n"
        "     as CODE: message)\n"
        "  2  usage error (bad arguments, bad JSON, body not valid for TYPE)\n"
        "  3  no broker, or no answer in time\n"
        "  4  configuration error\n");
}

/* ------------------------------------------------------------------ */
/* arguments                                                           */

/* Parses "250ms", "5s", "2m", "1h" or a bare number of ms. */
static int syctl_parse_duration(const char *s, int *ms)
{
    char *end;
    if (!s || !*s)
        return SY_EINVAL;
    double v = strtod(s, &end);
    double mult = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return SY_EINVAL;
    v *= mult;
    if (!(v >= 1 && v <= 24.0 * 3600000))
        return SY_EINVAL;
    *ms = (int) v;
    return 0;
}

/* Options are accepted before and after the command. */
static int syctl_parse_args(int argc, char **argv, syctl_args_t *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            a->help = true;
        else if (strcmp(arg, "--json") == 0)
            a->json = true;
        else if (strcmp(arg, "--no-wait") == 0)
            a->no_wait = true;
        else if (strcmp(arg, "--config") == 0)
            slot = &a->config;
        else if (strcmp(arg, "--endpoint") == 0)
            slot = &a->endpoint;
        else if (strcmp(arg, "--timeout") == 0)
            slot = &a->timeout;
        else if (strcmp(arg, "--count") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "syctl: --count needs a number\n");
                return -1;
            }
            char *end;
            a->count = strtol(argv[++i], &end, 10);
            if (*end || a->count < 1) {
                fprintf(stderr, "syctl: --count needs a number >= 1\n");
                return -1;
            }
        } else if (strncmp(arg, "--", 2) == 0 && arg[2]) {
            fprintf(stderr, "syctl: unknown option '%s' (try syctl help)\n",
                    arg);
            return -1;
        } else {
            if (a->npos == (int) (sizeof a->pos / sizeof a->pos[0])) {
                fprintf(stderr, "syctl: too many arguments\n");
                return -1;
            }
            a->pos[a->npos++] = arg;
        }
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "syctl: %s needs a value\n", arg);
                return -1;
            }
            *slot = argv[++i];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* answers                                                             */

/* Prints an error receipt's "CODE: message" on stderr. */
static void syctl_print_receipt_error(const actor_msg_t *m)
{
    mpread_t r;
    mpval_t map, v;
    char code[40] = "ERROR", detail[40] = "", msg[520] = "";
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) == 0 && map.kind == MP_MAP) {
        if (mpread_map_find(&r, &map, "code", &v, NULL) == 0 && v.kind == MP_STR)
            snprintf(code, sizeof code, "%.*s", (int) v.len, (const char *) v.ptr);
        if (mpread_map_find(&r, &map, "detail", &v, NULL) == 0 && v.kind == MP_STR)
            snprintf(detail, sizeof detail, "%.*s", (int) v.len, (const char *) v.ptr);
        if (mpread_map_find(&r, &map, "msg", &v, NULL) == 0 && v.kind == MP_STR)
            snprintf(msg, sizeof msg, "%.*s", (int) v.len, (const char *) v.ptr);
    }
    if (!*msg)
        snprintf(msg, sizeof msg, "%s", *detail ? detail
                 : syerr_text(syerr_from_name(code)));
    fprintf(stderr, "%s: %s\n", code, msg);
}

/* True if an sy.receipt body says ok: true. */
static bool syctl_receipt_ok(const actor_msg_t *m)
{
    mpread_t r;
    mpval_t map, v;
    mpread_init(&r, m->body, m->body_len);
    return mpread_next(&r, &map) == 0 && map.kind == MP_MAP
        && mpread_map_find(&r, &map, "ok", &v, NULL) == 0
        && v.kind == MP_BOOL && v.b;
}

static void syctl_print_json(const uint8_t *p, size_t n)
{
    char *out = NULL;
    int rc = json_from_msgpack(p, n, &out);
    if (rc)
        printf("{\"error\":\"%s\"}\n", syerr_name(rc));
    else
        printf("%s\n", out);
    fflush(stdout);
    free(out);
}

/* Catches everything: the answer is the message whose corr is our id. */
static int syctl_on_answer(actor_t *actor, const actor_msg_t *m, void *arg)
{
    syctl_wait_t *w = arg;
    if (!(m->hdr.present & ENV_HAS_CORR) || memcmp(m->hdr.corr, w->id, 16))
        return 0;
    if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        if (syctl_receipt_ok(m))
            return 0;       /* accepted (durable): the reply comes later */
        syctl_print_receipt_error(m);
        w->exit_code = SYCTL_EREMOTE;
    } else
        w->exit_code = SYCTL_OK;
    w->done = true;
    if (!w->exit_code && !w->quiet)
        syctl_print_json(m->body, m->body_len);
    actor_stop(actor);
    return 0;
}

@@STATUS@@
/* ------------------------------------------------------------------ */
/* tail                                                                */

static int syctl_on_event(actor_t *actor, const actor_msg_t *m, void *arg)
{
    syctl_wait_t *w = arg;
    mpread_t r;
    mpval_t map, k, v;
    const uint8_t *topic = NULL, *data = NULL;
    size_t topic_n = 0, data_n = 0;
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP)
        return 0;
    for (uint32_t i = 0; i < map.len; i++) {
        if (mpread_next(&r, &k))
            return 0;
        const uint8_t *start = r.p;
        if (mpread_next(&r, &v) || mpread_skip(&r, &v, 1))
            return 0;
        if (mpval_str_eq(&k, "topic")) {
            topic = start;
            topic_n = (size_t) (r.p - start);
        } else if (mpval_str_eq(&k, "data")) {
            data = start;
            data_n = (size_t) (r.p - start);
        }
    }
    /* {"topic":..,"from":..,"data":..} built as msgpack, printed once */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "topic", 5);
    if (topic)
        msgpack_sbuffer_write(&sb, (const char *) topic, topic_n);
    else
        msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "from", 4);
    if (m->hdr.present & ENV_HAS_FROM)
        msgpack_pack_str_with_body(&pk, m->hdr.from, strlen(m->hdr.from));
    else
        msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "data", 4);
    if (data)
        msgpack_sbuffer_write(&sb, (const char *) data, data_n);
    else
        msgpack_pack_nil(&pk);
    syctl_print_json((const uint8_t *) sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (w->count && ++w->seen >= w->count) {
        w->done = true;
        actor_stop(actor);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* commands                                                            */

static int syctl_remaining(int64_t deadline)
{
    int64_t left = deadline - zclock_mono();
    return left > 0 ? (int) left : 0;
}

static int syctl_wait_answer(syctl_wait_t *w, int64_t deadline)
{
    while (!w->done && !zsys_interrupted) {
        int left = syctl_remaining(deadline);
        if (left == 0 || actor_run_for(w->actor, left) == SY_ETIMEOUT)
            break;
    }
    if (w->done)
        return w->exit_code;
    fprintf(stderr, "syctl: no answer in time\n");
    return SYCTL_ENOANSWER;
}

static int syctl_cmd_status(syctl_wait_t *w, int64_t deadline)
{
    static const uint8_t query[] = { 0x81, 0xa4, 'w', 'h', 'a', 't',
                                     0xa6, 's', 't', 'a', 't', 'u', 's' };
    actor_on(w->actor, "*", syctl_on_status, w);
    int rc = actor_send_broker(w->actor, "sy.query", query, sizeof query,
                               w->id);
    if (rc) {
        fprintf(stderr, "syctl: cannot send the query: %s\n", syerr_name(rc));
        return SYCTL_ENOANSWER;
    }
    return syctl_wait_answer(w, deadline);
}

static int syctl_cmd_send(syctl_wait_t *w, const syctl_args_t *a,
                          int64_t deadline)
{
    if (a->npos != 4) {
        fprintf(stderr, "syctl: usage: syctl send SERVICE TYPE 'JSON'\n");
        return SYCTL_EUSAGE;
    }
    const char *service = a->pos[1], *type = a->pos[2], *text = a->pos[3];
    const msgtype_t *t = msgtypes_find(type, strlen(type));
    if (!t) {
        fprintf(stderr, "syctl: unknown message type '%s'\n", type);
        return SYCTL_EUSAGE;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    json_err_t jerr;
    if (json_to_msgpack(text, strlen(text), t, &body, &len, &jerr)) {
        fprintf(stderr, "syctl: bad JSON: %s\n", jerr.msg);
        return SYCTL_EUSAGE;
    }
    char err[200];
    int rc = msgtypes_validate(t, body, len, err, sizeof err);
    if (rc) {
        fprintf(stderr, "syctl: body is not a valid %s: %s\n", type, err);
        free(body);
        return SYCTL_EUSAGE;
    }
    actor_on(w->actor, "*", syctl_on_answer, w);
    rc = actor_send(w->actor, service, type, body, len, NULL, w->id);
    free(body);
    if (rc == SY_EINVAL) {
        fprintf(stderr, "syctl: invalid service name '%s'\n", service);
        return SYCTL_EUSAGE;
    }
    if (rc) {
        fprintf(stderr, "syctl: cannot send: %s\n", syerr_name(rc));
        return rc == SY_ETOO_LARGE ? SYCTL_EUSAGE : SYCTL_ENOANSWER;
    }
    if (a->no_wait) {
        /* catch an immediate refusal (NO_SERVICE, DENIED, ...); a reply
           is not printed */
        w->quiet = true;
        actor_run_for(w->actor, SYCTL_NOWAIT_LINGER_MS);
        return w->done ? w->exit_code : SYCTL_OK;
    }
    return syctl_wait_answer(w, deadline);
}

static int syctl_cmd_tail(syctl_wait_t *w, const syctl_args_t *a)
{
    if (a->npos > 2) {
        fprintf(stderr, "syctl: usage: syctl tail [TOPIC] [--count N]\n");
        return SYCTL_EUSAGE;
    }
    const char *topic = a->npos == 2 ? a->pos[1] : "";
    w->count = a->count;
    actor_on(w->actor, "sy.event", syctl_on_event, w);
    actor_on(w->actor, "*", syctl_on_answer, w);  /* error receipts */
    if (actor_subscribe(w->actor, topic)) {
        fprintf(stderr, "syctl: invalid topic '%s'\n", topic);
        return SYCTL_EUSAGE;
    }
    while (!w->done && !zsys_interrupted)
        actor_run(w->actor);
    return w->exit_code;
}

/* Builds the actor and runs the command.  cfg is only borrowed. */
static int syctl_run(const syctl_args_t *a, const config_t *cfg, int timeout)
{
    const char *cmd = a->pos[0];
    bool known = strcmp(cmd, "status") == 0 || strcmp(cmd, "send") == 0
              || strcmp(cmd, "tail") == 0;
    if (!known) {
        fprintf(stderr, "syctl: unknown command '%s' (try syctl help)\n", cmd);
        return SYCTL_EUSAGE;
    }
    if (strcmp(cmd, "status") == 0 && a->npos != 1) {
        fprintf(stderr, "syctl: usage: syctl status [--json]\n");
        return SYCTL_EUSAGE;
    }
    if (strcmp(cmd, "send") == 0 && a->npos != 4) {
        fprintf(stderr, "syctl: usage: syctl send SERVICE TYPE 'JSON'\n");
        return SYCTL_EUSAGE;
    }
    if (strcmp(cmd, "tail") == 0 && a->npos > 2) {
        fprintf(stderr, "syctl: usage: syctl tail [TOPIC] [--count N]\n");
        return SYCTL_EUSAGE;
    }
    char name[64];
    snprintf(name, sizeof name, "syctl-%ld", (long) getpid());
    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    if (a->endpoint)
        opts.endpoint = a->endpoint;
    opts.name = name;
    opts.credit = 1;
    /* a tool retries quickly: its whole life is the timeout */
    if (opts.reconnect_max_ms > 1000)
        opts.reconnect_max_ms = 1000;
    if (opts.reconnect_min_ms > opts.reconnect_max_ms)
        opts.reconnect_min_ms = opts.reconnect_max_ms;
    syctl_wait_t w = { .json = a->json, .exit_code = SYCTL_OK };
    w.actor = actor_new(&opts);
    if (!w.actor) {
        fprintf(stderr, "syctl: invalid endpoint '%s'\n", opts.endpoint);
        return SYCTL_ECONFIG;
    }
    int64_t deadline = zclock_mono() + timeout;
    int rc;
    if (actor_wait_connected(w.actor, timeout) != 0) {
        fprintf(stderr, "syctl: no broker at %s (waited %d ms)\n",
                opts.endpoint, timeout);
        rc = SYCTL_ENOANSWER;
    } else if (strcmp(cmd, "status") == 0)
        rc = syctl_cmd_status(&w, deadline);
    else if (strcmp(cmd, "send") == 0)
        rc = syctl_cmd_send(&w, a, deadline);
    else
        rc = syctl_cmd_tail(&w, a);
    actor_destroy(&w.actor);
    return rc;
}

int main(int argc, char **argv)
{
    syctl_args_t a = { 0 };
    if (syctl_parse_args(argc, argv, &a))
        return SYCTL_EUSAGE;
    if (a.help || (a.npos > 0 && strcmp(a.pos[0], "help") == 0)) {
        syctl_usage(stdout);
        return SYCTL_OK;
    }
    if (a.npos == 0) {
        syctl_usage(stderr);
        return SYCTL_EUSAGE;
    }
    config_t *cfg = NULL;
    char err[512];
    if (config_load(config_pick_path(a.config), &cfg, err, sizeof err)) {
        fprintf(stderr, "syctl: %s\n", err);
        return SYCTL_ECONFIG;
    }
    /* Only warnings and errors: stdout and stderr belong to the command. */
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(cfg, "log/level"), &level);
    if (level < SYLOG_WARN)
        level = SYLOG_WARN;
    sylog_open("syctl", level, NULL);

    int timeout = (int) config_int(cfg, "syctl/timeout");
    if (a.timeout && syctl_parse_duration(a.timeout, &timeout)) {
        fprintf(stderr, "syctl: --timeout: '%s' is not a duration (e.g. 500ms, 5s)\n",
                a.timeout);
        config_destroy(&cfg);
        return SYCTL_EUSAGE;
    }
    int rc = syctl_run(&a, cfg, timeout);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return rc;
}
