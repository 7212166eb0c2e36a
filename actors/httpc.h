/*  httpc.h -- HTTP requests that run inside an actor's zloop.
 *
 *  Actors talk to HTTP services (Ollama, Telegram, Drive) without ever
 *  blocking their loop: a blocked loop misses heartbeats and the broker
 *  gives the actor up.  httpc drives libcurl's multi interface from the
 *  zloop: curl's sockets become zloop pollers (CURLMOPT_SOCKETFUNCTION)
 *  and curl's timeout becomes a zloop timer (CURLMOPT_TIMERFUNCTION), so a
 *  request costs nothing while it waits and every callback runs on the
 *  loop's thread, between the actor's own events.
 *
 *  A request either streams its response body to on_data (in chunks as
 *  they arrive, or line by line with opts.lines: Ollama's newline-delimited
 *  JSON, server-sent events) or, without on_data, collects it and hands
 *  the whole body to on_done.  on_done is called exactly once per started
 *  request, unless the request was cancelled with httpc_cancel() or the
 *  httpc_t destroyed first.
 *
 *  Timeouts of our own, since a streaming LLM backend has none on its side:
 *  connect (curl's), first byte (nothing of the body this long after the
 *  request went out: a cold model loading), idle (silence between two
 *  pieces of the body), and total.  Each ends the request with
 *  SY_ETIMEOUT and says which in the result's err.
 *
 *  Secrets: header values (e.g. "Authorization: Bearer ...") and URLs
 *  (Telegram puts its token in the path) are never logged by this module;
 *  err texts name the host and the failure only.
 *
 *  Ownership: httpc_new() gives an httpc_t that httpc_destroy() frees,
 *  cancelling what still runs (no callbacks from then on).  The options
 *  (URL, headers, body) are copied by httpc_start().  A httpc_req_t is
 *  owned by the httpc_t: it is valid from httpc_start() until on_done
 *  returns or httpc_cancel() is called, and must not be used after.
 *  Pointers given to callbacks are valid only during the call.
 *
 *  Threads: an httpc_t belongs to the thread running its zloop; destroy it
 *  before the loop (zloop_destroy), while the loop is not running: after
 *  zloop_start() returned, or from outside any of the loop's handlers.
 *  CZMQ 4.2's zloop may still call, in the same pass, a poller or timer
 *  that a handler removed, so httpc_destroy() from inside a handler of the
 *  running loop can be called back into freed memory.  (From inside this
 *  httpc_t's own callbacks it is deferred to the end of its handler and
 *  logged as a warning: a safety net, not a way to use it.)
 *
 *  Process-wide: curl_global_init() runs once, the first time httpc_new()
 *  is called (pthread_once), and is never undone.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _httpc_t httpc_t;
typedef struct _httpc_req_t httpc_req_t;

#define HTTPC_MAX_BODY_DEFAULT (16u * 1024 * 1024)

typedef struct {
    const char        *method;      /* "GET", "POST", ...; NULL: GET, or
                                       POST when body is set */
    const char        *url;         /* http:// or https:// */
    const char *const *headers;     /* "Name: value" lines, NULL-terminated;
                                       may be NULL */
    const void        *body;        /* request body, copied; may be NULL */
    size_t             body_len;
    uint32_t           connect_timeout_ms;     /* 0: 10 s */
    uint32_t           first_byte_timeout_ms;  /* 0: none */
    uint32_t           idle_timeout_ms;        /* 0: none */
    uint32_t           total_timeout_ms;       /* 0: none */
    size_t             max_body;    /* response body limit; 0: default.
                                       With lines: the limit of one line
                                       (a stream may be longer) */
    bool               lines;       /* on_data gets one line per call, "\n"
                                       and a trailing "\r" removed; empty
                                       lines too (SSE separates events with
                                       them); a last line without "\n" is
                                       delivered too.  Needs on_data */
} httpc_opts_t;

/* The end of a request. */
typedef struct {
    int         rc;         /* 0: the response arrived whole (any status);
                               SY_ETIMEOUT; SY_EIO (connect, DNS, reset,
                               broken stream); SY_ETOO_LARGE (over
                               max_body); SY_ECLOSED (on_data asked to
                               stop); SY_ENOMEM */
    long        status;     /* HTTP status, 0 if none arrived */
    const char *err;        /* "" when rc is 0; else what failed, e.g.
                               "idle timeout (60000 ms)", "connect:
                               Connection refused" */
    const char *body;       /* collected body (no on_data), NUL-terminated;
                               "" otherwise */
    size_t      body_len;
} httpc_result_t;

/* The status line and headers have arrived (before any on_data). */
typedef void (httpc_status_fn)(httpc_req_t *req, long status, void *arg);
/* A chunk, or a line (opts.lines).  Return 0 to go on, non-zero to stop
   the request (on_done then gets SY_ECLOSED). */
typedef int (httpc_data_fn)(httpc_req_t *req, const char *data, size_t len,
                            void *arg);
typedef void (httpc_done_fn)(httpc_req_t *req, const httpc_result_t *res,
                             void *arg);

typedef struct {
    httpc_status_fn *on_status;     /* may be NULL */
    httpc_data_fn   *on_data;       /* NULL: collect the body for on_done */
    httpc_done_fn   *on_done;       /* required */
    void            *arg;
} httpc_cb_t;

/* Makes a client driving its requests from loop.  Returns 0 with *out, or
   SY_ENOMEM / SY_EINTERNAL (curl could not start). */
int httpc_new(zloop_t *loop, httpc_t **out);

/* Cancels every running request without calling back, frees everything,
   sets *self_p to NULL.  Safe on NULL. */
void httpc_destroy(httpc_t **self_p);

/* Starts a request.  Returns 0 with *req_out (may be NULL) set, or
   SY_EINVAL (no url / on_done; a URL that is not http:// or https:// with
   a host; a method that is not upper-case letters; a header line without
   ':' or with CR / LF; body_len without body), SY_ENOMEM, or SY_EINTERNAL
   (curl refused).  Never calls back before it returns.  Callable from
   inside callbacks (the request then begins once they return).  The first
   byte and total timeouts count from this call. */
int httpc_start(httpc_t *self, const httpc_opts_t *opts, const httpc_cb_t *cb,
                httpc_req_t **req_out);

/* Stops a running request; its on_done is not called.  Sets *req_p to
   NULL.  Safe on NULL.  Callable from inside that request's on_status or
   on_data (the request is then ended after the callback returns). */
void httpc_cancel(httpc_t *self, httpc_req_t **req_p);

/* Requests running now. */
size_t httpc_running(const httpc_t *self);

#endif
