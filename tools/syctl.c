/*  syctl.c -- the operator's command-line tool.
 *
 *  syctl is an ordinary client of the broker built on the actor runtime:
 *  it connects as "syctl-<pid>" (no services), does one thing and exits
 *  with a code a script can test (see syctl_usage).  Commands:
 *    status  sy.query {what:"status"}, shown as tables (queue depths too
 *            when the broker has durable queues) or, with --json, as the
 *            answer's data in one JSON line;
 *    send    a JSON body converted to msgpack (tools/json.c; hex strings
 *            for bin/id fields of the type), checked against the message
 *            table, sent to a service; the reply (corr = our id) is
 *            printed as one JSON line, an error receipt as "CODE: message"
 *            on stderr.  With --durable the receipt is the point: its line
 *            ("id <hex>", "DUPLICATE <hex>", "CODE: msg") is printed, and
 *            --count N sends N numbered messages pipelined (at most
 *            SYCTL_WINDOW without a receipt) with one line per receipt;
 *    queue / dlq  the durable queues' operator views: sy.query what =
 *            queues, peek, inflight, dlq, dlq.retry, dlq.purge, shown as
 *            tables (tools/syctl_fmt.c) or JSON;
 *    tail    subscribes to a topic prefix and prints one JSON line per
 *            event until SIGINT (or --count events);
 *    chat    the chat client for tailnet devices, and route, the router's
 *            classification of a text (tools/syctl_chat.c);
 *    keys    device certificates, without the broker: `keys new` makes a
 *            key pair (common/certs.h; the secret is never printed),
 *            `keys enroll / revoke / ls` edit and show the allow-list
 *            directory security/certs_dir (broker/allowlist.h) on the
 *            broker's host -- the running broker notices the change within
 *            security/refresh -- and `keys broker` prints the broker's
 *            public key for devices to pin.  `keys enroll FILE --role
 *            ROLE`: the operator names the role, and a certificate made
 *            with another one is refused (the device makes its key again).
 *  Every wait is bounded by --timeout (syctl/timeout): connecting and the
 *  answer share one deadline; a --count stream waits at most that long
 *  without progress.
 *
 *  CURVE: with security/curve on, syctl connects with its certificate
 *  (security/cert or --cert) and is known to the broker by the
 *  certificate's name, instead of "syctl-<pid>"; what it may do is that
 *  certificate's role's (queue and dlq need an operator).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "broker/allowlist.h"
#include "common/certs.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"
#include "common/json.h"
#include "tools/syctl_telegram.h"
#include "tools/syctl_chat.h"
#include "tools/syctl_fmt.h"

#define SYCTL_NOWAIT_LINGER_MS 200
#define SYCTL_WINDOW           1000     /* durable sends without receipt */
#define SYCTL_PEEK_DEFAULT     10

typedef struct {
    const char *config, *endpoint, *timeout, *cert, *role, *dir;
    bool        json, no_wait, help, durable, all;
    bool        once;           /* chat --once */
    const char *attach, *name;  /* route --attach, chat --name */
    long        count;          /* tail: events; send: messages; 0 = unset */
    const char *prio, *ttl, *key, *id;
    const char *pos[8];         /* command and its arguments */
    int         npos;
} syctl_args_t;

/* State shared with the handlers while waiting for answers. */
typedef struct {
    uint8_t     id[16];         /* the message we wait an answer for */
    bool        done;
    int         exit_code;
    bool        json;
    bool        quiet;          /* --no-wait: do not print a reply */
    long        count, seen;    /* tail */
    actor_t    *actor;
    const char *what;           /* query: what was asked */
    const char *service;        /* query: about which service */

    /* send --durable */
    bool        durable;
    bool        numbered;       /* --count: lines carry "seq N" */
    bool        want_reply;     /* single send without --no-wait */
    bool        got_receipt, got_reply;
    uint8_t   (*ids)[16];       /* ids[seq], in sending (= id) order */
    bool       *answered;       /* answered[seq] */
    long        total, sent, receipts;
    int         worst;          /* exit code over all receipts */
    int64_t     idle_deadline;
    int         timeout;
} syctl_wait_t;

static void syctl_usage(FILE *f)
{
    fprintf(f,
        "usage: syctl [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  status                     actors (name, services, credit left/credit,\n"
        "                             last heard), services (actors, waiting) and,\n"
        "                             when the broker has them, durable queues\n"
        "  send SERVICE TYPE 'JSON'   send a message whose body is given as JSON\n"
        "                             (bin and id fields as hex strings); print the\n"
        "                             reply's body as one line of JSON\n"
        "  queue ls                   durable queues: ready per priority (high,\n"
        "                             normal, low), delayed, in flight, dead, age of\n"
        "                             the oldest\n"
        "  queue peek SERVICE [N]     the first N (default 10) waiting messages of\n"
        "                             SERVICE, without taking them\n"
        "  queue inflight SERVICE     messages of SERVICE in flight: holder, attempt,\n"
        "                             lease left\n"
        "  dlq ls [SERVICE]           dead letters (all services, or SERVICE)\n"
        "  dlq retry ID               put dead letter ID back in its queue\n"
        "  dlq retry --all SERVICE    put every dead letter of SERVICE back\n"
        "  dlq purge SERVICE          delete the dead letters of SERVICE\n"
        "  dlq purge --id ID          delete one dead letter\n"
        "  dlq purge --all            delete every dead letter of every service\n"
        "  tail [TOPIC]               print one JSON line {\"topic\",\"from\",\"data\"}\n"
        "                             per event whose topic starts with TOPIC\n"
        "                             (default: every event) until SIGINT\n"
        "  chat [TEXT]                chat with the front door (docs/CHAT.md): each\n"
        "                             line typed is a message (/status, /queue,\n"
        "                             /cancel, /new are commands); answers stream\n"
        "                             as they are written, notices show as \"* ...\";\n"
        "                             Ctrl-D quits; replies missed while away are\n"
        "                             shown once after a reconnect\n"
        "  chat --once [TEXT]         send TEXT (else all of stdin), print the\n"
        "                             answer on stdout (notices on stderr), exit 0;\n"
        "                             exit 1 on an error reply (\"error CODE: text\"\n"
        "                             on stderr), no front door, no broker, or no\n"
        "                             answer within chat/timeout (or --timeout)\n"
        "  route TEXT [--attach KIND] how the router classifies TEXT (with an\n"
        "                             attachment of KIND, e.g. photo or image/png):\n"
        "                             class and rule, e.g. HEAVY  phrase \"...\"\n"
        "                             (router/heavy); no broker needed\n"
        "  telegram approve CODE      allow the Telegram chat given pairing CODE\n"
        "  telegram deny CODE         refuse it (CODE may also be a chat id)\n"
        "  telegram ls                pending, allowed and denied Telegram chats\n"
        "                             (docs/TELEGRAM.md)\n"
        "\n"
        "Device certificates (no broker needed; enroll, revoke and ls work on\n"
        "the broker's host, in security/certs_dir; a running broker notices\n"
        "within security/refresh):\n"
        "  keys new NAME --role ROLE [--dir DIR]\n"
        "                             make a key pair: DIR/NAME.cert (public) and\n"
        "                             DIR/NAME.secret (mode 0600, never printed);\n"
        "                             ROLE is client, actor, worker or operator;\n"
        "                             DIR defaults to the directory of\n"
        "                             security/cert, else ./var/keys\n"
        "  keys enroll FILE.cert --role ROLE\n"
        "                             admit that device with ROLE (copies its\n"
        "                             public part into security/certs_dir); the\n"
        "                             role the device's key was made with must be\n"
        "                             ROLE, else nothing is enrolled (exit 1)\n"
        "  keys revoke NAME           cut that device off (its key stays refused\n"
        "                             until enrolled again)\n"
        "  keys ls                    enrolled and revoked devices: name, role,\n"
        "                             key prefix, revoked (--json: full keys)\n"
        "  keys broker                print the broker's public key (for\n"
        "                             security/broker_key on a device)\n"
        "  help                       this text\n"
        "\n"
        "Options:\n"
        "  --config FILE      configuration (default: $SWITCHYARD_CONFIG, else\n"
        "                     ./etc/switchyard.cfg if present, else defaults)\n"
        "  --endpoint EP      broker endpoint (default: actor/endpoint)\n"
        "  --cert PATH        this device's certificate, DIR/NAME.secret\n"
        "                     (default: security/cert; used when security/curve\n"
        "                     is on: syctl is then known by the certificate's\n"
        "                     name and has its role's rights)\n"
        "  --role ROLE        keys new: the certificate's role; keys enroll: the\n"
        "                     role the operator admits the device with\n"
        "  --dir DIR          keys new: where to write the two files\n"
        "  --timeout DUR      how long to wait for the broker and the answer,\n"
        "                     e.g. 500ms, 5s, 1m (default: syctl/timeout, 5s); for\n"
        "                     send --count: the longest wait without progress\n"
        "  --json             status, queue, dlq, keys ls, route: print the data as one\n"
        "                     JSON line; send --durable: one JSON line per\n"
        "                     receipt {\"seq\",\"ok\",\"code\",\"id\",\"msg\"}\n"
        "  --no-wait          send: do not wait for a reply (an error the\n"
        "                     broker returns at once is still reported; with\n"
        "                     --durable the receipt is still waited for)\n"
        "  --durable          send: store the message in the broker's durable\n"
        "                     queue; prints the receipt: \"id <hex>\" (exit 0),\n"
        "                     \"DUPLICATE <first id hex>\" (exit 5), or\n"
        "                     \"CODE: message\" on stderr (exit 1, e.g.\n"
        "                     QUEUE_FULL); then, without --no-wait, the reply\n"
        "  --prio P           send: high, normal (default) or low\n"
        "  --ttl TTL          send: expires after TTL: seconds (\"90\") or a\n"
        "                     duration (\"500ms\", \"10m\", \"2h\", \"1d\"), at most 30d\n"
        "  --key KEY          send: idempotency key (with --count: KEY-<seq>)\n"
        "  --count N          tail: exit after N events; send --durable: send N\n"
        "                     messages with seq 0..N-1 set in the body, pipelined\n"
        "                     on one connection; one receipt line per message,\n"
        "                     \"seq <n> \" in front (\"seq <n> TIMEOUT: ...\" for one\n"
        "                     without a receipt in time); no replies are waited for\n"
        "  --all              dlq retry / dlq purge: every dead letter (see above)\n"
        "  --once             chat: one message, one answer (see above)\n"
        "  --name NAME        chat: the name (and chat user) to connect as\n"
        "                     (plaintext only; default syctl-<pid>; with CURVE\n"
        "                     the certificate's name)\n"
        "  --attach KIND      route: classify as if a KIND attachment came along\n"
        "  --id ID            dlq purge: one dead letter, by its hex id\n"
        "  --help             this text\n"
        "\n"
        "Exit codes:\n"
        "  0  ok\n"
        "  1  the broker or the service answered an error (printed on stderr\n"
        "     as CODE: message; with --count, on stdout in the receipt lines),\n"
        "     or the broker refused this device's certificate\n"
        "  2  usage error (bad arguments, bad JSON, body not valid for TYPE)\n"
        "  3  no broker, or no answer in time\n"
        "  4  configuration error\n"
        "  5  send --durable: DUPLICATE (the key was seen; not queued again);\n"
        "     with --count: some receipts were DUPLICATE and none was worse\n"
        "  keys: 0 done, 1 refused (the files exist, NAME not enrolled, or\n"
        "     enrolled with another key, or the certificate's role is not\n"
        "     --role), 2 usage, 4 file or configuration error\n");
}

/* ------------------------------------------------------------------ */
/* arguments                                                           */

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
        else if (strcmp(arg, "--durable") == 0)
            a->durable = true;
        else if (strcmp(arg, "--all") == 0)
            a->all = true;
        else if (strcmp(arg, "--once") == 0)
            a->once = true;
        else if (strcmp(arg, "--attach") == 0)
            slot = &a->attach;
        else if (strcmp(arg, "--name") == 0)
            slot = &a->name;
        else if (strcmp(arg, "--config") == 0)
            slot = &a->config;
        else if (strcmp(arg, "--endpoint") == 0)
            slot = &a->endpoint;
        else if (strcmp(arg, "--cert") == 0)
            slot = &a->cert;
        else if (strcmp(arg, "--role") == 0)
            slot = &a->role;
        else if (strcmp(arg, "--dir") == 0)
            slot = &a->dir;
        else if (strcmp(arg, "--timeout") == 0)
            slot = &a->timeout;
        else if (strcmp(arg, "--prio") == 0)
            slot = &a->prio;
        else if (strcmp(arg, "--ttl") == 0)
            slot = &a->ttl;
        else if (strcmp(arg, "--key") == 0)
            slot = &a->key;
        else if (strcmp(arg, "--id") == 0)
            slot = &a->id;
        else if (strcmp(arg, "--count") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "syctl: --count needs a number\n");
                return -1;
            }
            char *end;
            a->count = strtol(argv[++i], &end, 10);
            if (*end || a->count < 1 || a->count > 100000000) {
                fprintf(stderr, "syctl: --count needs a number 1..100000000\n");
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
    actor_receipt_t r;
    char line[700];
    if (actor_receipt_parse(m, &r) != 0) {
        fprintf(stderr, "ERROR: malformed receipt\n");
        return;
    }
    syctl_fmt_receipt_text(&r, -1, line, sizeof line);
    fprintf(stderr, "%s\n", line);
}

/* True if an sy.receipt body says ok: true. */
static bool syctl_receipt_ok(const actor_msg_t *m)
{
    actor_receipt_t r;
    return actor_receipt_parse(m, &r) == 0 && r.ok;
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
            return 0;       /* accepted: the reply comes later */
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

/* ------------------------------------------------------------------ */
/* queries: status, queue, dlq                                         */

/* Prints the data of a sy.answer as the query `what` asks. */
static int syctl_render(const syctl_wait_t *w, const uint8_t *data,
                        size_t len)
{
    const char *what = w->what;
    int rc;
    if (w->json) {
        syctl_print_json(data, len);
        return 0;
    }
    if (strcmp(what, "status") == 0)
        rc = syctl_fmt_status(stdout, data, len);
    else if (strcmp(what, "queues") == 0)
        rc = syctl_fmt_queues(stdout, data, len);
    else if (strcmp(what, "peek") == 0)
        rc = syctl_fmt_peek(stdout, data, len, w->service);
    else if (strcmp(what, "inflight") == 0)
        rc = syctl_fmt_inflight(stdout, data, len, w->service);
    else if (strcmp(what, "dlq") == 0)
        rc = syctl_fmt_dlq(stdout, data, len);
    else if (strcmp(what, "dlq.retry") == 0)
        rc = syctl_fmt_count(stdout, data, len, "retried");
    else if (strcmp(what, "dlq.purge") == 0)
        rc = syctl_fmt_count(stdout, data, len, "purged");
    else {
        syctl_print_json(data, len);
        rc = 0;
    }
    fflush(stdout);
    return rc;
}

/* The answer handler for queries: prints data, or the error. */
static int syctl_on_query(actor_t *actor, const actor_msg_t *m, void *arg)
{
    syctl_wait_t *w = arg;
    if (!(m->hdr.present & ENV_HAS_CORR) || memcmp(m->hdr.corr, w->id, 16))
        return 0;
    if (strcmp(m->hdr.type, "sy.answer") != 0)
        return syctl_on_answer(actor, m, arg);
    w->done = true;
    w->exit_code = SYCTL_OK;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (syctl_fmt_map_value(m->body, m->body_len, "data", &data, &len)) {
        fprintf(stderr, "syctl: the answer has no data\n");
        w->exit_code = SYCTL_EREMOTE;
    } else if (syctl_render(w, data, len)) {
        fprintf(stderr, "syctl: malformed %s data\n", w->what);
        w->exit_code = SYCTL_EREMOTE;
    }
    actor_stop(actor);
    return 0;
}

/* A sy.query body. */
typedef struct {
    const char *what;
    const char *service;        /* NULL: absent */
    bool        has_n;
    uint64_t    n;
    bool        has_id;
    uint8_t     id[16];
    bool        all;
} syctl_query_t;

static void syctl_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void syctl_query_pack(const syctl_query_t *q, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (q->service != NULL) + q->has_n + q->has_id
                          + q->all);
    syctl_pack_str(&pk, "what");
    syctl_pack_str(&pk, q->what);
    if (q->service) {
        syctl_pack_str(&pk, "service");
        syctl_pack_str(&pk, q->service);
    }
    if (q->has_n) {
        syctl_pack_str(&pk, "n");
        msgpack_pack_uint64(&pk, q->n);
    }
    if (q->has_id) {
        syctl_pack_str(&pk, "id");
        msgpack_pack_bin(&pk, 16);
        msgpack_pack_bin_body(&pk, q->id, 16);
    }
    if (q->all) {
        syctl_pack_str(&pk, "all");
        msgpack_pack_true(&pk);
    }
}

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

/* Sends the query and prints its answer. */
static int syctl_query(syctl_wait_t *w, const syctl_query_t *q,
                       int64_t deadline)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    syctl_query_pack(q, &sb);
    w->what = q->what;
    w->service = q->service;
    actor_on(w->actor, "*", syctl_on_query, w);
    int rc = actor_send_broker(w->actor, "sy.query", (const uint8_t *) sb.data,
                               sb.size, w->id);
    msgpack_sbuffer_destroy(&sb);
    if (rc == SY_EBAD_BODY || rc == SY_EINVAL) {
        fprintf(stderr, "syctl: invalid query (service name?)\n");
        return SYCTL_EUSAGE;
    }
    if (rc) {
        fprintf(stderr, "syctl: cannot send the query: %s\n", syerr_name(rc));
        return SYCTL_ENOANSWER;
    }
    return syctl_wait_answer(w, deadline);
}

static bool syctl_service_ok(const char *s)
{
    if (s && envelope_valid_name(s, strlen(s)) && s[0] != '@')
        return true;
    fprintf(stderr, "syctl: invalid service name '%s'\n", s ? s : "");
    return false;
}

static bool syctl_id_ok(const char *hex, uint8_t id[16])
{
    if (hex && strlen(hex) == 32 && envelope_id_parse(hex, id) == 0)
        return true;
    fprintf(stderr, "syctl: '%s' is not an id (32 hex digits)\n",
            hex ? hex : "");
    return false;
}

static int syctl_cmd_queue(syctl_wait_t *w, const syctl_args_t *a,
                           int64_t deadline)
{
    const char *sub = a->npos >= 2 ? a->pos[1] : "";
    syctl_query_t q = { 0 };
    if (strcmp(sub, "ls") == 0 && a->npos == 2)
        q.what = "queues";
    else if (strcmp(sub, "peek") == 0 && (a->npos == 3 || a->npos == 4)) {
        q.what = "peek";
        q.service = a->pos[2];
        q.has_n = true;
        q.n = SYCTL_PEEK_DEFAULT;
        if (a->npos == 4) {
            char *end;
            long long n = strtoll(a->pos[3], &end, 10);
            if (*end || n < 1 || n > 100000) {
                fprintf(stderr, "syctl: N must be 1..100000\n");
                return SYCTL_EUSAGE;
            }
            q.n = (uint64_t) n;
        }
    } else if (strcmp(sub, "inflight") == 0 && a->npos == 3) {
        q.what = "inflight";
        q.service = a->pos[2];
    } else {
        fprintf(stderr, "syctl: usage: syctl queue ls | queue peek SERVICE [N]"
                        " | queue inflight SERVICE\n");
        return SYCTL_EUSAGE;
    }
    if (q.service && !syctl_service_ok(q.service))
        return SYCTL_EUSAGE;
    return syctl_query(w, &q, deadline);
}

/* Builds the dlq query from the arguments; false after a usage message. */
static bool syctl_dlq_query(const syctl_args_t *a, syctl_query_t *q)
{
    const char *sub = a->npos >= 2 ? a->pos[1] : "";
    const char *service = a->npos >= 3 ? a->pos[2] : NULL;
    memset(q, 0, sizeof *q);
    if (strcmp(sub, "ls") == 0 && a->npos <= 3 && !a->all && !a->id) {
        q->what = "dlq";
        q->service = service;
    } else if (strcmp(sub, "retry") == 0 && a->npos == 3 && !a->id) {
        q->what = "dlq.retry";
        if (a->all) {
            q->service = service;
            q->all = true;
        } else if (!(q->has_id = syctl_id_ok(service, q->id)))
            return false;
    } else if (strcmp(sub, "purge") == 0 && a->npos <= 3
               && (service || a->id || a->all)
               && !(a->all && (service || a->id))) {
        q->what = "dlq.purge";
        q->service = service;
        if (a->id && !(q->has_id = syctl_id_ok(a->id, q->id)))
            return false;
    } else {
        fprintf(stderr,
                "syctl: usage: syctl dlq ls [SERVICE] | dlq retry ID"
                " | dlq retry --all SERVICE\n"
                "       | dlq purge SERVICE | dlq purge [SERVICE] --id ID"
                " | dlq purge --all\n");
        return false;
    }
    return !q->service || syctl_service_ok(q->service);
}

static int syctl_cmd_dlq(syctl_wait_t *w, const syctl_args_t *a,
                         int64_t deadline)
{
    syctl_query_t q;
    if (!syctl_dlq_query(a, &q))
        return SYCTL_EUSAGE;
    return syctl_query(w, &q, deadline);
}

static int syctl_cmd_status(syctl_wait_t *w, int64_t deadline)
{
    syctl_query_t q = { .what = "status" };
    return syctl_query(w, &q, deadline);
}

/* ------------------------------------------------------------------ */
/* send --durable                                                      */

/* The seq of the message whose id is id, or -1: ids of one generator
   grow, so ids[0..sent) is sorted. */
static long syctl_seq_of(const syctl_wait_t *w, const uint8_t id[16])
{
    long lo = 0, hi = w->sent - 1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        int c = memcmp(w->ids[mid], id, 16);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Prints one receipt line and folds its exit code into w->worst. */
static void syctl_print_receipt(syctl_wait_t *w, const actor_receipt_t *r,
                                long seq)
{
    char line[800];
    long long shown = w->numbered ? seq : -1;
    int code = syctl_fmt_receipt_exit(r);
    if (w->json)
        syctl_fmt_receipt_json(r, shown, line, sizeof line);
    else
        syctl_fmt_receipt_text(r, shown, line, sizeof line);
    /* a single send's refusal is an error message; a stream's lines all
       go to stdout so a script reads one line per message */
    FILE *f = code == SYCTL_EREMOTE && !w->numbered && !w->json ? stderr
                                                                 : stdout;
    fprintf(f, "%s\n", line);
    fflush(f);
    if (code == SYCTL_EREMOTE || (code == SYCTL_EDUPLICATE && !w->worst))
        w->worst = code;
}

typedef struct {
    const msgtype_t *type;
    const char      *service;
    const uint8_t   *rest;      /* the body's pairs other than seq */
    size_t           rest_len;
    uint32_t         npairs;    /* pairs in rest */
    const char      *key;       /* --key or NULL */
    actor_send_opts_t opts;
} syctl_stream_t;

/* Sends message seq of the stream.  Returns 0 or the actor_send code. */
static int syctl_stream_send(syctl_wait_t *w, syctl_stream_t *st, long seq)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, st->npairs + 1);
    msgpack_sbuffer_write(&sb, (const char *) st->rest, st->rest_len);
    syctl_pack_str(&pk, "seq");
    msgpack_pack_uint64(&pk, (uint64_t) seq);
    char key[ENVELOPE_KEY_MAX + 1];
    actor_send_opts_t o = st->opts;
    if (st->key) {
        snprintf(key, sizeof key, "%s-%ld", st->key, seq);
        o.key = key;
    }
    int rc = actor_send(w->actor, st->service, st->type->type,
                        (const uint8_t *) sb.data, sb.size, &o, w->ids[seq]);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Sends while the window has room.  Returns 0, or a code that ends the
   stream (anything but a full or closed socket, which only pause it). */
static int syctl_stream_pump(syctl_wait_t *w, syctl_stream_t *st)
{
    while (w->sent < w->total && w->sent - w->receipts < SYCTL_WINDOW) {
        int rc = syctl_stream_send(w, st, w->sent);
        if (rc == SY_EQUEUE_FULL || rc == SY_ECLOSED)
            return 0;
        if (rc)
            return rc;
        w->sent++;
    }
    return 0;
}

/* Receipts (and, for one message, its reply) of a durable send. */
static int syctl_on_durable(actor_t *actor, const actor_msg_t *m, void *arg)
{
    syctl_wait_t *w = arg;
    if (!(m->hdr.present & ENV_HAS_CORR))
        return 0;
    long seq = syctl_seq_of(w, m->hdr.corr);
    if (seq < 0)
        return 0;
    if (strcmp(m->hdr.type, "sy.receipt") == 0 && !w->answered[seq]) {
        actor_receipt_t r;
        if (actor_receipt_parse(m, &r) != 0)
            return 0;
        w->answered[seq] = true;
        w->receipts++;
        w->got_receipt = true;
        w->idle_deadline = zclock_mono() + w->timeout;
        syctl_print_receipt(w, &r, seq);
        if (!r.ok)
            w->want_reply = false;
    } else if (strcmp(m->hdr.type, "sy.receipt") != 0 && w->want_reply
               && !w->got_reply) {
        w->got_reply = true;
        syctl_print_json(m->body, m->body_len);
    }
    bool all = w->receipts == w->total;
    if (all && (!w->want_reply || w->got_reply)) {
        w->done = true;
        actor_stop(actor);
    }
    return 0;
}

/* Resumes a paused stream when the broker is back. */
static void syctl_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    syctl_wait_t *w = arg;
    if (up)
        w->idle_deadline = zclock_mono() + w->timeout;
}

/* Runs the stream until every receipt is in, or nothing has happened for
   the timeout.  Messages without a receipt get a TIMEOUT line. */
static int syctl_stream_run(syctl_wait_t *w, syctl_stream_t *st)
{
    w->idle_deadline = zclock_mono() + w->timeout;
    actor_on(w->actor, "*", syctl_on_durable, w);
    actor_on_state(w->actor, syctl_on_state, w);
    while (!w->done && !zsys_interrupted) {
        int rc = syctl_stream_pump(w, st);
        if (rc) {
            fprintf(stderr, "syctl: cannot send: %s\n", syerr_name(rc));
            return rc == SY_ETOO_LARGE || rc == SY_EINVAL
                   || rc == SY_EBAD_BODY ? SYCTL_EUSAGE : SYCTL_ENOANSWER;
        }
        int left = syctl_remaining(w->idle_deadline);
        if (left == 0)
            break;
        /* short turns while sending: the window refills as receipts come */
        actor_run_for(w->actor, w->sent < w->total && left > 50 ? 50 : left);
    }
    if (w->done)
        return w->worst;
    for (long seq = 0; seq < w->total; seq++)
        if (!w->answered[seq]) {
            actor_receipt_t r = { .code = SY_ETIMEOUT };
            snprintf(r.code_name, sizeof r.code_name, "TIMEOUT");
            snprintf(r.msg, sizeof r.msg, "%s",
                     seq < w->sent ? "no receipt in time" : "not sent");
            if (w->numbered)
                syctl_print_receipt(w, &r, seq);
        }
    if (w->receipts == w->total && w->want_reply && !w->got_reply) {
        fprintf(stderr, "syctl: stored, but no reply in time\n");
        return SYCTL_ENOANSWER;
    }
    if (!w->numbered && w->receipts == 0)
        fprintf(stderr, "syctl: no receipt in time\n");
    return SYCTL_ENOANSWER;
}

/* Splits body (a map) into its pairs other than "seq".  Returns 0 or
   SY_ENOT_MAP. */
static int syctl_body_rest(const uint8_t *body, size_t len, syctl_stream_t *st,
                           uint8_t **rest)
{
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, body, len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP)
        return SY_ENOT_MAP;
    *rest = malloc(len ? len : 1);
    if (!*rest)
        return SY_ENOMEM;
    size_t used = 0;
    st->npairs = 0;
    for (uint32_t i = 0; i < map.len; i++) {
        const uint8_t *start = r.p;
        if (mpread_next(&r, &k) || mpread_next(&r, &v)
            || mpread_skip(&r, &v, 1))
            return SY_ENOT_MAP;
        if (mpval_str_eq(&k, "seq"))
            continue;
        memcpy(*rest + used, start, (size_t) (r.p - start));
        used += (size_t) (r.p - start);
        st->npairs++;
    }
    st->rest = *rest;
    st->rest_len = used;
    return 0;
}

/* Reads --prio, --ttl, --key into o.  Returns 0 or SYCTL_EUSAGE. */
static int syctl_send_opts(const syctl_args_t *a, actor_send_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->prio = ENVELOPE_PRIO_NORMAL;
    o->durable = a->durable;
    if (a->prio && syctl_fmt_parse_prio(a->prio, &o->prio)) {
        fprintf(stderr, "syctl: --prio must be high, normal or low\n");
        return SYCTL_EUSAGE;
    }
    if (a->ttl && syctl_fmt_parse_ttl(a->ttl, &o->ttl_ms)) {
        fprintf(stderr, "syctl: --ttl: '%s' is not a ttl (seconds, or e.g."
                        " 500ms, 10m, 2h, 1d; at most 30d)\n", a->ttl);
        return SYCTL_EUSAGE;
    }
    if (a->key) {
        /* with --count the key gets "-<seq>" appended */
        size_t room = ENVELOPE_KEY_MAX - (a->count ? 10 : 0);
        if (!envelope_valid_key(a->key, strlen(a->key))
            || strlen(a->key) > room) {
            fprintf(stderr, "syctl: --key must be 1..%zu printable ASCII"
                            " characters without spaces\n", room);
            return SYCTL_EUSAGE;
        }
        o->key = a->key;
    }
    return 0;
}

static int syctl_cmd_send_durable(syctl_wait_t *w, const syctl_args_t *a,
                                  const msgtype_t *t, const uint8_t *body,
                                  size_t len, const actor_send_opts_t *o)
{
    syctl_stream_t st = { .type = t, .service = a->pos[1], .opts = *o };
    uint8_t *rest = NULL;
    w->durable = true;
    w->numbered = a->count > 0;
    w->total = a->count > 0 ? a->count : 1;
    w->want_reply = !a->no_wait && !w->numbered;
    w->ids = calloc((size_t) w->total, sizeof *w->ids);
    w->answered = calloc((size_t) w->total, sizeof *w->answered);
    int rc = w->ids && w->answered ? 0 : SY_ENOMEM;
    if (rc == 0 && w->numbered) {
        st.key = o->key;
        st.opts.key = NULL;
        rc = syctl_body_rest(body, len, &st, &rest);
        if (rc == SY_ENOT_MAP) {
            fprintf(stderr, "syctl: --count needs a JSON object body\n");
            rc = SYCTL_EUSAGE;
        } else if (rc == 0 && !msgtypes_field(t, "seq")) {
            fprintf(stderr, "syctl: --count: %s has no seq field\n", t->type);
            rc = SYCTL_EUSAGE;
        }
    } else if (rc == 0) {
        /* one message: the body as given */
        st.rest = body;
        st.rest_len = len;
    }
    if (rc == 0 && !w->numbered) {
        rc = actor_send(w->actor, st.service, t->type, body, len, o, w->ids[0]);
        if (rc == 0)
            w->sent = 1;
        else {
            fprintf(stderr, "syctl: cannot send: %s\n", syerr_name(rc));
            rc = rc == SY_ETOO_LARGE || rc == SY_EINVAL ? SYCTL_EUSAGE
                                                         : SYCTL_ENOANSWER;
        }
    } else if (rc == SY_ENOMEM) {
        fprintf(stderr, "syctl: out of memory\n");
        rc = SYCTL_ENOANSWER;
    }
    if (rc == 0)
        rc = syctl_stream_run(w, &st);
    free(rest);
    free(w->ids);
    free(w->answered);
    w->ids = NULL;
    w->answered = NULL;
    return rc;
}

static int syctl_cmd_send(syctl_wait_t *w, const syctl_args_t *a,
                          int64_t deadline)
{
    const char *service = a->pos[1], *type = a->pos[2], *text = a->pos[3];
    const msgtype_t *t = msgtypes_find(type, strlen(type));
    if (!t) {
        fprintf(stderr, "syctl: unknown message type '%s'\n", type);
        return SYCTL_EUSAGE;
    }
    actor_send_opts_t o;
    if (syctl_send_opts(a, &o))
        return SYCTL_EUSAGE;
    if (a->durable && service[0] == '@') {
        fprintf(stderr, "syctl: a durable message goes to a service, not to"
                        " '%s'\n", service);
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
    if (a->durable) {
        rc = syctl_cmd_send_durable(w, a, t, body, len, &o);
        free(body);
        return rc;
    }
    actor_on(w->actor, "*", syctl_on_answer, w);
    rc = actor_send(w->actor, service, type, body, len, &o, w->id);
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

/* ------------------------------------------------------------------ */
/* keys: certificates and the allow-list, offline                      */

/* mkdir -p with mode 0700 for what it creates. */
static int syctl_mkdirs(const char *path)
{
    char p[1024];
    if (snprintf(p, sizeof p, "%s", path) >= (int) sizeof p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int syctl_keys_new(const syctl_args_t *a, const config_t *cfg)
{
    const char *name = a->pos[2];
    if (!a->role) {
        fprintf(stderr, "syctl: usage: syctl keys new NAME --role "
                        "client|actor|worker|operator [--dir DIR]\n");
        return SYCTL_EUSAGE;
    }
    char dir[1024], err[600];
    if (syctl_fmt_keys_dir(a->dir, config_str(cfg, "security/cert"), dir,
                           sizeof dir)) {
        fprintf(stderr, "syctl: --dir: path too long\n");
        return SYCTL_EUSAGE;
    }
    /* checked before any directory is made */
    if (!certs_valid_name(name)) {
        fprintf(stderr, "syctl: \"%s\" is not a valid device name: 1..64 of "
                        "A-Z a-z 0-9 . _ : @ - (not starting with @ or .)\n",
                name);
        return SYCTL_EUSAGE;
    }
    if (certs_role_parse(a->role) == CERTS_ROLE_NONE) {
        fprintf(stderr, "syctl: \"%s\" is not a role: use client, actor, "
                        "worker or operator\n", a->role);
        return SYCTL_EUSAGE;
    }
    if (syctl_mkdirs(dir) != 0) {
        fprintf(stderr, "syctl: cannot create %s: %s\n", dir, strerror(errno));
        return SYCTL_ECONFIG;
    }
    zcert_t *cert = NULL;
    int rc = certs_new(dir, name, a->role, &cert, err, sizeof err);
    if (rc) {
        fprintf(stderr, "syctl: %s\n", err);
        return rc == SY_EDUPLICATE ? SYCTL_EREMOTE
             : rc == SY_EINVAL ? SYCTL_EUSAGE : SYCTL_ECONFIG;
    }
    printf("made %s, role %s\n"
           "public key   %s\n"
           "certificate  %s/%s%s\n"
           "             public: enroll it on the broker's host with\n"
           "             syctl keys enroll %s%s --role %s\n"
           "secret       %s/%s%s\n"
           "             mode 0600: keep it on this device only\n",
           name, a->role, zcert_public_txt(cert), dir, name, CERTS_PUBLIC_EXT,
           name, CERTS_PUBLIC_EXT, a->role, dir, name, CERTS_SECRET_EXT);
    certs_destroy(&cert);
    return SYCTL_OK;
}

/* Opens the allow-list named by security/certs_dir. */
static int syctl_allowlist(const config_t *cfg, allowlist_t **out)
{
    char err[600];
    const char *dir = config_str(cfg, "security/certs_dir");
    if (allowlist_new(dir, out, err, sizeof err) != 0) {
        fprintf(stderr, "syctl: security/certs_dir %s: %s\n", dir, err);
        return SYCTL_ECONFIG;
    }
    return SYCTL_OK;
}

/* The role is the operator's decision, not the device's: the device
   wrote its certificate (keys new --role) and the broker gives an
   enrolled device the role written in it.  So the operator names the
   role and a certificate that says another one is refused: the device
   makes its key again with that role (the allow-list copies the file as
   it is; rewriting its role here would leave the device believing in
   another role than the broker). */
static int syctl_keys_enroll(const syctl_args_t *a, const config_t *cfg)
{
    const char *file = a->pos[2];
    if (!a->role) {
        fprintf(stderr, "syctl: usage: syctl keys enroll FILE.cert --role "
                        "client|actor|worker|operator (the role this device "
                        "is admitted with)\n");
        return SYCTL_EUSAGE;
    }
    certs_role_t want = certs_role_parse(a->role);
    if (want == CERTS_ROLE_NONE) {
        fprintf(stderr, "syctl: \"%s\" is not a role: use client, actor, "
                        "worker or operator\n", a->role);
        return SYCTL_EUSAGE;
    }
    char err[600];
    zcert_t *cert = NULL;
    int rc = certs_load(file, &cert, err, sizeof err);
    if (rc) {
        fprintf(stderr, "syctl: %s\n", err);
        return rc == SY_ENOTFOUND ? SYCTL_EUSAGE : SYCTL_ECONFIG;
    }
    char name[65], key[41];
    certs_role_t role = certs_role(cert);
    snprintf(name, sizeof name, "%s", certs_name(cert));
    snprintf(key, sizeof key, "%s", zcert_public_txt(cert));
    certs_destroy(&cert);
    if (role != want) {
        const char *has = role == CERTS_ROLE_NONE ? "no valid role"
                                                  : certs_role_name(role);
        fprintf(stderr,
                "syctl: %s was made with %s%s, not %s: nothing enrolled.\n"
                "A device's role is fixed when its key is made.  On the "
                "device, remove %s%s and %s%s and make the key again:\n"
                "  syctl keys new %s --role %s\n"
                "then copy the new %s%s here and run:\n"
                "  syctl keys enroll %s --role %s\n",
                file, role == CERTS_ROLE_NONE ? "" : "role ", has, a->role,
                name, CERTS_PUBLIC_EXT, name, CERTS_SECRET_EXT,
                name, a->role, name, CERTS_PUBLIC_EXT, file, a->role);
        return SYCTL_EREMOTE;
    }

    allowlist_t *list = NULL;
    if ((rc = syctl_allowlist(cfg, &list)) != 0)
        return rc;
    rc = allowlist_enroll(list, file, err, sizeof err);
    allowlist_destroy(&list);
    if (rc) {
        fprintf(stderr, "syctl: %s\n", err);
        return rc == SY_EDUPLICATE ? SYCTL_EREMOTE : SYCTL_ECONFIG;
    }
    printf("enrolled %s, role %s, key %.12s... in %s; the broker admits it "
           "within security/refresh\n", name, certs_role_name(role), key,
           config_str(cfg, "security/certs_dir"));
    return SYCTL_OK;
}

static int syctl_keys_revoke(const syctl_args_t *a, const config_t *cfg)
{
    const char *name = a->pos[2];
    allowlist_t *list = NULL;
    int rc = syctl_allowlist(cfg, &list);
    if (rc)
        return rc;
    char err[600], key[41] = "";
    const allowlist_entry_t *e = allowlist_lookup_name(list, name);
    if (e)
        snprintf(key, sizeof key, "%s", e->key);
    rc = allowlist_revoke(list, name, err, sizeof err);
    allowlist_destroy(&list);
    if (rc) {
        fprintf(stderr, "syctl: %s\n", err);
        return rc == SY_ENOTFOUND ? SYCTL_EREMOTE : SYCTL_ECONFIG;
    }
    printf("revoked %s (key %.12s...); the broker cuts it off within "
           "security/refresh\n", name, key);
    return SYCTL_OK;
}

static void syctl_pack_key_row(msgpack_packer *pk, const char *name,
                               const char *role, const char *key,
                               bool revoked)
{
    msgpack_pack_map(pk, 4);
    syctl_pack_str(pk, "name");
    syctl_pack_str(pk, name);
    syctl_pack_str(pk, "role");
    if (role)
        syctl_pack_str(pk, role);
    else
        msgpack_pack_nil(pk);
    syctl_pack_str(pk, "key");
    syctl_pack_str(pk, key);
    syctl_pack_str(pk, "revoked");
    if (revoked)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* The revoked keys that are not enrolled again: their lines, parsed. */
static size_t syctl_revoked_rows(const char *dir, allowlist_t *list,
                                 char (*keys)[41], char (*names)[65],
                                 size_t cap)
{
    char path[1100];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;       /* one .cert file: nothing is ever revoked */
    snprintf(path, sizeof path, "%s/%s", dir, ALLOWLIST_REVOKED_FILE);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = 0;
    char line[300];
    while (n < cap && fgets(line, sizeof line, f))
        if (syctl_fmt_revoked_line(line, keys[n], names[n]) == 0
            && !allowlist_lookup(list, keys[n]))
            n++;
    fclose(f);
    return n;
}

#define SYCTL_REVOKED_MAX 10000

static int syctl_keys_ls(const syctl_args_t *a, const config_t *cfg)
{
    allowlist_t *list = NULL;
    int rc = syctl_allowlist(cfg, &list);
    if (rc)
        return rc;
    char (*keys)[41] = calloc(SYCTL_REVOKED_MAX, sizeof *keys);
    char (*names)[65] = calloc(SYCTL_REVOKED_MAX, sizeof *names);
    if (!keys || !names) {
        free(keys);
        free(names);
        allowlist_destroy(&list);
        fprintf(stderr, "syctl: out of memory\n");
        return SYCTL_ECONFIG;
    }
    size_t nrev = syctl_revoked_rows(config_str(cfg, "security/certs_dir"),
                                     list, keys, names, SYCTL_REVOKED_MAX);
    size_t n = allowlist_size(list);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n + nrev);
    for (size_t i = 0; i < n; i++) {
        const allowlist_entry_t *e = allowlist_at(list, i);
        syctl_pack_key_row(&pk, e->name, certs_role_name(e->role), e->key,
                           false);
    }
    for (size_t i = 0; i < nrev; i++)
        syctl_pack_key_row(&pk, names[i], NULL, keys[i], true);
    if (a->json)
        syctl_print_json((const uint8_t *) sb.data, sb.size);
    else if (syctl_fmt_keys(stdout, (const uint8_t *) sb.data, sb.size)) {
        fprintf(stderr, "syctl: cannot show the list\n");
        rc = SYCTL_ECONFIG;
    }
    msgpack_sbuffer_destroy(&sb);
    free(keys);
    free(names);
    allowlist_destroy(&list);
    return rc;
}

/* The broker's public key: security/broker_key, else the public half of
   security/broker_cert (the .cert beside the .secret; the secret file is
   never opened). */
static int syctl_keys_broker(const config_t *cfg)
{
    const char *pinned = config_str(cfg, "security/broker_key");
    if (pinned[0]) {
        printf("%s\n", pinned);
        return SYCTL_OK;
    }
    char pub[1024], err[600];
    const char *bc = config_str(cfg, "security/broker_cert");
    if (actor_cert_paths(bc, NULL, pub, sizeof pub)) {
        fprintf(stderr, "syctl: security/broker_cert \"%s\" is not a "
                        "certificate path\n", bc);
        return SYCTL_ECONFIG;
    }
    zcert_t *cert = NULL;
    int rc = certs_load(pub, &cert, err, sizeof err);
    if (rc) {
        fprintf(stderr, "syctl: %s%s\n", err, rc == SY_ENOTFOUND
                ? " (the broker makes its certificate when it first starts"
                  " with security/curve on)" : "");
        return SYCTL_ECONFIG;
    }
    printf("%s\n", zcert_public_txt(cert));
    certs_destroy(&cert);
    return SYCTL_OK;
}

static int syctl_cmd_keys(const syctl_args_t *a, const config_t *cfg)
{
    const char *sub = a->npos >= 2 ? a->pos[1] : "";
    if (strcmp(sub, "new") == 0 && a->npos == 3)
        return syctl_keys_new(a, cfg);
    if (strcmp(sub, "enroll") == 0 && a->npos == 3)
        return syctl_keys_enroll(a, cfg);
    if (strcmp(sub, "revoke") == 0 && a->npos == 3)
        return syctl_keys_revoke(a, cfg);
    if (strcmp(sub, "ls") == 0 && a->npos == 2)
        return syctl_keys_ls(a, cfg);
    if (strcmp(sub, "broker") == 0 && a->npos == 2)
        return syctl_keys_broker(cfg);
    fprintf(stderr, "syctl: usage: syctl keys new NAME --role ROLE [--dir DIR]"
                    " | keys enroll FILE.cert --role ROLE\n"
                    "       | keys revoke NAME | keys ls [--json]"
                    " | keys broker\n");
    return SYCTL_EUSAGE;
}

/* syctl telegram ...: the bridge's pairing (tools/syctl_telegram.c), at
   the service telegram/name. */
static int syctl_cmd_telegram(syctl_wait_t *w, const syctl_args_t *a,
                              const config_t *cfg, int64_t deadline)
{
    char *argv[sizeof a->pos / sizeof a->pos[0] + 2];
    int n = 0;
    for (int i = 1; i < a->npos; i++)
        argv[n++] = (char *) a->pos[i];
    argv[n++] = "--bridge";
    argv[n++] = (char *) config_str(cfg, "telegram/name");
    int64_t left = deadline - zclock_mono();
    return syctl_telegram_run(w->actor, n, argv, a->json,
                              left > 0 ? (int) left : 1);
}

/* Checks the command's shape before connecting.  Returns 0 or
   SYCTL_EUSAGE (after a message). */
static int syctl_check_usage(const syctl_args_t *a)
{
    const char *cmd = a->pos[0];
    const char *usage = NULL;
    if (strcmp(cmd, "status") == 0) {
        if (a->npos != 1)
            usage = "syctl status [--json]";
    } else if (strcmp(cmd, "send") == 0) {
        if (a->npos != 4)
            usage = "syctl send SERVICE TYPE 'JSON' [--durable [--count N]]"
                    " [--prio P] [--ttl TTL] [--key KEY]";
        else if (a->count && !a->durable) {
            fprintf(stderr, "syctl: send --count needs --durable\n");
            return SYCTL_EUSAGE;
        }
    } else if (strcmp(cmd, "tail") == 0) {
        if (a->npos > 2)
            usage = "syctl tail [TOPIC] [--count N]";
    } else if (strcmp(cmd, "queue") == 0) {
        if (a->npos < 2)
            usage = "syctl queue ls | queue peek SERVICE [N]"
                    " | queue inflight SERVICE";
    } else if (strcmp(cmd, "dlq") == 0) {
        if (a->npos < 2)
            usage = "syctl dlq ls [SERVICE] | dlq retry ID|--all SERVICE"
                    " | dlq purge SERVICE|--id ID|--all";
    } else if (strcmp(cmd, "telegram") == 0) {
        if (a->npos < 2)
            usage = "syctl telegram approve CODE | telegram deny CODE | telegram ls";
    } else {
        fprintf(stderr, "syctl: unknown command '%s' (try syctl help)\n", cmd);
        return SYCTL_EUSAGE;
    }
    if (usage) {
        fprintf(stderr, "syctl: usage: %s\n", usage);
        return SYCTL_EUSAGE;
    }
    return 0;
}

/* The positional arguments from `from` on, joined by spaces (malloc'd),
   or NULL if there are none. */
static char *syctl_join_args(const syctl_args_t *a, int from)
{
    size_t n = 1;
    for (int i = from; i < a->npos; i++)
        n += strlen(a->pos[i]) + 1;
    if (from >= a->npos)
        return NULL;
    char *s = calloc(1, n);
    for (int i = from; s && i < a->npos; i++) {
        if (i > from)
            strcat(s, " ");
        strcat(s, a->pos[i]);
    }
    return s;
}

/* syctl chat [--once] [TEXT] and syctl route TEXT [--attach KIND]. */
static int syctl_cmd_chat(const syctl_args_t *a, const config_t *cfg,
                          int timeout)
{
    char *text = syctl_join_args(a, 1);
    int rc;
    if (strcmp(a->pos[0], "route") == 0) {
        if (!text) {
            fprintf(stderr, "syctl: usage: syctl route TEXT [--attach KIND]"
                            " [--json]\n");
            return SYCTL_EUSAGE;
        }
        rc = syctl_chat_route(cfg, text, a->attach, a->json);
    } else {
        syctl_chat_opts_t o = { .once = a->once, .text = text,
                                .name = a->name, .endpoint = a->endpoint,
                                .cert = a->cert,
                                .timeout_ms = a->timeout ? timeout : 0 };
        rc = syctl_chat_run(&o, cfg);
    }
    free(text);
    return rc;
}

/* Builds the actor and runs the command.  cfg is only borrowed. */
static int syctl_run(const syctl_args_t *a, const config_t *cfg, int timeout)
{
    const char *cmd = a->pos[0];
    if (strcmp(cmd, "keys") == 0)
        return syctl_cmd_keys(a, cfg);
    if (strcmp(cmd, "chat") == 0 || strcmp(cmd, "route") == 0)
        return syctl_cmd_chat(a, cfg, timeout);
    int rc = syctl_check_usage(a);
    if (rc)
        return rc;
    char name[64], err[300];
    snprintf(name, sizeof name, "syctl-%ld", (long) getpid());
    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    if (a->endpoint)
        opts.endpoint = a->endpoint;
    if (actor_opts_security(&opts, cfg, a->cert, err, sizeof err)) {
        fprintf(stderr, "syctl: %s\n", err);
        return SYCTL_ECONFIG;
    }
    /* with CURVE the broker knows us by the certificate's name */
    opts.name = opts.cert ? NULL : name;
    opts.credit = 1;
    /* a tool retries quickly: its whole life is the timeout */
    if (opts.reconnect_max_ms > 1000)
        opts.reconnect_max_ms = 1000;
    if (opts.reconnect_min_ms > opts.reconnect_max_ms)
        opts.reconnect_min_ms = opts.reconnect_max_ms;
    syctl_wait_t w = { .json = a->json, .exit_code = SYCTL_OK,
                       .timeout = timeout };
    w.actor = actor_new(&opts);
    if (!w.actor) {
        fprintf(stderr, "syctl: cannot connect to '%s'%s\n", opts.endpoint,
                opts.cert ? " with that certificate (see above)"
                          : ": invalid endpoint");
        return SYCTL_ECONFIG;
    }
    int64_t deadline = zclock_mono() + timeout;
    if (actor_wait_connected(w.actor, timeout) != 0) {
        if (actor_refused(w.actor)) {
            fprintf(stderr, "syctl: the broker at %s refused this device "
                            "(%s; see above)\n", opts.endpoint,
                    actor_name(w.actor));
            rc = SYCTL_EREMOTE;
        } else {
            fprintf(stderr, "syctl: no broker at %s (waited %d ms)\n",
                    opts.endpoint, timeout);
            rc = SYCTL_ENOANSWER;
        }
    } else if (strcmp(cmd, "status") == 0)
        rc = syctl_cmd_status(&w, deadline);
    else if (strcmp(cmd, "send") == 0)
        rc = syctl_cmd_send(&w, a, deadline);
    else if (strcmp(cmd, "queue") == 0)
        rc = syctl_cmd_queue(&w, a, deadline);
    else if (strcmp(cmd, "dlq") == 0)
        rc = syctl_cmd_dlq(&w, a, deadline);
    else if (strcmp(cmd, "telegram") == 0)
        rc = syctl_cmd_telegram(&w, a, cfg, deadline);
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
    if (a.timeout && syctl_fmt_parse_duration(a.timeout, &timeout)) {
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
