/*  test_durable_seal.c -- encryption at rest of the durable queues
 *  (broker/durable.c with common/seal.c): what reaches data.mdb is
 *  sealed, what an actor gets is the plaintext, and a missing, wrong or
 *  damaged key never yields garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/durable.h"
#include "broker/store.h"
#include "common/config.h"
#include "common/seal.h"
#include "schemas/envelope.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK "PLAINTEXT-chat-message-7d1f3a"

typedef struct {
    char dir[64];
    char store[128];
    char keys[128];
    char cfgpath[128];
    config_t *cfg;
    durable_t *d;
    int receipts, receipt_fail;
} fx_t;

/* Writes the config for the fixture; key_dir "" = store/dir. */
static void fx_config(fx_t *fx, const char *key_dir)
{
    assert_int_equal(tutil_write_file(fx->cfgpath,
        "store\n    dir = \"%s\"\n    sync = none\n    map_size = 16M\n"
        "security\n    store_key_dir = \"%s\"\n", fx->store, key_dir), 0);
    config_destroy(&fx->cfg);
    char err[256];
    assert_int_equal(config_load(fx->cfgpath, &fx->cfg, err, sizeof err), 0);
}

static void on_receipt(const durable_receipt_t *r, void *arg)
{
    fx_t *fx = arg;
    if (r->kind == DURABLE_RECEIPT_END)
        return;
    fx->receipts++;
    if (r->rc)
        fx->receipt_fail++;
}

static int fx_open(fx_t *fx, char *err, size_t errlen)
{
    return durable_new(fx->cfg, on_receipt, fx, &fx->d, err, errlen);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tutil_tmpdir(fx->dir, sizeof fx->dir, "seal") != 0)
        return -1;
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->dir);
    snprintf(fx->keys, sizeof fx->keys, "%s/keys", fx->dir);
    snprintf(fx->cfgpath, sizeof fx->cfgpath, "%s/t.cfg", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    durable_destroy(&fx->d);
    config_destroy(&fx->cfg);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* Puts one durable message whose body holds MARK and number i; id out. */
static void put_one(fx_t *fx, int i, uint8_t id[ENVELOPE_ID_LEN])
{
    envelope_t env;
    envelope_init(&env);
    for (int k = 0; k < ENVELOPE_ID_LEN; k++)
        env.id[k] = (uint8_t) (0x10 + k + i);
    envelope_set_type(&env, "chat.request");
    envelope_set_to(&env, "inference");
    envelope_set_from(&env, "phone");
    env.durable = true;
    env.present |= ENV_HAS_DURABLE;
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(&env, hbuf, sizeof hbuf);
    assert_true(hlen > 0);
    char body[128];
    int blen = snprintf(body, sizeof body, "%s #%d", MARK, i);
    uint8_t rid[4] = { 3, 'a', 'b', 'c' };
    assert_int_equal(durable_put(fx->d, rid, &env, hbuf, (size_t) hlen, body,
                                 (size_t) blen, 1000), 0);
    memcpy(id, env.id, ENVELOPE_ID_LEN);
}

/* Whether the file at path holds needle anywhere (raw bytes). */
static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 64 << 20, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    n = fread(buf, 1, cap, f);
    fclose(f);
    bool found = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

/* Stores messages 1..n (ids[0..n)) sealed with the key in fx->keys and
   closes the store: all of it is on disk. */
static void fx_stored(fx_t *fx, int n, uint8_t (*ids)[ENVELOPE_ID_LEN])
{
    fx_config(fx, fx->keys);
    char err[512] = "";
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    for (int i = 1; i <= n; i++)
        put_one(fx, i, ids[i - 1]);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(fx->receipt_fail, 0);
    durable_destroy(&fx->d);
}

/* Stores two messages and damages the tag of the first one's sealed
   body behind durable's back: the store opened alone, both records taken
   raw, removed and put back, the first one changed. */
static void fx_damage_first(fx_t *fx, uint8_t (*ids)[ENVELOPE_ID_LEN])
{
    fx_stored(fx, 2, ids);
    char err[512] = "";
    store_opts_t so = { .dir = fx->store, .sync = STORE_SYNC_NONE, .map_size = 16 << 20 };
    store_t *st = NULL;
    assert_int_equal(store_open(&so, &st, err, sizeof err), 0);
    store_msg_t m[2];
    size_t n = 0;
    assert_int_equal(store_take(st, "inference", "x", 2, 1000, 1000, m, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_ack(st, m[0].id, "x"), 0);
    assert_int_equal(store_ack(st, m[1].id, "x"), 0);
    m[0].body[m[0].body_len - 1] ^= 0x55;          /* damage the tag */
    store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(st, 2000, &txn), 0);
    for (int i = 0; i < 2; i++) {
        store_put_t p = { .service = "inference", .prio = 1, .id = m[i].id,
                          .header = m[i].header, .header_len = m[i].header_len,
                          .body = m[i].body, .body_len = m[i].body_len };
        assert_int_equal(store_put(txn, &p, NULL), 0);
    }
    assert_int_equal(store_txn_commit(&txn), 0);
    store_msg_clear(&m[0]);
    store_msg_clear(&m[1]);
    store_destroy(&st);
}

/* The first message is a dead letter for its seal. */
static void expect_seal_dead_letter(fx_t *fx, const uint8_t *id)
{
    store_info_t info;
    assert_int_equal(store_get_info(durable_store(fx->d), id, &info), 0);
    assert_int_equal(info.state, STORE_DEAD);
    assert_non_null(strstr(info.reason, "cannot be opened"));
}

static void test_raw_file_holds_no_plaintext(void **state)
{
    fx_t *fx = *state;
    fx_config(fx, fx->keys);
    char err[512] = "";
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    uint8_t id[ENVELOPE_ID_LEN];
    for (int i = 0; i < 50; i++)
        put_one(fx, i, id);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(fx->receipts, 50);
    assert_int_equal(fx->receipt_fail, 0);
    durable_destroy(&fx->d);            /* everything on disk */

    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", fx->store);
    assert_false(file_contains(path, MARK));
    /* the check can fail: the header (routing) is stored readable */
    assert_true(file_contains(path, "inference"));
    /* the key file exists, 0600 */
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", fx->keys, SEAL_KEY_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* reopened, an actor gets the plaintext back */
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    store_msg_t m[4];
    size_t n = 0;
    assert_int_equal(durable_take(fx->d, "inference", "w1", 1, 2000, m, &n), 0);
    assert_int_equal(n, 1);
    char want[128];
    int wl = snprintf(want, sizeof want, "%s #%d", MARK, 0);
    assert_int_equal(m[0].body_len, (size_t) wl);
    assert_memory_equal(m[0].body, want, (size_t) wl);
    envelope_t env;
    assert_int_equal(envelope_decode(&env, m[0].header, m[0].header_len, NULL, 0), 0);
    assert_string_equal(env.to, "inference");
    store_msg_clear(&m[0]);
}

static void test_key_beside_store_when_empty_setting(void **state)
{
    fx_t *fx = *state;
    fx_config(fx, "");
    char err[512] = "";
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fx->store, SEAL_KEY_FILE);
    assert_int_equal(access(path, F_OK), 0);
}

static void test_missing_key_with_data_refused(void **state)
{
    fx_t *fx = *state;
    uint8_t id[1][ENVELOPE_ID_LEN];
    fx_stored(fx, 1, id);
    char err[512] = "";
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fx->keys, SEAL_KEY_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(fx_open(fx, err, sizeof err), SY_ECRYPTO);
    assert_null(fx->d);
    assert_non_null(strstr(err, "missing"));
    assert_non_null(strstr(err, SEAL_KEY_FILE));
    assert_int_equal(access(path, F_OK), -1);   /* no new key over old data */
}

static void test_wrong_key_refused(void **state)
{
    fx_t *fx = *state;
    uint8_t id[1][ENVELOPE_ID_LEN];
    fx_stored(fx, 1, id);
    char err[512] = "";
    /* another directory with another key */
    char other[256];
    snprintf(other, sizeof other, "%s/other", fx->dir);
    seal_t *s = NULL;
    assert_int_equal(seal_open(other, true, &s, err, sizeof err), 0);
    seal_destroy(&s);
    fx_config(fx, other);
    assert_int_equal(fx_open(fx, err, sizeof err), SY_ECRYPTO);
    assert_non_null(strstr(err, "not the key"));
}

static void test_damaged_record_dead_lettered(void **state)
{
    fx_t *fx = *state;
    uint8_t ids[2][ENVELOPE_ID_LEN];
    fx_damage_first(fx, ids);
    char err[512] = "";
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    store_msg_t m[2];
    size_t n = 0;
    assert_int_equal(durable_take(fx->d, "inference", "w1", 2, 3000, m, &n), 0);
    assert_int_equal(n, 1);                          /* only the good one */
    assert_memory_equal(m[0].id, ids[1], ENVELOPE_ID_LEN);
    assert_non_null(memmem(m[0].body, m[0].body_len, MARK, strlen(MARK)));
    store_msg_clear(&m[0]);
    expect_seal_dead_letter(fx, ids[0]);
}

/* What the deliver callback saw. */
typedef struct {
    int     n, committed;
    uint8_t id[ENVELOPE_ID_LEN];
    bool    plain, fresh;
} seen_t;

static void on_delivery(durable_delivery_t *dl, void *arg)
{
    seen_t *sn = arg;
    sn->n++;
    sn->committed += dl->committed;
    memcpy(sn->id, dl->id, ENVELOPE_ID_LEN);
    sn->plain = memmem(dl->body, dl->body_len, MARK, strlen(MARK)) != NULL;
    sn->fresh = dl->fresh;
}

/* The broker's path: a take inside the turn's batch dead-letters the
   damaged record in that batch and hands out only the good one. */
static void test_damaged_record_dead_lettered_in_batch(void **state)
{
    fx_t *fx = *state;
    uint8_t ids[2][ENVELOPE_ID_LEN];
    fx_damage_first(fx, ids);
    char err[512] = "";
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    seen_t sn = { 0 };
    durable_set_deliver(fx->d, on_delivery, &sn);
    size_t n = 0;
    assert_int_equal(durable_deliver(fx->d, "inference", "w1", 2, 3000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sn.n, 0);                       /* not before the commit */
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(sn.n, 1);
    assert_int_equal(sn.committed, 1);
    assert_memory_equal(sn.id, ids[1], ENVELOPE_ID_LEN);
    assert_true(sn.plain);
    assert_false(sn.fresh);                          /* opened from the store */
    expect_seal_dead_letter(fx, ids[0]);
}

/* A message put a moment ago is handed over from memory (fresh.h), with
   the same body, and not after a restart: then it is opened from the
   store. */
static void test_recent_put_handed_over_from_memory(void **state)
{
    fx_t *fx = *state;
    char err[512] = "";
    fx_config(fx, fx->keys);
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    uint8_t id[ENVELOPE_ID_LEN];
    put_one(fx, 1, id);
    assert_int_equal(durable_flush(fx->d), 0);
    seen_t sn = { 0 };
    durable_set_deliver(fx->d, on_delivery, &sn);
    size_t n = 0;
    assert_int_equal(durable_deliver(fx->d, "inference", "w1", 1, 3000, &n), 0);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(sn.n, 1);
    assert_memory_equal(sn.id, id, ENVELOPE_ID_LEN);
    assert_true(sn.plain);
    assert_true(sn.fresh);
    /* the restart returns it; taken again, it comes from the store */
    durable_destroy(&fx->d);
    assert_int_equal(fx_open(fx, err, sizeof err), 0);
    sn = (seen_t){ 0 };
    durable_set_deliver(fx->d, on_delivery, &sn);
    assert_int_equal(durable_deliver(fx->d, "inference", "w1", 1, 3000, &n), 0);
    assert_int_equal(durable_flush(fx->d), 0);
    assert_int_equal(sn.n, 1);
    assert_memory_equal(sn.id, id, ENVELOPE_ID_LEN);
    assert_true(sn.plain);
    assert_false(sn.fresh);
}

static void test_swapped_body_does_not_open(void **state)
{
    fx_t *fx = *state;
    uint8_t ids[2][ENVELOPE_ID_LEN];
    fx_stored(fx, 2, ids);
    const uint8_t *id1 = ids[0], *id2 = ids[1];
    char err[512] = "";

    /* the body of one record under the other's id: bound to the id, so
       it must not open */
    store_opts_t so = { .dir = fx->store, .sync = STORE_SYNC_NONE, .map_size = 16 << 20 };
    store_t *st = NULL;
    assert_int_equal(store_open(&so, &st, err, sizeof err), 0);
    store_msg_t a;
    assert_int_equal(store_get(st, id1, &a), 0);
    seal_t *s = NULL;
    assert_int_equal(seal_open(fx->keys, false, &s, err, sizeof err), 0);
    memcpy(a.id, id2, ENVELOPE_ID_LEN);
    assert_int_equal(durable_open_body(s, &a), SY_ECRYPTO);
    memcpy(a.id, id1, ENVELOPE_ID_LEN);
    assert_int_equal(durable_open_body(s, &a), 0);
    assert_non_null(memmem(a.body, a.body_len, MARK, strlen(MARK)));
    store_msg_clear(&a);
    seal_destroy(&s);
    store_destroy(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_file_holds_no_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_beside_store_when_empty_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_with_data_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_dead_lettered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_dead_lettered_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_body_does_not_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recent_put_handed_over_from_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
