/*  hdur.c -- helpers shared by the durable-queue integration tests.
 *
 *  Thin on purpose: each helper is one protocol step, so a test reads as
 *  the sequence of messages it exchanges.  See hdur.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "hdur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmp.h"
#include "schemas/syerr.h"

void hdur_put_ok(hclient_t *c, const hdur_msg_t *m, uint8_t id[16])
{
    hdur_receipt_t r;
    int rc = hdur_put(c, m, &r, 5000 * harness_slow());
    if (rc) fail_msg("no receipt for a durable send to %s: %s", m->to, syerr_name(rc));
    if (!r.ok || !r.has_id)
        fail_msg("durable send to %s refused: ok=%d code=%s detail=%s msg=%s", m->to, r.ok,
                 r.code, r.detail, r.msg);
    memcpy(id, r.id, 16);
}

void hdur_fast_config(harness_t *h)
{
    harness_set(h, "ratelimit/rate", "1000000");
    harness_set(h, "ratelimit/burst", "10000000");
    harness_set(h, "store/retry_backoff", "100ms");
}

const char *hdur_hex(const uint8_t id[16], char out[33])
{
    envelope_id_hex(id, out);
    return out;
}

int hdur_send(hclient_t *c, const hdur_msg_t *m, uint8_t sent_id[16])
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, m->pad ? 3 : 2);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, m->seq);
    hmp_str(&b, "data");
    hmp_str(&b, m->data ? m->data : "job");
    if (m->pad) {
        hmp_str(&b, "pad");
        msgpack_pack_bin(&b.pk, m->pad);
        char *zeros = calloc(1, m->pad);
        if (zeros) memset(zeros, 'p', m->pad);
        msgpack_pack_bin_body(&b.pk, zeros ? zeros : "", zeros ? m->pad : 0);
        free(zeros);
    }
    hsend_t s = { .type = "echo.request", .to = m->to, .ttl = m->ttl,
                  .prio = m->prio, .has_prio = m->prio >= 0,
                  .durable = true, .key = m->key };
    int rc = hclient_send(c, &s, (const uint8_t *)b.sb.data, b.sb.size, sent_id);
    hmp_buf_clear(&b);
    return rc;
}

bool hdur_receipt_parse(const hmsg_t *m, hdur_receipt_t *r)
{
    memset(r, 0, sizeof *r);
    if (strcmp(m->hdr.type, "sy.receipt") != 0) return false;
    hmp_get_bool(m->body, m->body_len, "ok", &r->ok);
    hmp_get_str(m->body, m->body_len, "code", r->code, sizeof r->code);
    hmp_get_str(m->body, m->body_len, "detail", r->detail, sizeof r->detail);
    hmp_get_str(m->body, m->body_len, "msg", r->msg, sizeof r->msg);
    mpval_t v;
    if (hmp_get(m->body, m->body_len, "id", &v) == 0 && v.kind == MP_BIN && v.len == 16) {
        memcpy(r->id, v.ptr, 16);
        r->has_id = true;
    }
    return true;
}

int hdur_put(hclient_t *c, const hdur_msg_t *m, hdur_receipt_t *r, int timeout_ms)
{
    uint8_t id[16];
    int rc = hdur_send(c, m, id);
    if (rc) return rc;
    hmsg_t a;
    rc = hclient_recv_corr(c, id, &a, timeout_ms);
    if (rc) return rc;
    if (!hdur_receipt_parse(&a, r)) {
        hmsg_print("durable send answered by a non-receipt: ", &a);
        memset(r, 0, sizeof *r);
        snprintf(r->code, sizeof r->code, "NOT_A_RECEIPT");
    }
    hmsg_clear(&a);
    return 0;
}

int hdur_put_many(hclient_t *c, const hdur_msg_t *m, size_t n,
                  hdur_receipt_t *r, int timeout_ms)
{
    uint8_t (*ids)[16] = calloc(n ? n : 1, 16);
    bool *got = calloc(n ? n : 1, sizeof *got);
    if (!ids || !got) { free(ids); free(got); return SY_ENOMEM; }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        memset(&r[i], 0, sizeof r[i]);
        snprintf(r[i].code, sizeof r[i].code, "TIMEOUT");
        rc = hdur_send(c, &m[i], ids[i]);
    }
    size_t left = n;
    int64_t deadline = harness_now_ms() + timeout_ms;
    hmsg_t other[HCLIENT_KEEP];        /* deliveries and replies that came
                                          meanwhile: kept for the caller */
    int nother = 0;
    while (rc == 0 && left > 0) {
        int64_t wait = deadline - harness_now_ms();
        if (wait <= 0) { rc = SY_ETIMEOUT; break; }
        hmsg_t a;
        if (hclient_recv(c, &a, (int)wait) != 0) { rc = SY_ETIMEOUT; break; }
        size_t i = n;
        if (a.hdr.present & ENV_HAS_CORR)
            for (i = 0; i < n; i++)
                if (!got[i] && memcmp(ids[i], a.hdr.corr, 16) == 0) break;
        if (i < n && hdur_receipt_parse(&a, &r[i])) {
            got[i] = true;
            left--;
        } else if (nother < HCLIENT_KEEP) {
            other[nother++] = a;
            continue;
        } else {
            hmsg_print("  (not a receipt we wait for, dropped) ", &a);
        }
        hmsg_clear(&a);
    }
    for (int i = 0; i < nother; i++)
        if (hclient_keep(c, &other[i]) != 0)
            hmsg_clear(&other[i]);
    free(ids);
    free(got);
    return rc;
}

bool hdur_body_seq(const hmsg_t *m, uint64_t *seq)
{
    return hmp_get_uint(m->body, m->body_len, "seq", seq);
}

bool hdur_is_delivery(const hmsg_t *m)
{
    return (m->hdr.present & ENV_HAS_DURABLE) && m->hdr.durable
        && (m->hdr.present & ENV_HAS_ATTEMPT);
}

uint64_t hdur_ready(const hdur_counts_t *k)
{
    return k->ready[0] + k->ready[1] + k->ready[2];
}

int hdur_counts(hclient_t *c, const char *service, hdur_counts_t *out,
                int timeout_ms)
{
    memset(out, 0, sizeof *out);
    hquery_t q = { .what = "queues" };
    hmsg_t m;
    int rc = hclient_query(c, &q, &m, timeout_ms);
    if (rc) return rc;
    if (strcmp(m.hdr.type, "sy.answer") != 0) {
        hmsg_print("queues query answered with ", &m);
        hmsg_clear(&m);
        return SY_EBAD_BODY;
    }
    int n = hmp_count(m.body, m.body_len, "data");
    for (int i = 0; i < n; i++) {
        char p[96], name[ENVELOPE_NAME_MAX + 1] = "";
        snprintf(p, sizeof p, "data.%d.service", i);
        if (!hmp_get_str(m.body, m.body_len, p, name, sizeof name)
            || strcmp(name, service) != 0)
            continue;
        out->found = true;
        for (int k = 0; k < 3; k++) {
            snprintf(p, sizeof p, "data.%d.ready.%d", i, k);
            hmp_get_uint(m.body, m.body_len, p, &out->ready[k]);
        }
        snprintf(p, sizeof p, "data.%d.delayed", i);
        hmp_get_uint(m.body, m.body_len, p, &out->delayed);
        snprintf(p, sizeof p, "data.%d.inflight", i);
        hmp_get_uint(m.body, m.body_len, p, &out->inflight);
        snprintf(p, sizeof p, "data.%d.dead", i);
        hmp_get_uint(m.body, m.body_len, p, &out->dead);
        snprintf(p, sizeof p, "data.%d.oldest_ms", i);
        hmp_get_uint(m.body, m.body_len, p, &out->oldest_ms);
    }
    hmsg_clear(&m);
    return 0;
}

bool hdur_wait_counts(hclient_t *c, const char *service,
                      bool (*pred)(const hdur_counts_t *, void *), void *arg,
                      int timeout_ms, hdur_counts_t *last)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int rc = hdur_counts(c, service, last, 2000 * harness_slow());
        if (rc == 0 && pred(last, arg)) return true;
        if (harness_now_ms() >= deadline) return false;
        harness_sleep_ms(50);
    }
}

uint8_t *hdur_syctl_json(harness_t *h, int *exit_code, size_t *len, ...)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    char *argv[40] = { bin, "--config", (char *)harness_config(h), "--json" };
    int n = 4;
    va_list ap;
    va_start(ap, len);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 39; )
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    hrun_t r;
    *exit_code = -1;
    if (harness_run(h, argv, 10000 * harness_slow(), &r) != 0) return NULL;
    *exit_code = r.exit_code;
    uint8_t *j = hmp_from_json_in(r.out, len);
    if (!j) {
        fprintf(stderr, "syctl");
        for (int i = 3; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, ": exit %d, stdout not JSON:\n%s\nstderr:\n%s\n",
                r.exit_code, r.out, r.err);
    }
    hrun_clear(&r);
    return j;
}

bool hdur_file_hash(const char *path, uint64_t *hash, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    uint64_t hv = 1469598103934665603ULL, n = 0;
    unsigned char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++) hv = (hv ^ buf[i]) * 1099511628211ULL;
        n += got;
    }
    fclose(f);
    *hash = hv;
    *size = n;
    return true;
}

int hdur_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle)) n++;
    fclose(f);
    return n;
}
