/*  llm.c -- the Ollama and OpenAI chat protocols without sockets.
 *
 *  Ideas:
 *    - JSON is never handled as text here.  Requests are packed as
 *      msgpack and printed by common/json.c, which escapes every string
 *      correctly; answers are parsed by the same module's strict parser
 *      into msgpack and read with the bounded schemas/mpread.h reader.
 *      So quoting, escapes, hostile nesting and huge numbers are handled
 *      in one tested place.
 *    - A line is judged whole: an `error` anywhere at the top level wins
 *      over content (Ollama may send both), a known field of the wrong
 *      type is an error (the stream cannot be trusted), unknown fields
 *      are ignored.
 *    - Texts that leave this module (errors, models) are made printable
 *      but keep their UTF-8: users read them.
 */
#include "actors/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

static const char *const llm_stat_names[LLM_STAT_COUNT] = {
    "prompt_eval_count", "eval_count", "total_duration", "load_duration",
    "prompt_eval_duration", "eval_duration",
};

const char *llm_chat_path(llm_backend_t be)
{
    return be == LLM_OPENAI ? "/v1/chat/completions" : "/api/chat";
}

const char *llm_health_path(llm_backend_t be)
{
    return be == LLM_OPENAI ? "/v1/models" : "/api/tags";
}

const char *llm_stat_name(int i)
{
    return i >= 0 && i < LLM_STAT_COUNT ? llm_stat_names[i] : NULL;
}

/* ---------------------------------------------------------------- text */

/* Copies s[0..n) into out (cap >= 1, NUL-terminated): valid UTF-8 is
   kept, control characters become spaces, invalid bytes '?'; cut on a
   character boundary. */
static void llm_copy_text(const uint8_t *s, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (k > 1 && (k > n - i || !msgtypes_utf8_valid(s + i, k)))
            k = 0;      /* an invalid byte */
        size_t put = k ? k : 1;
        if (o + put >= cap)
            break;
        if (k == 0)
            out[o] = '?';
        else if (k == 1)
            out[o] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
        else
            memcpy(out + o, s + i, k);
        o += put;
        i += put;
    }
    out[o] = 0;
}

static void llm_copy_val(const mpval_t *v, char *out, size_t cap)
{
    llm_copy_text(v->ptr, v->len, out, cap);
}

/* ---------------------------------------------------------------- jobs */

/* Reads the value after a key, returning its start and total length. */
static int llm_read_span(mpread_t *r, mpval_t *v, const uint8_t **start,
                         size_t *n)
{
    *start = r->p;
    int rc = mpread_next(r, v);
    if (rc == 0)
        rc = mpread_skip(r, v, 1);
    *n = (size_t) (r->p - *start);
    return rc;
}

int llm_job_read(const uint8_t *body, size_t len, llm_job_t *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc)
        return syerr_fmt(err, errlen, rc, "the job is not msgpack");
    if (map.kind != MP_MAP)
        return syerr_fmt(err, errlen, SY_ENOT_MAP, "the job is not a map");
    bool have_job = false;
    for (uint32_t i = 0; i < map.len; i++) {
        const uint8_t *start;
        size_t n;
        rc = mpread_next(&r, &k);
        if (rc == 0)
            rc = llm_read_span(&r, &v, &start, &n);
        if (rc)
            return syerr_fmt(err, errlen, rc, "the job's body is malformed");
        if (mpval_str_eq(&k, "job")) {
            if (v.kind != MP_BIN || v.len != 16)
                return syerr_fmt(err, errlen, SY_EFIELD_TYPE,
                                 "job must be 16 bytes");
            memcpy(out->job, v.ptr, 16);
            have_job = true;
        } else if (mpval_str_eq(&k, "messages")) {
            if (v.kind != MP_ARRAY)
                return syerr_fmt(err, errlen, SY_EFIELD_TYPE,
                                 "messages must be an array");
            out->messages = start;
            out->messages_len = n;
        } else if (mpval_str_eq(&k, "model")) {
            if (v.kind != MP_STR || v.len == 0 || v.len > LLM_MODEL_MAX
                || !msgtypes_utf8_valid(v.ptr, v.len))
                return syerr_fmt(err, errlen, SY_EFIELD_RANGE,
                                 "model must be a name of 1..%d bytes",
                                 LLM_MODEL_MAX);
            memcpy(out->model, v.ptr, v.len);
            out->model[v.len] = 0;
        }
    }
    if (!have_job)
        return syerr_fmt(err, errlen, SY_EMISSING, "the job has no job id");
    if (!out->messages)
        return syerr_fmt(err, errlen, SY_EMISSING, "the job has no messages");
    return 0;
}

static bool llm_role_ok(const mpval_t *v)
{
    return mpval_str_eq(v, "system") || mpval_str_eq(v, "user")
        || mpval_str_eq(v, "assistant");
}

/* Reads message number idx (a map {role, content}) at r into role and
   content.  Returns 0 or SY_EBAD_BODY with a sentence in err. */
static int llm_read_message(mpread_t *r, uint32_t idx, mpval_t *role,
                            mpval_t *content, char *err, size_t errlen)
{
    mpval_t m, k, v;
    int rc = mpread_next(r, &m);
    if (rc)
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "message %u is malformed", idx + 1);
    if (m.kind != MP_MAP) {
        mpread_skip(r, &m, 1);
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "message %u is a %s, not a map {role, content}",
                         idx + 1, mpval_kind_name(m.kind));
    }
    bool has_role = false, has_content = false;
    for (uint32_t i = 0; i < m.len; i++) {
        if (mpread_next(r, &k) || mpread_next(r, &v)
            || mpread_skip(r, &v, 2))
            return syerr_fmt(err, errlen, SY_EBAD_BODY,
                             "message %u is malformed", idx + 1);
        if (mpval_str_eq(&k, "role") && !has_role) {
            if (!llm_role_ok(&v))
                return syerr_fmt(err, errlen, SY_EBAD_BODY,
                                 "message %u: role must be system, user or "
                                 "assistant", idx + 1);
            *role = v;
            has_role = true;
        } else if (mpval_str_eq(&k, "content") && !has_content) {
            if (v.kind != MP_STR)
                return syerr_fmt(err, errlen, SY_EBAD_BODY,
                                 "message %u: content must be a string, "
                                 "not a %s", idx + 1, mpval_kind_name(v.kind));
            if (!msgtypes_utf8_valid(v.ptr, v.len))
                return syerr_fmt(err, errlen, SY_EBAD_BODY,
                                 "message %u: content is not valid UTF-8",
                                 idx + 1);
            *content = v;
            has_content = true;
        } else {
            char name[40] = "";
            if (k.kind == MP_STR)
                mpval_printable(&k, name, sizeof name);
            return syerr_fmt(err, errlen, SY_EBAD_BODY,
                             "message %u: field '%s' is not allowed "
                             "(only role and content, once each)",
                             idx + 1, name);
        }
    }
    if (!has_role || !has_content)
        return syerr_fmt(err, errlen, SY_EBAD_BODY, "message %u has no %s",
                         idx + 1, has_role ? "content" : "role");
    return 0;
}

static void llm_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str_with_body(pk, s, n);
}

static void llm_pack_cstr(msgpack_packer *pk, const char *s)
{
    llm_pack_str(pk, s, strlen(s));
}

/* Packs the messages array (validated on the way) into pk. */
static int llm_pack_messages(msgpack_packer *pk, const uint8_t *messages,
                             size_t len, char *err, size_t errlen)
{
    mpread_t r;
    mpval_t arr;
    mpread_init(&r, messages, len);
    if (mpread_next(&r, &arr) || arr.kind != MP_ARRAY)
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "messages must be an array of {role, content}");
    if (arr.len == 0)
        return syerr_fmt(err, errlen, SY_EBAD_BODY, "there are no messages");
    msgpack_pack_array(pk, arr.len);
    for (uint32_t i = 0; i < arr.len; i++) {
        mpval_t role = { 0 }, content = { 0 };
        int rc = llm_read_message(&r, i, &role, &content, err, errlen);
        if (rc)
            return rc;
        msgpack_pack_map(pk, 2);
        llm_pack_cstr(pk, "role");
        llm_pack_str(pk, (const char *) role.ptr, role.len);
        llm_pack_cstr(pk, "content");
        llm_pack_str(pk, (const char *) content.ptr, content.len);
    }
    if (mpread_left(&r))
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "bytes follow the messages array");
    return 0;
}

int llm_build_request(llm_backend_t be, const char *model,
                      const uint8_t *messages, size_t messages_len,
                      char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (!model || !*model)
        return syerr_fmt(err, errlen, SY_EINVAL, "no model");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, be == LLM_OPENAI ? 4 : 3);
    llm_pack_cstr(&pk, "model");
    llm_pack_cstr(&pk, model);
    llm_pack_cstr(&pk, "messages");
    int rc = llm_pack_messages(&pk, messages, messages_len, err, errlen);
    if (rc == 0) {
        llm_pack_cstr(&pk, "stream");
        msgpack_pack_true(&pk);
        if (be == LLM_OPENAI) {
            llm_pack_cstr(&pk, "stream_options");
            msgpack_pack_map(&pk, 1);
            llm_pack_cstr(&pk, "include_usage");
            msgpack_pack_true(&pk);
        }
        if (!sb.data)
            rc = SY_ENOMEM;
    }
    if (rc == 0) {
        rc = json_from_msgpack((const uint8_t *) sb.data, sb.size, out);
        if (rc && rc != SY_ENOMEM)
            rc = syerr_fmt(err, errlen, SY_EBAD_BODY,
                           "the request could not be written as JSON: %s",
                           syerr_name(rc));
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc == SY_ENOMEM)
        syerr_fmt(err, errlen, rc, "out of memory");
    if (rc == 0)
        *out_len = strlen(*out);
    return rc;
}

/* ---------------------------------------------------------------- stats */

void llm_stats_merge(llm_stats_t *dst, const llm_stats_t *src)
{
    for (int i = 0; i < LLM_STAT_COUNT; i++)
        if (src->present & (1u << i)) {
            dst->v[i] = src->v[i];
            dst->present |= 1u << i;
        }
}

void llm_stats_pack(msgpack_packer *pk, const llm_stats_t *s)
{
    uint32_t n = 0;
    for (int i = 0; i < LLM_STAT_COUNT; i++)
        n += (s->present >> i) & 1u;
    msgpack_pack_map(pk, n);
    for (int i = 0; i < LLM_STAT_COUNT; i++)
        if (s->present & (1u << i)) {
            llm_pack_cstr(pk, llm_stat_names[i]);
            msgpack_pack_uint64(pk, s->v[i]);
        }
}

/* Sets stat i from key `key` of the map at r when it holds an unsigned
   integer; anything else is left out. */
static void llm_stat_from(const mpread_t *r, const mpval_t *map,
                          const char *key, int i, llm_stats_t *s)
{
    mpval_t v;
    uint64_t u;
    if (mpread_map_find(r, map, key, &v, NULL) == 0 && mpval_as_uint(&v, &u)) {
        s->v[i] = u;
        s->present |= 1u << i;
    }
}

/* ---------------------------------------------------------------- lines */

void llm_event_clear(llm_event_t *ev)
{
    if (!ev)
        return;
    free(ev->buf_);
    memset(ev, 0, sizeof *ev);
}

static int llm_ev_error(llm_event_t *ev, const char *fmt, const char *detail)
{
    ev->kind = LLM_EV_ERROR;
    ev->text = NULL;
    ev->text_len = 0;
    snprintf(ev->err, sizeof ev->err, fmt, detail);
    return 0;
}

/* The message of an `error` value v (at reader `at` for a map): a string,
   or a map's "message" string; else a generic sentence. */
static void llm_error_of(const mpval_t *v, const mpread_t *at, char *out,
                         size_t cap)
{
    mpval_t m;
    if (v->kind == MP_STR && v->len) {
        llm_copy_val(v, out, cap);
        return;
    }
    if (v->kind == MP_MAP && mpread_map_find(at, v, "message", &m, NULL) == 0
        && m.kind == MP_STR && m.len) {
        llm_copy_val(&m, out, cap);
        return;
    }
    snprintf(out, cap, "the backend reported an error without a message");
}

/* Copies the top-level "model" of the object into ev when it is a
   printable name of a fitting length. */
static void llm_model_from(const mpread_t *r, const mpval_t *obj,
                           llm_event_t *ev)
{
    mpval_t v;
    if (mpread_map_find(r, obj, "model", &v, NULL) == 0 && v.kind == MP_STR
        && v.len > 0 && v.len <= LLM_MODEL_MAX
        && msgtypes_utf8_valid(v.ptr, v.len))
        llm_copy_val(&v, ev->model, sizeof ev->model);
}

/* Parses JSON text into ev->buf_ and reads its top-level object header.
   Returns 0, 1 when the event is already an error, or SY_ENOMEM. */
static int llm_parse_object(const char *text, size_t len, llm_event_t *ev,
                            mpread_t *r, mpval_t *obj)
{
    size_t n = 0;
    json_err_t jerr;
    int rc = json_to_msgpack(text, len, NULL, &ev->buf_, &n, &jerr);
    if (rc == SY_ENOMEM)
        return rc;
    if (rc) {
        llm_ev_error(ev, "the backend sent a line that is not JSON (%s)",
                     jerr.msg);
        return 1;
    }
    mpread_init(r, ev->buf_, n);
    if (mpread_next(r, obj) || obj->kind != MP_MAP) {
        llm_ev_error(ev, "the backend sent a line that is not a JSON object%s",
                     "");
        return 1;
    }
    return 0;
}

/* Checks the top-level "error"; returns true (ev is an error) if there. */
static bool llm_line_error(const mpread_t *r, const mpval_t *obj,
                           llm_event_t *ev)
{
    mpval_t v;
    mpread_t at;
    if (mpread_map_find(r, obj, "error", &v, &at) != 0 || v.kind == MP_NIL)
        return false;
    char msg[LLM_ERR_MAX - 32];
    llm_error_of(&v, &at, msg, sizeof msg);
    llm_ev_error(ev, "the backend reported: %s", msg);
    return true;
}

/* Ollama: {"model", "message": {"role", "content"}, "done", stats...}. */
static int llm_parse_ollama(const mpread_t *r, const mpval_t *obj,
                            llm_event_t *ev)
{
    mpval_t v, c;
    mpread_t at;
    int rc = mpread_map_find(r, obj, "message", &v, &at);
    if (rc == 0 && v.kind == MP_MAP) {
        rc = mpread_map_find(&at, &v, "content", &c, NULL);
        if (rc == 0 && c.kind == MP_STR) {
            ev->text = (const char *) c.ptr;
            ev->text_len = c.len;
            ev->kind = LLM_EV_TOKEN;
        } else if (rc == 0 && c.kind != MP_NIL)
            return llm_ev_error(ev, "the backend sent message.content as "
                                "a %s", mpval_kind_name(c.kind));
    } else if (rc == 0 && v.kind != MP_NIL)
        return llm_ev_error(ev, "the backend sent message as a %s",
                            mpval_kind_name(v.kind));
    rc = mpread_map_find(r, obj, "done", &v, NULL);
    if (rc == 0 && v.kind != MP_BOOL)
        return llm_ev_error(ev, "the backend sent done as a %s",
                            mpval_kind_name(v.kind));
    if (rc == 0 && v.b) {
        ev->kind = LLM_EV_DONE;
        for (int i = 0; i < LLM_STAT_COUNT; i++)
            llm_stat_from(r, obj, llm_stat_names[i], i, &ev->stats);
    }
    return 0;
}

/* OpenAI: {"model", "choices": [{"delta": {"content"}}], "usage"}. */
static int llm_parse_openai(const mpread_t *r, const mpval_t *obj,
                            llm_event_t *ev)
{
    mpval_t v, first, delta, c;
    mpread_t at, at2;
    int rc = mpread_map_find(r, obj, "choices", &v, &at);
    if (rc == 0 && v.kind != MP_ARRAY && v.kind != MP_NIL)
        return llm_ev_error(ev, "the backend sent choices as a %s",
                            mpval_kind_name(v.kind));
    if (rc == 0 && v.kind == MP_ARRAY && v.len > 0) {
        if (mpread_next(&at, &first) || first.kind != MP_MAP)
            return llm_ev_error(ev, "the backend sent a choice that is not "
                                "an object%s", "");
        rc = mpread_map_find(&at, &first, "delta", &delta, &at2);
        if (rc == 0 && delta.kind == MP_MAP) {
            rc = mpread_map_find(&at2, &delta, "content", &c, NULL);
            if (rc == 0 && c.kind == MP_STR) {
                ev->text = (const char *) c.ptr;
                ev->text_len = c.len;
            } else if (rc == 0 && c.kind != MP_NIL)
                return llm_ev_error(ev, "the backend sent delta.content as "
                                    "a %s", mpval_kind_name(c.kind));
        } else if (rc == 0 && delta.kind != MP_NIL)
            return llm_ev_error(ev, "the backend sent delta as a %s",
                                mpval_kind_name(delta.kind));
    }
    rc = mpread_map_find(r, obj, "usage", &v, &at);
    if (rc == 0 && v.kind == MP_MAP) {
        llm_stat_from(&at, &v, "prompt_tokens", LLM_STAT_PROMPT_EVAL_COUNT,
                      &ev->stats);
        llm_stat_from(&at, &v, "completion_tokens", LLM_STAT_EVAL_COUNT,
                      &ev->stats);
    }
    if (ev->text_len || ev->stats.present)
        ev->kind = LLM_EV_TOKEN;
    return 0;
}

static bool llm_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The payload of an SSE line, or NULL when the line is not data (empty,
   a comment, another field). */
static const char *llm_sse_data(const char *line, size_t len, size_t *n)
{
    if (len >= 5 && memcmp(line, "data:", 5) == 0) {
        size_t skip = len > 5 && line[5] == ' ' ? 6 : 5;
        *n = len - skip;
        return line + skip;
    }
    if (len && line[0] == '{') {   /* a server answering plain JSON */
        *n = len;
        return line;
    }
    return NULL;
}

int llm_parse_line(llm_backend_t be, const char *line, size_t len,
                   llm_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!line)
        len = 0;
    if (be == LLM_OPENAI) {
        line = llm_sse_data(line, len, &len);
        if (!line)
            return 0;
    }
    while (len && llm_blank(line[0])) {
        line++;
        len--;
    }
    while (len && llm_blank(line[len - 1]))
        len--;
    if (len == 0)
        return 0;
    if (be == LLM_OPENAI && len == 6 && memcmp(line, "[DONE]", 6) == 0) {
        ev->kind = LLM_EV_DONE;
        return 0;
    }
    mpread_t r;
    mpval_t obj;
    int rc = llm_parse_object(line, len, ev, &r, &obj);
    if (rc)
        return rc < 0 ? rc : 0;
    if (llm_line_error(&r, &obj, ev))
        return 0;
    llm_model_from(&r, &obj, ev);
    return be == LLM_OPENAI ? llm_parse_openai(&r, &obj, ev)
                            : llm_parse_ollama(&r, &obj, ev);
}

void llm_error_text(const char *body, size_t len, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = 0;
    uint8_t *mp = NULL;
    size_t n = 0;
    if (body && len
        && json_to_msgpack(body, len, NULL, &mp, &n, NULL) == 0) {
        mpread_t r;
        mpval_t obj, v;
        mpread_t at;
        mpread_init(&r, mp, n);
        if (mpread_next(&r, &obj) == 0 && obj.kind == MP_MAP
            && mpread_map_find(&r, &obj, "error", &v, &at) == 0) {
            llm_error_of(&v, &at, out, cap);
            free(mp);
            return;
        }
    }
    free(mp);
    llm_copy_text((const uint8_t *) (body ? body : ""), body ? len : 0, out,
                  cap);
}

/* ---------------------------------------------------------------- health */

int llm_health_check(llm_backend_t be, const char *body, size_t len,
                     char *err, size_t errlen)
{
    const char *want = be == LLM_OPENAI ? "data" : "models";
    uint8_t *mp = NULL;
    size_t n = 0;
    json_err_t jerr;
    int rc = json_to_msgpack(body ? body : "", body ? len : 0, NULL, &mp, &n,
                             &jerr);
    if (rc) {
        free(mp);
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "%s answered with something that is not JSON (%s)",
                         llm_health_path(be), jerr.msg);
    }
    mpread_t r;
    mpval_t obj, v;
    mpread_init(&r, mp, n);
    rc = mpread_next(&r, &obj);
    if (rc == 0 && obj.kind == MP_MAP)
        rc = mpread_map_find(&r, &obj, want, &v, NULL);
    else
        rc = SY_ENOT_MAP;
    free(mp);
    if (rc || v.kind != MP_ARRAY)
        return syerr_fmt(err, errlen, SY_EBAD_BODY,
                         "%s answered without a \"%s\" array",
                         llm_health_path(be), want);
    return 0;
}
