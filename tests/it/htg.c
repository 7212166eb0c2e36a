/*  htg.c -- integration-test support for the Telegram bridge (see htg.h).
 *
 *  The fake is driven over HTTP with libcurl's easy interface (a test may
 *  block); its JSON answers are turned into msgpack with common/json.h and
 *  read with the bounded look-ups of hmp.h, so a broken answer fails a
 *  look-up instead of the test binary.
 *
 *  The fake front door handles every message as it comes: a durable
 *  delivery is acked at once (whatever its type), a chat.message is
 *  recorded, a receipt is kept for whoever waits for it.  Nothing is left
 *  unacked, so a second delivery of one update can only come from the
 *  bridge sending it twice (or the broker giving it again, which the
 *  record tells apart by the envelope id and attempt).
 */
#include "tests/it/htg.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/json.h"
#include "schemas/syerr.h"
#include "tests/it/hmp.h"

#define HTG_WAIT_MS 5000

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    char  *buf;
    size_t len;
} htg_body_t;

static size_t htg_collect(char *data, size_t size, size_t n, void *arg)
{
    htg_body_t *b = arg;
    size_t add = size * n;
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, data, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

long htg_fake_http(const htg_fake_t *f, const char *path, const char *post,
                   char **body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    htg_body_t b = { NULL, 0 };
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L * harness_slow());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, htg_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (post) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (body)
        *body = b.buf ? b.buf : strdup("");
    else
        free(b.buf);
    return status;
}

/* A JSON string literal of s (quotes included) appended to out. */
static void htg_json_str(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    if (n + 1 < cap)
        out[n++] = '"';
    for (; *s && n + 8 < cap; s++) {
        unsigned char ch = (unsigned char) *s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char) ch;
        } else if (ch < 0x20) {
            n += (size_t) snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char) ch;
        }
    }
    if (n + 1 < cap)
        out[n++] = '"';
    out[n] = '\0';
}

/* ---------------------------------------------------------------- fake */

static char *htg_read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return strdup("");
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strdup(buf);
}

htg_fake_t *htg_fake_start(harness_t *h, const char *token)
{
    htg_fake_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->token, sizeof f->token, "%s", token ? token : HTG_TOKEN);
    char portfile[HARNESS_PATH_MAX];
    snprintf(portfile, sizeof portfile, "%s/tgfake.port", harness_dir(h));
    snprintf(f->log, sizeof f->log, "%s/tgfake.requests", harness_dir(h));
    unlink(portfile);
    char *argv[] = { "/usr/bin/env", "python3", "tests/fakes/telegram_fake.py",
                     "--port-file", portfile, "--token", f->token,
                     "--log", f->log, NULL };
    f->proc = harness_spawn(h, "tgfake", argv);
    assert_non_null(f->proc);
    int64_t end = harness_now_ms() + 10000LL * harness_slow();
    while (harness_now_ms() < end && f->port == 0) {
        char *s = htg_read_file(portfile);
        f->port = atoi(s);
        free(s);
        if (f->port == 0)
            harness_sleep_ms(30);
    }
    if (f->port == 0)
        fail_msg("the fake Bot API did not come up (see tgfake.log)");
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    return f;
}

void htg_fake_free(htg_fake_t **f_p)
{
    if (f_p) {
        free(*f_p);
        *f_p = NULL;
    }
}

void htg_fake_mode(const htg_fake_t *f, const char *json)
{
    char *body = NULL;
    long st = htg_fake_http(f, "/_fake/mode", json, &body);
    if (st != 200)
        fail_msg("the fake refused mode %s (HTTP %ld: %s)", json, st, body);
    free(body);
}

uint64_t htg_fake_update(const htg_fake_t *f, const char *json)
{
    char *body = NULL;
    long st = htg_fake_http(f, "/_fake/update", json, &body);
    const char *p = st == 200 ? strstr(body, "\"update_id\":") : NULL;
    if (!p)
        fail_msg("the fake refused update %s (HTTP %ld: %s)", json, st, body);
    uint64_t id = strtoull(p + strlen("\"update_id\":"), NULL, 10);
    free(body);
    return id;
}

uint64_t htg_fake_text(const htg_fake_t *f, int64_t chat_id, int64_t from_id,
                       const char *text)
{
    size_t cap = strlen(text) * 6 + 128;
    char *json = malloc(cap);
    assert_non_null(json);
    snprintf(json, cap, "{\"chat_id\":%lld,\"from_id\":%lld,\"text\":",
             (long long) chat_id, (long long) from_id);
    htg_json_str(json, cap - 1, text);
    strcat(json, "}");
    uint64_t id = htg_fake_update(f, json);
    free(json);
    return id;
}

void htg_fake_replay(const htg_fake_t *f, uint64_t update_id)
{
    char json[64];
    snprintf(json, sizeof json, "{\"update_id\":%llu}",
             (unsigned long long) update_id);
    long st = htg_fake_http(f, "/_fake/replay", json, NULL);
    if (st != 200)
        fail_msg("the fake refused to replay %llu (HTTP %ld)",
                 (unsigned long long) update_id, st);
}

uint8_t *htg_fake_get(const htg_fake_t *f, const char *path, size_t *len)
{
    char *body = NULL;
    long st = htg_fake_http(f, path, NULL, &body);
    if (st != 200) {
        print_error("fake: GET %s: HTTP %ld\n", path, st);
        free(body);
        return NULL;
    }
    uint8_t *out = NULL;
    json_err_t err;
    if (json_to_msgpack(body, strlen(body), NULL, &out, len, &err) != 0) {
        print_error("fake: GET %s: not JSON: %s\n", path, err.msg);
        out = NULL;
    }
    free(body);
    return out;
}

long htg_fake_stat(const htg_fake_t *f, const char *path)
{
    size_t len = 0;
    uint8_t *mp = htg_fake_get(f, "/_fake/stats", &len);
    if (!mp)
        return -1;
    double v = 0;
    long out = hmp_get_num(mp, len, path, &v) ? (long) v : 0;
    free(mp);
    return out;
}

/* A copy of the string at path (malloc'd, "" if absent). */
static char *htg_dup_str(const uint8_t *buf, size_t len, const char *path)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v) != 0 || v.kind != MP_STR)
        return strdup("");
    char *s = malloc(v.len + 1);
    assert_non_null(s);
    memcpy(s, v.ptr, v.len);
    s[v.len] = '\0';
    return s;
}

void htg_fake_sent(const htg_fake_t *f, int64_t chat_id, uint64_t after,
                   htg_sent_list_t *out)
{
    memset(out, 0, sizeof *out);
    char path[128];
    snprintf(path, sizeof path, "/_fake/sent?chat_id=%lld&after=%llu",
             (long long) chat_id, (unsigned long long) after);
    size_t len = 0;
    uint8_t *mp = htg_fake_get(f, path, &len);
    if (!mp)
        fail_msg("the fake did not answer GET /_fake/sent");
    int n = hmp_count(mp, len, "sent");
    if (n > 0) {
        out->v = calloc((size_t) n, sizeof *out->v);
        assert_non_null(out->v);
    }
    for (int i = 0; i < n; i++) {
        htg_sent_t *s = &out->v[out->n++];
        char p[64];
        uint64_t u = 0;
        double d = 0;
        snprintf(p, sizeof p, "sent.%d.seq", i);
        hmp_get_uint(mp, len, p, &s->seq);
        snprintf(p, sizeof p, "sent.%d.method", i);
        hmp_get_str(mp, len, p, s->method, sizeof s->method);
        snprintf(p, sizeof p, "sent.%d.chat_id", i);
        if (hmp_get_num(mp, len, p, &d))
            s->chat_id = (int64_t) d;
        snprintf(p, sizeof p, "sent.%d.message_id", i);
        if (hmp_get_uint(mp, len, p, &u))
            s->message_id = (int64_t) u;
        snprintf(p, sizeof p, "sent.%d.time", i);
        hmp_get_num(mp, len, p, &s->time);
        snprintf(p, sizeof p, "sent.%d.text", i);
        s->text = htg_dup_str(mp, len, p);
        snprintf(p, sizeof p, "sent.%d.plain", i);
        s->plain = htg_dup_str(mp, len, p);
    }
    free(mp);
}

void htg_sent_clear(htg_sent_list_t *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        free(l->v[i].text);
        free(l->v[i].plain);
    }
    if (l) {
        free(l->v);
        memset(l, 0, sizeof *l);
    }
}

uint64_t htg_fake_sent_mark(const htg_fake_t *f)
{
    long n = htg_fake_stat(f, "sent");
    if (n < 0)
        fail_msg("the fake did not answer GET /_fake/stats");
    return (uint64_t) n;
}

uint64_t htg_fake_wait_sent(const htg_fake_t *f, int64_t chat_id,
                            uint64_t after, const char *needle,
                            int timeout_ms)
{
    int64_t end = harness_now_ms() + (int64_t) timeout_ms * harness_slow();
    do {
        htg_sent_list_t l;
        htg_fake_sent(f, chat_id, after, &l);
        uint64_t seq = 0;
        for (size_t i = 0; i < l.n && !seq; i++)
            if (strstr(l.v[i].plain, needle))
                seq = l.v[i].seq;
        htg_sent_clear(&l);
        if (seq)
            return seq;
        harness_sleep_ms(50);
    } while (harness_now_ms() < end);
    return 0;
}

/* ---------------------------------------------------------------- bridge */

bool htg_bridge_built(const harness_t *h)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "sy-telegram", bin, sizeof bin);
    return access(bin, X_OK) == 0;
}

void htg_configure(harness_t *h, const htg_fake_t *f)
{
    char path[HARNESS_PATH_MAX];
    snprintf(path, sizeof path, "%s/telegram.token", harness_dir(h));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    size_t tl = strlen(f->token);
    ssize_t w = write(fd, f->token, tl);
    ssize_t w2 = write(fd, "\n", 1);
    close(fd);
    assert_true(w == (ssize_t) tl && w2 == 1);
    harness_set(h, "telegram/token_file", path);
    harness_set(h, "telegram/api_url", f->url);
    snprintf(path, sizeof path, "%s/tgstore", harness_dir(h));
    harness_set(h, "telegram/store", path);
    harness_set(h, "telegram/poll_timeout", "1s");
    harness_set(h, "telegram/retry_min", "50ms");
    harness_set(h, "telegram/retry_max", "500ms");
    harness_set(h, "telegram/edit_interval", "1s");
}

hproc_t *htg_bridge_start(harness_t *h, bool wait)
{
    char bin[HARNESS_PATH_MAX], label[32], log[HARNESS_PATH_MAX];
    harness_bin(h, "sy-telegram", bin, sizeof bin);
    /* One log per start: telegram, telegram-2, ... */
    snprintf(label, sizeof label, "telegram");
    for (int n = 2; n < 100; n++) {
        snprintf(log, sizeof log, "%s/%s.log", harness_dir(h), label);
        if (access(log, F_OK) != 0)
            break;
        snprintf(label, sizeof label, "telegram-%d", n);
    }
    char *argv[] = { bin, "--config", (char *) harness_config(h),
                     "--endpoint", (char *) harness_endpoint(h), NULL };
    hproc_t *p = harness_spawn(h, label, argv);
    assert_non_null(p);
    if (wait && !harness_wait_actor(h, "telegram", true,
                                    HTG_WAIT_MS * harness_slow()))
        fail_msg("bridge: sy-telegram did not register as telegram within "
                 "%d ms (see %s.log)", HTG_WAIT_MS * harness_slow(), label);
    return p;
}

/* ---------------------------------------------------------------- front door */

htg_fd_t *htg_fd_new(harness_t *h)
{
    htg_fd_t *fd = calloc(1, sizeof *fd);
    assert_non_null(fd);
    fd->h = h;
    static const char *const svc[] = { "frontdoor", NULL };
    fd->c = harness_client(h, "frontdoor", svc, 256);
    fd->op = harness_client(h, "tg-operator", NULL, 1);
    return fd;
}

void htg_fd_free(htg_fd_t **fd_p)
{
    if (!fd_p || !*fd_p)
        return;
    htg_fd_t *fd = *fd_p;
    for (size_t i = 0; i < fd->n; i++) {
        free(fd->recs[i].text);
        free(fd->recs[i].body);
    }
    free(fd->recs);
    free(fd);
    *fd_p = NULL;
}

static void htg_fd_record(htg_fd_t *fd, const hmsg_t *m)
{
    if (fd->n == fd->cap) {
        fd->cap = fd->cap ? fd->cap * 2 : 64;
        fd->recs = realloc(fd->recs, fd->cap * sizeof *fd->recs);
        assert_non_null(fd->recs);
    }
    htg_rec_t *r = &fd->recs[fd->n++];
    memset(r, 0, sizeof *r);
    const uint8_t *b = m->body;
    size_t bl = m->body_len;
    hmp_get_str(b, bl, "ref", r->ref, sizeof r->ref);
    hmp_get_str(b, bl, "user", r->user, sizeof r->user);
    hmp_get_str(b, bl, "addr", r->addr, sizeof r->addr);
    hmp_get_str(b, bl, "channel", r->channel, sizeof r->channel);
    snprintf(r->key, sizeof r->key, "%s", m->hdr.key);
    r->text = htg_dup_str(b ? b : (const uint8_t *) "\x80",
                          b ? bl : 1, "text");
    if (bl) {
        r->body = malloc(bl);
        assert_non_null(r->body);
        memcpy(r->body, b, bl);
        r->body_len = bl;
    }
    memcpy(r->env_id, m->hdr.id, 16);
    r->attempt = m->hdr.attempt;
}

static void htg_fd_handle(htg_fd_t *fd, const hmsg_t *m)
{
    bool durable = (m->hdr.present & ENV_HAS_DURABLE) && m->hdr.durable;
    if (strcmp(m->hdr.type, "chat.message") == 0)
        htg_fd_record(fd, m);
    else if (strcmp(m->hdr.type, "sy.receipt") == 0) {
        htg_receipt_t *r = &fd->receipts[fd->nreceipts++ % 64];
        memset(r, 0, sizeof *r);
        memcpy(r->corr, m->hdr.corr, 16);
        char detail[64];
        hmsg_receipt(m, r->code, sizeof r->code, detail, sizeof detail);
        bool ok = false;
        r->ok = hmp_get_bool(m->body, m->body_len, "ok", &ok) && ok;
    } else
        fd->others++;
    if (durable && strcmp(m->hdr.type, "sy.receipt") != 0)
        assert_int_equal(hclient_ack(fd->c, m->hdr.id), 0);
}

void htg_fd_pump(htg_fd_t *fd, int ms)
{
    int64_t end = harness_now_ms() + ms;
    for (;;) {
        int64_t left = end - harness_now_ms();
        hmsg_t m;
        /* the operator client waits for nothing here, but must ping to
           stay alive (hclient_recv does as it needs) */
        if (hclient_recv(fd->op, &m, 0) == 0) {
            hmsg_print("operator: unexpected ", &m);
            hmsg_clear(&m);
        }
        int rc = hclient_recv(fd->c, &m, left > 0 ? (int) left : 0);
        if (rc == 0) {
            htg_fd_handle(fd, &m);
            hmsg_clear(&m);
            continue;
        }
        if (rc != SY_ETIMEOUT)
            fail_msg("front door: hclient_recv: %s", syerr_name(rc));
        if (left <= 0)
            return;
    }
}

int htg_fd_count(const htg_fd_t *fd, const char *ref)
{
    int n = 0;
    for (size_t i = 0; i < fd->n; i++)
        if (strcmp(fd->recs[i].ref, ref) == 0)
            n++;
    return n;
}

const htg_rec_t *htg_fd_find(const htg_fd_t *fd, const char *ref)
{
    for (size_t i = 0; i < fd->n; i++)
        if (strcmp(fd->recs[i].ref, ref) == 0)
            return &fd->recs[i];
    return NULL;
}

bool htg_fd_wait(htg_fd_t *fd, const char *ref, int timeout_ms)
{
    int64_t end = harness_now_ms() + (int64_t) timeout_ms * harness_slow();
    while (htg_fd_count(fd, ref) == 0) {
        if (harness_now_ms() >= end)
            return false;
        htg_fd_pump(fd, 50);
    }
    return true;
}

const char *htg_ref(uint64_t update_id, char out[32])
{
    snprintf(out, 32, "tg:%llu", (unsigned long long) update_id);
    return out;
}

/* user, addr, ref of an answer to chat_id. */
static void htg_pack_dest(hmp_buf_t *b, int64_t chat_id, const char *ref)
{
    char v[40];
    snprintf(v, sizeof v, "tg:%lld", (long long) chat_id);
    hmp_str(b, "user");
    hmp_str(b, v);
    snprintf(v, sizeof v, "%lld", (long long) chat_id);
    hmp_str(b, "addr");
    hmp_str(b, v);
    hmp_str(b, "ref");
    hmp_str(b, ref);
}

static void htg_pack_job(hmp_buf_t *b, const uint8_t job[16])
{
    hmp_str(b, "job");
    msgpack_pack_bin(&b->pk, 16);
    msgpack_pack_bin_body(&b->pk, job, 16);
}

void htg_fd_reply(htg_fd_t *fd, int64_t chat_id, const char *ref,
                  const uint8_t *job, const char *text, bool durable)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 4 + (job != NULL));
    if (job)
        htg_pack_job(&b, job);
    hmp_str(&b, "text");
    hmp_str(&b, text);
    htg_pack_dest(&b, chat_id, ref);
    uint8_t id[16];
    hclient_new_id(fd->c, id);
    char key[64], hex[33];
    envelope_id_hex(id, hex);
    snprintf(key, sizeof key, "reply:%s", hex);
    hsend_t s = { .type = "chat.reply", .to = "telegram", .durable = durable,
                  .key = durable ? key : NULL };
    assert_int_equal(hclient_send(fd->c, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, id), 0);
    hmp_buf_clear(&b);
    if (!durable)
        return;
    int64_t end = harness_now_ms() + (int64_t) HTG_WAIT_MS * harness_slow();
    while (harness_now_ms() < end) {
        for (size_t i = 0; i < fd->nreceipts && i < 64; i++)
            if (memcmp(fd->receipts[i].corr, id, 16) == 0) {
                if (!fd->receipts[i].ok)
                    fail_msg("front door: the broker refused the durable "
                             "chat.reply to telegram: %s",
                             fd->receipts[i].code);
                return;
            }
        htg_fd_pump(fd, 20);
    }
    fail_msg("front door: no receipt for the durable chat.reply");
}

void htg_fd_token(htg_fd_t *fd, int64_t chat_id, const char *ref,
                  const uint8_t job[16], uint64_t seq, const char *text)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 6);
    htg_pack_job(&b, job);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, seq);
    hmp_str(&b, "text");
    hmp_str(&b, text);
    htg_pack_dest(&b, chat_id, ref);
    hsend_t s = { .type = "chat.token", .to = "telegram" };
    assert_int_equal(hclient_send(fd->c, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, NULL), 0);
    hmp_buf_clear(&b);
}

bool htg_approve_code(htg_fd_t *fd, const char *code, bool deny, char *text,
                      size_t cap)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, deny ? 2 : 1);
    hmp_str(&b, "code");
    hmp_str(&b, code);
    if (deny) {
        hmp_str(&b, "deny");
        msgpack_pack_true(&b.pk);
    }
    hmsg_t m;
    int rc = hclient_request(fd->op, "telegram", "telegram.approve",
                             (const uint8_t *) b.sb.data, b.sb.size, &m,
                             HTG_WAIT_MS * harness_slow());
    hmp_buf_clear(&b);
    if (rc)
        fail_msg("bridge: no answer to telegram.approve: %s", syerr_name(rc));
    if (strcmp(m.hdr.type, "telegram.answer") != 0) {
        hmsg_print("bridge: telegram.approve answered with ", &m);
        hmsg_clear(&m);
        fail_msg("bridge: telegram.approve was not answered by "
                 "telegram.answer");
    }
    bool ok = false;
    if (!hmp_get_bool(m.body, m.body_len, "ok", &ok)) {
        hmsg_clear(&m);
        fail_msg("bridge: telegram.answer without ok");
    }
    if (text && cap)
        if (!hmp_get_str(m.body, m.body_len, "text", text, cap))
            text[0] = '\0';
    hmsg_clear(&m);
    return ok;
}

bool htg_code_in(const char *plain, char *code, size_t cap)
{
    const char *p = strstr(plain, "approve ");
    if (!p)
        return false;
    p += strlen("approve ");
    while (*p == ' ')
        p++;
    size_t n = 0;
    while (n + 1 < cap && ((p[n] >= 'A' && p[n] <= 'Z')
                           || (p[n] >= 'a' && p[n] <= 'z')
                           || (p[n] >= '0' && p[n] <= '9')
                           || p[n] == '-' || p[n] == '_'))
        n++;
    memcpy(code, p, n);
    code[n] = '\0';
    return n >= 4;
}

void htg_approve_chat(htg_fd_t *fd, const htg_fake_t *f, int64_t chat_id)
{
    uint64_t mark = htg_fake_sent_mark(f);
    htg_fake_text(f, chat_id, chat_id, "hello, may I?");
    uint64_t seq = 0;
    int64_t end = harness_now_ms() + (int64_t) HTG_WAIT_MS * harness_slow();
    while (!seq && harness_now_ms() < end) {
        htg_fd_pump(fd, 50);
        seq = htg_fake_wait_sent(f, chat_id, mark, "approve", 0);
    }
    if (!seq)
        fail_msg("bridge: chat %lld got no pairing code (a message with "
                 "\"approve CODE\") within %d ms", (long long) chat_id,
                 HTG_WAIT_MS * harness_slow());
    htg_sent_list_t l;
    htg_fake_sent(f, chat_id, seq - 1, &l);
    char code[32] = "";
    bool found = l.n > 0 && htg_code_in(l.v[0].plain, code, sizeof code);
    if (!found) {
        print_error("pairing message: %s\n", l.n ? l.v[0].plain : "(none)");
        htg_sent_clear(&l);
        fail_msg("bridge: no code after \"approve\" in the pairing message");
    }
    htg_sent_clear(&l);
    char text[256];
    if (!htg_approve_code(fd, code, false, text, sizeof text))
        fail_msg("bridge: telegram.approve %s refused: %s", code, text);
    /* The bridge tells the chat it is in (after the chat's send rate
       allows): wait for that, so tests that look at what the chat gets
       next do not see it. */
    end = harness_now_ms() + 3000LL * harness_slow();
    bool told = false;
    while (!told && harness_now_ms() < end) {
        htg_fd_pump(fd, 50);
        htg_fake_sent(f, chat_id, seq, &l);
        told = l.n > 0;
        htg_sent_clear(&l);
    }
}
