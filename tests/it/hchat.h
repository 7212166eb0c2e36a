/*  hchat.h -- integration-test support for the chat path.
 *
 *  Starts the fake LLM backend (tests/fakes/ollama_fake.py) and the chat
 *  actors (sy-frontdoor, sy-router, sy-inference) as real processes under
 *  a harness, changes the fake's behaviour through its control endpoint,
 *  reads its counters, and asks questions with the real `syctl chat
 *  --once`, its stdout and stderr kept apart in files.
 *
 *  Every wait is bounded (scaled by harness_slow()).  Everything started
 *  belongs to the harness and ends with it.
 *
 *  Ownership: hchat_fake_start() returns a fake freed by hchat_fake_free()
 *  (the process itself belongs to the harness); hchat_ask_t holds paths
 *  only; strings returned by hchat_read_file() are the caller's to free().
 */
#ifndef HCHAT_H
#define HCHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/it/harness.h"

typedef struct {
    hproc_t *proc;
    int      port;
    char     url[64];           /* http://127.0.0.1:PORT */
    char     log[HARNESS_PATH_MAX];  /* one JSON line per chat request */
} hchat_fake_t;

/* Starts the fake with an initial mode (JSON object, may be NULL) and
   waits until it listens.  port 0: any free port; else that port (to
   bring a stopped fake back where sy-inference expects it).  Fails the
   test if it does not come up. */
hchat_fake_t *hchat_fake_start(harness_t *h, const char *label, int port,
                               const char *mode_json);
/* SIGTERM and reap (the struct stays; start again with its port). */
void hchat_fake_stop(harness_t *h, hchat_fake_t *f);
void hchat_fake_free(hchat_fake_t **f_p);

/* POST /_fake/mode with a JSON object merged into the mode.  Fails the
   test on error. */
void hchat_fake_mode(hchat_fake_t *f, const char *json);

/* The integer member `name` of GET /_fake/stats (e.g. "chat_requests"),
   or -1 if unreachable or absent. */
long hchat_fake_stat(hchat_fake_t *f, const char *name);

/* Starts bin/PROGRAM --config <cfg> --endpoint <ep> plus the extra
   arguments (NULL-terminated, may be NULL), labelled label. */
hproc_t *hchat_start(harness_t *h, const char *program, const char *label,
                     const char *const *extra);

/* Starts sy-frontdoor and sy-router and waits until the broker lists
   both (names frontdoor and router). */
void hchat_start_vm_side(harness_t *h, hproc_t **frontdoor, hproc_t **router);

/* Starts sy-inference named inference-1 against the fake. */
hproc_t *hchat_start_inference(harness_t *h, const hchat_fake_t *f,
                               const char *const *extra);

/* One `syctl chat --once --name NAME TEXT` running in the background,
   stdout and stderr in files of the test dir. */
typedef struct {
    hproc_t *proc;
    char     out[HARNESS_PATH_MAX];
    char     err[HARNESS_PATH_MAX];
} hchat_ask_t;

void hchat_ask_start(harness_t *h, hchat_ask_t *a, const char *label,
                     const char *user, const char *text);
/* Waits (bounded by timeout_ms x harness_slow()) for the ask to exit;
   returns its exit code, or -1 if it did not exit. */
int hchat_ask_wait(harness_t *h, hchat_ask_t *a, int timeout_ms);
/* Runs an ask to completion: exit code; *out / *err (may be NULL) get
   the texts (caller frees). */
int hchat_ask(harness_t *h, const char *user, const char *text,
              int timeout_ms, char **out, char **err);

/* The whole file (NUL-terminated, caller frees), or "" copied if absent. */
char *hchat_read_file(const char *path);

/* Waits until the file holds needle (bounded); true if it does. */
bool hchat_wait_file(const char *path, const char *needle, int timeout_ms);

/* Occurrences of needle in hay. */
int hchat_count(const char *hay, const char *needle);

#endif
