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
 *  Durable deliveries are acknowledged after the reply is sent (by the
 *  runtime when answered at once, by actor_ack() after a delay).  For the
 *  durable-queue tests sy-echo can misbehave on purpose: fail every Nth
 *  delivery (--fail-every), refuse poison data (--poison), crash holding
 *  a delivery (--die-after), hold deliveries while extending their lease
 *  (--hold-ms, --extend-ms), and log every delivery to a file
 *  (--log-deliveries) for a test to count losses and duplicates.
 *
 *  Settings: echo/name, echo/service, echo/credit and actor/... from the
 *  configuration; --name, --service, --credit and --endpoint override.
 *  With security/curve on, sy-echo connects with its certificate
 *  (security/cert, or --cert) and its name is the certificate's (echo/name
 *  is not used; --name must then be that same name).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "common/cliargs.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define ECHO_EXIT_USAGE  2
#define ECHO_EXIT_CONFIG 4

/* Test behaviour switches (0 / NULL: off). */
typedef struct {
    uint64_t    fail_every;     /* nack (requeue) every Nth durable delivery */
    const char *poison;         /* nack (requeue) when data holds this */
    uint64_t    die_after;      /* _exit(1) on the Nth delivery */
    uint64_t    hold_ms;        /* keep each delivery this long */
    uint32_t    extend_ms;      /* ...extending its lease this often */
    uint32_t    lease_ms;       /* extension length; 0: 3 x extend_ms */
    FILE       *log;            /* one line per delivery */
} echo_test_t;

typedef struct {
    actor_t    *actor;
    zlistx_t   *pending;    /* echo_pending_t, replies waiting for a timer */
    echo_test_t test;
    uint64_t    received;   /* echo.request deliveries so far */
    uint64_t    durable_received;
} echo_t;

/* A reply waiting for its delay. */
typedef struct {
    echo_t      *echo;
    actor_msg_t  req;       /* header of the request (body unused) */
    uint8_t     *reply;     /* the reply body, owned */
    size_t       reply_len;
    bool         credit;    /* the request holds a credit to release */
    bool         durable;   /* ...or a durable delivery to ack */
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

/* The parts of a request body echo uses: the byte spans of seq, data
   and pad (p NULL if absent) and delay_ms (0 if absent). */
typedef struct {
    echo_span_t seq, data, pad;
    uint64_t    delay_ms;
} echo_req_t;

/* Reads the (already validated) request body into *req, once per
   request.  Returns 0 or a negative code (*req then holds what was read
   before the error). */
static int echo_req_read(const actor_msg_t *msg, echo_req_t *req)
{
    mpread_t r;
    mpval_t map, k, v;
    memset(req, 0, sizeof *req);
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
            req->seq = span;
        else if (mpval_str_eq(&k, "data"))
            req->data = span;
        else if (mpval_str_eq(&k, "pad"))
            req->pad = span;
        else if (mpval_str_eq(&k, "delay_ms"))
            mpval_as_uint(&v, &req->delay_ms);
    }
    return rc;
}

/* Builds the reply body from the request's parts.  Returns 0 with *out
   malloc'd, or SY_ENOMEM. */
static int echo_build_reply(const echo_req_t *req, const char *by,
                            uint8_t **out, size_t *out_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (req->seq.p != NULL) + (req->data.p != NULL)
                          + (req->pad.p != NULL));
    if (req->seq.p) {
        msgpack_pack_str_with_body(&pk, "seq", 3);
        msgpack_sbuffer_write(&sb, (const char *) req->seq.p, req->seq.n);
    }
    if (req->data.p) {
        msgpack_pack_str_with_body(&pk, "data", 4);
        msgpack_sbuffer_write(&sb, (const char *) req->data.p, req->data.n);
    }
    msgpack_pack_str_with_body(&pk, "by", 2);
    msgpack_pack_str_with_body(&pk, by, strlen(by));
    if (req->pad.p) {
        msgpack_pack_str_with_body(&pk, "pad", 3);
        msgpack_sbuffer_write(&sb, (const char *) req->pad.p, req->pad.n);
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
    if (p->durable) {
        int rc = actor_ack(echo->actor, p->req.hdr.id);
        if (rc)
            sylog_debug("echo: ack not sent: %s", syerr_name(rc));
    } else if (p->credit)
        actor_release(echo->actor, 1);
    zlistx_delete(echo->pending, p->handle);
    echo_pending_destroy(&p);
    return 0;
}

/* The request's seq as text for the delivery log ("-" if absent or not
   a number). */
static void echo_seq_text(const echo_span_t *seq, char *out, size_t cap)
{
    mpread_t r;
    mpval_t v;
    uint64_t u;
    snprintf(out, cap, "-");
    if (!seq->p)
        return;
    mpread_init(&r, seq->p, seq->n);
    if (mpread_next(&r, &v) == 0 && mpval_as_uint(&v, &u))
        snprintf(out, cap, "%llu", (unsigned long long) u);
}

static bool echo_span_has(const echo_span_t *span, const char *word)
{
    size_t n = strlen(word);
    return n && span->p && memmem(span->p, span->n, word, n) != NULL;
}

/* The test switches, applied before the request is answered.  Returns 1
   when the delivery was refused (nacked), 0 to answer it. */
static int echo_misbehave(echo_t *echo, const actor_msg_t *msg,
                          const echo_req_t *req)
{
    echo_test_t *t = &echo->test;
    bool durable = actor_msg_is_durable(msg);
    echo->received++;
    if (durable)
        echo->durable_received++;
    if (t->log) {
        char hex[33], seq[24];
        echo_seq_text(&req->seq, seq, sizeof seq);
        envelope_id_hex(msg->hdr.id, hex);
        fprintf(t->log, "%s %u %s\n", hex, msg->hdr.attempt, seq);
        fflush(t->log);
    }
    if (t->die_after && echo->received >= t->die_after) {
        sylog_warn("echo: --die-after %llu reached: exiting abruptly",
                   (unsigned long long) t->die_after);
        _exit(1);
    }
    if (!durable)
        return 0;
    const char *why = NULL;
    if (t->poison && echo_span_has(&req->data, t->poison))
        why = "poison";
    else if (t->fail_every && echo->durable_received % t->fail_every == 0)
        why = "fail-every";
    if (!why)
        return 0;
    char reason[120];
    snprintf(reason, sizeof reason, "sy-echo --%s", why);
    int rc = actor_nack(echo->actor, msg->hdr.id, reason, true, 0);
    if (rc)
        sylog_debug("echo: nack not sent: %s", syerr_name(rc));
    return 1;
}

static int echo_on_request(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    echo_t *echo = arg;
    echo_req_t req;
    int rc = echo_req_read(msg, &req);
    if (echo_misbehave(echo, msg, &req))
        return 0;
    uint8_t *reply = NULL;
    size_t len = 0;
    uint64_t delay = req.delay_ms;
    if (rc == 0)
        rc = echo_build_reply(&req, actor_name(actor), &reply, &len);
    if (rc) {
        sylog_warn("echo: cannot answer %s: %s", msg->hdr.from,
                   syerr_name(rc));
        return 0;
    }
    bool durable = actor_msg_is_durable(msg);
    if (durable && echo->test.hold_ms > delay)
        delay = echo->test.hold_ms;
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
    p->durable = durable;
    p->handle = zlistx_add_end(echo->pending, p);
    if (zloop_timer(actor_loop(actor), (size_t) delay, 1, echo_delay_cb, p) < 0) {
        /* no timer: answer now rather than never */
        zlistx_delete(echo->pending, p->handle);
        echo_send_reply(actor, msg, reply, len);
        echo_pending_destroy(&p);
        return 0;
    }
    if (durable && echo->test.extend_ms) {
        uint32_t lease = echo->test.lease_ms ? echo->test.lease_ms
                                             : 3 * echo->test.extend_ms;
        rc = actor_keepalive(actor, msg->hdr.id, echo->test.extend_ms, lease);
        if (rc)
            sylog_warn("echo: keepalive refused: %s", syerr_name(rc));
    }
    return ACTOR_KEEP;
}

static void echo_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-echo [--config FILE] [--name NAME] [--service SERVICE]\n"
        "               [--credit N] [--endpoint ENDPOINT] [TEST OPTIONS]\n"
        "\n"
        "The echo service: answers echo.request with echo.reply {seq, data,\n"
        "by, pad}; a request with delay_ms is answered that much later.\n"
        "A durable delivery is acknowledged (sy.ack) after its reply is sent.\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          actor name (echo/name, default echo-1)\n"
        "  --service SERVICE    service offered (echo/service, default echo)\n"
        "  --credit N           requests in flight, 1..10000 (echo/credit)\n"
        "  --endpoint ENDPOINT  broker endpoint (actor/endpoint)\n"
        "  --cert PATH          this actor's certificate, DIR/NAME.secret\n"
        "                       (security/cert; used when security/curve is\n"
        "                       on; the name is then the certificate's)\n"
        "  --help               this text\n"
        "\n"
        "Test options (for the durable-queue tests; deliveries are counted\n"
        "from 1 over the life of the process):\n"
        "  --log-deliveries FILE  append one line per echo.request delivery:\n"
        "                       \"<id hex> <attempt> <seq>\" (attempt 0 for a\n"
        "                       non-durable one; seq \"-\" when absent); the\n"
        "                       line is written (flushed, not fsynced) before\n"
        "                       any of the options below acts; a durable\n"
        "                       message delivered again while still held\n"
        "                       (its lease ran out) is not logged again: the\n"
        "                       runtime does not run the handler twice\n"
        "  --fail-every N       nack (requeue=true, reason \"sy-echo --fail-every\")\n"
        "                       every Nth durable delivery instead of answering\n"
        "  --poison WORD        nack (requeue=true, reason \"sy-echo --poison\")\n"
        "                       every durable delivery whose data contains the\n"
        "                       bytes WORD, without answering: after the\n"
        "                       broker's max attempts it is dead-lettered\n"
        "  --die-after N        on the Nth delivery, exit at once with _exit(1):\n"
        "                       that one is neither answered nor acked (nor is\n"
        "                       anything still held); earlier ones are handled\n"
        "  --hold-ms MS         hold each durable delivery MS ms (or its\n"
        "                       delay_ms if longer) before answering and acking\n"
        "  --extend-ms MS       while holding, extend the lease every MS ms\n"
        "  --lease-ms MS        length of each extension (default 3 x extend-ms)\n"
        "\n"
        "Runs until SIGINT or SIGTERM.  Exit codes: 0 ok, 1 --die-after,\n"
        "2 usage error, 4 configuration error.\n");
}

/* Command-line values; NULL: from the configuration. */
typedef struct {
    const char *config, *name, *service, *credit, *endpoint, *cert;
    const char *fail_every, *poison, *die_after, *hold_ms, *extend_ms,
               *lease_ms, *log_deliveries;
} echo_args_t;

static int echo_parse_args(int argc, char **argv, echo_args_t *a)
{
    static const cliargs_flag_t flags[] = {
        { "--config",   offsetof(echo_args_t, config) },
        { "--name",     offsetof(echo_args_t, name) },
        { "--service",  offsetof(echo_args_t, service) },
        { "--credit",   offsetof(echo_args_t, credit) },
        { "--endpoint", offsetof(echo_args_t, endpoint) },
        { "--cert",     offsetof(echo_args_t, cert) },
        { "--fail-every", offsetof(echo_args_t, fail_every) },
        { "--poison",   offsetof(echo_args_t, poison) },
        { "--die-after", offsetof(echo_args_t, die_after) },
        { "--hold-ms",  offsetof(echo_args_t, hold_ms) },
        { "--extend-ms", offsetof(echo_args_t, extend_ms) },
        { "--lease-ms", offsetof(echo_args_t, lease_ms) },
        { "--log-deliveries", offsetof(echo_args_t, log_deliveries) },
    };
    int rc = cliargs_parse("sy-echo", argc, argv, flags,
                           sizeof flags / sizeof flags[0], a);
    if (rc == CLIARGS_HELP) {
        echo_usage(stdout);
        exit(0);
    }
    return rc;
}

/* Parses a number of 1..max for flag into *out (0 when s is NULL).
   Returns 0 or -1 with a message. */
static int echo_parse_num(const char *flag, const char *s, uint64_t max,
                          uint64_t *out)
{
    *out = 0;
    if (!s)
        return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || v < 1 || v > max) {
        fprintf(stderr, "sy-echo: %s must be a number 1..%llu\n", flag,
                (unsigned long long) max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Fills the test switches from the arguments.  Returns 0 or -1. */
static int echo_test_from_args(const echo_args_t *a, echo_test_t *t)
{
    uint64_t extend = 0, lease = 0;
    if (echo_parse_num("--fail-every", a->fail_every, UINT32_MAX, &t->fail_every)
        || echo_parse_num("--die-after", a->die_after, UINT32_MAX, &t->die_after)
        || echo_parse_num("--hold-ms", a->hold_ms, 86400000, &t->hold_ms)
        || echo_parse_num("--extend-ms", a->extend_ms, 3600000, &extend)
        || echo_parse_num("--lease-ms", a->lease_ms, 86400000, &lease))
        return -1;
    t->extend_ms = (uint32_t) extend;
    t->lease_ms = (uint32_t) lease;
    if (t->lease_ms && t->lease_ms <= t->extend_ms) {
        fprintf(stderr, "sy-echo: --lease-ms must be above --extend-ms\n");
        return -1;
    }
    if (a->poison && !*a->poison) {
        fprintf(stderr, "sy-echo: --poison needs a non-empty word\n");
        return -1;
    }
    t->poison = a->poison;
    if (a->log_deliveries) {
        t->log = fopen(a->log_deliveries, "a");
        if (!t->log) {
            fprintf(stderr, "sy-echo: cannot open %s for appending\n",
                    a->log_deliveries);
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
    if (actor_opts_security(&opts, cfg, args.cert, err, sizeof err)) {
        fprintf(stderr, "sy-echo: %s\n", err);
        config_destroy(&cfg);
        return ECHO_EXIT_CONFIG;
    }
    /* with CURVE the certificate names us */
    opts.name = args.name ? args.name
                          : opts.cert ? NULL : config_str(cfg, "echo/name");
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
    if (echo_test_from_args(&args, &echo.test)) {
        config_destroy(&cfg);
        return ECHO_EXIT_USAGE;
    }
    echo.pending = zlistx_new();
    echo.actor = actor_new(&opts);
    if (!echo.actor || !echo.pending) {
        fprintf(stderr, "sy-echo: cannot start: invalid name, service, "
                        "endpoint or certificate (see the log)\n");
        zlistx_destroy(&echo.pending);
        if (echo.test.log)
            fclose(echo.test.log);
        config_destroy(&cfg);
        return ECHO_EXIT_CONFIG;
    }
    actor_on(echo.actor, "echo.request", echo_on_request, &echo);
    sylog_info("echo %s offering %s at %s (credit %u%s)",
               actor_name(echo.actor), service, opts.endpoint, opts.credit,
               opts.cert ? ", CURVE" : "");
    actor_run(echo.actor);
    sylog_info("echo %s stopping (%zu delayed replies dropped)",
               actor_name(echo.actor),
               zlistx_size(echo.pending));

    actor_destroy(&echo.actor);
    for (echo_pending_t *p = zlistx_first(echo.pending); p;
         p = zlistx_next(echo.pending))
        echo_pending_destroy(&p);
    zlistx_destroy(&echo.pending);
    if (echo.test.log)
        fclose(echo.test.log);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return 0;
}
