/*  chatstore.h -- the front door's store: conversations, pending jobs and
 *  the outboxes of direct clients, in one LMDB environment.
 *
 *  Three kinds of record (docs/CHAT.md, "The front door"):
 *
 *    conversations  one per (channel, user): a conversation number, which
 *                   chatstore_conv_new() (/new) bumps, and its turns
 *                   {role, text, ts}, oldest first.  Appending a turn trims
 *                   the conversation to its last `history_turns` turns in
 *                   the same transaction.
 *    jobs           the pending jobs, keyed by job id (16-byte syid, so
 *                   time-ordered): who asked, where the answer goes, what
 *                   the router said about it.  A job ends (its record is
 *                   deleted) when it is answered or cancelled.
 *    outboxes       per direct-client user, every chat.reply and
 *                   chat.notice sent to it, numbered 1, 2, ... (the
 *                   numbering survives restarts); only the last
 *                   `outbox_max` entries are kept.
 *
 *  What is durable when
 *  --------------------
 *  Every call that changes the store is one LMDB write transaction, and
 *  returns after it committed with a full sync (fsync): what a call wrote
 *  survives kill -9 and a machine crash once it returned 0.  Calls that
 *  change two records (a question: the user's turn and the new job; an
 *  answer: the job's end, the assistant's turn and the outbox entry) do
 *  so in one transaction: both or neither.
 *
 *  Sealing
 *  -------
 *  Every text (turns, job records, outbox entries) is sealed at rest with
 *  common/seal.h, with the key file DIR/store.key, made at the first start
 *  of an empty store.  Each record's associated data is its own LMDB key,
 *  so a record copied under another key does not open.  The key's
 *  fingerprint is kept in the store: a store that holds data refuses a
 *  missing key file (the data cannot be read without it; no new key is
 *  made over it) and a different one.  Keys of records (channel, user
 *  names, job ids, sequence numbers) are not secret and not sealed.
 *
 *  Format and damage
 *  -----------------
 *  The layout is versioned by a "format" record in the `meta` database
 *  (CHATSTORE_FORMAT_VERSION).  chatstore_open() refuses, with SY_ESTORE
 *  and a message naming the directory and the reason, a data.mdb that is
 *  not LMDB or is damaged, an LMDB file that is not a front door store,
 *  and a store of another format version.  A refused store is never
 *  recreated or overwritten: move it away to start afresh.
 *
 *  Limits: channel 1..64 bytes, user 1..128 bytes (as in the message
 *  table); a turn's text at most CHATSTORE_TEXT_MAX bytes; an outbox
 *  entry's body at most CHATSTORE_BODY_MAX bytes.  Longer is SY_EINVAL.
 *
 *  Threads: a chatstore_t belongs to one thread.
 *  Ownership: chatstore_open() returns a store destroyed with
 *  chatstore_destroy(); chatstore_history() and chatstore_jobs() fill
 *  arrays the caller frees with chatstore_turns_clear() / free().
 */
#ifndef CHATSTORE_H
#define CHATSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHATSTORE_FORMAT_VERSION 1
#define CHATSTORE_CHANNEL_MAX    64
#define CHATSTORE_USER_MAX       128
#define CHATSTORE_ADDR_MAX       128
#define CHATSTORE_ROUTE_MAX      65         /* a service, or "@" + a name */
#define CHATSTORE_PREVIEW_MAX    80         /* bytes of the question kept */
#define CHATSTORE_TEXT_MAX       (1024 * 1024)
#define CHATSTORE_BODY_MAX       (2 * 1024 * 1024)
#define CHATSTORE_TYPE_MAX       32

typedef struct _chatstore_t chatstore_t;

typedef struct {
    const char *dir;            /* the store's directory (made 0700) */
    uint64_t    map_size;       /* LMDB map size, bytes; 0: 64 MiB */
    uint32_t    history_turns;  /* turns kept per conversation (0: none) */
    uint32_t    outbox_max;     /* entries kept per outbox; 0: 100 */
} chatstore_opts_t;

/* Opens (or on first use makes) the store and its key file.  Returns 0
   with *out, or SY_ESTORE / SY_ECRYPTO / SY_ECONFIG / SY_ENOMEM / SY_EINVAL
   with one line in err saying what is wrong and with which file. */
int chatstore_open(const chatstore_opts_t *opts, chatstore_t **out,
                   char *err, size_t errlen);

/* Closes the store, wipes the key; NULLs *self_p.  NULL-safe. */
void chatstore_destroy(chatstore_t **self_p);

/* ------------------------------------------------------------ turns */

typedef enum {
    CHATSTORE_USER = 0,
    CHATSTORE_ASSISTANT = 1,
} chatstore_role_t;

typedef struct {
    chatstore_role_t role;
    uint64_t         ts;        /* ms since the epoch */
    char            *text;      /* NUL-terminated, owned by the array */
    size_t           len;
} chatstore_turn_t;

typedef struct {
    chatstore_turn_t *v;        /* oldest first */
    size_t            n;
} chatstore_turns_t;

/* Appends a turn to the conversation of (channel, user) and trims it to
   the last history_turns turns (in one transaction).  Returns 0 or an
   error. */
int chatstore_turn_append(chatstore_t *self, const char *channel,
                          const char *user, chatstore_role_t role,
                          const char *text, size_t len, uint64_t ts);

/* The conversation's turns, oldest first, cut to the newest ones whose
   texts fit in max_bytes together (a turn that does not fit ends the
   list: no gaps).  *out is filled (n = 0 for none); free it with
   chatstore_turns_clear().  Returns 0 or an error (*out then empty). */
int chatstore_history(chatstore_t *self, const char *channel,
                      const char *user, size_t max_bytes,
                      chatstore_turns_t *out);

void chatstore_turns_clear(chatstore_turns_t *turns);

/* Starts a new conversation for (channel, user): drops the turns of the
   current one and bumps the number.  The new number (1 for a user never
   seen: the first conversation is number 0) into *conv if not NULL. */
int chatstore_conv_new(chatstore_t *self, const char *channel,
                       const char *user, uint64_t *conv);

/* The current conversation's number (0 for a user never seen). */
int chatstore_conv_number(chatstore_t *self, const char *channel,
                          const char *user, uint64_t *conv);

/* ------------------------------------------------------------ jobs */

typedef struct {
    uint8_t  id[16];
    char     channel[CHATSTORE_CHANNEL_MAX + 1];
    char     user[CHATSTORE_USER_MAX + 1];
    char     addr[CHATSTORE_ADDR_MAX + 1];          /* "" if none */
    char     ref[CHATSTORE_ADDR_MAX + 1];           /* "" if none */
    char     route[CHATSTORE_ROUTE_MAX + 1];        /* service or "@name" */
    uint64_t created;           /* ms since the epoch; also the ts of the
                                   user's turn that asked */
    uint64_t conv;              /* the conversation it belongs to (set by
                                   chatstore_ask) */
    char     klass[17];         /* HEAVY / LIGHT / SCHEDULED; "" until
                                   routed */
    char     service[CHATSTORE_CHANNEL_MAX + 1];    /* "" until routed */
    bool     has_queued;
    uint8_t  queued_id[16];
    char     preview[CHATSTORE_PREVIEW_MAX + 1];    /* the question's start */
} chatstore_job_t;

/* Fills job->preview from text: its first bytes, cut at a UTF-8
   boundary at most CHATSTORE_PREVIEW_MAX bytes in. */
void chatstore_preview(chatstore_job_t *job, const char *text, size_t len);

/* A question: appends the user's turn (text, ts = job->created) to the
   conversation of (job->channel, job->user) and records job as pending,
   in one transaction.  job->conv is set to the conversation's number.
   Returns 0, SY_EDUPLICATE (a job with this id is pending: nothing
   changed) or an error. */
int chatstore_ask(chatstore_t *self, chatstore_job_t *job,
                  const char *text, size_t len);

/* Undoes chatstore_ask() for a question that could not be sent: deletes
   the job and its question (the user's turn with ts = job->created) from
   the conversation, if that is still the job's.  Returns 0 or
   SY_ENOTFOUND. */
int chatstore_withdraw(chatstore_t *self, const uint8_t id[16]);

/* The pending job id into *job.  Returns 0 or SY_ENOTFOUND. */
int chatstore_job_get(chatstore_t *self, const uint8_t id[16],
                      chatstore_job_t *job);

/* Writes job (new or changed) as it is.  Returns 0 or an error. */
int chatstore_job_put(chatstore_t *self, const chatstore_job_t *job);

/* Where the router sent job id: its class, service and (if queued_id is
   not NULL) queued id.  Returns 0 or SY_ENOTFOUND (not pending). */
int chatstore_job_route(chatstore_t *self, const uint8_t id[16],
                        const char *klass, const char *service,
                        const uint8_t *queued_id);

/* An outbox entry to write together with a job's end. */
typedef struct {
    const char    *user;        /* the direct client */
    const char    *type;        /* e.g. "chat.reply" */
    const uint8_t *body;        /* msgpack, without seq */
    size_t         len;
} chatstore_out_t;

/* Ends the pending job id, in one transaction: deletes it; if answer is
   not NULL appends it as the assistant's turn (only when the job's
   conversation is still the current one: after /new it belongs to
   nothing); if out is not NULL appends it to that outbox, its seq into
   *seq.  Returns 0, SY_ENOTFOUND (not pending: nothing changed) or an
   error. */
int chatstore_job_end(chatstore_t *self, const uint8_t id[16],
                      const char *answer, size_t answer_len,
                      const chatstore_out_t *out, uint64_t *seq);

/* As chatstore_job_end() for a cancelled job: no answer, and its
   question is dropped from the conversation (a withdrawn question is no
   context for the next).  Returns 0, SY_ENOTFOUND or an error. */
int chatstore_job_cancel(chatstore_t *self, const uint8_t id[16],
                         const chatstore_out_t *out, uint64_t *seq);

/* The pending jobs of (channel, user), oldest first; both NULL: every
   pending job.  *jobs is malloc'd (NULL when *n is 0); the caller frees
   it.  Returns 0 or an error. */
int chatstore_jobs(chatstore_t *self, const char *channel, const char *user,
                   chatstore_job_t **jobs, size_t *n);

/* ------------------------------------------------------------ outbox */

/* Appends one message to user's outbox; its seq (1, 2, ...) into *seq.
   Entries beyond the last outbox_max are dropped in the same
   transaction.  Returns 0 or an error. */
int chatstore_outbox_append(chatstore_t *self, const chatstore_out_t *out,
                            uint64_t *seq);

/* Called for each outbox entry read back, in seq order; the pointers are
   valid during the call only.  A non-zero return stops the walk and is
   returned by chatstore_outbox_after(). */
typedef int (chatstore_out_fn)(uint64_t seq, const char *type,
                               const uint8_t *body, size_t len, void *arg);

/* Calls fn for every entry of user's outbox with a seq above after, in
   order.  Returns 0, fn's non-zero value, or an error. */
int chatstore_outbox_after(chatstore_t *self, const char *user,
                           uint64_t after, chatstore_out_fn *fn, void *arg);

/* The last seq given out for user (0 if none). */
int chatstore_outbox_last(chatstore_t *self, const char *user, uint64_t *seq);

#endif
