/*  fuzz_tgapi.c -- libFuzzer target for the Telegram Bot API reader and
 *  text tools (actors/tgapi.c), which see every byte Telegram (or anything
 *  pretending to be api.telegram.org) sends the bridge.
 *
 *  Properties:
 *    - tgapi_updates_parse() and tgapi_resp_parse() return 0 or a known
 *      code, never read past the input, and what they return holds: at
 *      most TGAPI_MAX_UPDATES updates, texts within TGAPI_TEXT_MAX bytes
 *      and as long as they say, attachments within TGAPI_MAX_ATTACH with
 *      NUL-terminated fields;
 *    - the input taken as a text: splitting it covers it exactly, every
 *      piece non-empty and within the limit in UTF-16 units; escaping a
 *      piece fits in six times its length and never leaves a bare < > &
 *      (NUL bytes included: U+0000 is valid UTF-8);
 *    - the request bodies built from it are JSON that common/json.c
 *      parses back.
 */
#include "actors/tgapi.h"
#include "common/json.h"
#include "schemas/syerr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_updates(const char *text, size_t size)
{
    tgapi_updates_t u;
    char err[200];
    int rc = tgapi_updates_parse(text, size, &u, err, sizeof err);
    if (rc != 0 && rc != SY_EINVAL && rc != SY_ENOMEM)
        abort();
    if (rc != 0 && (u.n != 0 || u.v != NULL))
        abort();
    if (u.n > TGAPI_MAX_UPDATES)
        abort();
    for (size_t i = 0; i < u.n; i++) {
        const tgapi_update_t *up = &u.v[i];
        if (up->text && (up->text_len > TGAPI_TEXT_MAX
                         || strlen(up->text) != up->text_len))
            abort();
        if (up->nattach > TGAPI_MAX_ATTACH)
            abort();
        for (size_t a = 0; a < up->nattach; a++)
            if (!up->attach[a].file_id[0]
                || strlen(up->attach[a].name) > TGAPI_NAME_MAX)
                abort();
    }
    tgapi_updates_free(&u);
    tgapi_resp_t r;
    rc = tgapi_resp_parse(text, size, &r, err, sizeof err);
    if (rc != 0 && rc != SY_EINVAL && rc != SY_ENOMEM)
        abort();
    if (rc == 0 && strlen(r.description) > TGAPI_DESC_MAX)
        abort();
}

static void fuzz_body_parses(char *body)
{
    if (!body)
        return;                 /* out of memory only */
    uint8_t *mp = NULL;
    size_t len = 0;
    json_err_t jerr;
    if (json_to_msgpack(body, strlen(body), NULL, &mp, &len, &jerr) != 0)
        abort();
    free(mp);
    free(body);
}

static void fuzz_text(const char *text, size_t size, size_t limit)
{
    size_t off = 0;
    while (off < size) {
        size_t k = tgapi_split_next(text + off, size - off, limit);
        if (k == 0 || k > size - off
            || tgapi_utf16_len(text + off, k) > limit)
            abort();
        size_t cap = k * 6 + 1;
        char *esc = malloc(cap);
        if (!esc)
            return;
        long n = tgapi_html_escape(text + off, k, esc, cap);
        /* (the text may hold NUL bytes: U+0000 is valid UTF-8) */
        if (n < 0 || (size_t) n >= cap || esc[n] != 0
            || memchr(esc, '<', (size_t) n) || memchr(esc, '>', (size_t) n))
            abort();
        for (long i = 0; i < n; i++)
            if (esc[i] == '&' && strncmp(esc + i, "&amp;", 5)
                && strncmp(esc + i, "&lt;", 4) && strncmp(esc + i, "&gt;", 4))
                abort();
        free(esc);
        off += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    fuzz_updates(text, size);
    fuzz_text(text, size, TGAPI_MSG_LIMIT);
    fuzz_text(text, size, 2 + (size ? data[0] % 16 : 0));
    size_t small = size > 8192 ? 8192 : size;
    fuzz_body_parses(tgapi_body_send("-1001", text, small));
    fuzz_body_parses(tgapi_body_edit("@chan\"x", 7, text, small));
    return 0;
}
