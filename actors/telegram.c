/*  telegram.c -- sy-telegram, the Telegram bridge (service telegram).
 *
 *  Long-polls the Bot API's getUpdates, hands each message of an allowed
 *  chat to the front door as a durable chat.message, and sends the front
 *  door's answers (chat.reply, chat.notice, streamed chat.token) back to
 *  the chat.  docs/TELEGRAM.md is the operator's view; docs/CHAT.md the
 *  contract with the front door; actors/tgapi.c the Bot API's wire and
 *  actors/tgstore.c the store.
 *
 *  Ideas:
 *    - Nothing blocks the loop: every Bot API call goes through
 *      actors/httpc.c (curl multi in the zloop), so heartbeats, receipts
 *      and other chats go on while a long poll waits.
 *    - Exactly once into the switchyard, across crashes: updates of a
 *      batch are handled one at a time, in update_id order; a message is
 *      sent durably with key tg:<update_id>, and the offset (the next
 *      update_id) is written to LMDB only after the broker's receipt (ok,
 *      or DUPLICATE: it was stored before a crash).  The next getUpdates
 *      asks from that offset, which also tells Telegram to forget what
 *      came before.  A crash before the offset moved makes Telegram serve
 *      the update again and the key makes it a DUPLICATE; an update below
 *      the persisted offset is skipped.
 *    - Only paired chats reach the switchyard.  An unknown chat gets a
 *      pairing code (tgstore) that the operator approves with syctl
 *      telegram approve CODE (telegram.approve).
 *    - Answers go out through one queue per chat, one request at a time,
 *      so a chat sees its answers in order; token buckets bound the sends
 *      per chat and over all chats (queue, never drop).  A durable answer
 *      is held (its lease kept alive) until Telegram accepted every piece,
 *      then acked; a refusal that can never succeed (400, 403) is acked
 *      with an error logged.  Transient failures (429, 5xx, network) are
 *      retried in this process after retry_after or a doubling backoff,
 *      the delivery still held: retrying through the broker (nack) would
 *      reorder the chat's answers and spend the message's attempts, so a
 *      Telegram outage would dead-letter answers.  Held deliveries are
 *      handed back (nack, requeue) when the bridge stops.
 *    - Streaming: the first chat.token of a job sends a preview message
 *      ("…" + the text so far), later ones edit it at most every
 *      telegram/edit_interval per chat; the final chat.reply replaces it
 *      (its first piece is an edit of the preview).
 *
 *  Secrets: the bot token is read from telegram/token_file (mode 0600,
 *  refused otherwise), lives only in the URL prefix built here, is wiped
 *  at exit and never logged (logs say "getUpdates" and the status).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>
#include <sodium.h>

#include "actors/actor.h"
#include "actors/httpc.h"
#include "actors/tgapi.h"
#include "actors/tgstore.h"
#include "common/cliargs.h"
#include "common/config.h"
#include "common/secretfile.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define TG_EXIT_USAGE  2
#define TG_EXIT_CONFIG 4

#define TG_CREDIT           32
#define TG_TOKEN_MAX        256
#define TG_FRONTDOOR        "frontdoor"
#define TG_RECEIPT_WAIT_MS  10000       /* then the update is sent again */
#define TG_SEND_TIMEOUT_MS  30000       /* one sendMessage / edit */
#define TG_EMPTY_POLL_MS    250         /* pause after an instant empty poll */
#define TG_REMIND_MS        (3600 * 1000)
#define TG_PREVIEW_UNITS    (TGAPI_MSG_LIMIT - 1)   /* "…" takes one */
#define TG_PREVIEW_BYTES    (TG_PREVIEW_UNITS * 4)
#define TG_PREVIEW_IDLE_MS  (10 * 60 * 1000)
#define TG_PREVIEWS_MAX     256
#define TG_LEASE_MS         60000
#define TG_LEASE_EVERY_MS   15000
#define TG_DONE_RING        64
#define TG_ANSWER_TEXT_MAX  4000
#define TG_LIST_MAX         1000

static const char tg_ellipsis[] = "\xe2\x80\xa6";      /* … */

typedef struct {
    const char *service;            /* telegram/name: service and channel */
    const char *api_url;
    const char *store;
    const char *token_file;
    uint32_t    poll_timeout_s;
    uint32_t    edit_interval;
    uint32_t    chat_rate, global_rate;
    uint32_t    retry_min, retry_max;
    uint64_t    pairing_ttl;
} tg_cfg_t;

/* A token bucket: `rate` sends per second, bursts of `cap`. */
typedef struct {
    double  tokens, cap, rate;
    int64_t last;                   /* zclock_mono() of the last refill */
} tg_bucket_t;

typedef struct _tg_t tg_t;
typedef struct _tg_chat_t tg_chat_t;

typedef enum { ITEM_TEXT, ITEM_PREVIEW } tg_item_kind_t;

/* One thing to show in a chat: a text (split into pieces as it goes
   out), or the current state of a job's preview. */
typedef struct {
    tg_item_kind_t kind;
    void     *handle;               /* in the chat's queue */
    char     *text;                 /* ITEM_TEXT, malloc'd */
    size_t    len, off;             /* bytes; off: sent so far */
    size_t    next_off;             /* end of the piece in flight */
    bool      editing;              /* the piece in flight is an edit */
    bool      has_delivery;
    uint8_t   delivery[16];         /* durable delivery acked at the end */
    char      job[33];              /* final reply of this job, or preview */
    const char *what;               /* "reply", "notice", ... for logs */
} tg_item_t;

typedef struct {
    char       job[33];
    tg_chat_t *chat;
    uint64_t   attempt;
    char      *text;                /* the answer so far (first bytes) */
    size_t     len;
    size_t     disp;                /* bytes of text that fit the preview */
    size_t     shown;               /* bytes shown in the message */
    size_t     sending;             /* bytes in the request in flight */
    bool       sent_once;           /* shown is meaningful */
    int64_t    message_id;          /* 0: not sent yet */
    bool       queued;              /* an ITEM_PREVIEW waits or is in flight */
    bool       failed;              /* Telegram refused it: no more edits */
    bool       done;                /* the final reply came: no more tokens */
    int64_t    touched;
} tg_preview_t;

struct _tg_chat_t {
    tg_t        *tg;
    char         chat[TGSTORE_CHAT_MAX + 1];
    zlistx_t    *items;             /* tg_item_t, FIFO; the head in flight */
    httpc_req_t *req;               /* the head's request, or NULL */
    tg_bucket_t  bucket;
    int64_t      not_before;        /* paused (429, backoff) until */
    uint32_t     backoff;
    int64_t      last_edit;         /* last preview request */
};

struct _tg_t {
    tg_cfg_t     cfg;
    actor_t     *actor;
    httpc_t     *http;
    tgstore_t   *store;
    char        *base;              /* {api_url}/bot{TOKEN}/ -- secret */
    const char  *headers[2];
    bool         stopping;

    /* polling and forwarding */
    httpc_req_t *poll_req;
    int          poll_timer;        /* zloop timer id, -1: none */
    uint32_t     poll_backoff;
    bool         auth_logged;
    int64_t      poll_started;
    tgapi_updates_t batch;
    size_t       batch_i;
    bool         fwd_sent;          /* batch_i's chat.message awaits receipt */
    uint8_t      fwd_id[16];
    int          fwd_timer;
    uint32_t     fwd_backoff;

    /* answers */
    zhashx_t    *chats;             /* chat id -> tg_chat_t */
    zhashx_t    *previews;          /* job hex -> tg_preview_t */
    tg_bucket_t  global;
    int          pump_timer;
    int64_t      pump_at;
    uint8_t      done_ring[TG_DONE_RING][16];   /* finished, ack not sent */
    size_t       done_n, done_next;
};

static void tg_pump(tg_t *tg);
static void tg_poll_start(tg_t *tg);
static void tg_batch_next(tg_t *tg);

/* ------------------------------------------------------------ helpers */

static uint32_t tg_grow(uint32_t backoff, uint32_t lo, uint32_t hi)
{
    uint64_t next = backoff ? (uint64_t) backoff * 2 : lo;
    return next > hi ? hi : (uint32_t) next;
}

static void tg_bucket_init(tg_bucket_t *b, uint32_t rate)
{
    b->rate = rate ? rate : 1;
    b->cap = b->rate;
    b->tokens = b->cap;
    b->last = zclock_mono();
}

static void tg_bucket_fill(tg_bucket_t *b, int64_t now)
{
    if (now > b->last) {
        b->tokens += (double) (now - b->last) * b->rate / 1000.0;
        if (b->tokens > b->cap)
            b->tokens = b->cap;
        b->last = now;
    }
}

/* When the bucket has a whole token. */
static int64_t tg_bucket_ready(tg_bucket_t *b, int64_t now)
{
    tg_bucket_fill(b, now);
    if (b->tokens >= 1.0)
        return now;
    return now + (int64_t) ((1.0 - b->tokens) * 1000.0 / b->rate) + 1;
}

/* The URL of a Bot API method into out; wipe it after use. */
static void tg_url(const tg_t *tg, const char *method, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", tg->base, method);
}

static void tg_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void tg_pack_cstr(msgpack_packer *pk, const char *s)
{
    tg_pack_str(pk, s, strlen(s));
}

/* Remembers a delivery finished while its ack could not be sent (lost
   session): the broker gives it again and it is acked then, unsent. */
static void tg_done_remember(tg_t *tg, const uint8_t id[16])
{
    memcpy(tg->done_ring[tg->done_next], id, 16);
    tg->done_next = (tg->done_next + 1) % TG_DONE_RING;
    if (tg->done_n < TG_DONE_RING)
        tg->done_n++;
}

static bool tg_done_seen(const tg_t *tg, const uint8_t id[16])
{
    for (size_t i = 0; i < tg->done_n; i++)
        if (memcmp(tg->done_ring[i], id, 16) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ fields */

/* The fields of the bodies this bridge reads (validated by the runtime
   against the message table before a handler sees them). */
typedef struct {
    mpval_t  text, addr, user, kind, error, code;
    bool     has_text, has_addr, has_user, has_kind, has_error, has_code;
    bool     has_job;
    uint8_t  job[16];
    bool     has_attempt;
    uint64_t attempt;
    bool     reset, deny;
} tg_fields_t;

static int tg_fields_read(const uint8_t *body, size_t len, tg_fields_t *f)
{
    mpread_t r;
    mpval_t m, k, v;
    memset(f, 0, sizeof *f);
    mpread_init(&r, body, len);
    if (len == 0)
        return 0;
    if (mpread_next(&r, &m) || m.kind != MP_MAP)
        return SY_EBAD_BODY;
    for (uint32_t i = 0; i < m.len; i++) {
        if (mpread_next(&r, &k) || mpread_next(&r, &v))
            return SY_EBAD_BODY;
        struct { const char *name; mpval_t *val; bool *has; } strs[] = {
            { "text", &f->text, &f->has_text },
            { "addr", &f->addr, &f->has_addr },
            { "user", &f->user, &f->has_user },
            { "kind", &f->kind, &f->has_kind },
            { "error", &f->error, &f->has_error },
            { "code", &f->code, &f->has_code },
        };
        for (size_t s = 0; s < sizeof strs / sizeof strs[0]; s++)
            if (v.kind == MP_STR && mpval_str_eq(&k, strs[s].name)) {
                *strs[s].val = v;
                *strs[s].has = true;
            }
        if (mpval_str_eq(&k, "job") && v.kind == MP_BIN && v.len == 16) {
            memcpy(f->job, v.ptr, 16);
            f->has_job = true;
        } else if (mpval_str_eq(&k, "attempt"))
            f->has_attempt = mpval_as_uint(&v, &f->attempt);
        else if (mpval_str_eq(&k, "reset") && v.kind == MP_BOOL)
            f->reset = v.b;
        else if (mpval_str_eq(&k, "deny") && v.kind == MP_BOOL)
            f->deny = v.b;
        if (mpread_skip(&r, &v, 1))
            return SY_EBAD_BODY;
    }
    return 0;
}

/* A string field into out (cap bytes); false when absent or too long. */
static bool tg_field_cstr(const mpval_t *v, bool has, char *out, size_t cap)
{
    out[0] = 0;
    if (!has || v->len >= cap || memchr(v->ptr, 0, v->len))
        return false;
    memcpy(out, v->ptr, v->len);
    out[v->len] = 0;
    return true;
}

/* ------------------------------------------------------------ chats */

static void tg_item_destroy(tg_item_t **ip)
{
    if (!*ip)
        return;
    free((*ip)->text);
    free(*ip);
    *ip = NULL;
}

static tg_chat_t *tg_chat(tg_t *tg, const char *chat)
{
    tg_chat_t *c = zhashx_lookup(tg->chats, chat);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tg = tg;
    snprintf(c->chat, sizeof c->chat, "%s", chat);
    c->items = zlistx_new();
    if (!c->items) {
        free(c);
        return NULL;
    }
    tg_bucket_init(&c->bucket, tg->cfg.chat_rate);
    zhashx_insert(tg->chats, chat, c);
    return c;
}

static void tg_chat_free(tg_chat_t **cp)
{
    tg_chat_t *c = *cp;
    if (!c)
        return;
    httpc_cancel(c->tg->http, &c->req);
    tg_item_t *it = zlistx_first(c->items);
    while (it) {
        tg_item_destroy(&it);
        it = zlistx_next(c->items);
    }
    zlistx_destroy(&c->items);
    free(c);
    *cp = NULL;
}

/* Queues a text for chat (copied).  delivery (may be NULL) is acked
   once every piece went out; job (may be NULL) names the job whose
   preview the text replaces.  Returns 0 or SY_ENOMEM. */
static int tg_enqueue_text(tg_t *tg, const char *chat, const char *text,
                           size_t len, const uint8_t *delivery,
                           const char *job, const char *what)
{
    tg_chat_t *c = tg_chat(tg, chat);
    tg_item_t *it = calloc(1, sizeof *it);
    if (!c || !it || !(it->text = malloc(len + 1))) {
        free(it);
        return SY_ENOMEM;
    }
    it->kind = ITEM_TEXT;
    memcpy(it->text, text, len);
    it->text[len] = 0;
    it->len = len;
    it->what = what;
    if (delivery) {
        it->has_delivery = true;
        memcpy(it->delivery, delivery, 16);
    }
    if (job)
        snprintf(it->job, sizeof it->job, "%s", job);
    it->handle = zlistx_add_end(c->items, it);
    tg_pump(tg);
    return 0;
}

/* ------------------------------------------------------------ previews */

static void tg_preview_drop(tg_t *tg, tg_preview_t *p)
{
    char job[33];
    snprintf(job, sizeof job, "%s", p->job);
    free(p->text);
    zhashx_delete(tg->previews, job);
    free(p);
}

/* Removes p's ITEM_PREVIEW from its chat's queue if it is not in flight. */
static void tg_preview_unqueue(tg_preview_t *p)
{
    tg_chat_t *c = p->chat;
    tg_item_t *head = zlistx_first(c->items);
    for (tg_item_t *it = head; it; it = zlistx_next(c->items)) {
        if (it->kind != ITEM_PREVIEW || strcmp(it->job, p->job) != 0
            || (it == head && c->req))
            continue;
        zlistx_delete(c->items, it->handle);
        tg_item_destroy(&it);
        p->queued = false;
        return;
    }
}

static void tg_preview_queue(tg_t *tg, tg_preview_t *p)
{
    tg_item_t *it = calloc(1, sizeof *it);
    if (!it)
        return;
    it->kind = ITEM_PREVIEW;
    it->what = "preview";
    snprintf(it->job, sizeof it->job, "%s", p->job);
    it->handle = zlistx_add_end(p->chat->items, it);
    p->queued = true;
    (void) tg;
}

/* Drops the oldest preview when there are too many (jobs whose final
   answer never came). */
static void tg_previews_trim(tg_t *tg)
{
    int64_t now = zclock_mono();
    tg_preview_t *old = NULL;
    for (tg_preview_t *p = zhashx_first(tg->previews); p;
         p = zhashx_next(tg->previews)) {
        if (p->queued)
            continue;
        if (now - p->touched > TG_PREVIEW_IDLE_MS
            || (zhashx_size(tg->previews) > TG_PREVIEWS_MAX
                && (!old || p->touched < old->touched)))
            old = p;
    }
    if (old)
        tg_preview_drop(tg, old);
}

static tg_preview_t *tg_preview_get(tg_t *tg, tg_chat_t *c, const char *job)
{
    tg_preview_t *p = zhashx_lookup(tg->previews, job);
    if (p)
        return p;
    tg_previews_trim(tg);
    p = calloc(1, sizeof *p);
    if (!p || !(p->text = malloc(TG_PREVIEW_BYTES + 1))) {
        free(p);
        return NULL;
    }
    snprintf(p->job, sizeof p->job, "%s", job);
    p->chat = c;
    p->touched = zclock_mono();
    zhashx_insert(tg->previews, job, p);
    return p;
}

/* Adds a piece of text to a preview (only its first bytes are shown). */
static void tg_preview_add(tg_preview_t *p, const char *s, size_t n)
{
    size_t room = TG_PREVIEW_BYTES - p->len;
    if (n > room)
        n = room;
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = 0;
    p->disp = tgapi_prefix_units(p->text, p->len, TG_PREVIEW_UNITS);
}

/* ------------------------------------------------------------ sending */

static void tg_send_done(httpc_req_t *req, const httpc_result_t *res,
                         void *arg);

/* Starts a sendMessage or editMessageText for chat c.  Returns 0 or an
   error (nothing started). */
static int tg_call(tg_chat_t *c, int64_t edit_id, const char *text,
                   size_t len)
{
    tg_t *tg = c->tg;
    char *body = edit_id ? tgapi_body_edit(c->chat, edit_id, text, len)
                         : tgapi_body_send(c->chat, text, len);
    if (!body)
        return SY_ENOMEM;
    char url[TG_TOKEN_MAX + 512];
    tg_url(tg, edit_id ? "editMessageText" : "sendMessage", url, sizeof url);
    httpc_opts_t o = { .url = url, .headers = tg->headers, .body = body,
                       .body_len = strlen(body),
                       .total_timeout_ms = TG_SEND_TIMEOUT_MS,
                       .max_body = 1024 * 1024 };
    httpc_cb_t cb = { .on_done = tg_send_done, .arg = c };
    int rc = httpc_start(tg->http, &o, &cb, &c->req);
    sodium_memzero(url, sizeof url);
    free(body);
    return rc;
}

/* The preview text "…" + the shown part, into a malloc'd string. */
static char *tg_preview_text(const tg_preview_t *p, size_t *len)
{
    size_t e = sizeof tg_ellipsis - 1;
    char *s = malloc(e + p->disp + 1);
    if (!s)
        return NULL;
    memcpy(s, tg_ellipsis, e);
    memcpy(s + e, p->text, p->disp);
    s[e + p->disp] = 0;
    *len = e + p->disp;
    return s;
}

/* Starts the head item of c.  Returns 1 when a request started, 0 when
   the head finished without one (it was removed), or an error. */
static int tg_start_head(tg_chat_t *c, tg_item_t *it)
{
    tg_t *tg = c->tg;
    if (it->kind == ITEM_PREVIEW) {
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (!p || p->failed || p->done
            || (p->sent_once && p->disp == p->shown)) {
            if (p)
                p->queued = false;
            return 0;
        }
        size_t len = 0;
        char *s = tg_preview_text(p, &len);
        if (!s)
            return SY_ENOMEM;
        p->sending = p->disp;
        c->last_edit = zclock_mono();
        int rc = tg_call(c, p->message_id, s, len);
        free(s);
        return rc ? rc : 1;
    }
    /* a text: the next piece that is not only white space */
    while (it->off < it->len) {
        size_t n = tgapi_split_next(it->text + it->off, it->len - it->off,
                                    TGAPI_MSG_LIMIT);
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            blank = it->text[it->off + i] != 0
                 && strchr(" \t\r\n", it->text[it->off + i]) != NULL;
        if (!blank) {
            it->next_off = it->off + n;
            break;
        }
        it->off += n;
    }
    if (it->off >= it->len)
        return 0;
    tg_preview_t *p = it->job[0] ? zhashx_lookup(tg->previews, it->job)
                                 : NULL;
    it->editing = p && p->message_id && !p->failed;
    int rc = tg_call(c, it->editing ? p->message_id : 0, it->text + it->off,
                     it->next_off - it->off);
    return rc ? rc : 1;
}

/* Settles a finished item's delivery and frees the item. */
static void tg_item_finish(tg_chat_t *c, tg_item_t *it, bool ok)
{
    tg_t *tg = c->tg;
    if (it->kind == ITEM_TEXT && it->job[0]) {
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (p && !p->queued)
            tg_preview_drop(tg, p);
    }
    if (it->has_delivery) {
        int rc = actor_ack(tg->actor, it->delivery);
        if (rc == SY_ECLOSED)
            tg_done_remember(tg, it->delivery);
        else if (rc)
            sylog_debug("telegram: ack not sent: %s", syerr_name(rc));
    }
    (void) ok;
    zlistx_delete(c->items, it->handle);
    tg_item_destroy(&it);
}

/* The request of c's head ended with Telegram's answer r (or none). */
static void tg_head_success(tg_chat_t *c, tg_item_t *it,
                            const tgapi_resp_t *r)
{
    tg_t *tg = c->tg;
    c->backoff = 0;
    if (it->kind == ITEM_PREVIEW) {
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (p) {
            if (!p->message_id && r->has_message_id)
                p->message_id = r->message_id;
            if (!p->message_id)
                p->failed = true;       /* nothing to edit later */
            p->shown = p->sending;
            p->sent_once = true;
            p->queued = false;
        }
        zlistx_delete(c->items, it->handle);
        tg_item_destroy(&it);
        return;
    }
    it->off = it->next_off;
    it->editing = false;
    if (it->off >= it->len) {
        tg_item_finish(c, it, true);
        return;
    }
    /* more pieces: they are new messages, not edits */
    if (it->job[0]) {
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (p && !p->queued)
            tg_preview_drop(tg, p);
        it->job[0] = 0;
    }
}

/* Telegram refused for good (400, 403, 404). */
static void tg_head_refused(tg_chat_t *c, tg_item_t *it, long status,
                            const tgapi_resp_t *r)
{
    tg_t *tg = c->tg;
    if (it->kind == ITEM_PREVIEW) {
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (p) {
            p->failed = true;
            p->queued = false;
        }
        sylog_info("telegram: chat %s: preview refused (%ld %s)", c->chat,
                   status, r->description);
        zlistx_delete(c->items, it->handle);
        tg_item_destroy(&it);
        return;
    }
    if (it->editing) {
        /* the preview is gone (deleted by the user): send instead */
        tg_preview_t *p = zhashx_lookup(tg->previews, it->job);
        if (p)
            p->failed = true;
        it->editing = false;
        sylog_info("telegram: chat %s: preview not editable (%ld %s): the "
                   "answer is sent as a new message", c->chat, status,
                   r->description);
        return;
    }
    sylog_error("telegram: chat %s: %s refused by Telegram (%ld %s): "
                "dropped", c->chat, it->what, status,
                r->description[0] ? r->description : "no description");
    tg_item_finish(c, it, false);
}

static void tg_send_done(httpc_req_t *req, const httpc_result_t *res,
                         void *arg)
{
    (void) req;
    tg_chat_t *c = arg;
    tg_t *tg = c->tg;
    c->req = NULL;
    tg_item_t *it = zlistx_first(c->items);
    if (!it) {
        tg_pump(tg);
        return;
    }
    tgapi_resp_t r;
    bool parsed = res->rc == 0
        && tgapi_resp_parse(res->body, res->body_len, &r, NULL, 0) == 0;
    if (!parsed)
        memset(&r, 0, sizeof r);
    int64_t now = zclock_mono();
    if (res->rc == 0 && res->status == 200 && parsed && r.ok)
        tg_head_success(c, it, &r);
    else if (res->rc == 0 && res->status == 400 && tgapi_not_modified(&r))
        tg_head_success(c, it, &r);
    else if (res->rc == 0 && (res->status == 400 || res->status == 403
                              || res->status == 404))
        tg_head_refused(c, it, res->status, &r);
    else if (res->rc == 0 && res->status == 429) {
        uint32_t s = r.retry_after ? r.retry_after : 1;
        c->not_before = now + (int64_t) s * 1000;
        sylog_warn("telegram: chat %s: 429 too many requests: waiting %u s",
                   c->chat, s);
    } else {
        c->backoff = tg_grow(c->backoff, tg->cfg.retry_min, tg->cfg.retry_max);
        c->not_before = now + c->backoff;
        if (res->rc)
            sylog_warn("telegram: chat %s: %s not sent (%s): retry in %u ms",
                       c->chat, it->what, res->err, c->backoff);
        else
            sylog_warn("telegram: chat %s: %s not sent (HTTP %ld%s%s): retry "
                       "in %u ms", c->chat, it->what, res->status,
                       r.description[0] ? " " : "", r.description,
                       c->backoff);
    }
    tg_pump(tg);
}

/* ------------------------------------------------------------ pump */

static int tg_pump_cb(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    tg_t *tg = arg;
    tg->pump_timer = -1;
    tg_pump(tg);
    return 0;
}

static void tg_pump_at(tg_t *tg, int64_t wake, int64_t now)
{
    if (tg->pump_timer >= 0 && tg->pump_at <= wake)
        return;
    if (tg->pump_timer >= 0)
        zloop_timer_end(actor_loop(tg->actor), tg->pump_timer);
    int64_t ms = wake - now;
    tg->pump_timer = zloop_timer(actor_loop(tg->actor),
                                 ms < 1 ? 1 : (size_t) ms, 1, tg_pump_cb, tg);
    tg->pump_at = wake;
}

/* Queues the preview edits that are due; returns the next time one
   will be (INT64_MAX: none). */
static int64_t tg_pump_previews(tg_t *tg, int64_t now)
{
    int64_t wake = INT64_MAX;
    for (tg_preview_t *p = zhashx_first(tg->previews); p;
         p = zhashx_next(tg->previews)) {
        if (p->queued || p->failed || p->done || !p->message_id
            || p->disp == p->shown)
            continue;
        int64_t due = p->chat->last_edit + tg->cfg.edit_interval;
        if (due <= now)
            tg_preview_queue(tg, p);
        else if (due < wake)
            wake = due;
    }
    return wake;
}

/* Starts what the rates and pauses allow; arms the timer for the rest. */
static void tg_pump(tg_t *tg)
{
    if (tg->stopping)
        return;
    int64_t now = zclock_mono();
    int64_t wake = tg_pump_previews(tg, now);
    for (tg_chat_t *c = zhashx_first(tg->chats); c;
         c = zhashx_next(tg->chats)) {
        tg_item_t *it;
        while (!c->req && (it = zlistx_first(c->items))) {
            if (now < c->not_before) {
                wake = c->not_before < wake ? c->not_before : wake;
                break;
            }
            int64_t ready = tg_bucket_ready(&c->bucket, now);
            int64_t g = tg_bucket_ready(&tg->global, now);
            ready = g > ready ? g : ready;
            if (ready > now) {
                wake = ready < wake ? ready : wake;
                break;
            }
            int rc = tg_start_head(c, it);
            if (rc == 0) {
                if (it->kind == ITEM_TEXT)
                    tg_item_finish(c, it, true);
                else {
                    zlistx_delete(c->items, it->handle);
                    tg_item_destroy(&it);
                }
                continue;
            }
            if (rc < 0) {
                c->backoff = tg_grow(c->backoff, tg->cfg.retry_min,
                                     tg->cfg.retry_max);
                c->not_before = now + c->backoff;
                sylog_warn("telegram: chat %s: cannot start a request (%s)",
                           c->chat, syerr_name(rc));
                continue;
            }
            c->bucket.tokens -= 1.0;
            tg->global.tokens -= 1.0;
        }
    }
    if (wake != INT64_MAX)
        tg_pump_at(tg, wake, now);
}

/* ------------------------------------------------------------ answers */

/* The chat an answer goes to, if it is allowed; "" otherwise. */
static bool tg_answer_chat(tg_t *tg, const tg_fields_t *f, char *chat,
                           const char *type)
{
    tgstore_chat_t rec;
    if (!tg_field_cstr(&f->addr, f->has_addr, chat, TGSTORE_CHAT_MAX + 1)
        || !chat[0]) {
        sylog_warn("telegram: %s without a usable addr: dropped", type);
        return false;
    }
    int rc = tgstore_chat_get(tg->store, chat, &rec);
    if (rc || rec.state != TGSTORE_ALLOWED) {
        sylog_info("telegram: %s for chat %s, which is not allowed (%s): "
                   "dropped", type, chat,
                   rc ? syerr_name(rc) : tgstore_state_name(rec.state));
        return false;
    }
    return true;
}

/* chat.reply and chat.notice: durable deliveries, held until sent. */
static int tg_on_answer(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    tg_t *tg = arg;
    bool durable = actor_msg_is_durable(msg);
    if (durable && tg_done_seen(tg, msg->hdr.id))
        return 0;                   /* sent before; only the ack was lost */
    bool reply = strcmp(msg->hdr.type, "chat.reply") == 0;
    tg_fields_t f;
    char chat[TGSTORE_CHAT_MAX + 1];
    if (tg_fields_read(msg->body, msg->body_len, &f)
        || !tg_answer_chat(tg, &f, chat, msg->hdr.type))
        return 0;
    const char *text = f.has_text ? (const char *) f.text.ptr : "";
    size_t len = f.has_text ? f.text.len : 0;
    char fallback[80];
    bool blank = true;
    for (size_t i = 0; i < len && blank; i++)
        blank = strchr(" \t\r\n", text[i]) != NULL && text[i] != 0;
    if (blank) {
        if (f.has_error)
            snprintf(fallback, sizeof fallback, "error %.*s",
                     (int) (f.error.len < 32 ? f.error.len : 32),
                     (const char *) f.error.ptr);
        else
            snprintf(fallback, sizeof fallback, "(empty answer)");
        text = fallback;
        len = strlen(fallback);
    }
    char job[33] = "";
    if (reply && f.has_job) {
        envelope_id_hex(f.job, job);
        tg_preview_t *p = zhashx_lookup(tg->previews, job);
        if (p) {
            p->done = true;
            tg_preview_unqueue(p);
        }
    }
    int rc = tg_enqueue_text(tg, chat, text, len, durable ? msg->hdr.id : NULL,
                             job[0] ? job : NULL, reply ? "reply" : "notice");
    if (rc)
        return durable ? rc : 0;    /* nacked: it comes again */
    if (!durable)
        return 0;
    rc = actor_keepalive(actor, msg->hdr.id, TG_LEASE_EVERY_MS, TG_LEASE_MS);
    if (rc && rc != SY_ECLOSED)
        sylog_debug("telegram: keepalive: %s", syerr_name(rc));
    return ACTOR_KEEP;
}

/* chat.token: a piece of an answer being generated. */
static int tg_on_token(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    tg_t *tg = arg;
    tg_fields_t f;
    char chat[TGSTORE_CHAT_MAX + 1], job[33];
    if (tg_fields_read(msg->body, msg->body_len, &f) || !f.has_job
        || !tg_answer_chat(tg, &f, chat, "chat.token"))
        return 0;
    envelope_id_hex(f.job, job);
    tg_chat_t *c = tg_chat(tg, chat);
    tg_preview_t *p = c ? tg_preview_get(tg, c, job) : NULL;
    if (!p || p->done || p->failed)
        return 0;
    if (f.has_attempt && f.attempt < p->attempt)
        return 0;                   /* a piece of an attempt given up */
    if (f.reset || (f.has_attempt && f.attempt > p->attempt)) {
        p->len = 0;
        p->disp = 0;
        p->text[0] = 0;
        if (f.has_attempt)
            p->attempt = f.attempt;
    }
    if (f.has_text)
        tg_preview_add(p, (const char *) f.text.ptr, f.text.len);
    p->touched = zclock_mono();
    if (!p->message_id && !p->queued && p->disp > 0)
        tg_preview_queue(tg, p);    /* the first piece: send at once */
    tg_pump(tg);
    return 0;
}

/* ------------------------------------------------------------ pairing */

static void tg_say(tg_t *tg, const char *chat, const char *text)
{
    if (tg_enqueue_text(tg, chat, text, strlen(text), NULL, NULL, "notice"))
        sylog_warn("telegram: chat %s: out of memory", chat);
}

static void tg_pair_text(char *out, size_t cap, const char *code)
{
    snprintf(out, cap, "This chat is not paired with switchyard yet. Ask the "
             "operator to run: syctl telegram approve %s", code);
}

/* A message from a chat that is not allowed. */
static void tg_unknown_chat(tg_t *tg, const tgapi_update_t *u,
                            const char *chat, const char *user)
{
    tgstore_chat_t rec;
    bool fresh = false;
    uint64_t now = (uint64_t) zclock_time();
    int rc = tgstore_pair(tg->store, chat, user, now, tg->cfg.pairing_ttl,
                          &rec, &fresh);
    if (rc) {
        sylog_error("telegram: chat %s: pairing not stored: %s", chat,
                    syerr_name(rc));
        return;
    }
    char text[200];
    if (rec.state == TGSTORE_DENIED) {
        sylog_debug("telegram: update %" PRIu64 " from denied chat %s: "
                    "dropped", u->update_id, chat);
        return;
    }
    if (fresh) {
        sylog_info("telegram: chat %s (%s%s%s) asks to be paired: code %s "
                   "(syctl telegram approve %s)", chat, user,
                   u->username[0] ? " @" : "", u->username, rec.code,
                   rec.code);
        tg_pair_text(text, sizeof text, rec.code);
        tg_say(tg, chat, text);
        return;
    }
    if (now - rec.reminded_ms >= TG_REMIND_MS) {
        tg_pair_text(text, sizeof text, rec.code);
        tg_say(tg, chat, text);
        tgstore_reminded(tg->store, chat, now);
    }
    sylog_debug("telegram: update %" PRIu64 " from pending chat %s: not "
                "forwarded", u->update_id, chat);
}

/* ------------------------------------------------------------ operator */

static void tg_answer(actor_t *actor, const actor_msg_t *msg, bool ok,
                      const char *text, const tgstore_chat_t *chats,
                      size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, chats ? 3 : 2);
    tg_pack_cstr(&pk, "ok");
    ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    tg_pack_cstr(&pk, "text");
    tg_pack_str(&pk, text, strnlen(text, TG_ANSWER_TEXT_MAX));
    if (chats) {
        tg_pack_cstr(&pk, "chats");
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++) {
            const tgstore_chat_t *c = &chats[i];
            bool code = c->state == TGSTORE_PENDING && c->code[0];
            msgpack_pack_map(&pk, code ? 6 : 4);
            tg_pack_cstr(&pk, "chat");
            tg_pack_cstr(&pk, c->chat);
            tg_pack_cstr(&pk, "user");
            tg_pack_cstr(&pk, c->user);
            tg_pack_cstr(&pk, "state");
            tg_pack_cstr(&pk, tgstore_state_name(c->state));
            tg_pack_cstr(&pk, "since_ms");
            msgpack_pack_uint64(&pk, c->since_ms);
            if (code) {
                tg_pack_cstr(&pk, "code");
                tg_pack_cstr(&pk, c->code);
                tg_pack_cstr(&pk, "expires_ms");
                msgpack_pack_uint64(&pk, c->expires_ms);
            }
        }
    }
    int rc = actor_reply(actor, msg, "telegram.answer",
                         (const uint8_t *) sb.data, sb.size);
    if (rc)
        sylog_warn("telegram: answer to %s not sent: %s", msg->hdr.from,
                   syerr_name(rc));
    msgpack_sbuffer_destroy(&sb);
}

static int tg_on_approve(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    tg_t *tg = arg;
    tg_fields_t f;
    char code[40], text[300];
    tgstore_chat_t rec;
    if (tg_fields_read(msg->body, msg->body_len, &f)
        || !tg_field_cstr(&f.code, f.has_code, code, sizeof code)) {
        tg_answer(actor, msg, false, "no code given", NULL, 0);
        return 0;
    }
    bool allow = !f.deny;
    int rc = tgstore_decide(tg->store, code, allow,
                            (uint64_t) zclock_time(), &rec);
    if (rc == SY_ENOTFOUND)
        snprintf(text, sizeof text, "no pending pairing with code %s (codes "
                 "are case-insensitive; syctl telegram ls shows them)", code);
    else if (rc == SY_EEXPIRED)
        snprintf(text, sizeof text, "code %s has expired; the chat gets a new "
                 "code with its next message", code);
    else if (rc)
        snprintf(text, sizeof text, "the store failed: %s", syerr_text(rc));
    else {
        snprintf(text, sizeof text, "chat %s (%s) %s", rec.chat, rec.user,
                 allow ? "allowed" : "denied");
        sylog_info("telegram: chat %s (%s) %s by %s", rec.chat, rec.user,
                   allow ? "allowed" : "denied", msg->hdr.from);
        tg_say(tg, rec.chat, allow
               ? "Approved. This chat can now talk to switchyard. (Messages "
                 "sent while it waited were not kept: send them again.)"
               : "This chat was denied access to switchyard.");
    }
    tg_answer(actor, msg, rc == 0, text, NULL, 0);
    return 0;
}

static int tg_on_list(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    tg_t *tg = arg;
    tgstore_chat_t *chats = NULL;
    size_t n = 0;
    int rc = tgstore_list(tg->store, &chats, &n);
    if (rc) {
        char text[160];
        snprintf(text, sizeof text, "the store failed: %s", syerr_text(rc));
        tg_answer(actor, msg, false, text, NULL, 0);
        return 0;
    }
    size_t shown = n > TG_LIST_MAX ? TG_LIST_MAX : n;
    char text[TG_ANSWER_TEXT_MAX + 1];
    size_t at = 0;
    uint64_t now = (uint64_t) zclock_time();
    at += (size_t) snprintf(text, sizeof text, n ? "%-8s %-16s %-24s %s\n"
                            : "no chats yet\n", "STATE", "CHAT", "USER",
                            "CODE");
    for (size_t i = 0; i < n && at < sizeof text - 100; i++) {
        const tgstore_chat_t *c = &chats[i];
        char code[40] = "";
        if (c->state == TGSTORE_PENDING)
            snprintf(code, sizeof code, "%s%s", c->code,
                     c->expires_ms <= now ? " (expired)" : "");
        at += (size_t) snprintf(text + at, sizeof text - at,
                                code[0] ? "%-8s %-16s %-24s %s\n"
                                        : "%-8s %-16s %s%s\n",
                                tgstore_state_name(c->state), c->chat,
                                c->user, code);
        if (at >= sizeof text - 100 && i + 1 < n) {
            snprintf(text + at, sizeof text - at, "... %zu more\n",
                     n - i - 1);
            break;
        }
    }
    size_t tl = strlen(text);
    if (tl && text[tl - 1] == '\n')
        text[tl - 1] = 0;
    tg_answer(actor, msg, true, text, chats, shown);
    free(chats);
    return 0;
}

/* ------------------------------------------------------------ forwarding */

static int tg_fwd_cb(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    tg_t *tg = arg;
    tg->fwd_timer = -1;
    if (tg->fwd_sent)
        sylog_warn("telegram: no receipt for update %" PRIu64 " in %d ms: "
                   "sending it again", tg->batch.v[tg->batch_i].update_id,
                   TG_RECEIPT_WAIT_MS);
    tg->fwd_sent = false;
    tg_batch_next(tg);
    return 0;
}

static void tg_fwd_timer(tg_t *tg, uint32_t ms)
{
    if (tg->fwd_timer >= 0)
        zloop_timer_end(actor_loop(tg->actor), tg->fwd_timer);
    tg->fwd_timer = zloop_timer(actor_loop(tg->actor), ms ? ms : 1, 1,
                                tg_fwd_cb, tg);
}

static void tg_fwd_timer_stop(tg_t *tg)
{
    if (tg->fwd_timer >= 0)
        zloop_timer_end(actor_loop(tg->actor), tg->fwd_timer);
    tg->fwd_timer = -1;
}

static void tg_pack_attach(msgpack_packer *pk, const tgapi_attach_t *a)
{
    bool doc = strcmp(a->kind, "document") == 0;
    size_t n = 2 + (a->mime[0] != 0) + a->has_size + (doc && a->name[0]);
    msgpack_pack_map(pk, n);
    tg_pack_cstr(pk, "kind");
    tg_pack_cstr(pk, a->kind);
    tg_pack_cstr(pk, "file_id");
    tg_pack_cstr(pk, a->file_id);
    if (a->mime[0]) {
        tg_pack_cstr(pk, "mime");
        tg_pack_cstr(pk, a->mime);
    }
    if (a->has_size) {
        tg_pack_cstr(pk, "size");
        msgpack_pack_uint64(pk, a->size);
    }
    if (doc && a->name[0]) {
        tg_pack_cstr(pk, "name");
        tg_pack_cstr(pk, a->name);
    }
}

/* Sends update u of chat/user to the front door.  Returns 0 (sent:
   the receipt decides) or actor_send()'s error. */
static int tg_forward(tg_t *tg, const tgapi_update_t *u, const char *chat,
                      const char *user)
{
    char ref[32], key[40];
    snprintf(ref, sizeof ref, "tg:%" PRIu64, u->update_id);
    snprintf(key, sizeof key, "tg:%" PRIu64, u->update_id);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, u->nattach ? 6 : 5);
    tg_pack_cstr(&pk, "text");
    tg_pack_str(&pk, u->text ? u->text : "", u->text ? u->text_len : 0);
    tg_pack_cstr(&pk, "channel");
    tg_pack_cstr(&pk, tg->cfg.service);
    tg_pack_cstr(&pk, "user");
    tg_pack_cstr(&pk, user);
    tg_pack_cstr(&pk, "addr");
    tg_pack_cstr(&pk, chat);
    tg_pack_cstr(&pk, "ref");
    tg_pack_cstr(&pk, ref);
    if (u->nattach) {
        tg_pack_cstr(&pk, "attachments");
        msgpack_pack_array(&pk, u->nattach);
        for (size_t i = 0; i < u->nattach; i++)
            tg_pack_attach(&pk, &u->attach[i]);
    }
    actor_send_opts_t so = { .prio = ENVELOPE_PRIO_NORMAL, .durable = true,
                             .key = key };
    int rc = actor_send(tg->actor, TG_FRONTDOOR, "chat.message",
                        (const uint8_t *) sb.data, sb.size, &so, tg->fwd_id);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* The update is handled: the offset moves past it. */
static void tg_update_done(tg_t *tg)
{
    const tgapi_update_t *u = &tg->batch.v[tg->batch_i];
    int rc = tgstore_offset_set(tg->store, u->update_id + 1);
    if (rc)
        sylog_error("telegram: offset %" PRIu64 " not stored: %s (the update "
                    "may be served again; the front door sees a DUPLICATE)",
                    u->update_id + 1, syerr_name(rc));
    tg->fwd_sent = false;
    tg->fwd_backoff = 0;
    tg->batch_i++;
}

/* Handles update u: 0 when done with it, 1 when waiting (a receipt, or a
   retry). */
static int tg_update(tg_t *tg, const tgapi_update_t *u)
{
    char chat[TGSTORE_CHAT_MAX + 1], user[48];
    if (!u->is_message) {
        sylog_debug("telegram: update %" PRIu64 " is not a message: skipped",
                    u->update_id);
        return 0;
    }
    if (u->from_is_bot)
        return 0;
    snprintf(chat, sizeof chat, "%" PRId64, u->chat_id);
    snprintf(user, sizeof user, "tg:%" PRId64,
             u->has_from ? u->from_id : u->chat_id);
    tgstore_chat_t rec;
    int rc = tgstore_chat_get(tg->store, chat, &rec);
    if (rc == SY_ENOTFOUND || (rc == 0 && rec.state != TGSTORE_ALLOWED)) {
        tg_unknown_chat(tg, u, chat, user);
        return 0;
    }
    if (rc) {
        sylog_error("telegram: the store failed (%s): update %" PRIu64
                    " waits", syerr_name(rc), u->update_id);
        tg->fwd_backoff = tg_grow(tg->fwd_backoff, tg->cfg.retry_min,
                                  tg->cfg.retry_max);
        tg_fwd_timer(tg, tg->fwd_backoff);
        return 1;
    }
    if (!u->text && !u->nattach) {
        sylog_debug("telegram: update %" PRIu64 " has no text, photo or "
                    "document: skipped", u->update_id);
        return 0;
    }
    rc = tg_forward(tg, u, chat, user);
    if (rc == 0) {
        tg->fwd_sent = true;
        tg_fwd_timer(tg, TG_RECEIPT_WAIT_MS);
        return 1;
    }
    if (rc == SY_ECLOSED)
        return 1;                   /* sent again after the next welcome */
    if (rc == SY_EQUEUE_FULL || rc == SY_ENOMEM) {
        tg_fwd_timer(tg, tg->cfg.retry_min);
        return 1;
    }
    sylog_error("telegram: update %" PRIu64 " cannot be forwarded (%s): "
                "dropped", u->update_id, syerr_name(rc));
    return 0;
}

/* Handles the batch from batch_i on, until it waits or ends (then the
   next poll starts). */
static void tg_batch_next(tg_t *tg)
{
    if (tg->stopping || tg->fwd_sent || tg->fwd_timer >= 0)
        return;
    uint64_t offset = 0;
    tgstore_offset(tg->store, &offset);
    while (tg->batch_i < tg->batch.n) {
        const tgapi_update_t *u = &tg->batch.v[tg->batch_i];
        if (u->update_id < offset) {
            sylog_debug("telegram: update %" PRIu64 " was handled before: "
                        "skipped", u->update_id);
            tg->batch_i++;
            continue;
        }
        if (tg_update(tg, u))
            return;
        tg_update_done(tg);
    }
    tgapi_updates_free(&tg->batch);
    tg->batch_i = 0;
    tg_poll_start(tg);
}

static int tg_on_receipt(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    tg_t *tg = arg;
    actor_receipt_t r;
    if (actor_receipt_parse(msg, &r) || !r.has_corr || !tg->fwd_sent
        || memcmp(r.corr, tg->fwd_id, 16) != 0) {
        return 0;
    }
    uint64_t id = tg->batch.v[tg->batch_i].update_id;
    tg_fwd_timer_stop(tg);
    tg->fwd_sent = false;
    if (r.ok || r.code == SY_EDUPLICATE) {
        sylog_debug("telegram: update %" PRIu64 " forwarded%s", id,
                    r.ok ? "" : " (already)");
        tg_update_done(tg);
    } else if (r.code == SY_EBAD_BODY || r.code == SY_EBAD_ENVELOPE
               || r.code == SY_ETOO_LARGE) {
        sylog_error("telegram: update %" PRIu64 " refused by the broker (%s "
                    "%s): dropped", id, r.code_name, r.msg);
        tg_update_done(tg);
    } else {
        tg->fwd_backoff = tg_grow(tg->fwd_backoff, tg->cfg.retry_min,
                                  tg->cfg.retry_max);
        sylog_warn("telegram: update %" PRIu64 " not stored (%s %s): retry in "
                   "%u ms", id, r.code_name, r.msg, tg->fwd_backoff);
        tg_fwd_timer(tg, tg->fwd_backoff);
        return 0;
    }
    tg_batch_next(tg);
    return 0;
}

static void tg_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    tg_t *tg = arg;
    if (!up) {
        if (tg->fwd_sent) {
            tg_fwd_timer_stop(tg);
            tg->fwd_sent = false;   /* sent again (same key) when back */
        }
        return;
    }
    if (tg->batch.n)
        tg_batch_next(tg);
    else
        tg_poll_start(tg);
}

/* ------------------------------------------------------------ polling */

static int tg_poll_cb(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    tg_t *tg = arg;
    tg->poll_timer = -1;
    tg_poll_start(tg);
    return 0;
}

static void tg_poll_later(tg_t *tg, uint32_t ms)
{
    if (tg->poll_timer >= 0)
        zloop_timer_end(actor_loop(tg->actor), tg->poll_timer);
    tg->poll_timer = zloop_timer(actor_loop(tg->actor), ms ? ms : 1, 1,
                                 tg_poll_cb, tg);
}

static void tg_poll_backoff(tg_t *tg)
{
    tg->poll_backoff = tg_grow(tg->poll_backoff, tg->cfg.retry_min,
                               tg->cfg.retry_max);
    tg_poll_later(tg, tg->poll_backoff);
}

/* A getUpdates that did not bring updates. */
static void tg_poll_failed(tg_t *tg, const httpc_result_t *res)
{
    tgapi_resp_t r;
    if (res->rc) {
        tg_poll_backoff(tg);
        sylog_warn("telegram: getUpdates failed (%s): retry in %u ms",
                   res->err, tg->poll_backoff);
        return;
    }
    if (tgapi_resp_parse(res->body, res->body_len, &r, NULL, 0))
        memset(&r, 0, sizeof r);
    long st = res->status;
    if (st == 409) {
        sylog_warn("telegram: getUpdates: 409 conflict: another bot instance "
                   "is polling, or a webhook is set: deleteWebhook or stop "
                   "the other instance (retry in %u ms)", tg->cfg.retry_max);
        tg_poll_later(tg, tg->cfg.retry_max);
    } else if (st == 401 || st == 404) {
        if (!tg->auth_logged)
            sylog_error("telegram: getUpdates: %ld: the bot token was refused "
                        "(check telegram/token_file; retrying every %u ms)",
                        st, tg->cfg.retry_max);
        tg->auth_logged = true;
        tg_poll_later(tg, tg->cfg.retry_max);
    } else if (st == 429) {
        uint32_t s = r.retry_after ? r.retry_after : 1;
        sylog_warn("telegram: getUpdates: 429 too many requests: waiting %u "
                   "s", s);
        tg_poll_later(tg, s * 1000);
    } else {
        tg_poll_backoff(tg);
        sylog_warn("telegram: getUpdates: %ld%s%s: retry in %u ms", st,
                   r.description[0] ? " " : "", r.description,
                   tg->poll_backoff);
    }
}

static void tg_poll_done(httpc_req_t *req, const httpc_result_t *res,
                         void *arg)
{
    (void) req;
    tg_t *tg = arg;
    tg->poll_req = NULL;
    if (res->rc || res->status != 200) {
        tg_poll_failed(tg, res);
        return;
    }
    char err[200];
    if (tgapi_updates_parse(res->body, res->body_len, &tg->batch, err,
                            sizeof err)) {
        tg_poll_backoff(tg);
        sylog_warn("telegram: getUpdates: 200 but unreadable (%s): retry in "
                   "%u ms", err, tg->poll_backoff);
        return;
    }
    if (tg->auth_logged)
        sylog_info("telegram: getUpdates: 200: the token works again");
    tg->auth_logged = false;
    tg->poll_backoff = 0;
    tg->batch_i = 0;
    sylog_debug("telegram: getUpdates: 200, %zu updates", tg->batch.n);
    if (tg->batch.n == 0
        && zclock_mono() - tg->poll_started < TG_EMPTY_POLL_MS) {
        tg_poll_later(tg, TG_EMPTY_POLL_MS);    /* no long poll: no spin */
        return;
    }
    tg_batch_next(tg);
}

static void tg_poll_start(tg_t *tg)
{
    if (tg->stopping || tg->poll_req || tg->poll_timer >= 0 || tg->batch.n
        || !actor_connected(tg->actor))
        return;
    uint64_t offset = 0;
    int rc = tgstore_offset(tg->store, &offset);
    char *body = rc ? NULL
                    : tgapi_body_get_updates(offset, tg->cfg.poll_timeout_s);
    if (!body) {
        sylog_error("telegram: getUpdates not started: %s",
                    rc ? syerr_name(rc) : "out of memory");
        tg_poll_backoff(tg);
        return;
    }
    char url[TG_TOKEN_MAX + 512];
    tg_url(tg, "getUpdates", url, sizeof url);
    httpc_opts_t o = {
        .url = url, .headers = tg->headers, .body = body,
        .body_len = strlen(body),
        .total_timeout_ms = (tg->cfg.poll_timeout_s + 15) * 1000,
        .max_body = 16 * 1024 * 1024 };
    httpc_cb_t cb = { .on_done = tg_poll_done, .arg = tg };
    rc = httpc_start(tg->http, &o, &cb, &tg->poll_req);
    sodium_memzero(url, sizeof url);
    free(body);
    tg->poll_started = zclock_mono();
    if (rc) {
        sylog_error("telegram: getUpdates not started: %s", syerr_name(rc));
        tg_poll_backoff(tg);
    }
}

/* ------------------------------------------------------------ setup */

/* Reads the bot token from path (a regular file, owner-only) and builds
   tg->base = {api_url}/bot{TOKEN}/.  The token is never put in err. */
static int tg_read_token(tg_t *tg, const char *path, char *err, size_t errlen)
{
    char buf[TG_TOKEN_MAX + 1];
    size_t len = 0;
    int rc = secretfile_read(path, "telegram/token_file", buf, sizeof buf,
                             &len, err, errlen);
    if (rc == SY_ECONFIG && access(path, F_OK) != 0)
        rc = syerr_fmt(err, errlen, SY_ECONFIG, "telegram/token_file %s: "
                       "missing (put the token from @BotFather there, "
                       "chmod 600)", path);
    for (size_t i = 0; rc == 0 && i < len; i++) {
        char c = buf[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || c == ':' || c == '_' || c == '-'))
            rc = syerr_fmt(err, errlen, SY_ECONFIG, "telegram/token_file %s: "
                           "the token holds a character a bot token does not "
                           "have (expected digits, ':', letters, '_', '-')",
                           path);
    }
    if (rc == 0) {
        const char *api = tg->cfg.api_url;
        size_t alen = strlen(api);
        while (alen && api[alen - 1] == '/')
            alen--;
        size_t cap = alen + 4 + len + 2;
        tg->base = malloc(cap);
        if (tg->base)
            snprintf(tg->base, cap, "%.*s/bot%.*s/", (int) alen, api,
                     (int) len, buf);
        else
            rc = syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

static void tg_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-telegram [--config FILE] [--name NAME] [--endpoint EP]\n"
        "                   [--cert PATH]\n"
        "\n"
        "The Telegram bridge: long-polls the Bot API (telegram/api_url) with\n"
        "the token in telegram/token_file, forwards messages of paired chats\n"
        "to the front door and sends the answers back.  Unknown chats get a\n"
        "pairing code: syctl telegram approve CODE.  See docs/TELEGRAM.md.\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          service and actor name (telegram/name)\n"
        "  --endpoint EP        broker endpoint (actor/endpoint)\n"
        "  --cert PATH          this actor's certificate (security/cert)\n"
        "  --help               this text\n"
        "\n"
        "Runs until SIGINT or SIGTERM (answers held are handed back).  Exit\n"
        "codes: 0 ok, 2 usage error, 4 configuration error.\n");
}

typedef struct {
    const char *config, *name, *endpoint, *cert;
} tg_args_t;

static int tg_parse_args(int argc, char **argv, tg_args_t *a)
{
    static const cliargs_flag_t flags[] = {
        { "--config",   offsetof(tg_args_t, config) },
        { "--name",     offsetof(tg_args_t, name) },
        { "--endpoint", offsetof(tg_args_t, endpoint) },
        { "--cert",     offsetof(tg_args_t, cert) },
    };
    int rc = cliargs_parse("sy-telegram", argc, argv, flags,
                           sizeof flags / sizeof flags[0], a);
    if (rc == CLIARGS_HELP) {
        tg_usage(stdout);
        exit(0);
    }
    return rc;
}

static int tg_cfg_load(tg_cfg_t *c, const config_t *cfg, const tg_args_t *a)
{
    c->service = a->name ? a->name : config_str(cfg, "telegram/name");
    if (!envelope_valid_name(c->service, strlen(c->service))) {
        fprintf(stderr, "sy-telegram: '%s' is not a valid name\n",
                c->service);
        return -1;
    }
    c->api_url = config_str(cfg, "telegram/api_url");
    if (strncmp(c->api_url, "http://", 7) != 0
        && strncmp(c->api_url, "https://", 8) != 0) {
        fprintf(stderr, "sy-telegram: telegram/api_url must start with "
                "http:// or https://\n");
        return -1;
    }
    c->store = config_str(cfg, "telegram/store");
    c->token_file = config_str(cfg, "telegram/token_file");
    c->poll_timeout_s = (uint32_t) (config_int(cfg, "telegram/poll_timeout")
                                    / 1000);
    c->edit_interval = (uint32_t) config_int(cfg, "telegram/edit_interval");
    c->chat_rate = (uint32_t) config_int(cfg, "telegram/chat_rate");
    c->global_rate = (uint32_t) config_int(cfg, "telegram/global_rate");
    c->retry_min = (uint32_t) config_int(cfg, "telegram/retry_min");
    c->retry_max = (uint32_t) config_int(cfg, "telegram/retry_max");
    c->pairing_ttl = (uint64_t) config_int(cfg, "telegram/pairing_ttl");
    return 0;
}

static int tg_open(tg_t *tg, const config_t *cfg, const tg_args_t *a)
{
    char err[512];
    tgstore_opts_t so = { .dir = tg->cfg.store };
    if (tgstore_open(&so, &tg->store, err, sizeof err)) {
        fprintf(stderr, "sy-telegram: %s\n", err);
        sylog_error("telegram: %s", err);
        return TG_EXIT_CONFIG;
    }
    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    if (actor_opts_security(&opts, cfg, a->cert, err, sizeof err)) {
        fprintf(stderr, "sy-telegram: %s\n", err);
        return TG_EXIT_CONFIG;
    }
    const char *services[] = { tg->cfg.service };
    opts.name = opts.cert ? NULL : tg->cfg.service;
    opts.services = services;
    opts.nservices = 1;
    opts.credit = TG_CREDIT;
    if (a->endpoint)
        opts.endpoint = a->endpoint;
    tg->chats = zhashx_new();
    tg->previews = zhashx_new();
    tg->actor = actor_new(&opts);
    if (!tg->actor || !tg->chats || !tg->previews) {
        fprintf(stderr, "sy-telegram: cannot start: invalid name, endpoint "
                "or certificate (see the log)\n");
        return TG_EXIT_CONFIG;
    }
    if (httpc_new(actor_loop(tg->actor), &tg->http)) {
        fprintf(stderr, "sy-telegram: cannot start the HTTP client\n");
        return TG_EXIT_CONFIG;
    }
    tg_bucket_init(&tg->global, tg->cfg.global_rate);
    actor_on(tg->actor, "chat.reply", tg_on_answer, tg);
    actor_on(tg->actor, "chat.notice", tg_on_answer, tg);
    actor_on(tg->actor, "chat.token", tg_on_token, tg);
    actor_on(tg->actor, "telegram.approve", tg_on_approve, tg);
    actor_on(tg->actor, "telegram.list", tg_on_list, tg);
    actor_on(tg->actor, "sy.receipt", tg_on_receipt, tg);
    actor_on_state(tg->actor, tg_on_state, tg);
    return 0;
}

/* Hands back every durable answer still held, so that the next bridge
   sends it. */
static void tg_hand_back(tg_t *tg)
{
    size_t n = 0;
    for (tg_chat_t *c = zhashx_first(tg->chats); c;
         c = zhashx_next(tg->chats))
        for (tg_item_t *it = zlistx_first(c->items); it;
             it = zlistx_next(c->items))
            if (it->has_delivery
                && actor_nack(tg->actor, it->delivery, "the bridge is "
                              "stopping", true, 0) == 0)
                n++;
    if (n)
        sylog_info("telegram: %zu answers handed back", n);
}

static void tg_close(tg_t *tg)
{
    tg->stopping = true;
    if (tg->actor && tg->chats)
        tg_hand_back(tg);
    if (tg->http)
        httpc_cancel(tg->http, &tg->poll_req);
    if (tg->chats) {
        for (tg_chat_t *c = zhashx_first(tg->chats); c;
             c = zhashx_next(tg->chats))
            tg_chat_free(&c);
        zhashx_destroy(&tg->chats);
    }
    if (tg->previews) {
        for (tg_preview_t *p = zhashx_first(tg->previews); p;
             p = zhashx_next(tg->previews)) {
            free(p->text);
            free(p);
        }
        zhashx_destroy(&tg->previews);
    }
    httpc_destroy(&tg->http);
    actor_destroy(&tg->actor);
    tgapi_updates_free(&tg->batch);
    tgstore_destroy(&tg->store);
    if (tg->base) {
        sodium_memzero(tg->base, strlen(tg->base));
        free(tg->base);
        tg->base = NULL;
    }
}

int main(int argc, char **argv)
{
    tg_args_t args = { 0 };
    if (tg_parse_args(argc, argv, &args))
        return TG_EXIT_USAGE;
    config_t *cfg = NULL;
    char err[512];
    if (config_load(config_pick_path(args.config), &cfg, err, sizeof err)) {
        fprintf(stderr, "sy-telegram: %s\n", err);
        return TG_EXIT_CONFIG;
    }
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(cfg, "log/level"), &level);
    if (sylog_open("sy-telegram", level, config_str(cfg, "log/file"))) {
        fprintf(stderr, "sy-telegram: cannot open log file %s\n",
                config_str(cfg, "log/file"));
        config_destroy(&cfg);
        return TG_EXIT_CONFIG;
    }
    tg_t tg = { .poll_timer = -1, .fwd_timer = -1, .pump_timer = -1 };
    tg.headers[0] = "Content-Type: application/json";
    tg.headers[1] = NULL;
    int code = tg_cfg_load(&tg.cfg, cfg, &args) ? TG_EXIT_USAGE : 0;
    if (code == 0 && tg_read_token(&tg, tg.cfg.token_file, err, sizeof err)) {
        fprintf(stderr, "sy-telegram: %s\n", err);
        sylog_error("telegram: %s", err);
        code = TG_EXIT_CONFIG;
    }
    if (code == 0)
        code = tg_open(&tg, cfg, &args);
    if (code == 0) {
        char shown[256];
        sylog_redact(tg.cfg.api_url, shown, sizeof shown);
        sylog_info("telegram %s: service %s, Bot API at %s, long poll %u s, "
                   "store %s", actor_name(tg.actor), tg.cfg.service, shown,
                   tg.cfg.poll_timeout_s, tg.cfg.store);
        actor_run(tg.actor);
    }
    tg_close(&tg);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return code;
}
