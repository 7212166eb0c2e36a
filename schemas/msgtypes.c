/*  msgtypes.c -- the one table of message types, and body validation.
 *
 *  Each type lists its body fields with a kind (msgfield_kind_t), whether
 *  it is required, a range and a one-line doc.  The same rows drive
 *  msgtypes_validate() (what the actor runtime checks before a handler
 *  sees a body) and msgtypes_markdown() (the message section of
 *  docs/PROTOCOL.md), so the document cannot say something the code does
 *  not do.
 *
 *  Validation is one pass over the body with mpread, without allocation.
 *  Free-form values (any / map / array) are only walked for structure,
 *  nested at most MSGTYPES_MAX_DEPTH deep.  As in envelope.c, on the
 *  failure path a structural problem anywhere in the body wins over a
 *  field error, so the reported code does not depend on key order.
 */
#include "schemas/msgtypes.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <stdarg.h>
#include <string.h>

#define U64 UINT64_MAX
#define MIB (1024ULL * 1024)
#define DAY_MS (24ULL * 3600 * 1000)

/* ---------------------------------------------------------------- table */

#define F(n, k, req, lo, hi, doc) { n, k, req, lo, hi, 0, doc }
#define FIELDS(a) a, sizeof a / sizeof a[0]

static const msgfield_t msgtypes_hello[] = {
    F("name", MF_NAME, true, 1, 64, "the actor's or client's name; unique among connected peers (a second hello with the same name takes it over)"),
    F("services", MF_NAMES, false, 0, 64, "services this peer offers; absent or empty for a plain client"),
    F("credit", MF_UINT, true, 1, 10000, "how many service deliveries the peer takes at once"),
    F("batch_receipts", MF_BOOL, false, 0, 0, "true: the accepted durable sends of one commit may be answered by one sy.receipt {ok, ids} instead of one each"),
};
static const msgfield_t msgtypes_welcome[] = {
    F("name", MF_NAME, true, 1, 64, "the name the broker registered"),
    F("hb", MF_UINT, true, 1, DAY_MS, "heartbeat interval, ms: send sy.ping after this long without sending"),
    F("liveness", MF_UINT, true, 1, DAY_MS, "ms of silence after which either side gives the other up"),
    F("max_msg", MF_UINT, true, 1, UINT32_MAX, "largest header + body the broker accepts, bytes"),
};
static const msgfield_t msgtypes_credit[] = {
    F("n", MF_UINT, true, 1, 10000, "deliveries the actor can take again"),
};
static const msgfield_t msgtypes_receipt[] = {
    F("ok", MF_BOOL, true, 0, 0, "true: accepted; false: refused, see code"),
    F("id", MF_ID, false, 16, 16, "the stored message's id (durable messages; for DUPLICATE the first one's id)"),
    F("code", MF_STR, false, 1, 32, "error code name when ok is false (NO_SERVICE, BAD_ENVELOPE, ...)"),
    F("detail", MF_STR, false, 1, 32, "detail code name (FIELD_TYPE, MISSING, ...)"),
    F("msg", MF_STR, false, 0, 512, "a readable message naming the field or reason"),
    F("ids", MF_IDS, false, 1, MSGTYPES_ACK_IDS_MAX, "several accepted durable messages at once, each stored under its own id (only to a peer that said batch_receipts; then without corr)"),
};
static const msgfield_t msgtypes_sub[] = {
    F("topic", MF_STR, true, 0, 64, "topic prefix; \"\" subscribes to every topic"),
};
static const msgfield_t msgtypes_unsub[] = {
    F("topic", MF_STR, true, 0, 64, "a prefix given earlier to sy.sub"),
};
static const msgfield_t msgtypes_event[] = {
    F("topic", MF_STR, true, 1, 64, "the event's topic, e.g. presence.join"),
    F("data", MF_ANY, false, 0, 0, "free-form event data"),
};
static const msgfield_t msgtypes_query[] = {
    F("what", MF_STR, true, 1, 32, "what to look up, e.g. \"status\""),
    F("service", MF_NAME, false, 1, 64, "the service (queue) the query is about"),
    F("n", MF_UINT, false, 0, U64, "how many entries (peek)"),
    F("id", MF_ID, false, 16, 16, "one message's id"),
    F("all", MF_BOOL, false, 0, 0, "apply to every entry"),
};
static const msgfield_t msgtypes_answer[] = {
    F("what", MF_STR, true, 1, 32, "the query's what"),
    F("data", MF_ANY, false, 0, 0, "the result"),
};
static const msgfield_t msgtypes_bye[] = {
    F("reason", MF_STR, false, 0, 256, "why the session ends"),
};
static const msgfield_t msgtypes_ack[] = {
    F("id", MF_ID, false, 16, 16, "id of the durable delivery being acknowledged (this or ids)"),
    F("ids", MF_IDS, false, 1, MSGTYPES_ACK_IDS_MAX, "ids of several durable deliveries acknowledged at once (this or id)"),
};
static const msgfield_t msgtypes_nack[] = {
    F("id", MF_ID, true, 16, 16, "id of the durable delivery refused"),
    F("reason", MF_STR, false, 0, 256, "why (kept with a dead letter)"),
    F("requeue", MF_BOOL, false, 0, 0, "false: dead-letter now; true or absent: deliver again later"),
    F("delay_ms", MF_UINT, false, 0, 30 * DAY_MS, "wait at least this long before the next attempt"),
};
static const msgfield_t msgtypes_lease[] = {
    F("id", MF_ID, true, 16, 16, "id of the durable delivery whose lease is extended"),
    F("ms", MF_UINT, true, 1, 30 * DAY_MS, "new lease length from now, ms"),
};
static const msgfield_t msgtypes_echo_request[] = {
    F("seq", MF_UINT, false, 0, U64, "sequence number, copied into the reply"),
    F("data", MF_ANY, false, 0, 0, "any value, copied into the reply"),
    F("delay_ms", MF_UINT, false, 0, 600000, "the echo actor waits this long before replying"),
    F("pad", MF_BIN, false, 0, 16 * MIB, "padding for size tests, copied into the reply"),
};
static const msgfield_t msgtypes_echo_reply[] = {
    F("seq", MF_UINT, false, 0, U64, "the request's seq"),
    F("data", MF_ANY, false, 0, 0, "the request's data"),
    F("by", MF_NAME, false, 1, 64, "name of the actor that answered"),
    F("pad", MF_BIN, false, 0, 16 * MIB, "the request's pad"),
};

/* The chat path (docs/CHAT.md).  user / addr / ref / seq appear on the
   messages the front door sends to a channel; the workers leave them
   out (the front door knows each job's user). */
#define CHAT_TEXT_MAX (64 * 1024)
#define CHAT_DEST_FIELDS \
    F("user", MF_STR, false, 1, 128, "the user (front door -> channel)"), \
    F("addr", MF_STR, false, 1, 128, "where in the channel to answer, as the channel gave it (front door -> channel)"), \
    F("ref", MF_STR, false, 1, 128, "the channel's own id of the message answered, as it gave it; for a direct client that gave none, the hex of its chat.message's id (front door -> channel)")
/* Replies and notices also carry the outbox number (chat.token has a seq
   of its own and is never kept in an outbox). */
#define CHAT_ADDR_FIELDS \
    CHAT_DEST_FIELDS, \
    F("seq", MF_UINT, false, 1, U64, "outbox number for a direct client (front door -> client): chat.sync asks for what follows it")

static const msgfield_t msgtypes_chat_message[] = {
    F("text", MF_STR, true, 0, CHAT_TEXT_MAX, "what the user wrote; a leading / is a command (/status, /queue, /cancel, /new)"),
    F("channel", MF_NAME, false, 1, 64, "bridges only: the bridge's service, where replies go durably (e.g. telegram)"),
    F("user", MF_STR, false, 1, 128, "bridges only: the user within the channel; a direct client is always its own name"),
    F("addr", MF_STR, false, 1, 128, "where in the channel to answer (a Telegram chat id); copied into every message back"),
    F("ref", MF_STR, false, 1, 128, "the channel's own id of this message; copied back"),
    F("attachments", MF_ARRAY, false, 0, 0, "attachment descriptors, maps {kind: photo|document|audio|video|voice, file_id, mime, size, name}"),
};

static const msgfield_t msgtypes_chat_request[] = {
    F("job", MF_ID, true, 16, 16, "the job's id, chosen by the front door; every later message about the job carries it"),
    F("user", MF_STR, true, 1, 128, "the user who asked"),
    F("channel", MF_NAME, true, 1, 64, "the channel the user wrote from (zmq for direct clients)"),
    F("text", MF_STR, true, 0, CHAT_TEXT_MAX, "the question"),
    F("history", MF_ARRAY, false, 0, 0, "earlier turns of the conversation, oldest first: maps {role: user|assistant, text}"),
    F("attachments", MF_ARRAY, false, 0, 0, "as in chat.message"),
    F("waiting", MF_BOOL, false, 0, 0, "a person waits for the answer: a heavy job goes at priority high"),
};

static const msgfield_t msgtypes_infer_request[] = {
    F("job", MF_ID, true, 16, 16, "the job (chat.request's job)"),
    F("messages", MF_ARRAY, true, 0, 0, "the conversation for the model, oldest first: maps {role: system|user|assistant, content}"),
    F("model", MF_STR, false, 1, 128, "model to use; absent: the worker's inference/model"),
};

static const msgfield_t msgtypes_chat_routed[] = {
    F("job", MF_ID, true, 16, 16, "the job"),
    F("class", MF_STR, true, 1, 16, "HEAVY, LIGHT or SCHEDULED"),
    F("why", MF_STR, true, 0, 256, "the rule that decided, for people"),
    F("service", MF_NAME, true, 1, 64, "the service the job went to"),
    F("queued_id", MF_ID, false, 16, 16, "id of the durable job in that service's queue (what /cancel cancels)"),
    F("online", MF_BOOL, true, 0, 0, "whether an actor of the service was live"),
    F("place", MF_UINT, false, 0, U64, "1-based place among the ready jobs of the queue, in delivery order; 0: already taken by a worker"),
};

static const msgfield_t msgtypes_chat_token[] = {
    F("job", MF_ID, true, 16, 16, "the job"),
    F("seq", MF_UINT, true, 0, U64, "0, 1, 2, ... within one attempt of the job"),
    F("text", MF_STR, true, 0, CHAT_TEXT_MAX, "the next piece of the answer"),
    F("attempt", MF_UINT, false, 0, 1000000, "the job's delivery attempt this piece belongs to"),
    F("reset", MF_BOOL, false, 0, 0, "pieces shown so far for this job are void (the job is being tried again)"),
    CHAT_DEST_FIELDS,
};

static const msgfield_t msgtypes_chat_reply[] = {
    F("job", MF_ID, false, 16, 16, "the job answered; absent for the answer to a command"),
    F("text", MF_STR, true, 0, MIB, "the whole answer (or the error, for people)"),
    F("error", MF_STR, false, 1, 32, "set when there is no answer: MODEL_NOT_FOUND, NOT_AVAILABLE, CANCELLED, BACKEND, TOO_LONG, RATE_LIMITED, BAD_INPUT"),
    F("model", MF_STR, false, 1, 128, "the model that answered"),
    F("stats", MF_MAP, false, 0, 0, "the backend's own counts and durations (Ollama: prompt_eval_count, eval_count, total_duration, load_duration, prompt_eval_duration, eval_duration in ns)"),
    CHAT_ADDR_FIELDS,
};

static const msgfield_t msgtypes_chat_notice[] = {
    F("kind", MF_STR, true, 1, 16, "queued, online, offline, started, retry, cancelled, info"),
    F("text", MF_STR, true, 0, 4096, "for a person to read"),
    F("job", MF_ID, false, 16, 16, "the job it is about"),
    F("place", MF_UINT, false, 0, U64, "the job's place in its queue (queued)"),
    CHAT_ADDR_FIELDS,
};

static const msgfield_t msgtypes_chat_sync[] = {
    F("after", MF_UINT, true, 0, U64, "the last outbox seq this client has shown; 0: none"),
};

static const msgfield_t msgtypes_tg_approve[] = {
    F("code", MF_STR, true, 1, 32, "the pairing code the unknown chat was given (or a chat id)"),
    F("deny", MF_BOOL, false, 0, 0, "true: refuse the chat instead (it is told so and stays out)"),
};

static const msgfield_t msgtypes_tg_answer[] = {
    F("ok", MF_BOOL, true, 0, 0, "whether the request was done"),
    F("text", MF_STR, true, 0, 4096, "what happened, for the operator"),
    F("chats", MF_ARRAY, false, 0, 0, "telegram.list: maps {chat, user, state: pending|allowed|denied, code?, since_ms}"),
};

/* One row of the table; the name's length is taken by the compiler. */
#define MT(name, flow, doc, ...) \
    { name, flow, doc, __VA_ARGS__, sizeof name - 1 }

static const msgtype_t msgtypes_table[] = {
    MT("sy.hello", "peer -> broker",
      "First message of a session: registers the peer's name and services. Anything else sent first is answered DENIED (NOT_REGISTERED).",
      FIELDS(msgtypes_hello)),
    MT("sy.welcome", "broker -> peer",
      "Answer to sy.hello (corr = the hello's id): the session is open; the heartbeat and size rules follow.",
      FIELDS(msgtypes_welcome)),
    MT("sy.ping", "peer -> broker",
      "Heartbeat: sent when the peer has sent nothing for hb ms. Body: empty map.",
      NULL, 0),
    MT("sy.pong", "broker -> peer",
      "Answer to every sy.ping (corr = the ping's id). Body: empty map.",
      NULL, 0),
    MT("sy.credit", "actor -> broker",
      "Gives the broker n more service deliveries for this actor.",
      FIELDS(msgtypes_credit)),
    MT("sy.receipt", "broker (or an actor) -> peer",
      "Outcome of a message (corr = its id): an error, or the acceptance of a durable message once stored.",
      FIELDS(msgtypes_receipt)),
    MT("sy.sub", "peer -> broker",
      "Subscribes to events whose topic starts with topic.",
      FIELDS(msgtypes_sub)),
    MT("sy.unsub", "peer -> broker",
      "Removes a subscription made with sy.sub.",
      FIELDS(msgtypes_unsub)),
    MT("sy.event", "peer -> broker -> subscribers",
      "An event: sent without `to`, forwarded with `from` set to every peer subscribed to a prefix of topic. The broker itself publishes presence.join and presence.leave.",
      FIELDS(msgtypes_event)),
    MT("sy.query", "peer -> broker",
      "Operator look-up or queue administration; answered by sy.answer (corr = the query's id) or a receipt with an error.",
      FIELDS(msgtypes_query)),
    MT("sy.answer", "broker -> peer",
      "The answer to a sy.query.",
      FIELDS(msgtypes_answer)),
    MT("sy.bye", "either way",
      "Ends the session at once.",
      FIELDS(msgtypes_bye)),
    MT("sy.ack", "actor -> broker",
      "Durable deliveries were handled: the broker removes them from their queues. Exactly one of id (one delivery) and ids (several, e.g. all handled in one turn of the actor's loop: one message instead of many) must be given; each id gives one credit back.",
      FIELDS(msgtypes_ack)),
    MT("sy.nack", "actor -> broker",
      "A durable delivery was not handled: requeued with backoff, or dead-lettered.",
      FIELDS(msgtypes_nack)),
    MT("sy.lease", "actor -> broker",
      "Extends the lease on a durable delivery still being worked on.",
      FIELDS(msgtypes_lease)),
    MT("chat.message", "client or bridge -> frontdoor",
      "A user's chat message. A direct client sends it as itself (user = its name, replies to @name, channel zmq); a bridge named in frontdoor/bridges says channel and user and gets its replies durably at its service.",
      FIELDS(msgtypes_chat_message)),
    MT("chat.sync", "client -> frontdoor",
      "A direct client (re)connected: the front door sends again every chat.reply and chat.notice of its outbox after `after`.",
      FIELDS(msgtypes_chat_sync)),
    MT("chat.request", "frontdoor -> router",
      "A question to classify and route (durable, key job:HEX). reply_to is the front door.",
      FIELDS(msgtypes_chat_request)),
    MT("chat.routed", "router -> frontdoor",
      "Where a job went and, for a queued job, whether a worker is live and the job's place (durable).",
      FIELDS(msgtypes_chat_routed)),
    MT("infer.request", "router -> inference",
      "A heavy job for the LLM (durable, key job:HEX, reply_to frontdoor; priority high when a person waits).",
      FIELDS(msgtypes_infer_request)),
    MT("chat.token", "worker -> frontdoor -> channel",
      "A piece of an answer while it is generated; never durable, may be lost, never final.",
      FIELDS(msgtypes_chat_token)),
    MT("chat.reply", "worker -> frontdoor -> channel",
      "The final answer to a job or command (worker -> frontdoor durable, key reply:HEX; to a bridge durable; to a direct client through its outbox).",
      FIELDS(msgtypes_chat_reply)),
    MT("chat.notice", "router, worker or frontdoor -> frontdoor -> channel",
      "Something for the user that is not an answer: queued and place, laptop online or offline, retry, cancelled.",
      FIELDS(msgtypes_chat_notice)),
    MT("telegram.approve", "operator -> telegram",
      "Approves (or denies) the Telegram chat that was given this pairing code; answered by telegram.answer.",
      FIELDS(msgtypes_tg_approve)),
    MT("telegram.list", "operator -> telegram",
      "Asks the bridge for its chats: pending pairings, allowed and denied chats; answered by telegram.answer. Body: empty map.",
      NULL, 0),
    MT("telegram.answer", "telegram -> operator",
      "The bridge's answer to telegram.approve or telegram.list (corr = the request's id).",
      FIELDS(msgtypes_tg_answer)),
    MT("echo.request", "client -> echo",
      "Test and benchmark request: the echo service answers with echo.reply.",
      FIELDS(msgtypes_echo_request)),
    MT("echo.reply", "echo -> client",
      "Answer to echo.request (corr = the request's id).",
      FIELDS(msgtypes_echo_reply)),
};

#define MSGTYPES_COUNT (sizeof msgtypes_table / sizeof msgtypes_table[0])

/* ---------------------------------------------------------------- lookup */

const msgtype_t *msgtypes_all(size_t *count)
{
    if (count)
        *count = MSGTYPES_COUNT;
    return msgtypes_table;
}

/* The lookup is a perfect hash over the table, fixed by hand so it needs
   no initialisation and no state: msgtypes_hash() mixes the length, bytes
   3 and 4 (they tell sy.ping from sy.pong) and the last byte, and
   msgtypes_slot maps each hash to its table row + 1 (0: no type).  Every
   name is at least MSGTYPES_NAME_MIN bytes, so the bytes read exist.

   Adding or renaming a type: the unit test (test_msgtypes, "every name is
   found") fails until the slot is filled in.  Put the row + 1 at
   msgtypes_slot[msgtypes_hash(name)]; if that slot is taken, choose other
   multipliers so that the 28+ names hash apart, and refill the slots. */
#define MSGTYPES_NAME_MIN 6
#define MSGTYPES_SLOTS 64
_Static_assert(MSGTYPES_COUNT < 256, "msgtypes_slot holds rows + 1 in a byte");

static unsigned msgtypes_hash(const unsigned char *s, size_t len)
{
    return (unsigned) (3 * len + 2u * s[3] + 5u * s[4] + s[len - 1])
           & (MSGTYPES_SLOTS - 1);
}

static const uint8_t msgtypes_slot[MSGTYPES_SLOTS] = {
     0, 14,  0,  0,  0,  0,  0,  4,  0,  0,  8,  0, 17,  0, 15,  5,
     1,  0,  0, 19, 23,  0,  0, 16, 12,  0, 21, 28, 27,  0,  0, 20,
     0,  0, 24,  7,  9, 22, 18,  0, 25,  3,  2,  0, 26,  0, 13,  6,
     0,  0,  0,  0,  0, 11,  0,  0,  0,  0,  0,  0, 10,  0,  0,  0,
};

const msgtype_t *msgtypes_find(const char *type, size_t len)
{
    if (!type || len < MSGTYPES_NAME_MIN)
        return NULL;
    unsigned row = msgtypes_slot[msgtypes_hash((const unsigned char *) type, len)];
    if (row == 0 || row > MSGTYPES_COUNT)
        return NULL;
    const msgtype_t *t = &msgtypes_table[row - 1];
    /* equal lengths first: memcmp then reads inside both names */
    if (t->typelen != len || memcmp(t->type, type, len) != 0)
        return NULL;
    return t;
}

const msgfield_t *msgtypes_field(const msgtype_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    return NULL;
}

const char *msgtypes_kind_name(msgfield_kind_t kind)
{
    switch (kind) {
    case MF_STR:   return "str";
    case MF_NAME:  return "name";
    case MF_UINT:  return "uint";
    case MF_INT:   return "int";
    case MF_BOOL:  return "bool";
    case MF_FLOAT: return "float";
    case MF_BIN:   return "bin";
    case MF_ID:    return "id";
    case MF_STRS:  return "strs";
    case MF_NAMES: return "names";
    case MF_IDS:   return "ids";
    case MF_MAP:   return "map";
    case MF_ARRAY: return "array";
    case MF_ANY:   return "any";
    }
    return "?";
}

/* ---------------------------------------------------------------- UTF-8 */

bool msgtypes_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf;   /* allowed range of the 2nd byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0) lo = 0xa0;          /* overlong */
            else if (c == 0xed) hi = 0x9f;     /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0) lo = 0x90;          /* overlong */
            else if (c == 0xf4) hi = 0x8f;     /* above U+10FFFF */
        } else {
            return false;                      /* 0x80..0xc1, 0xf5.. */
        }
        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

/* ---------------------------------------------------------------- validate */

typedef struct {
    char  *err;
    size_t errlen;
    const msgtype_t *t;
} msgtypes_ctx_t;

__attribute__((format(printf, 3, 4)))
static int msgtypes_fail(const msgtypes_ctx_t *c, int rc, const char *fmt, ...)
{
    if (c->err && c->errlen > 0) {
        int n = snprintf(c->err, c->errlen, "%s: ", c->t->type);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

static int msgtypes_type_err(const msgtypes_ctx_t *c, const msgfield_t *f,
                             const mpval_t *v)
{
    return msgtypes_fail(c, SY_EFIELD_TYPE, "field \"%s\": expected %s, got %s",
                         f->name, msgtypes_kind_name(f->kind),
                         mpval_kind_name(v->kind));
}

static int msgtypes_range_err(const msgtypes_ctx_t *c, const msgfield_t *f,
                              uint64_t got, const char *unit)
{
    return msgtypes_fail(c, SY_EFIELD_RANGE,
                         "field \"%s\": %llu%s out of range %llu..%llu",
                         f->name, (unsigned long long)got, unit,
                         (unsigned long long)f->min, (unsigned long long)f->max);
}

/* A string of f's rules (length [lo, hi], UTF-8 or name characters). */
static int msgtypes_check_str(const msgtypes_ctx_t *c, const msgfield_t *f,
                              const mpval_t *v, uint64_t lo, uint64_t hi,
                              bool name)
{
    if (v->kind != MP_STR)
        return msgtypes_type_err(c, f, v);
    if (v->len < lo || v->len > hi)
        return msgtypes_fail(c, SY_EFIELD_RANGE,
                             "field \"%s\": %u bytes, allowed %llu..%llu",
                             f->name, (unsigned)v->len,
                             (unsigned long long)lo, (unsigned long long)hi);
    if (name && !envelope_valid_name((const char *)v->ptr, v->len))
        return msgtypes_fail(c, SY_EFIELD_CHARS,
                             "field \"%s\": characters not allowed in a name", f->name);
    if (!name && !msgtypes_utf8_valid(v->ptr, v->len))
        return msgtypes_fail(c, SY_EBAD_UTF8, "field \"%s\": not valid UTF-8", f->name);
    return 0;
}

/* One item of an MF_IDS array: a 16-byte binary. */
static int msgtypes_check_id_item(const msgtypes_ctx_t *c, const msgfield_t *f,
                                  const mpval_t *item)
{
    if (item->kind != MP_BIN)
        return msgtypes_type_err(c, f, item);
    if (item->len != ENVELOPE_ID_LEN)
        return msgtypes_range_err(c, f, item->len, " bytes (an id is 16)");
    return 0;
}

/* The items of an MF_STRS / MF_NAMES / MF_IDS array whose header is v. */
static int msgtypes_check_list(const msgtypes_ctx_t *c, const msgfield_t *f,
                               mpread_t *r, const mpval_t *v)
{
    if (v->kind != MP_ARRAY)
        return msgtypes_type_err(c, f, v);
    if (v->len < f->min || v->len > f->max)
        return msgtypes_range_err(c, f, v->len, " items");
    bool name = f->kind == MF_NAMES;
    uint64_t hi = name ? ENVELOPE_NAME_MAX : f->item_max;
    for (uint32_t i = 0; i < v->len; i++) {
        mpval_t item;
        int rc = mpread_next(r, &item);
        if (rc)
            return msgtypes_fail(c, rc, "field \"%s\": %s", f->name, syerr_text(rc));
        rc = f->kind == MF_IDS ? msgtypes_check_id_item(c, f, &item)
                               : msgtypes_check_str(c, f, &item, name ? 1 : 0, hi, name);
        if (rc)
            return rc;
    }
    return 0;
}

static int msgtypes_check_free(const msgtypes_ctx_t *c, const msgfield_t *f,
                               mpread_t *r, const mpval_t *v)
{
    if ((f->kind == MF_MAP && v->kind != MP_MAP) ||
        (f->kind == MF_ARRAY && v->kind != MP_ARRAY))
        return msgtypes_type_err(c, f, v);
    int rc = mpread_skip_max(r, v, 1, MSGTYPES_MAX_DEPTH);
    if (rc)
        return msgtypes_fail(c, rc, "field \"%s\": %s", f->name, syerr_text(rc));
    return 0;
}

/* Checks the value v of field f; containers' items are read from r. */
static int msgtypes_check_value(const msgtypes_ctx_t *c, const msgfield_t *f,
                                mpread_t *r, const mpval_t *v)
{
    uint64_t u;
    switch (f->kind) {
    case MF_STR:
        return msgtypes_check_str(c, f, v, f->min, f->max, false);
    case MF_NAME:
        return msgtypes_check_str(c, f, v, f->min, f->max, true);
    case MF_UINT:
        if (!mpval_as_uint(v, &u))
            return msgtypes_type_err(c, f, v);
        return (u < f->min || u > f->max) ? msgtypes_range_err(c, f, u, "") : 0;
    case MF_INT:
        if (v->kind == MP_UINT && v->u > (uint64_t)INT64_MAX)
            return msgtypes_range_err(c, f, v->u, "");
        return (v->kind == MP_UINT || v->kind == MP_INT) ? 0 : msgtypes_type_err(c, f, v);
    case MF_BOOL:
        return v->kind == MP_BOOL ? 0 : msgtypes_type_err(c, f, v);
    case MF_FLOAT:
        return (v->kind == MP_FLOAT || v->kind == MP_UINT || v->kind == MP_INT)
               ? 0 : msgtypes_type_err(c, f, v);
    case MF_BIN:
    case MF_ID:
        if (v->kind != MP_BIN)
            return msgtypes_type_err(c, f, v);
        if (f->kind == MF_ID ? v->len != 16 : (v->len < f->min || v->len > f->max))
            return msgtypes_range_err(c, f, v->len, " bytes");
        return 0;
    case MF_STRS:
    case MF_NAMES:
    case MF_IDS:
        return msgtypes_check_list(c, f, r, v);
    case MF_MAP:
    case MF_ARRAY:
    case MF_ANY:
        return msgtypes_check_free(c, f, r, v);
    }
    return msgtypes_fail(c, SY_EINVAL, "field \"%s\": bad kind in table", f->name);
}

/* The field named by key k, and its index in *idx. */
static const msgfield_t *msgtypes_field_of(const msgtype_t *t, const mpval_t *k,
                                           size_t *idx)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (mpval_str_eq(k, t->fields[i].name)) {
            *idx = i;
            return &t->fields[i];
        }
    return NULL;
}

static int msgtypes_struct_err(const msgtypes_ctx_t *c, int rc)
{
    return msgtypes_fail(c, rc, "body: %s", syerr_text(rc));
}

static int msgtypes_validate_pass(const msgtypes_ctx_t *c, const uint8_t *body,
                                  size_t len)
{
    const msgtype_t *t = c->t;
    mpread_t r;
    mpval_t m, k, v;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &m);
    if (rc)
        return msgtypes_struct_err(c, rc);
    if (m.kind != MP_MAP)
        return msgtypes_fail(c, SY_ENOT_MAP, "body: expected a map, got %s",
                             mpval_kind_name(m.kind));
    uint64_t seen = 0;
    for (uint32_t i = 0; i < m.len; i++) {
        if ((rc = mpread_next(&r, &k)))
            return msgtypes_struct_err(c, rc);
        if (k.kind != MP_STR)
            return msgtypes_fail(c, SY_EKEY_TYPE, "body: key %u is %s, not str",
                                 (unsigned)i, mpval_kind_name(k.kind));
        size_t idx = 0;
        const msgfield_t *f = msgtypes_field_of(t, &k, &idx);
        if (!f) {
            char name[40];
            mpval_printable(&k, name, sizeof name);
            return msgtypes_fail(c, SY_EUNKNOWN_FIELD, "unknown field \"%s\"", name);
        }
        if (seen & (1ULL << idx))
            return msgtypes_fail(c, SY_EDUP_FIELD, "field \"%s\": appears twice", f->name);
        seen |= 1ULL << idx;
        if ((rc = mpread_next(&r, &v)))
            return msgtypes_struct_err(c, rc);
        if ((rc = msgtypes_check_value(c, f, &r, &v)))
            return rc;
    }
    if (mpread_left(&r) > 0)
        return msgtypes_struct_err(c, SY_ETRAILING);
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].required && !(seen & (1ULL << i)))
            return msgtypes_fail(c, SY_EMISSING, "field \"%s\": required",
                                 t->fields[i].name);
    return 0;
}

int msgtypes_validate(const msgtype_t *t, const uint8_t *body, size_t len,
                      char *err, size_t errlen)
{
    if (err && errlen > 0)
        err[0] = '\0';
    if (!t || (!body && len > 0) || t->nfields > 64)
        return SY_EINVAL;
    msgtypes_ctx_t c = { err, errlen, t };
    int rc = msgtypes_validate_pass(&c, body, len);
    if (rc && rc != SY_ETRUNCATED && rc != SY_ECOUNT && rc != SY_ETRAILING &&
        rc != SY_EDEPTH) {
        int s = mpread_check(body, len, MSGTYPES_MAX_DEPTH);
        if (s)
            rc = msgtypes_struct_err(&c, s);
    }
    return rc;
}

/* ---------------------------------------------------------------- markdown */

static void msgtypes_md_range(FILE *f, const msgfield_t *fl)
{
    switch (fl->kind) {
    case MF_STR: case MF_NAME: case MF_BIN:
        fprintf(f, "%llu..%llu bytes", (unsigned long long)fl->min,
                (unsigned long long)fl->max);
        break;
    case MF_UINT:
        if (fl->max == U64)
            fprintf(f, "%llu..2^64-1", (unsigned long long)fl->min);
        else
            fprintf(f, "%llu..%llu", (unsigned long long)fl->min,
                    (unsigned long long)fl->max);
        break;
    case MF_ID:
        fputs("16 bytes", f);
        break;
    case MF_STRS:
        fprintf(f, "%llu..%llu items of 0..%u bytes", (unsigned long long)fl->min,
                (unsigned long long)fl->max, (unsigned)fl->item_max);
        break;
    case MF_NAMES:
        fprintf(f, "%llu..%llu items", (unsigned long long)fl->min,
                (unsigned long long)fl->max);
        break;
    case MF_IDS:
        fprintf(f, "%llu..%llu ids of 16 bytes", (unsigned long long)fl->min,
                (unsigned long long)fl->max);
        break;
    case MF_MAP: case MF_ARRAY: case MF_ANY:
        fprintf(f, "depth <= %d", MSGTYPES_MAX_DEPTH);
        break;
    default:
        fputs("-", f);
        break;
    }
}

static void msgtypes_md_type(FILE *f, const msgtype_t *t)
{
    fprintf(f, "### `%s`\n\n%s. %s\n\n", t->type, t->flow, t->doc);
    if (t->nfields == 0) {
        fputs("Fields: none (the body is an empty map, `80`).\n\n", f);
        return;
    }
    fputs("| field | kind | required | range | meaning |\n"
          "|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < t->nfields; i++) {
        const msgfield_t *fl = &t->fields[i];
        fprintf(f, "| `%s` | %s | %s | ", fl->name, msgtypes_kind_name(fl->kind),
                fl->required ? "yes" : "no");
        msgtypes_md_range(f, fl);
        fprintf(f, " | %s |\n", fl->doc);
    }
    fputs("\n", f);
}

int msgtypes_markdown(FILE *f)
{
    if (!f)
        return SY_EINVAL;
    fputs("Field kinds and the msgpack encodings accepted for them:\n\n"
          "| kind | msgpack | rule |\n|---|---|---|\n"
          "| str | str | length in bytes within the range; valid UTF-8 (no overlong forms, no surrogates) |\n"
          "| name | str | length within the range; only `A-Z a-z 0-9 . _ : @ -` |\n"
          "| uint | positive fixint, uint 8/16/32/64, or int 8/16/32/64 holding a value >= 0 | value within the range |\n"
          "| int | any integer encoding | -2^63..2^63-1 |\n"
          "| bool | true / false | |\n"
          "| float | float 32/64 or any integer | |\n"
          "| bin | bin 8/16/32 | length within the range |\n"
          "| id | bin 8/16/32 | exactly 16 bytes (a message id) |\n"
          "| strs | array of str | item count within the range; each item valid UTF-8 of at most the given bytes |\n"
          "| names | array of str | item count within the range; each item a name of 1..64 bytes |\n"
          "| map | map | containers nested at most the given depth |\n"
          "| array | array | containers nested at most the given depth |\n"
          "| any | any value, nil included | containers nested at most the given depth |\n\n"
          "A body is a map whose keys are str. A key not listed for the type is\n"
          "UNKNOWN_FIELD, a key twice DUP_FIELD, a missing required field\n"
          "MISSING. nil stands for nothing but itself: it is FIELD_TYPE for every\n"
          "kind except any (leave an optional field out instead).\n\n", f);
    for (size_t i = 0; i < MSGTYPES_COUNT; i++)
        msgtypes_md_type(f, &msgtypes_table[i]);
    return ferror(f) ? SY_EIO : 0;
}
