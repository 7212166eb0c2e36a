/*  echo.c -- sy-echo, the echo service (tests, benchmarks, smoke checks).
 *
 *  Answers every echo.request with echo.reply {seq, data, by, pad}: seq,
 *  data and pad copied from the request when present (byte for byte, no
 *  re-encoding), by = this actor's name.  A request with delay_ms is
 *  answered that much later without blocking the loop: the handler keeps
 *  its credit (ACTOR_KEEP), a one-shot zloop timer sends the reply and
 *  gives the credit back (actor_release), so heartbeats and other
 *  requests go on meanwhile and the credit window limits how many delayed
 *  requests this actor holds at once.
 *
 *  Settings: echo/name, echo/service, echo/credit and actor/... from the
 *  configuration; --name, --service, --credit and --endpoint override.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define ECHO_EXIT_USAGE  2
#define ECHO_EXIT_CONFIG 4

typedef struct {
    actor_t  *actor;
    zlistx_t *pending;      /* echo_pending_t, replies waiting for a timer */
} echo_t;

/* A reply waiting for its delay. */
typedef struct {
    echo_t      *echo;
    actor_msg_t  req;       /* header of the request (body unused) */
    uint8_t     *reply;     /* the reply body, owned */
    size_t       reply_len;
    bool         credit;    /* the request holds a credit to release */
    void        *handle;    /* in echo->pending */
} echo_pending_t;

/* The byte span of one value of a request body. */
typedef struct {
    const uint8_t *p;
    size_t         n;
} echo_span_t;

static void echo_pending_destroy(echo_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->reply);
    free(*self_p);
    *self_p = NULL;
}

/* Builds the reply body from the (already validated) request body.
   Returns 0 with *out malloc'd, or a negative code. */
static int echo_build_reply(const actor_msg_t *msg, const char *by,
                            uint8_t **out, size_t *out_len,
                            uint64_t *delay_ms)
{
    echo_span_t seq = { 0 }, data = { 0 }, pad = { 0 };
    mpread_t r;
    mpval_t map, k, v;
    *delay_ms = 0;
    mpread_init(&r, msg->body, msg->body_len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        rc = mpread_next(&r, &k);
        const uint8_t *start = r.p;
        if (rc == 0)
            rc = mpread_next(&r, &v);
        if (rc == 0)
            rc = mpread_skip(&r, &v, 1);
        if (rc)
            break;
        echo_span_t span = { start, (size_t) (r.p - start) };
        if (mpval_str_eq(&k, "seq"))
            seq = span;
        else if (mpval_str_eq(&k, "data"))
            data = span;
        else if (mpval_str_eq(&k, "pad"))
            pad = span;
        else if (mpval_str_eq(&k, "delay_ms"))
            mpval_as_uint(&v, delay_ms);
    }
    if (rc)
        return rc;

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (seq.p != NULL) + (data.p != NULL)
                          + (pad.p != NULL));
    if (seq.p) {
        msgpack_pack_str_with_body(&pk, "seq", 3);
        msgpack_sbuffer_write(&sb, (const char *) seq.p, seq.n);
    }
    if (data.p) {
        msgpack_pack_str_with_body(&pk, "data", 4);
        msgpack_sbuffer_write(&sb, (const char *) data.p, data.n);
    }
    msgpack_pack_str_with_body(&pk, "by", 2);
    msgpack_pack_str_with_body(&pk, by, strlen(by));
    if (pad.p) {
        msgpack_pack_str_with_body(&pk, "pad", 3);
        msgpack_sbuffer_write(&sb, (const char *) pad.p, pad.n);
    }
    if (!sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return SY_ENOMEM;
    }
    *out_len = sb.size;
    *out = (uint8_t *) msgpack_sbuffer_release(&sb);
    return 0;
}

static void echo_send_reply(actor_t *actor, const actor_msg_t *req,
                            const uint8_t *body, size_t len)
{
    int rc = actor_reply(actor, req, "echo.reply", body, len);
    if (rc)
        sylog_warn("echo: reply to %s not sent: %s", req->hdr.from,
                   syerr_name(rc));
}

static int echo_delay_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    echo_pending_t *p = arg;
    echo_t *echo = p->echo;
    echo_send_reply(echo->actor, &p->req, p->reply, p->reply_len);
    if (p->credit)
        actor_release(echo->actor, 1);
    zlistx_delete(echo->pending, p->handle);
    echo_pending_destroy(&p);
    return 0;
}

static int echo_on_request(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    echo_t *echo = arg;
    uint8_t *reply = NULL;
    size_t len = 0;
    uint64_t delay = 0;
    int rc = echo_build_reply(msg, actor_name(actor), &reply, &len, &delay);
    if (rc) {
        sylog_warn("echo: cannot answer %s: %s", msg->hdr.from,
                   syerr_name(rc));
        return 0;
    }
    if (delay == 0) {
        echo_send_reply(actor, msg, reply, len);
        free(reply);
        return 0;
    }
    echo_pending_t *p = calloc(1, sizeof *p);
    if (!p) {
        free(reply);
        return 0;
    }
    p->echo = echo;
    p->req.hdr = msg->hdr;
    p->reply = reply;
    p->reply_len = len;
    p->credit = actor_msg_uses_credit(msg);
    p->handle = zlistx_add_end(echo->pending, p);
    if (zloop_timer(actor_loop(actor), (size_t) delay, 1, echo_delay_cb, p) < 0) {
        /* no timer: answer now rather than never */
        zlistx_delete(echo->pending, p->handle);
        echo_send_reply(actor, msg, reply, len);
        echo_pending_destroy(&p);
        return 0;
    }
    return ACTOR_KEEP;
}

static void echo_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-echo [--config FILE] [--name NAME] [--service SERVICE]\n"
        "               [--credit N] [--endpoint ENDPOINT]\n"
        "\n"
        "The echo service: answers echo.request with echo.reply {seq, data,\n"
        "by, pad}; a request with delay_ms is answered that much later.\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          actor name (echo/name, default echo-1)\n"
        "  --service SERVICE    service offered (echo/service, default echo)\n"
        "  --credit N           requests in flight, 1..10000 (echo/credit)\n"
        "  --endpoint ENDPOINT  broker endpoint (actor/endpoint)\n"
        "  --help               this text\n"
        "\n"
        "Runs until SIGINT or SIGTERM.  Exit codes: 0 ok, 2 usage error,\n"
        "4 configuration error.\n");
}

/* Command-line values; NULL: from the configuration. */
typedef struct {
    const char *config, *name, *service, *credit, *endpoint;
} echo_args_t;

static int echo_parse_args(int argc, char **argv, echo_args_t *a)
{
    static const struct { const char *flag; size_t off; } flags[] = {
        { "--config",   offsetof(echo_args_t, config) },
        { "--name",     offsetof(echo_args_t, name) },
        { "--service",  offsetof(echo_args_t, service) },
        { "--credit",   offsetof(echo_args_t, credit) },
        { "--endpoint", offsetof(echo_args_t, endpoint) },
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            echo_usage(stdout);
            exit(0);
        }
        bool known = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            size_t n = strlen(flags[f].flag);
            if (strncmp(arg, flags[f].flag, n) != 0)
                continue;
            const char *val = NULL;
            if (arg[n] == '=')
                val = arg + n + 1;
            else if (arg[n] == 0 && i + 1 < argc)
                val = argv[++i];
            else if (arg[n] != 0)
                continue;
            if (!val) {
                fprintf(stderr, "sy-echo: %s needs a value\n", flags[f].flag);
                return -1;
            }
            *(const char **) ((char *) a + flags[f].off) = val;
            known = true;
            break;
        }
        if (!known) {
            fprintf(stderr, "sy-echo: unknown argument '%s' (try --help)\n",
                    arg);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    echo_args_t args = { 0 };
    if (echo_parse_args(argc, argv, &args))
        return ECHO_EXIT_USAGE;

    config_t *cfg = NULL;
    char err[512];
    const char *path = config_pick_path(args.config);
    if (config_load(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "sy-echo: %s\n", err);
        return ECHO_EXIT_CONFIG;
    }
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(cfg, "log/level"), &level);
    if (sylog_open("sy-echo", level, config_str(cfg, "log/file"))) {
        fprintf(stderr, "sy-echo: cannot open log file %s\n",
                config_str(cfg, "log/file"));
        config_destroy(&cfg);
        return ECHO_EXIT_CONFIG;
    }

    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    opts.name = args.name ? args.name : config_str(cfg, "echo/name");
    const char *service = args.service ? args.service
                                       : config_str(cfg, "echo/service");
    opts.services = &service;
    opts.nservices = 1;
    opts.credit = (uint32_t) config_int(cfg, "echo/credit");
    if (args.credit) {
        char *end;
        long c = strtol(args.credit, &end, 10);
        if (*end || c < 1 || c > 10000) {
            fprintf(stderr, "sy-echo: --credit must be 1..10000\n");
            config_destroy(&cfg);
            return ECHO_EXIT_USAGE;
        }
        opts.credit = (uint32_t) c;
    }
    if (args.endpoint)
        opts.endpoint = args.endpoint;

    echo_t echo = { 0 };
    echo.pending = zlistx_new();
    echo.actor = actor_new(&opts);
    if (!echo.actor || !echo.pending) {
        fprintf(stderr, "sy-echo: invalid name, service or endpoint\n");
        zlistx_destroy(&echo.pending);
        config_destroy(&cfg);
        return ECHO_EXIT_CONFIG;
    }
    actor_on(echo.actor, "echo.request", echo_on_request, &echo);
    sylog_info("echo %s offering %s at %s (credit %u)", opts.name, service,
               opts.endpoint, opts.credit);
    actor_run(echo.actor);
    sylog_info("echo %s stopping (%zu delayed replies dropped)", opts.name,
               zlistx_size(echo.pending));

    actor_destroy(&echo.actor);
    for (echo_pending_t *p = zlistx_first(echo.pending); p;
         p = zlistx_next(echo.pending))
        echo_pending_destroy(&p);
    zlistx_destroy(&echo.pending);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return 0;
}
