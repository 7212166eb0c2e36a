/*  test_tgapi.c -- unit tests of actors/tgapi.c, the Bot API's wire:
 *  getUpdates results (text, caption, photo sizes, documents, updates
 *  that are not messages), hostile JSON of every kind, error responses
 *  (retry_after, "message is not modified"), UTF-16 counting, splitting
 *  long texts (prose, one long word, Korean, emoji), HTML escaping and
 *  the request bodies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "actors/tgapi.h"
#include "common/json.h"
#include "schemas/msgtypes.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static int parse(const char *json, tgapi_updates_t *u)
{
    char err[200];
    return tgapi_updates_parse(json, strlen(json), u, err, sizeof err);
}

/* A string field of the JSON object text, into out. */
static bool body_str(const char *text, const char *key, char *out, size_t cap)
{
    uint8_t *mp = NULL;
    size_t len = 0;
    json_err_t jerr;
    if (json_to_msgpack(text, strlen(text), NULL, &mp, &len, &jerr))
        return false;
    mpread_t r;
    mpval_t m, v;
    mpread_init(&r, mp, len);
    bool ok = mpread_next(&r, &m) == 0 && m.kind == MP_MAP
           && mpread_map_find(&r, &m, key, &v, NULL) == 0;
    if (ok && v.kind == MP_STR && v.len < cap) {
        memcpy(out, v.ptr, v.len);
        out[v.len] = 0;
    } else if (ok && v.kind == MP_UINT)
        snprintf(out, cap, "%llu", (unsigned long long) v.u);
    else if (ok && v.kind == MP_INT)
        snprintf(out, cap, "%lld", (long long) v.i);
    else
        ok = false;
    free(mp);
    return ok;
}

/* The kind of field key in the JSON object text. */
static int body_kind(const char *text, const char *key)
{
    uint8_t *mp = NULL;
    size_t len = 0;
    json_err_t jerr;
    if (json_to_msgpack(text, strlen(text), NULL, &mp, &len, &jerr))
        return -1;
    mpread_t r;
    mpval_t m, v;
    mpread_init(&r, mp, len);
    int kind = -1;
    if (mpread_next(&r, &m) == 0 && m.kind == MP_MAP
        && mpread_map_find(&r, &m, key, &v, NULL) == 0)
        kind = (int) v.kind;
    free(mp);
    return kind;
}

/* Repeats s n times into a malloc'd string. */
static char *repeat(const char *s, size_t n)
{
    size_t l = strlen(s);
    char *p = malloc(l * n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        memcpy(p + i * l, s, l);
    p[l * n] = 0;
    return p;
}

/* Splits text for limit and checks every piece: not empty, within the
   limit, valid UTF-8, together the whole text.  Returns the number of
   pieces; the end of the first into *first if not NULL. */
static size_t split_all(const char *text, size_t limit, size_t *first)
{
    size_t len = strlen(text), off = 0, n = 0;
    while (off < len) {
        size_t k = tgapi_split_next(text + off, len - off, limit);
        assert_true(k > 0);
        assert_true(k <= len - off);
        assert_true(tgapi_utf16_len(text + off, k) <= limit);
        assert_true(msgtypes_utf8_valid((const uint8_t *) text + off, k));
        if (n == 0 && first)
            *first = k;
        off += k;
        n++;
        assert_true(n < 10000);
    }
    assert_int_equal(off, len);
    return n;
}

/* ------------------------------------------------------------ updates */

static void test_updates_messages(void **state)
{
    (void) state;
    const char *json =
        "{\"ok\":true,\"result\":["
        "{\"update_id\":100,\"message\":{\"message_id\":5,"
        " \"from\":{\"id\":42,\"is_bot\":false,\"first_name\":\"A\","
        "  \"username\":\"alice\"},"
        " \"chat\":{\"id\":42,\"type\":\"private\"},\"date\":1,"
        " \"text\":\"hello <world> & \\u00e9\"}},"
        "{\"update_id\":101,\"message\":{\"message_id\":6,"
        " \"from\":{\"id\":42},\"chat\":{\"id\":-100123,\"type\":\"group\"},"
        " \"caption\":\"look\",\"photo\":["
        "  {\"file_id\":\"small\",\"width\":90,\"height\":60,\"file_size\":1000},"
        "  {\"file_id\":\"big\",\"width\":1280,\"height\":853,\"file_size\":90000},"
        "  {\"file_id\":\"mid\",\"width\":320,\"height\":213,\"file_size\":9000}]}},"
        "{\"update_id\":102,\"message\":{\"message_id\":7,"
        " \"from\":{\"id\":43},\"chat\":{\"id\":43},"
        " \"document\":{\"file_id\":\"doc-1_A\",\"file_name\":\"report.pdf\","
        "  \"mime_type\":\"application/pdf\",\"file_size\":123456}}},"
        "{\"update_id\":103,\"edited_message\":{\"message_id\":5,"
        " \"chat\":{\"id\":42},\"text\":\"edited\"}},"
        "{\"message\":{\"chat\":{\"id\":1},\"text\":\"no update id\"}},"
        "7"
        "]}";
    tgapi_updates_t u;
    assert_int_equal(parse(json, &u), 0);
    assert_int_equal(u.n, 4);

    assert_int_equal(u.v[0].update_id, 100);
    assert_true(u.v[0].is_message);
    assert_int_equal(u.v[0].chat_id, 42);
    assert_string_equal(u.v[0].chat_type, "private");
    assert_true(u.v[0].has_from);
    assert_int_equal(u.v[0].from_id, 42);
    assert_false(u.v[0].from_is_bot);
    assert_string_equal(u.v[0].username, "alice");
    assert_int_equal(u.v[0].message_id, 5);
    assert_string_equal(u.v[0].text, "hello <world> & \xc3\xa9");
    assert_int_equal(u.v[0].nattach, 0);

    assert_int_equal(u.v[1].chat_id, -100123);
    assert_string_equal(u.v[1].text, "look");      /* the caption */
    assert_int_equal(u.v[1].nattach, 1);
    assert_string_equal(u.v[1].attach[0].kind, "photo");
    assert_string_equal(u.v[1].attach[0].file_id, "big");
    assert_string_equal(u.v[1].attach[0].mime, "image/jpeg");
    assert_true(u.v[1].attach[0].has_size);
    assert_int_equal(u.v[1].attach[0].size, 90000);

    assert_null(u.v[2].text);
    assert_int_equal(u.v[2].nattach, 1);
    assert_string_equal(u.v[2].attach[0].kind, "document");
    assert_string_equal(u.v[2].attach[0].file_id, "doc-1_A");
    assert_string_equal(u.v[2].attach[0].mime, "application/pdf");
    assert_string_equal(u.v[2].attach[0].name, "report.pdf");
    assert_int_equal(u.v[2].attach[0].size, 123456);

    assert_int_equal(u.v[3].update_id, 103);
    assert_false(u.v[3].is_message);               /* offset moves past it */
    tgapi_updates_free(&u);
    assert_int_equal(u.n, 0);
    assert_null(u.v);
}

static void test_updates_empty_and_errors(void **state)
{
    (void) state;
    tgapi_updates_t u;
    assert_int_equal(parse("{\"ok\":true,\"result\":[]}", &u), 0);
    assert_int_equal(u.n, 0);
    tgapi_updates_free(&u);
    const char *bad[] = {
        "",
        "not json",
        "{\"ok\":true,\"result\":[",
        "[]",
        "{\"ok\":\"true\",\"result\":[]}",
        "{\"ok\":false,\"error_code\":409,\"description\":\"Conflict\"}",
        "{\"ok\":true,\"result\":{}}",
        "{\"ok\":true}",
        "{\"ok\":true,\"result\":[1,2,]}",
        "{\"ok\":true,\"result\":[{\"update_id\":1}]}\x01",
        "{\"ok\":true,\"result\":[\"\xff\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        u.n = 99;
        assert_int_equal(parse(bad[i], &u), SY_EINVAL);
        assert_int_equal(u.n, 0);
        assert_null(u.v);
    }
    assert_int_equal(tgapi_updates_parse(NULL, 0, &u, NULL, 0), SY_EINVAL);
}

static void test_updates_hostile(void **state)
{
    (void) state;
    tgapi_updates_t u;
    /* nesting far deeper than the JSON converter allows */
    char *deep = malloc(20000);
    assert_non_null(deep);
    strcpy(deep, "{\"ok\":true,\"result\":[{\"update_id\":1,\"x\":");
    size_t n = strlen(deep);
    for (int i = 0; i < 5000; i++)
        deep[n++] = '[';
    deep[n] = 0;
    assert_int_equal(parse(deep, &u), SY_EINVAL);
    free(deep);

    /* wrong types everywhere: read as absent, never a crash */
    const char *json =
        "{\"ok\":true,\"result\":["
        "{\"update_id\":-5,\"message\":{\"chat\":{\"id\":1}}},"
        "{\"update_id\":1.5,\"message\":{\"chat\":{\"id\":1}}},"
        "{\"update_id\":99999999999999999999999},"
        "{\"update_id\":10,\"message\":{\"chat\":{\"id\":\"12\"},\"text\":\"x\"}},"
        "{\"update_id\":11,\"message\":\"nope\"},"
        "{\"update_id\":12,\"message\":{\"chat\":{\"id\":7},\"text\":5,"
        "  \"caption\":\"cap\",\"from\":[1],"
        "  \"photo\":{\"file_id\":\"x\"},"
        "  \"document\":{\"file_id\":\"bad id/../\",\"file_size\":-1}}},"
        "{\"update_id\":13,\"message\":{\"chat\":{\"id\":7},"
        "  \"text\":\"a\\u0000b\",\"photo\":[1,\"x\",{\"width\":5},"
        "   {\"file_id\":\"\"},{\"file_id\":\"ok\",\"width\":\"w\"}],"
        "  \"document\":{\"file_id\":\"d\",\"file_name\":\"a\\nb\","
        "   \"mime_type\":\"text/plain; x\"}}},"
        "{\"update_id\":14,\"message\":{\"chat\":{\"id\":9223372036854775807},"
        "  \"from\":{\"id\":-9223372036854775808,\"is_bot\":1}}}"
        "]}";
    assert_int_equal(parse(json, &u), 0);
    assert_int_equal(u.n, 5);
    assert_int_equal(u.v[0].update_id, 10);
    assert_false(u.v[0].is_message);               /* chat id a string */
    assert_int_equal(u.v[1].update_id, 11);
    assert_false(u.v[1].is_message);
    assert_int_equal(u.v[2].update_id, 12);
    assert_true(u.v[2].is_message);
    assert_string_equal(u.v[2].text, "cap");       /* text not a string */
    assert_false(u.v[2].has_from);
    assert_int_equal(u.v[2].nattach, 0);           /* photo not an array,
                                                      file id refused */
    assert_int_equal(u.v[3].update_id, 13);
    assert_int_equal(u.v[3].text_len, 3);
    assert_memory_equal(u.v[3].text, "a b", 3);    /* NUL made a space */
    assert_int_equal(u.v[3].nattach, 2);
    assert_string_equal(u.v[3].attach[0].file_id, "ok");
    assert_false(u.v[3].attach[0].has_size);
    assert_string_equal(u.v[3].attach[1].name, "a_b");
    assert_string_equal(u.v[3].attach[1].mime, "");  /* space: refused */
    assert_int_equal(u.v[4].chat_id, INT64_MAX);
    assert_int_equal(u.v[4].from_id, INT64_MIN);
    assert_false(u.v[4].from_is_bot);              /* 1 is not a bool */
    tgapi_updates_free(&u);

    /* more elements than a response may hold */
    char *many = repeat("1,", TGAPI_MAX_UPDATES + 1);
    char *big = malloc(strlen(many) + 64);
    sprintf(big, "{\"ok\":true,\"result\":[%s1]}", many);
    assert_int_equal(parse(big, &u), SY_EINVAL);
    free(many);
    free(big);
}

static void test_updates_long_text(void **state)
{
    (void) state;
    /* 30,000 Korean syllables (90,000 bytes): cut at a boundary */
    char *ko = repeat("\xea\xb0\x80", 30000);
    char *json = malloc(strlen(ko) + 200);
    sprintf(json, "{\"ok\":true,\"result\":[{\"update_id\":1,\"message\":"
            "{\"chat\":{\"id\":1},\"text\":\"%s\"}}]}", ko);
    tgapi_updates_t u;
    assert_int_equal(parse(json, &u), 0);
    assert_int_equal(u.n, 1);
    assert_true(u.v[0].text_cut);
    assert_true(u.v[0].text_len <= TGAPI_TEXT_MAX);
    assert_true(u.v[0].text_len > TGAPI_TEXT_MAX - 3);
    assert_int_equal(u.v[0].text_len % 3, 0);
    assert_true(msgtypes_utf8_valid((const uint8_t *) u.v[0].text,
                                    u.v[0].text_len));
    tgapi_updates_free(&u);
    free(json);
    free(ko);

    /* a long username and file name are cut at a boundary too */
    char *name = repeat("\xf0\x9f\x98\x80", 100);
    json = malloc(strlen(name) * 2 + 300);
    sprintf(json, "{\"ok\":true,\"result\":[{\"update_id\":1,\"message\":"
            "{\"chat\":{\"id\":1},\"from\":{\"id\":2,\"username\":\"%s\"},"
            "\"document\":{\"file_id\":\"f\",\"file_name\":\"%s\"}}}]}",
            name, name);
    assert_int_equal(parse(json, &u), 0);
    assert_int_equal(strlen(u.v[0].username), 64);
    assert_int_equal(strlen(u.v[0].attach[0].name) % 4, 0);
    assert_true(msgtypes_utf8_valid((const uint8_t *) u.v[0].attach[0].name,
                                    strlen(u.v[0].attach[0].name)));
    tgapi_updates_free(&u);
    free(json);
    free(name);
}

/* ------------------------------------------------------------ responses */

static void test_resp(void **state)
{
    (void) state;
    tgapi_resp_t r;
    const char *ok = "{\"ok\":true,\"result\":{\"message_id\":77,"
                     "\"chat\":{\"id\":1},\"text\":\"x\"}}";
    assert_int_equal(tgapi_resp_parse(ok, strlen(ok), &r, NULL, 0), 0);
    assert_true(r.ok);
    assert_true(r.has_message_id);
    assert_int_equal(r.message_id, 77);

    const char *flood = "{\"ok\":false,\"error_code\":429,\"description\":"
                        "\"Too Many Requests: retry after 7\",\"parameters\":"
                        "{\"retry_after\":7}}";
    assert_int_equal(tgapi_resp_parse(flood, strlen(flood), &r, NULL, 0), 0);
    assert_false(r.ok);
    assert_int_equal(r.error_code, 429);
    assert_int_equal(r.retry_after, 7);
    assert_false(r.has_message_id);
    assert_false(tgapi_not_modified(&r));

    const char *nm = "{\"ok\":false,\"error_code\":400,\"description\":"
                     "\"Bad Request: message is not modified: specified new "
                     "message content and reply markup are exactly the "
                     "same\"}";
    assert_int_equal(tgapi_resp_parse(nm, strlen(nm), &r, NULL, 0), 0);
    assert_true(tgapi_not_modified(&r));
    assert_int_equal(r.error_code, 400);

    const char *edit_true = "{\"ok\":true,\"result\":true}";
    assert_int_equal(tgapi_resp_parse(edit_true, strlen(edit_true), &r, NULL,
                                      0), 0);
    assert_true(r.ok);
    assert_false(r.has_message_id);

    const char *huge = "{\"ok\":false,\"parameters\":{\"retry_after\":"
                       "99999999},\"error_code\":-3}";
    assert_int_equal(tgapi_resp_parse(huge, strlen(huge), &r, NULL, 0), 0);
    assert_int_equal(r.retry_after, 86400);
    assert_int_equal(r.error_code, 0);

    char err[100];
    const char *nginx = "<html><body>502 Bad Gateway</body></html>";
    assert_int_equal(tgapi_resp_parse(nginx, strlen(nginx), &r, err,
                                      sizeof err), SY_EINVAL);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(tgapi_resp_parse("{}", 2, &r, NULL, 0), SY_EINVAL);
}

/* ------------------------------------------------------------ counting */

static void test_utf16(void **state)
{
    (void) state;
    assert_int_equal(tgapi_utf16_len("abc", 3), 3);
    assert_int_equal(tgapi_utf16_len("\xea\xb0\x80\xea\xb0\x81", 6), 2);
    assert_int_equal(tgapi_utf16_len("\xf0\x9f\x98\x80", 4), 2);
    assert_int_equal(tgapi_utf16_len("\xc3\xa9", 2), 1);
    assert_int_equal(tgapi_utf16_len("\xff\xfe", 2), 2);   /* bad bytes */
    assert_int_equal(tgapi_utf16_len("&<>", 3), 3);        /* raw text */
    /* a prefix never ends inside a sequence or a surrogate pair */
    assert_int_equal(tgapi_prefix_units("a\xf0\x9f\x98\x80", 5, 2), 1);
    assert_int_equal(tgapi_prefix_units("a\xf0\x9f\x98\x80", 5, 3), 5);
    assert_int_equal(tgapi_prefix_units("\xea\xb0\x80\xea\xb0\x80", 6, 1), 3);
}

/* ------------------------------------------------------------ splitting */

static void test_split_prose(void **state)
{
    (void) state;
    /* paragraphs of sentences, about 10,000 characters */
    const char *sent = "The quick brown fox jumps over the lazy dog. ";
    char *para = repeat(sent, 9);           /* 405 chars */
    size_t pl = strlen(para);
    char *text = malloc(25 * (pl + 2) + 1);
    size_t n = 0;
    for (int i = 0; i < 25; i++) {
        memcpy(text + n, para, pl);
        n += pl;
        memcpy(text + n, "\n\n", 2);
        n += 2;
    }
    text[n] = 0;
    assert_true(n > 10000);
    size_t first = 0;
    size_t pieces = split_all(text, TGAPI_MSG_LIMIT, &first);
    assert_int_equal(pieces, 3);
    /* the cut falls right after a paragraph break */
    assert_true(first >= 2 && text[first - 1] == '\n' && text[first - 2] == '\n');
    assert_int_equal(first % (pl + 2), 0);
    free(text);

    /* no paragraphs: at the last line break */
    char *lines = repeat("a line of text that goes on\n", 400);
    split_all(lines, TGAPI_MSG_LIMIT, &first);
    assert_int_equal(lines[first - 1], '\n');
    assert_int_equal(first % 28, 0);
    free(lines);

    /* one paragraph of sentences: after a sentence end */
    split_all(para, 100, &first);
    assert_int_equal(first, 90);            /* two sentences */
    assert_memory_equal(para + first - 2, ". ", 2);

    /* words without sentence ends: at a space */
    char *words = repeat("word ", 3000);
    split_all(words, TGAPI_MSG_LIMIT, &first);
    assert_int_equal(words[first - 1], ' ');
    assert_true(first > TGAPI_MSG_LIMIT - 5);
    free(words);
    free(para);
    assert_int_equal(tgapi_split_next("", 0, TGAPI_MSG_LIMIT), 0);
    assert_int_equal(tgapi_split_next("short", 5, TGAPI_MSG_LIMIT), 5);
}

static void test_split_long_word(void **state)
{
    (void) state;
    char *word = repeat("a", 10000);
    size_t first = 0;
    assert_int_equal(split_all(word, TGAPI_MSG_LIMIT, &first), 3);
    assert_int_equal(first, TGAPI_MSG_LIMIT);          /* hard */
    free(word);
}

static void test_split_korean_emoji(void **state)
{
    (void) state;
    /* Korean without spaces: 5000 syllables of one unit, three bytes */
    char *ko = repeat("\xed\x95\x9c", 5000);
    size_t first = 0;
    assert_int_equal(split_all(ko, TGAPI_MSG_LIMIT, &first), 2);
    assert_int_equal(first, TGAPI_MSG_LIMIT * 3);
    free(ko);

    /* Korean prose with spaces and a full stop */
    char *kp = repeat("\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec"
                      "\x9a\x94 \xec\x84\xb8\xea\xb3\x84. ", 600);
    assert_true(split_all(kp, TGAPI_MSG_LIMIT, &first) >= 2);
    assert_memory_equal(kp + first - 2, ". ", 2);
    free(kp);

    /* emoji: two units each; a pair is never split */
    char *em = repeat("\xf0\x9f\x98\x80", 3000);
    assert_int_equal(split_all(em, TGAPI_MSG_LIMIT, &first), 2);
    assert_int_equal(first, (TGAPI_MSG_LIMIT / 2) * 4);
    split_all(em, 4095, &first);
    assert_int_equal(first, 2047 * 4);
    free(em);

    /* a mix: ASCII, emoji, Korean, with a limit that falls inside a pair */
    char *mix = repeat("x\xf0\x9f\x98\x80\xea\xb0\x80", 2000);
    split_all(mix, 4096, NULL);
    split_all(mix, 7, NULL);
    free(mix);
}

/* ------------------------------------------------------------ escaping */

static void test_escape(void **state)
{
    (void) state;
    char out[128];
    const char *in = "<b>Tom & Jerry</b> say \"hi\" > 3";
    long n = tgapi_html_escape(in, strlen(in), out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out, "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt; say \"hi\" "
                             "&gt; 3");
    assert_int_equal((size_t) n, strlen(out));
    /* an escape is never cut: no room means no output */
    assert_int_equal(tgapi_html_escape("a&", 2, out, 5), SY_ENOSPACE);
    assert_string_equal(out, "");
    assert_int_equal(tgapi_html_escape("a&", 2, out, 7), 6);
    /* a byte that is not UTF-8 becomes U+FFFD */
    n = tgapi_html_escape("a\xffz", 3, out, sizeof out);
    assert_int_equal(n, 5);
    assert_string_equal(out, "a\xef\xbf\xbdz");
    /* Korean and emoji pass untouched */
    n = tgapi_html_escape("\xed\x95\x9c\xf0\x9f\x98\x80", 7, out, sizeof out);
    assert_int_equal(n, 7);
}

/* ------------------------------------------------------------ bodies */

static void test_bodies(void **state)
{
    (void) state;
    char v[256];
    char *b = tgapi_body_get_updates(1234, 30);
    assert_non_null(b);
    assert_true(body_str(b, "offset", v, sizeof v));
    assert_string_equal(v, "1234");
    assert_true(body_str(b, "timeout", v, sizeof v));
    assert_string_equal(v, "30");
    assert_non_null(strstr(b, "\"allowed_updates\":[\"message\"]"));
    free(b);

    const char *text = "if a < b && c > d:\n\t\"quote\" \\ \x01 done";
    b = tgapi_body_send("-100123", text, strlen(text));
    assert_non_null(b);
    assert_int_equal(body_kind(b, "chat_id"), MP_INT);
    assert_true(body_str(b, "chat_id", v, sizeof v));
    assert_string_equal(v, "-100123");
    assert_true(body_str(b, "parse_mode", v, sizeof v));
    assert_string_equal(v, "HTML");
    assert_true(body_str(b, "text", v, sizeof v));
    assert_string_equal(v, "if a &lt; b &amp;&amp; c &gt; d:\n\t\"quote\" \\ "
                           "\x01 done");
    free(b);

    b = tgapi_body_send("42", "", 0);
    assert_int_equal(body_kind(b, "chat_id"), MP_UINT);
    free(b);
    b = tgapi_body_send("@channel\"x", "hi", 2);
    assert_int_equal(body_kind(b, "chat_id"), MP_STR);
    assert_true(body_str(b, "chat_id", v, sizeof v));
    assert_string_equal(v, "@channel\"x");
    free(b);

    b = tgapi_body_edit("42", 987654321012LL, "\xed\x95\x9c<", 4);
    assert_non_null(b);
    assert_true(body_str(b, "message_id", v, sizeof v));
    assert_string_equal(v, "987654321012");
    assert_true(body_str(b, "text", v, sizeof v));
    assert_string_equal(v, "\xed\x95\x9c&lt;");
    free(b);
    assert_null(tgapi_body_send(NULL, "x", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_updates_messages),
        cmocka_unit_test(test_updates_empty_and_errors),
        cmocka_unit_test(test_updates_hostile),
        cmocka_unit_test(test_updates_long_text),
        cmocka_unit_test(test_resp),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_split_prose),
        cmocka_unit_test(test_split_long_word),
        cmocka_unit_test(test_split_korean_emoji),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
