/*  llm.h -- the two LLM backend protocols, as pure functions.
 *
 *  sy-inference talks to an Ollama server (POST /api/chat, one JSON
 *  object per line) or to an OpenAI-compatible one such as llama.cpp or
 *  vLLM (POST /v1/chat/completions, server-sent events "data: {...}").
 *  This module holds everything about those protocols that needs no
 *  socket: reading an infer.request, building the request body, turning
 *  one line of the streamed answer into an event, and judging the answer
 *  of a health check.  The worker (actors/inference.c) does the I/O.
 *
 *  Every line of an answer is checked: Ollama reports errors found
 *  mid-stream as a line {"error": "..."} under HTTP 200, so a line with
 *  `error`, a line that is not a JSON object, or a known field of the
 *  wrong type is an LLM_EV_ERROR that fails the attempt.  Unknown fields
 *  are ignored (backends add them freely).
 *
 *  Statistics: both backends' counts are reported under Ollama's names
 *  (prompt_eval_count, eval_count, total_duration, load_duration,
 *  prompt_eval_duration, eval_duration; durations in ns).  OpenAI's usage
 *  prompt_tokens / completion_tokens become prompt_eval_count /
 *  eval_count.  A count that is not an unsigned 64-bit integer (a string,
 *  a negative or a huge number) is left out, never an error: statistics
 *  are informative.
 *
 *  Ownership: llm_build_request() returns a malloc'd buffer the caller
 *  frees; an llm_event_t owns its buffer until llm_event_clear().  Inputs
 *  are borrowed.  No global state; every function is reentrant.
 */
#ifndef LLM_H
#define LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

typedef enum {
    LLM_OLLAMA = 0,             /* same order as inference/backend's enum */
    LLM_OPENAI = 1
} llm_backend_t;

/* The paths of a backend, to append to inference/url. */
const char *llm_chat_path(llm_backend_t be);      /* "/api/chat", ... */
const char *llm_health_path(llm_backend_t be);    /* "/api/tags", ... */

/* ---------------------------------------------------------------- jobs */

#define LLM_MODEL_MAX 128

/* The parts of an infer.request body.  Pointers point into the body. */
typedef struct {
    uint8_t        job[16];
    const uint8_t *messages;    /* the msgpack array, whole */
    size_t         messages_len;
    char           model[LLM_MODEL_MAX + 1];    /* "" when absent */
} llm_job_t;

/* Reads an infer.request body (job, messages, model).  Returns 0, or
   SY_EMISSING / SY_EFIELD_TYPE / SY_EFIELD_RANGE / a decoding code with
   a sentence in err (the job id is in out->job whenever it was read, so
   the caller can still answer the job). */
int llm_job_read(const uint8_t *body, size_t len, llm_job_t *out,
                 char *err, size_t errlen);

/* Builds the JSON request body for the chat endpoint of be:
     Ollama: {"model":..,"messages":[..],"stream":true}
     OpenAI: {"model":..,"messages":[..],"stream":true,
              "stream_options":{"include_usage":true}}
   from messages, a msgpack array of maps {role, content}: role one of
   system, user, assistant; content a valid UTF-8 string; no other key;
   at least one message.  Strings are escaped by common/json.c (quotes,
   backslashes, control characters; UTF-8 passes through).  Returns 0 with
   *out (NUL-terminated, malloc'd) and *out_len, or SY_EBAD_BODY (the
   messages are not acceptable, a sentence naming the message in err),
   SY_EINVAL (empty model) or SY_ENOMEM. */
int llm_build_request(llm_backend_t be, const char *model,
                      const uint8_t *messages, size_t messages_len,
                      char **out, size_t *out_len, char *err, size_t errlen);

/* ---------------------------------------------------------------- stats */

enum {
    LLM_STAT_PROMPT_EVAL_COUNT = 0,
    LLM_STAT_EVAL_COUNT,
    LLM_STAT_TOTAL_DURATION,
    LLM_STAT_LOAD_DURATION,
    LLM_STAT_PROMPT_EVAL_DURATION,
    LLM_STAT_EVAL_DURATION,
    LLM_STAT_COUNT
};

typedef struct {
    uint32_t present;               /* bit i: v[i] is set */
    uint64_t v[LLM_STAT_COUNT];
} llm_stats_t;

/* The name of stat i ("prompt_eval_count", ...), NULL out of range. */
const char *llm_stat_name(int i);

/* Copies the stats present in src over dst. */
void llm_stats_merge(llm_stats_t *dst, const llm_stats_t *src);

/* Packs the present stats as one msgpack map (possibly empty). */
void llm_stats_pack(msgpack_packer *pk, const llm_stats_t *s);

/* ---------------------------------------------------------------- lines */

typedef enum {
    LLM_EV_NONE = 0,    /* nothing to do: empty line, SSE comment or other
                           field, an object without content */
    LLM_EV_TOKEN,       /* a piece of the answer in text (may be empty when
                           the line only carried stats, e.g. OpenAI usage) */
    LLM_EV_DONE,        /* the answer is complete; text may hold a last
                           piece, stats the counts */
    LLM_EV_ERROR        /* the attempt failed: err says why */
} llm_ev_kind_t;

#define LLM_ERR_MAX 256

typedef struct {
    llm_ev_kind_t kind;
    const char   *text;         /* TOKEN / DONE: not NUL-terminated */
    size_t        text_len;
    llm_stats_t   stats;
    char          model[LLM_MODEL_MAX + 1];   /* "" when the line had none */
    char          err[LLM_ERR_MAX];           /* ERROR: printable sentence */
    uint8_t      *buf_;         /* owned: the line as msgpack */
} llm_event_t;

/* Parses one line of a streamed answer (without its "\n") into *ev, which
   the caller clears with llm_event_clear() afterwards.  Returns 0 (see
   ev->kind; hostile or malformed lines are LLM_EV_ERROR, never a
   failure), or SY_ENOMEM. */
int llm_parse_line(llm_backend_t be, const char *line, size_t len,
                   llm_event_t *ev);

void llm_event_clear(llm_event_t *ev);

/* The backend's error message from a whole non-200 response body (Ollama
   {"error":"..."}, OpenAI {"error":{"message":"..."}}), printable, into
   out; the start of the body, made printable, when it is not JSON. */
void llm_error_text(const char *body, size_t len, char *out, size_t cap);

/* ---------------------------------------------------------------- health */

/* Judges the body of a health check answered 200: Ollama's /api/tags must
   be an object with a "models" array, OpenAI's /v1/models an object with
   a "data" array.  Returns 0, or SY_EBAD_BODY with a sentence in err. */
int llm_health_check(llm_backend_t be, const char *body, size_t len,
                     char *err, size_t errlen);

#endif
