/*  test_security_store.c -- issue 3: bodies sealed at rest, on the real
 *  binaries (docs/SECURITY.md "Encryption at rest").
 *
 *  With CURVE on, an enrolled operator's syctl queues a durable message
 *  whose body holds a distinctive plaintext for a service nobody serves
 *  yet; the broker is stopped (SIGTERM) and the raw bytes of every file
 *  of the store (data.mdb, lock.mdb) must not contain the plaintext --
 *  while the idempotency key, which lives in the header and is readable
 *  by design, must be there: that proves the record is in the file we
 *  searched and that the search can succeed.  After a restart a worker
 *  (a CURVE test client with an enrolled actor certificate) comes up and
 *  must receive the body intact, under the id of the receipt.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hmp.h"
#include "hsec.h"

#define SECRET     "the-stored-secret-4713-chat-text"
#define KEY_MARKER "store-key-marker-9931"

static int setup(void **state)
{
    harness_t *h = harness_new("sec-store");
    *state = h;
    if (!h) return -1;
    harness_curve_enable(h);
    return 0;
}

/* Sums the occurrences of needle over every regular file of dir; *files
   and *bytes say how much was searched. */
static int dir_count(const char *dir, const char *needle, int *files, long *bytes)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open the store directory %s", dir);
    int count = 0;
    *files = 0;
    *bytes = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL; ) {
        if (e->d_name[0] == '.') continue;
        char path[HARNESS_PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        long size = 0;
        count += hsec_file_count(path, needle, &size);
        if (size >= 0) { (*files)++; *bytes += size; }
    }
    closedir(d);
    return count;
}

/* The "ready" total of service in `syctl queue ls --json` (as operator
   op), or -1 if the service is not listed. */
static long queue_ready(harness_t *h, const char *service)
{
    char cert[HARNESS_PATH_MAX];
    harness_identity_path(h, "op", ".secret", cert, sizeof cert);
    int ec = -1;
    size_t len = 0;
    uint8_t *j = hdur_syctl_json(h, &ec, &len, "--cert", cert, "queue", "ls", NULL);
    if (!j || ec != 0) {
        free(j);
        fail_msg("syctl --cert op queue ls --json: exit %d", ec);
    }
    int i = hmp_index_of(j, len, "", "service", service);
    char path[32];
    snprintf(path, sizeof path, "%d", i);
    hmp_view_t q = hmp_sub(j, len, path);
    long ready = -1;
    int n = hmp_count(q.buf, q.len, "ready");
    if (i >= 0 && n >= 0) {
        ready = 0;
        for (int k = 0; k < n; k++) {
            double v = 0;
            snprintf(path, sizeof path, "ready.%d", k);
            hmp_get_num(q.buf, q.len, path, &v);
            ready += (long)v;
        }
        double fl;
        if (hmp_get_num(q.buf, q.len, "inflight", &fl)) ready += (long)fl;
    }
    free(j);
    return ready;
}

static void test_body_sealed_at_rest_and_delivered_after_restart(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    harness_identity(h, "op", "operator", true);
    harness_identity(h, "echo-1", "actor", true);
    hproc_t *broker = harness_broker_start(h);

    /* Queued for echo, which nobody serves yet. */
    hrun_t r;
    int rc = hsec_syctl(h, &r, "op", 15000, "send", "--durable", "--no-wait",
                        "--key", KEY_MARKER, "echo", "echo.request",
                        "{\"seq\":5,\"data\":\"" SECRET "\"}", NULL);
    char idhex[33] = "";
    if (rc != 0 || sscanf(r.out, "id %32[0-9a-f]", idhex) != 1)
        fail_msg("syctl send --durable: exit %d, no \"id <hex>\" receipt\nstdout:\n%s\nstderr:\n%s",
                 rc, r.out, r.err);
    hrun_clear(&r);
    long ready = queue_ready(h, "echo");
    if (ready != 1)
        fail_msg("the echo queue holds %ld messages after the durable send, want 1", ready);

    /* Stop the broker cleanly, then read the store's raw bytes. */
    harness_signal(h, broker, SIGTERM);
    if (!harness_wait_exit(h, broker, 10000 * slow))
        fail_msg("sy-broker did not stop within %d ms of SIGTERM", 10000 * slow);
    if (!WIFEXITED(broker->status) || WEXITSTATUS(broker->status) != 0)
        fail_msg("sy-broker ended with status 0x%x after SIGTERM", broker->status);
    char store[HARNESS_PATH_MAX], mdb[HARNESS_PATH_MAX + 16];
    snprintf(store, sizeof store, "%s/store", harness_dir(h));
    snprintf(mdb, sizeof mdb, "%s/data.mdb", store);
    long mdb_size = -1;
    int in_mdb = hsec_file_count(mdb, SECRET, &mdb_size);
    if (mdb_size <= 0)
        fail_msg("the store has no data.mdb at %s", mdb);
    int files = 0;
    long bytes = 0;
    int secret_hits = dir_count(store, SECRET, &files, &bytes);
    int key_hits = dir_count(store, KEY_MARKER, &files, &bytes);
    print_message("    store: %d files, %ld bytes (data.mdb %ld); \"%s\" x%d, "
                  "header key \"%s\" x%d\n", files, bytes, mdb_size, SECRET,
                  secret_hits, KEY_MARKER, key_hits);
    if (in_mdb || secret_hits)
        fail_msg("the body's plaintext is in the store's files (data.mdb x%d, all x%d): "
                 "not sealed at rest", in_mdb, secret_hits);
    if (key_hits == 0)
        fail_msg("control: the header's idempotency key \"%s\" is not in the store's "
                 "files either: the record is not where the search looked", KEY_MARKER);

    /* Restart; a worker comes up and gets the body intact. */
    harness_broker_start(h);
    const char *services[] = { "echo", NULL };
    hclient_t *w = harness_client(h, "echo-1", services, 1);
    hmsg_t m;
    rc = hclient_recv_type(w, "echo.request", &m, 15000 * slow, NULL);
    if (rc != 0)
        fail_msg("no delivery of the stored message within %d ms of the worker's "
                 "hello after the restart", 15000 * slow);
    char got[128] = "", hex[33];
    uint64_t seq = 0;
    bool ok = hdur_is_delivery(&m)
           && hmp_get_str(m.body, m.body_len, "data", got, sizeof got)
           && hmp_get_uint(m.body, m.body_len, "seq", &seq);
    hdur_hex(m.hdr.id, hex);
    if (!ok || strcmp(got, SECRET) != 0 || seq != 5 || strcmp(hex, idhex) != 0) {
        hmsg_print("    delivered: ", &m);
        hmsg_clear(&m);
        fail_msg("the delivery after the restart is not the stored message intact: "
                 "data \"%s\" (want \"%s\"), seq %llu (want 5), id %s (receipt %s)",
                 got, SECRET, (unsigned long long)seq, hex, idhex);
    }
    assert_int_equal(hclient_ack(w, m.hdr.id), 0);
    hmsg_clear(&m);

    /* Acked: the queue is empty. */
    int64_t deadline = harness_now_ms() + 5000 * slow;
    while ((ready = queue_ready(h, "echo")) > 0 && harness_now_ms() < deadline)
        harness_sleep_ms(100);
    if (ready > 0)
        fail_msg("the echo queue still holds %ld messages after the ack", ready);
    harness_client_close(h, w);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_sealed_at_rest_and_delivered_after_restart,
                                        setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
