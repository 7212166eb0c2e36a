/*  syctl_chat.c -- `syctl chat` and `syctl route` (see syctl_chat.h).
 *
 *  Ideas:
 *  - One actor, one loop: the broker's messages, the heartbeat and (in
 *    interactive mode) the keyboard all arrive as zloop events, so
 *    nothing ever waits on another.
 *  - The outbox seq is the one truth about what the user has seen: every
 *    chat.reply and chat.notice with a seq at or below the last one shown
 *    is dropped, whichever way it came (live, or replayed by chat.sync).
 *    Pieces (chat.token) have no seq: they are a preview; the reply is the
 *    answer.
 *  - The partial answer on screen belongs to one job and one attempt.  A
 *    reset piece, a piece of another attempt, or a `retry` notice makes
 *    it void: the user is told so rather than left to read half an
 *    answer glued to a new one.
 */
#include "tools/syctl_chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "actors/rules.h"
#include "common/json.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"
#include "tools/syctl_fmt.h"

#define CHAT_TEXT_MAX   (64 * 1024)     /* as chat.message's text */
#define CHAT_FRONTDOOR  "frontdoor"

typedef struct {
    actor_t    *actor;
    const char *endpoint;
    bool        once;
    bool        command;        /* once: the text is a /command */
    bool        stream;         /* show pieces: interactive, stdout a tty */
    FILE       *info;           /* notices: stdout, or stderr with --once */
    uint64_t    last_seq;       /* last outbox seq shown */
    unsigned    ups;            /* welcomes so far */
    bool        has_msg;
    uint8_t     msg_id[16];     /* the last chat.message sent */
    bool        done;
    int         exit_code;
    /* the partial answer on screen */
    bool        partial_on;     /* the cursor is after a piece */
    bool        has_partial;
    uint8_t     partial_job[16];
    uint64_t    partial_attempt;
    char       *partial;
    size_t      partial_len, partial_cap;
    /* the line being typed */
    char       *line;
    size_t      line_len;
    bool        line_over;
} chat_t;

/* The fields of a chat.* body the client uses. */
typedef struct {
    bool           has_job;
    uint8_t        job[16];
    const uint8_t *text;        /* NULL: absent */
    size_t         text_len;
    char           error[40];
    char           kind[24];
    bool           has_seq;
    uint64_t       seq;
    uint64_t       attempt;
    bool           reset;
    char           ref[129];    /* "" when absent */
} chat_body_t;

/* ------------------------------------------------------------ output */

/* Writes server text with control characters (C0 but newline and tab,
   DEL, C1) shown as '?'. */
static void chat_write(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            c = '?';
        else if (c == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            c = '?';
            i++;
        }
        fputc(c, f);
    }
}

static void chat_write_str(FILE *f, const char *s)
{
    chat_write(f, (const uint8_t *) s, strlen(s));
}

static void chat_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* ------------------------------------------------------------ bodies */

static void chat_copy_str(const mpval_t *v, char *out, size_t cap)
{
    size_t n = v->len < cap - 1 ? v->len : cap - 1;
    memcpy(out, v->ptr, n);
    out[n] = 0;
}

/* Reads the fields of a (validated) chat.* body. */
static int chat_body_read(const actor_msg_t *m, chat_body_t *b)
{
    mpread_t r;
    mpval_t map, k, v;
    memset(b, 0, sizeof *b);
    mpread_init(&r, m->body, m->body_len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        if ((rc = mpread_next(&r, &k)) != 0 || (rc = mpread_next(&r, &v)) != 0
            || (rc = mpread_skip(&r, &v, 1)) != 0)
            break;
        if (mpval_str_eq(&k, "job") && v.kind == MP_BIN && v.len == 16) {
            b->has_job = true;
            memcpy(b->job, v.ptr, 16);
        } else if (mpval_str_eq(&k, "text") && v.kind == MP_STR) {
            b->text = v.ptr;
            b->text_len = v.len;
        } else if (mpval_str_eq(&k, "error") && v.kind == MP_STR)
            chat_copy_str(&v, b->error, sizeof b->error);
        else if (mpval_str_eq(&k, "kind") && v.kind == MP_STR)
            chat_copy_str(&v, b->kind, sizeof b->kind);
        else if (mpval_str_eq(&k, "seq"))
            b->has_seq = mpval_as_uint(&v, &b->seq);
        else if (mpval_str_eq(&k, "attempt"))
            mpval_as_uint(&v, &b->attempt);
        else if (mpval_str_eq(&k, "reset") && v.kind == MP_BOOL)
            b->reset = v.b;
        else if (mpval_str_eq(&k, "ref") && v.kind == MP_STR)
            chat_copy_str(&v, b->ref, sizeof b->ref);
    }
    if (!b->text)
        b->text = (const uint8_t *) "";
    return rc;
}

/* True if b was shown already (its seq is not above the last); else
   records its seq. */
static bool chat_seen(chat_t *c, const chat_body_t *b)
{
    if (!b->has_seq)
        return false;
    if (b->seq <= c->last_seq)
        return true;
    c->last_seq = b->seq;
    return false;
}

/* With --once, only what answers our own message counts: the front door
   puts the hex of its id in ref (docs/CHAT.md).  Another session's
   answers, or old outbox entries, are not this run's business. */
static bool chat_not_ours(const chat_t *c, const chat_body_t *b)
{
    if (!c->once || !b->ref[0] || !c->has_msg)
        return false;
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", c->msg_id[i]);
    return strcmp(hex, b->ref) != 0;
}

/* ------------------------------------------------------------ partial */

/* Ends the line the pieces are on (the pieces stay remembered). */
static void chat_partial_break(chat_t *c)
{
    if (c->partial_on) {
        fputc('\n', stdout);
        c->partial_on = false;
    }
}

static void chat_partial_clear(chat_t *c)
{
    c->partial_len = 0;
    c->has_partial = false;
}

/* The pieces shown are not (part of) the answer. */
static void chat_partial_void(chat_t *c, const char *why)
{
    if (c->partial_len > 0 && c->stream) {
        chat_partial_break(c);
        fprintf(stdout, "* (the partial answer above is void: %s)\n", why);
        fflush(stdout);
    }
    chat_partial_clear(c);
}

static void chat_partial_add(chat_t *c, const uint8_t *p, size_t n)
{
    if (c->partial_len + n > c->partial_cap) {
        size_t cap = (c->partial_len + n) * 2 + 64;
        char *grown = realloc(c->partial, cap);
        if (!grown)
            return;             /* only the comparison at the end suffers */
        c->partial = grown;
        c->partial_cap = cap;
    }
    memcpy(c->partial + c->partial_len, p, n);
    c->partial_len += n;
}

/* ------------------------------------------------------------ handlers */

static int chat_on_token(actor_t *actor, const actor_msg_t *m, void *arg)
{
    (void) actor;
    chat_t *c = arg;
    chat_body_t b;
    if (!c->stream || chat_body_read(m, &b) != 0 || !b.has_job)
        return 0;
    bool same = c->has_partial && memcmp(c->partial_job, b.job, 16) == 0;
    if (same && b.attempt != c->partial_attempt)
        chat_partial_void(c, "the job is being tried again");
    else if (b.reset)
        chat_partial_void(c, "the job is being tried again");
    else if (!same) {
        chat_partial_break(c);
        chat_partial_clear(c);
    }
    c->has_partial = true;
    memcpy(c->partial_job, b.job, 16);
    c->partial_attempt = b.attempt;
    if (b.text_len) {
        chat_write(stdout, b.text, b.text_len);
        fflush(stdout);
        chat_partial_add(c, b.text, b.text_len);
        c->partial_on = true;
    }
    return 0;
}

static int chat_on_notice(actor_t *actor, const actor_msg_t *m, void *arg)
{
    (void) actor;
    chat_t *c = arg;
    chat_body_t b;
    if (chat_body_read(m, &b) != 0 || chat_seen(c, &b) || chat_not_ours(c, &b))
        return 0;
    if (strcmp(b.kind, "retry") == 0)
        chat_partial_void(c, "the job is being tried again");
    chat_partial_break(c);
    fputs("* ", c->info);
    chat_write(c->info, b.text, b.text_len);
    fputc('\n', c->info);
    fflush(c->info);
    return 0;
}

/* Prints a reply: the answer, or "error CODE: text". */
static void chat_print_reply(chat_t *c, FILE *f, const chat_body_t *b)
{
    if (b->error[0]) {
        chat_partial_break(c);
        fprintf(f, "error %s: ", b->error);
        chat_write(f, b->text, b->text_len);
        fputc('\n', f);
        return;
    }
    /* the pieces already on screen, when they begin the answer, are
       not printed twice */
    size_t skip = 0;
    if (c->partial_on && b->has_job && c->has_partial
        && memcmp(c->partial_job, b->job, 16) == 0
        && c->partial_len <= b->text_len
        && memcmp(c->partial, b->text, c->partial_len) == 0)
        skip = c->partial_len;
    else
        chat_partial_break(c);
    chat_write(f, b->text + skip, b->text_len - skip);
    if (b->text_len == 0 || b->text[b->text_len - 1] != '\n')
        fputc('\n', f);
    c->partial_on = false;
}

/* True for the errors that refuse the message itself (docs/CHAT.md, the
   front door's step 1). */
static bool chat_refusal(const char *error)
{
    return strcmp(error, "TOO_LONG") == 0 || strcmp(error, "BAD_INPUT") == 0
           || strcmp(error, "RATE_LIMITED") == 0;
}

static int chat_on_reply(actor_t *actor, const actor_msg_t *m, void *arg)
{
    chat_t *c = arg;
    chat_body_t b;
    if (chat_body_read(m, &b) != 0 || chat_seen(c, &b) || chat_not_ours(c, &b))
        return 0;
    if (!c->once) {
        chat_print_reply(c, stdout, &b);
        chat_partial_clear(c);
        fflush(stdout);
        return 0;
    }
    bool failed = b.error[0] != 0;
    if (c->command && !chat_refusal(b.error)) {
        /* the command's answer, whatever it reports: /cancel's is the
           cancelled job's CANCELLED reply */
        b.error[0] = 0;
        failed = false;
    }
    chat_print_reply(c, failed ? stderr : stdout, &b);
    fflush(stdout);
    fflush(stderr);
    c->exit_code = failed ? SYCTL_EREMOTE : SYCTL_OK;
    c->done = true;
    actor_stop(actor);
    return 0;
}

/* A refused chat.message. */
static int chat_on_receipt(actor_t *actor, const actor_msg_t *m, void *arg)
{
    chat_t *c = arg;
    actor_receipt_t r;
    if (actor_receipt_parse(m, &r) != 0 || r.ok || !c->has_msg
        || !r.has_corr || memcmp(r.corr, c->msg_id, 16) != 0)
        return 0;
    char why[600];
    if (r.code == SY_ENO_SERVICE)
        snprintf(why, sizeof why, "the front door is not available "
                 "(no %s service is connected to the broker)", CHAT_FRONTDOOR);
    else
        snprintf(why, sizeof why, "%s: %s", r.code_name, r.msg);
    chat_partial_break(c);
    if (c->once) {
        fprintf(stderr, "syctl: ");
        chat_write_str(stderr, why);
        fputc('\n', stderr);
        c->exit_code = SYCTL_EREMOTE;
        c->done = true;
        actor_stop(actor);
    } else {
        fprintf(stdout, "* not sent: ");
        chat_write_str(stdout, why);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return 0;
}

/* chat.sync {after: the last seq shown}. */
static void chat_sync(chat_t *c)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    chat_pack_str(&pk, "after");
    msgpack_pack_uint64(&pk, c->last_seq);
    int rc = actor_send(c->actor, CHAT_FRONTDOOR, "chat.sync",
                        (const uint8_t *) sb.data, sb.size, NULL, NULL);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        sylog_debug("syctl chat: chat.sync not sent: %s", syerr_name(rc));
}

/* True if a presence.join event is about an actor offering frontdoor. */
static bool chat_frontdoor_joined(const actor_msg_t *m)
{
    mpread_t r, at;
    mpval_t map, v, data, list;
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP
        || mpread_map_find(&r, &map, "topic", &v, NULL)
        || !mpval_str_eq(&v, "presence.join")
        || mpread_map_find(&r, &map, "data", &data, &at) || data.kind != MP_MAP
        || mpread_map_find(&at, &data, "services", &list, &r)
        || list.kind != MP_ARRAY)
        return false;
    for (uint32_t i = 0; i < list.len; i++) {
        if (mpread_next(&r, &v) || mpread_skip(&r, &v, 2))
            return false;
        if (mpval_str_eq(&v, CHAT_FRONTDOOR))
            return true;
    }
    return false;
}

/* A front door came (back): what it sent while it was away is in the
   outbox. */
static int chat_on_event(actor_t *actor, const actor_msg_t *m, void *arg)
{
    (void) actor;
    chat_t *c = arg;
    if (chat_frontdoor_joined(m))
        chat_sync(c);
    return 0;
}

static void chat_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    chat_t *c = arg;
    if (!up) {
        if (!c->once) {
            chat_partial_break(c);
            fprintf(stderr, "* connection to the broker lost; reconnecting\n");
        }
        return;
    }
    c->ups++;
    if (c->ups > 1 && !c->once)
        fprintf(stderr, "* reconnected\n");
    /* --once: older outbox entries are not this question's answer */
    if (!(c->once && c->ups == 1))
        chat_sync(c);
}

/* ------------------------------------------------------------ sending */

/* Sends chat.message {text}.  Returns 0 or a code (after a message on
   `f`). */
static int chat_send_text(chat_t *c, const char *text, size_t len, FILE *f)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    chat_pack_str(&pk, "text");
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, text, len);
    int rc = actor_send(c->actor, CHAT_FRONTDOOR, "chat.message",
                        (const uint8_t *) sb.data, sb.size, NULL, c->msg_id);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        c->has_msg = true;
        return 0;
    }
    const char *why = rc == SY_ECLOSED ? "not connected to the broker"
                    : rc == SY_EBAD_BODY ? "the text is not valid UTF-8"
                    : rc == SY_ETOO_LARGE ? "the text is too long"
                    : syerr_text(rc);
    fprintf(f, "%snot sent: %s\n", f == stdout ? "* " : "syctl: ", why);
    fflush(f);
    return rc;
}

/* A typed line is complete. */
static void chat_line_done(chat_t *c)
{
    size_t n = c->line_len;
    while (n > 0 && (c->line[n - 1] == '\r' || c->line[n - 1] == ' '
                     || c->line[n - 1] == '\t'))
        n--;
    if (c->line_over)
        fprintf(stdout, "* not sent: the line is longer than %d bytes\n",
                CHAT_TEXT_MAX);
    else if (n > 0) {
        chat_partial_break(c);
        chat_send_text(c, c->line, n, stdout);
    }
    c->line_len = 0;
    c->line_over = false;
    fflush(stdout);
}

static int chat_on_stdin(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    chat_t *c = arg;
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {               /* EOF (Ctrl-D) or a broken stdin */
        if (c->line_len || c->line_over)
            chat_line_done(c);
        c->done = true;
        actor_stop(c->actor);
        return 0;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            chat_line_done(c);
        else if (c->line_len < CHAT_TEXT_MAX)
            c->line[c->line_len++] = buf[i];
        else
            c->line_over = true;
    }
    return 0;
}

/* ------------------------------------------------------------ setup */

/* Reads all of stdin (--once without text).  Returns a malloc'd,
   NUL-terminated text or NULL (too long: *too_long). */
static char *chat_read_stdin(bool *too_long)
{
    size_t cap = CHAT_TEXT_MAX + 2, len = 0;
    char *text = malloc(cap);
    *too_long = false;
    if (!text)
        return NULL;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, text + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
        if (len == cap - 1) {
            *too_long = true;
            free(text);
            return NULL;
        }
    }
    text[len] = 0;
    return text;
}

/* The actor, as the other syctl commands make it. */
static actor_t *chat_actor(const syctl_chat_opts_t *o, const config_t *cfg,
                           const char **endpoint, int *code)
{
    char name[64], err[300];
    snprintf(name, sizeof name, "syctl-%ld", (long) getpid());
    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    if (o->endpoint)
        opts.endpoint = o->endpoint;
    *endpoint = opts.endpoint;
    if (actor_opts_security(&opts, cfg, o->cert, err, sizeof err)) {
        fprintf(stderr, "syctl: %s\n", err);
        *code = SYCTL_ECONFIG;
        return NULL;
    }
    /* with CURVE the broker knows us by the certificate's name */
    opts.name = o->name ? o->name : opts.cert ? NULL : name;
    opts.credit = 1;
    if (o->once && opts.reconnect_max_ms > 1000)
        opts.reconnect_max_ms = 1000;
    if (opts.reconnect_min_ms > opts.reconnect_max_ms)
        opts.reconnect_min_ms = opts.reconnect_max_ms;
    actor_t *a = actor_new(&opts);
    if (!a) {
        fprintf(stderr, "syctl: cannot connect to '%s'%s\n", opts.endpoint,
                opts.cert ? " with that certificate (see above)"
                          : ": invalid endpoint or name");
        *code = SYCTL_ECONFIG;
    }
    return a;
}

static void chat_handlers(chat_t *c)
{
    actor_on(c->actor, "chat.token", chat_on_token, c);
    actor_on(c->actor, "chat.notice", chat_on_notice, c);
    actor_on(c->actor, "chat.reply", chat_on_reply, c);
    actor_on(c->actor, "sy.receipt", chat_on_receipt, c);
    actor_on(c->actor, "sy.event", chat_on_event, c);
    actor_on_state(c->actor, chat_on_state, c);
    actor_subscribe(c->actor, "presence.join");
}

/* Why the broker could not be reached, on stderr. */
static void chat_no_broker(chat_t *c, int waited)
{
    if (actor_refused(c->actor))
        fprintf(stderr, "syctl: the broker at %s refused this device (%s; "
                "see above)\n", c->endpoint, actor_name(c->actor));
    else
        fprintf(stderr, "syctl: no broker at %s (waited %d ms)\n",
                c->endpoint, waited);
}

static int chat_remaining(int64_t deadline)
{
    int64_t left = deadline - zclock_mono();
    return left > 0 ? (int) (left > 86400000 ? 86400000 : left) : 0;
}

/* --once: send the text, wait for the final reply. */
static int chat_once(chat_t *c, const char *text, int timeout)
{
    int64_t deadline = zclock_mono() + timeout;
    if (actor_wait_connected(c->actor, chat_remaining(deadline)) != 0) {
        chat_no_broker(c, timeout);
        return SYCTL_EREMOTE;
    }
    c->command = text[0] == '/';
    int rc = chat_send_text(c, text, strlen(text), stderr);
    if (rc)
        return rc == SY_EBAD_BODY || rc == SY_ETOO_LARGE ? SYCTL_EUSAGE
                                                         : SYCTL_EREMOTE;
    while (!c->done && !zsys_interrupted) {
        int left = chat_remaining(deadline);
        if (left == 0 || actor_run_for(c->actor, left) == SY_ETIMEOUT)
            break;
    }
    if (c->done)
        return c->exit_code;
    fprintf(stderr, "syctl: no answer within %d ms\n", timeout);
    return SYCTL_EREMOTE;
}

/* Interactive: lines from stdin until EOF or SIGINT. */
static int chat_interactive(chat_t *c, const char *text, int timeout)
{
    c->line = malloc(CHAT_TEXT_MAX + 1);
    if (!c->line) {
        fprintf(stderr, "syctl: out of memory\n");
        return SYCTL_ECONFIG;
    }
    /* connected first: lines read before would find no connection */
    if (actor_wait_connected(c->actor, timeout) != 0) {
        chat_no_broker(c, timeout);
        if (actor_refused(c->actor))
            return SYCTL_EREMOTE;
        fprintf(stderr, "* still trying; type away, lines are sent once "
                        "connected\n");
    } else if (isatty(STDIN_FILENO))
        fprintf(stderr, "* connected to %s as %s; /status /queue /cancel "
                "/new, Ctrl-D to quit\n", c->endpoint, actor_name(c->actor));
    if (text && *text)
        chat_send_text(c, text, strlen(text), stdout);
    zmq_pollitem_t item = { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 };
    if (zloop_poller(actor_loop(c->actor), &item, chat_on_stdin, c) != 0) {
        fprintf(stderr, "syctl: cannot read stdin\n");
        return SYCTL_ECONFIG;
    }
    actor_run(c->actor);
    chat_partial_break(c);
    fflush(stdout);
    return SYCTL_OK;
}

int syctl_chat_run(const syctl_chat_opts_t *o, const config_t *cfg)
{
    int timeout = o->timeout_ms > 0 ? o->timeout_ms
                                    : (int) config_int(cfg, "chat/timeout");
    char *owned = NULL;
    const char *text = o->text;
    if (o->once && !text) {
        bool too_long;
        text = owned = chat_read_stdin(&too_long);
        if (!text) {
            fprintf(stderr, "syctl: %s\n", too_long
                    ? "the text is longer than 64K" : "out of memory");
            return SYCTL_EUSAGE;
        }
        size_t n = strlen(owned);
        while (n > 0 && (owned[n - 1] == '\n' || owned[n - 1] == '\r'))
            owned[--n] = 0;
    }
    if (o->once && !*text) {
        fprintf(stderr, "syctl: chat --once: nothing to send (give the "
                        "text as arguments or on stdin)\n");
        free(owned);
        return SYCTL_EUSAGE;
    }
    if (text && strlen(text) > CHAT_TEXT_MAX) {
        fprintf(stderr, "syctl: the text is longer than 64K\n");
        free(owned);
        return SYCTL_EUSAGE;
    }
    chat_t c = { .once = o->once, .info = o->once ? stderr : stdout,
                 .exit_code = SYCTL_OK };
    c.stream = !o->once && isatty(STDOUT_FILENO);
    int rc = 0;
    c.actor = chat_actor(o, cfg, &c.endpoint, &rc);
    if (c.actor) {
        chat_handlers(&c);
        rc = o->once ? chat_once(&c, text, timeout)
                     : chat_interactive(&c, text, o->timeout_ms > 0
                                        ? o->timeout_ms
                                        : (int) config_int(cfg, "syctl/timeout"));
    }
    actor_destroy(&c.actor);
    free(c.partial);
    free(c.line);
    free(owned);
    return rc;
}

/* ------------------------------------------------------------ route */

int syctl_chat_route(const config_t *cfg, const char *text,
                     const char *attach, bool json)
{
    rules_t *rules = NULL;
    char err[400];
    if (rules_new(cfg, &rules, err, sizeof err)) {
        fprintf(stderr, "syctl: %s: %s\n", config_source(cfg), err);
        return SYCTL_ECONFIG;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (attach) {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 1);
        chat_pack_str(&pk, "kind");
        chat_pack_str(&pk, attach);
    }
    rules_result_t res;
    int rc = rules_classify(rules, text, strlen(text),
                            (const uint8_t *) sb.data, sb.size, &res);
    rules_destroy(&rules);
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        fprintf(stderr, "syctl: cannot classify: %s\n", syerr_text(rc));
        return SYCTL_EUSAGE;
    }
    const char *cls = rules_class_name(res.cls);
    if (!json) {
        printf("%s  %s\n", cls, res.why);
        msgpack_sbuffer_destroy(&sb);
        return SYCTL_OK;
    }
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 3);
    chat_pack_str(&pk, "class");
    chat_pack_str(&pk, cls);
    chat_pack_str(&pk, "why");
    chat_pack_str(&pk, res.why);
    chat_pack_str(&pk, "service");
    chat_pack_str(&pk, res.cls == RULES_HEAVY ? "inference"
                     : res.cls == RULES_LIGHT ? "light" : "cron");
    char *out = NULL;
    if (json_from_msgpack((const uint8_t *) sb.data, sb.size, &out) == 0)
        printf("%s\n", out);
    free(out);
    msgpack_sbuffer_destroy(&sb);
    return SYCTL_OK;
}
