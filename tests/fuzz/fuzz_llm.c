/*  fuzz_llm.c -- libFuzzer target for what sy-inference reads from an LLM
 *  backend (actors/llm.c): every streamed line, error bodies, health
 *  answers, and the infer.request bodies it turns into requests.
 *
 *  The first byte picks the backend (Ollama or OpenAI) and which decoder;
 *  the rest is the input.  Properties:
 *    - llm_parse_line() returns 0 with a known event kind (hostile lines are
 *      LLM_EV_ERROR with a terminated, printable sentence), and a TOKEN or
 *      DONE text is valid UTF-8 lying inside the event's own buffer size;
 *    - llm_error_text() always gives a terminated printable string;
 *    - llm_health_check() returns 0 or SY_EBAD_BODY;
 *    - an infer.request that llm_job_read() accepts and whose messages
 *      llm_build_request() accepts gives JSON our own parser reads back.
 */
#include "actors/llm.h"
#include "common/json.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_printable(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (!end)
        abort();
    for (const char *p = s; p < end; p++)
        if ((unsigned char) *p < 0x20 && *p != '\t')
            abort();
}

static void fuzz_line(llm_backend_t be, const uint8_t *p, size_t n)
{
    llm_event_t ev;
    memset(&ev, 0, sizeof ev);
    int rc = llm_parse_line(be, (const char *) p, n, &ev);
    if (rc != 0 && rc != SY_ENOMEM)
        abort();
    if (rc == 0) {
        if (ev.kind == LLM_EV_ERROR)
            fuzz_printable(ev.err, sizeof ev.err);
        if ((ev.kind == LLM_EV_TOKEN || ev.kind == LLM_EV_DONE) && ev.text_len
            && !msgtypes_utf8_valid((const uint8_t *) ev.text, ev.text_len))
            abort();
        if (!memchr(ev.model, '\0', sizeof ev.model))
            abort();
    }
    llm_event_clear(&ev);
}

static void fuzz_job(llm_backend_t be, const uint8_t *p, size_t n)
{
    llm_job_t job;
    char err[256];
    if (llm_job_read(p, n, &job, err, sizeof err) != 0)
        return;
    char *json = NULL;
    size_t jlen = 0;
    if (llm_build_request(be, job.model[0] ? job.model : "m", job.messages,
                          job.messages_len, &json, &jlen, err, sizeof err) != 0)
        return;
    uint8_t *back = NULL;
    size_t blen = 0;
    json_err_t jerr;
    if (json_to_msgpack(json, jlen, NULL, &back, &blen, &jerr) != 0)
        abort();        /* we built JSON we cannot read */
    free(back);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    llm_backend_t be = (data[0] & 1) ? LLM_OPENAI : LLM_OLLAMA;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char out[128];
    switch ((data[0] >> 1) % 4) {
    case 0:
        fuzz_line(be, p, n);
        break;
    case 1:
        llm_error_text((const char *) p, n, out, sizeof out);
        fuzz_printable(out, sizeof out);
        break;
    case 2: {
        int rc = llm_health_check(be, (const char *) p, n, out, sizeof out);
        if (rc != 0 && rc != SY_EBAD_BODY)
            abort();
        break;
    }
    default:
        fuzz_job(be, p, n);
        break;
    }
    return 0;
}
