/*  test_llm.c -- the Ollama and OpenAI protocols of actors/llm.c.
 *
 *  Request bodies are compared as exact JSON text (escaping of quotes,
 *  backslashes and control characters; UTF-8 passed through); every kind
 *  of bad message list is refused with a sentence naming the message.
 *  Answer lines of both backends are parsed into events, including
 *  hostile ones: not JSON, not an object, wrong types, huge and negative
 *  numbers, missing fields, deep nesting.  Health answers and error
 *  bodies too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "actors/llm.h"
#include "common/json.h"
#include "schemas/syerr.h"

/* ---------------------------------------------------------------- help */

/* JSON text -> msgpack (the test's way of writing message arrays). */
static uint8_t *mp_of(const char *json, size_t *n)
{
    uint8_t *mp = NULL;
    json_err_t err;
    if (json_to_msgpack(json, strlen(json), NULL, &mp, n, &err))
        fail_msg("bad test JSON %s: %s", json, err.msg);
    return mp;
}

static void build_is(llm_backend_t be, const char *model, const char *msgs,
                     const char *want)
{
    size_t n;
    uint8_t *mp = mp_of(msgs, &n);
    char *out = NULL, err[200] = "";
    size_t len = 0;
    int rc = llm_build_request(be, model, mp, n, &out, &len, err, sizeof err);
    if (rc)
        fail_msg("build failed: %s (%s)", syerr_name(rc), err);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
    free(mp);
}

static void build_fails(const char *msgs, const char *want_in_err)
{
    size_t n;
    uint8_t *mp = mp_of(msgs, &n);
    char *out = (char *) 1, err[200] = "";
    size_t len = 9;
    int rc = llm_build_request(LLM_OLLAMA, "m", mp, n, &out, &len, err,
                               sizeof err);
    assert_int_equal(rc, SY_EBAD_BODY);
    assert_null(out);
    assert_int_equal(len, 0);
    if (!strstr(err, want_in_err))
        fail_msg("%s: error '%s' does not say '%s'", msgs, err, want_in_err);
    free(mp);
}

static void parse(llm_backend_t be, const char *line, llm_event_t *ev)
{
    assert_int_equal(llm_parse_line(be, line, strlen(line), ev), 0);
}

static void text_is(const llm_event_t *ev, const char *want)
{
    assert_int_equal(ev->text_len, strlen(want));
    if (ev->text_len)
        assert_memory_equal(ev->text, want, ev->text_len);
}

static void kind_is(llm_backend_t be, const char *line, llm_ev_kind_t kind)
{
    llm_event_t ev;
    parse(be, line, &ev);
    if (ev.kind != kind)
        fail_msg("%s: kind %d, want %d (err '%s')", line, ev.kind, kind,
                 ev.err);
    llm_event_clear(&ev);
}

static void error_says(llm_backend_t be, const char *line, const char *want)
{
    llm_event_t ev;
    parse(be, line, &ev);
    if (ev.kind != LLM_EV_ERROR)
        fail_msg("%s: kind %d, want an error", line, ev.kind);
    if (!strstr(ev.err, want))
        fail_msg("%s: error '%s' does not say '%s'", line, ev.err, want);
    llm_event_clear(&ev);
}

/* ---------------------------------------------------------------- jobs */

static uint8_t *job_body(const char *model, bool with_job, size_t *n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + with_job + (model != NULL));
    if (with_job) {
        msgpack_pack_str_with_body(&pk, "job", 3);
        msgpack_pack_bin_with_body(&pk, "0123456789abcdef", 16);
    }
    msgpack_pack_str_with_body(&pk, "messages", 8);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "role", 4);
    msgpack_pack_str_with_body(&pk, "user", 4);
    msgpack_pack_str_with_body(&pk, "content", 7);
    msgpack_pack_str_with_body(&pk, "hi", 2);
    if (model) {
        msgpack_pack_str_with_body(&pk, "model", 5);
        msgpack_pack_str_with_body(&pk, model, strlen(model));
    }
    *n = sb.size;
    return (uint8_t *) msgpack_sbuffer_release(&sb);
}

static void test_job_read(void **state)
{
    (void) state;
    size_t n;
    char err[200];
    llm_job_t job;
    uint8_t *b = job_body("qwen2.5:7b", true, &n);
    assert_int_equal(llm_job_read(b, n, &job, err, sizeof err), 0);
    assert_memory_equal(job.job, "0123456789abcdef", 16);
    assert_string_equal(job.model, "qwen2.5:7b");
    assert_non_null(job.messages);
    /* the span is exactly the array: it builds a request */
    char *out = NULL;
    size_t len;
    assert_int_equal(llm_build_request(LLM_OLLAMA, job.model, job.messages,
                                       job.messages_len, &out, &len, err,
                                       sizeof err), 0);
    assert_string_equal(out, "{\"model\":\"qwen2.5:7b\",\"messages\":"
                        "[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"stream\":true}");
    free(out);
    free(b);

    b = job_body(NULL, true, &n);
    assert_int_equal(llm_job_read(b, n, &job, err, sizeof err), 0);
    assert_string_equal(job.model, "");
    free(b);

    b = job_body(NULL, false, &n);
    assert_int_equal(llm_job_read(b, n, &job, err, sizeof err), SY_EMISSING);
    assert_non_null(strstr(err, "job"));
    free(b);

    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    b = job_body(longname, true, &n);
    assert_int_equal(llm_job_read(b, n, &job, err, sizeof err),
                     SY_EFIELD_RANGE);
    /* the job id was read before the bad field: the caller can answer */
    assert_memory_equal(job.job, "0123456789abcdef", 16);
    free(b);

    /* not a map; truncated; messages of the wrong type */
    const uint8_t arr[] = { 0x91, 0x01 };
    assert_int_equal(llm_job_read(arr, sizeof arr, &job, err, sizeof err),
                     SY_ENOT_MAP);
    const uint8_t trunc[] = { 0x81, 0xa3, 'j', 'o' };
    assert_true(llm_job_read(trunc, sizeof trunc, &job, err, sizeof err) < 0);
    b = mp_of("{\"messages\":\"hi\"}", &n);
    assert_int_equal(llm_job_read(b, n, &job, err, sizeof err),
                     SY_EFIELD_TYPE);
    free(b);
    assert_true(llm_job_read(NULL, 0, &job, err, sizeof err) < 0);
}

/* ---------------------------------------------------------------- build */

static void test_build_ollama(void **state)
{
    (void) state;
    build_is(LLM_OLLAMA, "llama3.2",
             "[{\"role\":\"system\",\"content\":\"be brief\"},"
             "{\"role\":\"user\",\"content\":\"hi\"},"
             "{\"role\":\"assistant\",\"content\":\"hello\"},"
             "{\"content\":\"and?\",\"role\":\"user\"}]",
             "{\"model\":\"llama3.2\",\"messages\":["
             "{\"role\":\"system\",\"content\":\"be brief\"},"
             "{\"role\":\"user\",\"content\":\"hi\"},"
             "{\"role\":\"assistant\",\"content\":\"hello\"},"
             "{\"role\":\"user\",\"content\":\"and?\"}],\"stream\":true}");
}

static void test_build_openai(void **state)
{
    (void) state;
    build_is(LLM_OPENAI, "qwen",
             "[{\"role\":\"user\",\"content\":\"hi\"}]",
             "{\"model\":\"qwen\",\"messages\":"
             "[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true}}");
}

static void test_build_escapes(void **state)
{
    (void) state;
    /* quotes, backslash, newline, tab, a control byte, DEL; Korean and
       an emoji (a surrogate pair in the test JSON) come out as UTF-8 */
    build_is(LLM_OLLAMA, "m\"odel",
             "[{\"role\":\"user\",\"content\":"
             "\"say \\\"hi\\\" \\\\ now\\n\\tx\\u0001\\u007f "
             "\\ubd84\\uc11d\\ud83d\\ude00\"}]",
             "{\"model\":\"m\\\"odel\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"say \\\"hi\\\" \\\\ now\\n\\tx\\u0001\\u007f "
             "\xeb\xb6\x84\xec\x84\x9d\xf0\x9f\x98\x80\"}],\"stream\":true}");
    /* empty content is a message too */
    build_is(LLM_OLLAMA, "m", "[{\"role\":\"user\",\"content\":\"\"}]",
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"\"}],\"stream\":true}");
}

static void test_build_refuses(void **state)
{
    (void) state;
    build_fails("[]", "no messages");
    build_fails("{\"role\":\"user\"}", "array");
    build_fails("[{\"role\":\"robot\",\"content\":\"x\"}]",
                "message 1: role must be system, user or assistant");
    build_fails("[{\"role\":\"user\",\"content\":\"x\"},"
                "{\"role\":\"USER\",\"content\":\"x\"}]", "message 2: role");
    build_fails("[{\"role\":7,\"content\":\"x\"}]", "role");
    build_fails("[{\"role\":\"user\",\"content\":5}]",
                "message 1: content must be a string, not a uint");
    build_fails("[{\"role\":\"user\",\"content\":null}]", "not a nil");
    build_fails("[{\"role\":\"user\",\"content\":[\"a\"]}]", "not a array");
    build_fails("[{\"role\":\"user\"}]", "message 1 has no content");
    build_fails("[{\"content\":\"x\"}]", "message 1 has no role");
    build_fails("[{\"role\":\"user\",\"content\":\"x\",\"images\":[]}]",
                "field 'images' is not allowed");
    build_fails("[{\"role\":\"user\",\"content\":\"x\",\"role\":\"user\"}]",
                "field 'role' is not allowed");
    build_fails("[\"hello\"]", "message 1 is a str, not a map");
    build_fails("[{\"role\":\"user\",\"content\":\"x\"}, 3]",
                "message 2 is a uint");
    build_fails("[{}]", "message 1 has no role");

    /* bytes the JSON parser would never make: invalid UTF-8 content, a
       non-string key, a hostile count, trailing bytes */
    const uint8_t bad_utf8[] = { 0x91, 0x82, 0xa4, 'r', 'o', 'l', 'e',
                                 0xa4, 'u', 's', 'e', 'r', 0xa7, 'c', 'o',
                                 'n', 't', 'e', 'n', 't', 0xa2, 0xc3, 0x28 };
    const uint8_t int_key[] = { 0x91, 0x81, 0x01, 0x02 };
    const uint8_t huge[] = { 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x80 };
    const uint8_t trailing[] = { 0x91, 0x82, 0xa4, 'r', 'o', 'l', 'e',
                                 0xa4, 'u', 's', 'e', 'r', 0xa7, 'c', 'o',
                                 'n', 't', 'e', 'n', 't', 0xa0, 0xc0 };
    const struct { const uint8_t *p; size_t n; const char *want; } raw[] = {
        { bad_utf8, sizeof bad_utf8, "not valid UTF-8" },
        { int_key, sizeof int_key, "field '' is not allowed" },
        { huge, sizeof huge, "array" },
        { trailing, sizeof trailing, "bytes follow" },
        { huge, 0, "array" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        char *out = NULL, err[200] = "";
        size_t len;
        int rc = llm_build_request(LLM_OPENAI, "m", raw[i].p, raw[i].n, &out,
                                   &len, err, sizeof err);
        assert_int_equal(rc, SY_EBAD_BODY);
        assert_null(out);
        if (!strstr(err, raw[i].want))
            fail_msg("raw %zu: '%s' does not say '%s'", i, err, raw[i].want);
    }
    /* no model */
    size_t n;
    uint8_t *mp = mp_of("[{\"role\":\"user\",\"content\":\"x\"}]", &n);
    char *out = NULL, err[100];
    size_t len;
    assert_int_equal(llm_build_request(LLM_OLLAMA, "", mp, n, &out, &len,
                                       err, sizeof err), SY_EINVAL);
    assert_null(out);
    free(mp);
}

/* ---------------------------------------------------------------- ollama */

static void test_ollama_lines(void **state)
{
    (void) state;
    llm_event_t ev;
    parse(LLM_OLLAMA, "{\"model\":\"llama3.2\",\"created_at\":\"x\","
          "\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},"
          "\"done\":false}", &ev);
    assert_int_equal(ev.kind, LLM_EV_TOKEN);
    text_is(&ev, "Hel");
    assert_string_equal(ev.model, "llama3.2");
    assert_int_equal(ev.stats.present, 0);
    llm_event_clear(&ev);

    /* escapes and UTF-8 in the content come out as bytes */
    parse(LLM_OLLAMA, "{\"message\":{\"content\":\"a\\nb \\\"c\\\" "
          "\\ubd84\"},\"done\":false}", &ev);
    text_is(&ev, "a\nb \"c\" \xeb\xb6\x84");
    llm_event_clear(&ev);

    parse(LLM_OLLAMA, "{\"model\":\"llama3.2\",\"message\":{\"role\":"
          "\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":"
          "\"stop\",\"total_duration\":5043500667,\"load_duration\":"
          "5025959,\"prompt_eval_count\":26,\"prompt_eval_duration\":"
          "325953000,\"eval_count\":290,\"eval_duration\":4709213000}", &ev);
    assert_int_equal(ev.kind, LLM_EV_DONE);
    text_is(&ev, "");
    assert_int_equal(ev.stats.present, (1u << LLM_STAT_COUNT) - 1);
    assert_int_equal(ev.stats.v[LLM_STAT_PROMPT_EVAL_COUNT], 26);
    assert_int_equal(ev.stats.v[LLM_STAT_EVAL_COUNT], 290);
    assert_int_equal(ev.stats.v[LLM_STAT_TOTAL_DURATION], 5043500667ULL);
    assert_int_equal(ev.stats.v[LLM_STAT_LOAD_DURATION], 5025959);
    assert_int_equal(ev.stats.v[LLM_STAT_PROMPT_EVAL_DURATION], 325953000);
    assert_int_equal(ev.stats.v[LLM_STAT_EVAL_DURATION], 4709213000ULL);
    llm_event_clear(&ev);

    /* a done line with a last piece and no message at all */
    parse(LLM_OLLAMA, "{\"message\":{\"content\":\"end\"},\"done\":true}", &ev);
    assert_int_equal(ev.kind, LLM_EV_DONE);
    text_is(&ev, "end");
    llm_event_clear(&ev);
    kind_is(LLM_OLLAMA, "{\"done\":true}", LLM_EV_DONE);

    /* hostile stats: huge (becomes a float), negative, string, float,
       bool, 2^64-1 exactly */
    parse(LLM_OLLAMA, "{\"done\":true,\"eval_count\":1e300,"
          "\"prompt_eval_count\":-5,\"total_duration\":\"12\","
          "\"load_duration\":1.5,\"eval_duration\":true,"
          "\"prompt_eval_duration\":18446744073709551615}", &ev);
    assert_int_equal(ev.kind, LLM_EV_DONE);
    assert_int_equal(ev.stats.present, 1u << LLM_STAT_PROMPT_EVAL_DURATION);
    assert_true(ev.stats.v[LLM_STAT_PROMPT_EVAL_DURATION] == UINT64_MAX);
    llm_event_clear(&ev);
    parse(LLM_OLLAMA, "{\"done\":true,\"eval_count\":"
          "184467440737095516150000}", &ev);
    assert_int_equal(ev.kind, LLM_EV_DONE);
    assert_int_equal(ev.stats.present, 0);
    llm_event_clear(&ev);

    /* nothing to do */
    kind_is(LLM_OLLAMA, "", LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "   \r", LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "{}", LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "{\"done\":false}", LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "{\"message\":{\"role\":\"assistant\"}}",
            LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "{\"message\":null,\"error\":null}", LLM_EV_NONE);
    kind_is(LLM_OLLAMA, "  {\"message\":{\"content\":\"x\"}}  ", LLM_EV_TOKEN);
    assert_int_equal(llm_parse_line(LLM_OLLAMA, NULL, 5, &ev), 0);
    assert_int_equal(ev.kind, LLM_EV_NONE);
    llm_event_clear(&ev);
}

static void test_ollama_errors(void **state)
{
    (void) state;
    /* Ollama's mid-stream error under 200, even beside content */
    error_says(LLM_OLLAMA, "{\"error\":\"an error was encountered while "
               "running the model: unexpected EOF\"}",
               "the backend reported: an error was encountered while "
               "running the model: unexpected EOF");
    error_says(LLM_OLLAMA, "{\"message\":{\"content\":\"x\"},\"error\":"
               "\"boom\"}", "boom");
    error_says(LLM_OLLAMA, "{\"error\":{\"message\":\"nested\"}}", "nested");
    error_says(LLM_OLLAMA, "{\"error\":42}", "without a message");
    error_says(LLM_OLLAMA, "{\"error\":\"line\\nbreak\\u0000x\"}",
               "line break x");
    /* not JSON, not an object */
    error_says(LLM_OLLAMA, "not json at all", "not JSON");
    error_says(LLM_OLLAMA, "{\"message\":{\"content\":\"x\"}", "not JSON");
    error_says(LLM_OLLAMA, "{\"a\":1} {\"b\":2}", "not JSON");
    error_says(LLM_OLLAMA, "[1,2,3]", "not a JSON object");
    error_says(LLM_OLLAMA, "\"text\"", "not a JSON object");
    error_says(LLM_OLLAMA, "12", "not a JSON object");
    error_says(LLM_OLLAMA, "{\"message\":{\"content\":\"\xc3\x28\"}}",
               "not JSON");
    /* wrong types of known fields */
    error_says(LLM_OLLAMA, "{\"message\":{\"content\":5}}",
               "message.content as a uint");
    error_says(LLM_OLLAMA, "{\"message\":{\"content\":{\"a\":1}}}",
               "message.content as a map");
    error_says(LLM_OLLAMA, "{\"message\":\"hi\"}", "message as a str");
    error_says(LLM_OLLAMA, "{\"done\":\"true\"}", "done as a str");
    error_says(LLM_OLLAMA, "{\"done\":1}", "done as a uint");
    /* nesting deeper than the parser allows */
    char deep[200] = "{\"x\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    error_says(LLM_OLLAMA, deep, "not JSON");
    /* a model name that is too long or not a string is left out */
    char longmodel[400];
    snprintf(longmodel, sizeof longmodel, "{\"model\":\"%0200d\","
             "\"done\":true}", 0);
    llm_event_t ev;
    parse(LLM_OLLAMA, longmodel, &ev);
    assert_int_equal(ev.kind, LLM_EV_DONE);
    assert_string_equal(ev.model, "");
    llm_event_clear(&ev);
    parse(LLM_OLLAMA, "{\"model\":7,\"done\":true}", &ev);
    assert_string_equal(ev.model, "");
    llm_event_clear(&ev);
    llm_event_clear(NULL);
}

/* ---------------------------------------------------------------- openai */

static void test_openai_lines(void **state)
{
    (void) state;
    llm_event_t ev;
    parse(LLM_OPENAI, "data: {\"id\":\"c1\",\"object\":"
          "\"chat.completion.chunk\",\"model\":\"qwen\",\"choices\":"
          "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
          "\"Hi \"},\"finish_reason\":null}]}", &ev);
    assert_int_equal(ev.kind, LLM_EV_TOKEN);
    text_is(&ev, "Hi ");
    assert_string_equal(ev.model, "qwen");
    llm_event_clear(&ev);

    /* "data:" without the space */
    parse(LLM_OPENAI, "data:{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
          &ev);
    assert_int_equal(ev.kind, LLM_EV_TOKEN);
    text_is(&ev, "x");
    llm_event_clear(&ev);

    /* the usage chunk: no choices, the counts under Ollama's names */
    parse(LLM_OPENAI, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":"
          "12,\"completion_tokens\":34,\"total_tokens\":46}}", &ev);
    assert_int_equal(ev.kind, LLM_EV_TOKEN);
    text_is(&ev, "");
    assert_int_equal(ev.stats.present, (1u << LLM_STAT_PROMPT_EVAL_COUNT)
                                       | (1u << LLM_STAT_EVAL_COUNT));
    assert_int_equal(ev.stats.v[LLM_STAT_PROMPT_EVAL_COUNT], 12);
    assert_int_equal(ev.stats.v[LLM_STAT_EVAL_COUNT], 34);
    llm_event_clear(&ev);
    parse(LLM_OPENAI, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":"
          "\"12\",\"completion_tokens\":-1}}", &ev);
    assert_int_equal(ev.kind, LLM_EV_NONE);
    llm_event_clear(&ev);

    kind_is(LLM_OPENAI, "data: [DONE]", LLM_EV_DONE);
    kind_is(LLM_OPENAI, "data:[DONE]  ", LLM_EV_DONE);
    kind_is(LLM_OPENAI, "", LLM_EV_NONE);
    kind_is(LLM_OPENAI, ": keep-alive", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "event: message", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "id: 7", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "retry: 1000", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: ", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: {}", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: {\"choices\":null}", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: {\"choices\":[{\"delta\":{}}]}", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: {\"choices\":[{\"delta\":{\"content\":null},"
            "\"finish_reason\":\"stop\"}]}", LLM_EV_NONE);
    kind_is(LLM_OPENAI, "data: {\"choices\":[{\"finish_reason\":\"stop\"}]}",
            LLM_EV_NONE);

    /* errors */
    error_says(LLM_OPENAI, "data: {\"error\":{\"message\":\"context too "
               "long\",\"type\":\"invalid_request_error\"}}",
               "the backend reported: context too long");
    error_says(LLM_OPENAI, "{\"error\":{\"message\":\"plain json\"}}",
               "plain json");
    error_says(LLM_OPENAI, "data: not json", "not JSON");
    error_says(LLM_OPENAI, "data: [1]", "not a JSON object");
    error_says(LLM_OPENAI, "data: {\"choices\":{}}", "choices as a map");
    error_says(LLM_OPENAI, "data: {\"choices\":[7]}", "not an object");
    error_says(LLM_OPENAI, "data: {\"choices\":[{\"delta\":\"x\"}]}",
               "delta as a str");
    error_says(LLM_OPENAI, "data: {\"choices\":[{\"delta\":{\"content\":"
               "[1]}}]}", "delta.content as a array");
}

/* ---------------------------------------------------------------- misc */

static void test_stats_pack(void **state)
{
    (void) state;
    llm_stats_t a = { 0 }, b = { 0 };
    a.present = 1u << LLM_STAT_EVAL_COUNT;
    a.v[LLM_STAT_EVAL_COUNT] = 3;
    b.present = (1u << LLM_STAT_EVAL_COUNT) | (1u << LLM_STAT_LOAD_DURATION);
    b.v[LLM_STAT_EVAL_COUNT] = 7;
    b.v[LLM_STAT_LOAD_DURATION] = 9;
    llm_stats_merge(&a, &b);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    llm_stats_pack(&pk, &a);
    char *json = NULL;
    assert_int_equal(json_from_msgpack((uint8_t *) sb.data, sb.size, &json),
                     0);
    assert_string_equal(json, "{\"eval_count\":7,\"load_duration\":9}");
    free(json);
    msgpack_sbuffer_clear(&sb);
    llm_stats_t none = { 0 };
    llm_stats_pack(&pk, &none);
    assert_int_equal(json_from_msgpack((uint8_t *) sb.data, sb.size, &json),
                     0);
    assert_string_equal(json, "{}");
    free(json);
    msgpack_sbuffer_destroy(&sb);
    assert_string_equal(llm_stat_name(0), "prompt_eval_count");
    assert_null(llm_stat_name(LLM_STAT_COUNT));
    assert_null(llm_stat_name(-1));
    assert_string_equal(llm_chat_path(LLM_OLLAMA), "/api/chat");
    assert_string_equal(llm_chat_path(LLM_OPENAI), "/v1/chat/completions");
    assert_string_equal(llm_health_path(LLM_OLLAMA), "/api/tags");
    assert_string_equal(llm_health_path(LLM_OPENAI), "/v1/models");
}

static void test_error_text(void **state)
{
    (void) state;
    char out[64];
    const char *o = "{\"error\":\"model 'nope' not found\"}";
    llm_error_text(o, strlen(o), out, sizeof out);
    assert_string_equal(out, "model 'nope' not found");
    const char *a = "{\"error\":{\"message\":\"The model `x` does not exist\","
                    "\"code\":404}}";
    llm_error_text(a, strlen(a), out, sizeof out);
    assert_string_equal(out, "The model `x` does not exist");
    const char *t = "502 Bad\r\nGateway\x01";
    llm_error_text(t, strlen(t), out, sizeof out);
    assert_string_equal(out, "502 Bad  Gateway ");
    const char *utf = "\xeb\xb6\x84\xc3";
    llm_error_text(utf, strlen(utf), out, sizeof out);
    assert_string_equal(out, "\xeb\xb6\x84?");
    /* cut on a character boundary */
    char small[3];
    llm_error_text(utf, strlen(utf), small, sizeof small);
    assert_string_equal(small, "");
    llm_error_text(NULL, 0, out, sizeof out);
    assert_string_equal(out, "");
    char big[200];
    memset(big, 'a', sizeof big);
    llm_error_text(big, sizeof big, out, sizeof out);
    assert_int_equal(strlen(out), sizeof out - 1);
}

static void test_health(void **state)
{
    (void) state;
    char err[200];
    const char *ok = "{\"models\":[{\"name\":\"llama3.2:latest\"}]}";
    assert_int_equal(llm_health_check(LLM_OLLAMA, ok, strlen(ok), err,
                                      sizeof err), 0);
    const char *empty = "{\"models\":[]}";
    assert_int_equal(llm_health_check(LLM_OLLAMA, empty, strlen(empty), err,
                                      sizeof err), 0);
    const char *oai = "{\"object\":\"list\",\"data\":[{\"id\":\"qwen\"}]}";
    assert_int_equal(llm_health_check(LLM_OPENAI, oai, strlen(oai), err,
                                      sizeof err), 0);
    /* each backend wants its own */
    assert_int_equal(llm_health_check(LLM_OLLAMA, oai, strlen(oai), err,
                                      sizeof err), SY_EBAD_BODY);
    assert_non_null(strstr(err, "\"models\""));
    assert_int_equal(llm_health_check(LLM_OPENAI, ok, strlen(ok), err,
                                      sizeof err), SY_EBAD_BODY);
    assert_non_null(strstr(err, "/v1/models"));
    const char *bad[] = { "", "<html>", "[]", "{\"models\":{}}",
                          "{\"models\":null}", "{\"models\":[]",
                          "\"models\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(llm_health_check(LLM_OLLAMA, bad[i], strlen(bad[i]),
                                          err, sizeof err), SY_EBAD_BODY);
    assert_int_equal(llm_health_check(LLM_OLLAMA, NULL, 0, err, sizeof err),
                     SY_EBAD_BODY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_read),
        cmocka_unit_test(test_build_ollama),
        cmocka_unit_test(test_build_openai),
        cmocka_unit_test(test_build_escapes),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_ollama_lines),
        cmocka_unit_test(test_ollama_errors),
        cmocka_unit_test(test_openai_lines),
        cmocka_unit_test(test_stats_pack),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
