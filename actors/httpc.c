/*  httpc.c -- HTTP requests driven by an actor's zloop (see httpc.h).
 *
 *  The ideas:
 *  - libcurl's multi "socket" interface does the HTTP; we only tell it
 *    when its sockets are ready and when its timeout is due.  Each socket
 *    curl wants watched becomes a zloop poller on the fd
 *    (CURLMOPT_SOCKETFUNCTION; zloop cannot change a poller's events, so
 *    a change is end + add), curl's one timeout becomes one one-shot zloop
 *    timer (CURLMOPT_TIMERFUNCTION).  Both handlers call
 *    curl_multi_socket_action() and then settle what curl finished
 *    (curl_multi_info_read).
 *  - libcurl forbids adding or removing easy handles from inside its own
 *    callbacks (CURLM_RECURSIVE_API_CALL), and our on_status / on_data run
 *    inside them.  So while curl is running (`in_curl`) a start is parked
 *    (added after curl returns) and a cancel only marks the request (its
 *    write callback then refuses data, and the request is removed after
 *    curl returns).  on_done always runs outside curl.
 *  - zloop (CZMQ 4.2) quirks that shape this file, the same as in
 *    actors/actor.c: a poller ended during a pass may still be called in
 *    that pass with the argument it had, and a timer ended from another
 *    timer's handler may still fire in that pass.  So every poller and
 *    timer gets the httpc_t as argument (never a request), a timer
 *    handler first checks that its id is still the current one, and no
 *    handler ever ends the timer that is running it (both timers are
 *    one-shots re-armed when needed).  Pollers are made tolerant: zloop
 *    would otherwise drop one silently after two POLLERRs, and curl must
 *    see the error (CURL_CSELECT_ERR) to end its transfer.
 *  - Our own timeouts (first byte, idle, total) are checked by a 50 ms
 *    one-shot tick that runs only while a request that has one is
 *    running; the connect timeout is curl's.
 *  - Secrets: URLs, header values and bodies are never logged; err texts
 *    name the host and the failure (curl_easy_strerror() and strerror()
 *    texts, which never hold the URL).
 *  - curl_global_init() must run once per process before any other curl
 *    call, and before 7.84 it is not thread-safe: it runs under a
 *    pthread_once here (the one process-wide state of this module, never
 *    cleaned up: curl_global_cleanup() at exit would race other threads).
 */
#include "actors/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sylog.h"
#include "schemas/syerr.h"

#define HTTPC_TICK_MS            50
#define HTTPC_CONNECT_DEFAULT_MS 10000
#define HTTPC_HOST_MAX           128
#define HTTPC_ERR_MAX            192
#define HTTPC_METHOD_MAX         16

typedef struct {
    curl_socket_t fd;
    short         events;
} httpc_sock_t;

struct _httpc_req_t {
    httpc_t            *owner;
    httpc_req_t        *prev, *next;    /* in owner->reqs */
    CURL               *easy;
    struct curl_slist  *hdrs;
    char               *body;           /* copy of opts->body */
    httpc_cb_t          cb;
    bool                lines;
    size_t              max_body;
    uint32_t            connect_ms, first_byte_ms, idle_ms, total_ms;
    char                method[HTTPC_METHOD_MAX + 1];
    char                host[HTTPC_HOST_MAX];
    int64_t             t_start;        /* zclock_mono() */
    int64_t             t_data;         /* last body bytes, 0: none yet */
    size_t              received;       /* body bytes so far */
    char               *buf;            /* collected body or partial line */
    size_t              len, cap;
    long                status;
    bool                status_sent;
    bool                added;          /* in the multi handle */
    bool                cancelled;      /* no on_done, free when possible */
    bool                finishing;      /* in on_done */
    int                 in_cb;          /* inside on_status / on_data */
    int                 abort_rc;       /* why our callback stopped curl */
    char                abort_err[HTTPC_ERR_MAX];
};

struct _httpc_t {
    zloop_t      *loop;
    CURLM        *multi;
    httpc_req_t  *reqs;
    httpc_sock_t *socks;
    size_t        nsocks, capsocks;
    int           curl_timer;           /* zloop timer id, -1: none */
    int           tick_timer;
    int           in_curl;              /* depth of curl calls */
    int           depth;                /* depth of our zloop handlers */
    bool          sweep;                /* cancelled requests to free */
    bool          dying;                /* destroy asked from a handler */
};

static void httpc_free_self(httpc_t *self);

/* ------------------------------------------------------------ global */

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_global_rc = CURLE_FAILED_INIT;

static void httpc_global_init(void)
{
    httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------ requests */

static void httpc_link(httpc_t *self, httpc_req_t *req)
{
    req->prev = NULL;
    req->next = self->reqs;
    if (self->reqs)
        self->reqs->prev = req;
    self->reqs = req;
}

static void httpc_unlink(httpc_t *self, httpc_req_t *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else if (self->reqs == req)
        self->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

/* Takes the request out of curl (outside curl's callbacks only). */
static void httpc_detach(httpc_t *self, httpc_req_t *req)
{
    if (req->added) {
        curl_multi_remove_handle(self->multi, req->easy);
        req->added = false;
    }
}

static void httpc_req_free(httpc_req_t *req)
{
    if (!req)
        return;
    if (req->easy)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->hdrs);
    free(req->body);
    free(req->buf);
    free(req);
}

/* Detaches, unlinks and frees a request without calling back. */
static void httpc_release(httpc_t *self, httpc_req_t *req)
{
    httpc_detach(self, req);
    httpc_unlink(self, req);
    httpc_req_free(req);
}

static bool httpc_has_timeouts(const httpc_req_t *req)
{
    return req->first_byte_ms || req->idle_ms || req->total_ms;
}

/* Appends to the request's buffer, keeping room for a NUL. */
static int httpc_buf_add(httpc_req_t *req, const char *data, size_t n)
{
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 1024;
        while (cap < req->len + n + 1)
            cap *= 2;
        char *nb = realloc(req->buf, cap);
        if (!nb)
            return SY_ENOMEM;
        req->buf = nb;
        req->cap = cap;
    }
    memcpy(req->buf + req->len, data, n);
    req->len += n;
    req->buf[req->len] = '\0';
    return 0;
}

static void httpc_abort(httpc_req_t *req, int rc, const char *err)
{
    if (req->abort_rc)
        return;
    req->abort_rc = rc;
    snprintf(req->abort_err, sizeof req->abort_err, "%s", err);
}

/* ------------------------------------------------------------ callbacks */

static void httpc_send_status(httpc_req_t *req)
{
    if (req->status_sent)
        return;
    req->status_sent = true;
    long code = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
    req->status = code;
    if (req->cb.on_status && !req->cancelled && !req->owner->dying) {
        req->in_cb++;
        req->cb.on_status(req, code, req->cb.arg);
        req->in_cb--;
    }
}

/* One piece (a chunk or a line) to on_data; false when the request must
   stop (cancelled, or on_data asked to). */
static bool httpc_deliver(httpc_req_t *req, const char *data, size_t len)
{
    if (req->cancelled || req->owner->dying || req->abort_rc)
        return false;
    req->in_cb++;
    int rc = req->cb.on_data(req, data, len, req->cb.arg);
    req->in_cb--;
    if (req->cancelled || req->owner->dying)
        return false;
    if (rc != 0) {
        httpc_abort(req, SY_ECLOSED, "stopped by the caller");
        return false;
    }
    return true;
}

static bool httpc_deliver_line(httpc_req_t *req, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return httpc_deliver(req, line, len);
}

static void httpc_too_large(httpc_req_t *req, const char *what)
{
    char err[HTTPC_ERR_MAX];
    snprintf(err, sizeof err, "%s over %zu bytes", what, req->max_body);
    httpc_abort(req, SY_ETOO_LARGE, err);
}

/* Splits data into lines; a line's start may wait in req->buf. */
static bool httpc_feed_lines(httpc_req_t *req, const char *data, size_t n)
{
    size_t off = 0;
    while (off < n) {
        const char *p = data + off;
        const char *nl = memchr(p, '\n', n - off);
        size_t seg = nl ? (size_t) (nl - p) : n - off;
        if (req->len + seg > req->max_body) {
            httpc_too_large(req, "line");
            return false;
        }
        if (!nl) {
            if (httpc_buf_add(req, p, seg) != 0) {
                httpc_abort(req, SY_ENOMEM, "out of memory");
                return false;
            }
            return true;
        }
        bool go;
        if (req->len == 0) {
            go = httpc_deliver_line(req, p, seg);
        }
        else {
            if (httpc_buf_add(req, p, seg) != 0) {
                httpc_abort(req, SY_ENOMEM, "out of memory");
                return false;
            }
            size_t whole = req->len;
            req->len = 0;   /* the bytes stay in buf during the call */
            go = httpc_deliver_line(req, req->buf, whole);
        }
        if (!go)
            return false;
        off += seg + 1;
    }
    return true;
}

static size_t httpc_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    httpc_req_t *req = ud;
    size_t n = size * nmemb;
    if (req->cancelled || req->abort_rc || req->owner->dying)
        return 0;
    httpc_send_status(req);
    if (req->cancelled || req->owner->dying)
        return 0;
    req->t_data = zclock_mono();
    req->received += n;
    if (req->lines)
        return httpc_feed_lines(req, data, n) ? n : 0;
    if (req->received > req->max_body) {
        httpc_too_large(req, "body");
        return 0;
    }
    if (!req->cb.on_data) {
        if (httpc_buf_add(req, data, n) != 0) {
            httpc_abort(req, SY_ENOMEM, "out of memory");
            return 0;
        }
        return n;
    }
    return httpc_deliver(req, data, n) ? n : 0;
}

/* Called for each header line; the empty line ends a response's headers
   (a 1xx interim response has its own, skipped). */
static size_t httpc_header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    httpc_req_t *req = ud;
    size_t n = size * nmemb;
    if (req->cancelled || req->owner->dying)
        return 0;
    bool blank = (n == 2 && data[0] == '\r' && data[1] == '\n') ||
                 (n == 1 && data[0] == '\n');
    if (blank && !req->status_sent) {
        long code = 0;
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200)
            httpc_send_status(req);
    }
    return (req->cancelled || req->owner->dying) ? 0 : n;
}

/* ------------------------------------------------------------ finishing */

static const char *httpc_phase(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "resolve";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return "tls";
    case CURLE_SEND_ERROR:
        return "send";
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return "receive";
    default:
        return "http";
    }
}

/* rc and err text for how curl ended a request we did not stop. */
static int httpc_curl_result(const httpc_req_t *req, CURLcode code,
                             char *err, size_t cap)
{
    err[0] = '\0';
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, cap, "connect timeout (%u ms)", req->connect_ms);
        return SY_ETIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        snprintf(err, cap, "body over %zu bytes", req->max_body);
        return SY_ETOO_LARGE;
    case CURLE_OUT_OF_MEMORY:
        snprintf(err, cap, "out of memory");
        return SY_ENOMEM;
    default:
        break;
    }
    long os = 0;
    char ebuf[128];
    const char *why = curl_easy_strerror(code);
    if (curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &os) == CURLE_OK &&
        os > 0)
        why = strerror_r((int) os, ebuf, sizeof ebuf);
    snprintf(err, cap, "%s %s: %s", httpc_phase(code), req->host, why);
    return SY_EIO;
}

/* Ends a request: detaches it, delivers a last unfinished line, calls
   on_done (unless cancelled meanwhile), frees it.  Outside curl only. */
static void httpc_finish(httpc_t *self, httpc_req_t *req, int rc,
                         const char *err)
{
    httpc_detach(self, req);
    if (rc == 0 && !req->status_sent)
        httpc_send_status(req);
    if (rc == 0 && req->lines && req->len > 0 && !req->cancelled) {
        size_t whole = req->len;
        req->len = 0;
        if (!httpc_deliver_line(req, req->buf, whole) && req->abort_rc) {
            rc = req->abort_rc;
            err = req->abort_err;
        }
    }
    long status = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    httpc_unlink(self, req);
    sylog_debug("httpc: %s %s: status %ld, %s, %zu bytes in %lld ms",
                req->method, req->host, status, rc ? syerr_name(rc) : "OK",
                req->received, (long long) (zclock_mono() - req->t_start));
    if (!req->cancelled && !self->dying) {
        bool collect = !req->cb.on_data;
        httpc_result_t res = {
            .rc = rc,
            .status = status,
            .err = rc && err ? err : "",
            .body = collect && rc == 0 && req->buf ? req->buf : "",
            .body_len = collect && rc == 0 ? req->len : 0,
        };
        req->finishing = true;
        req->cb.on_done(req, &res, req->cb.arg);
    }
    httpc_req_free(req);
}

static void httpc_finish_curl(httpc_t *self, httpc_req_t *req, CURLcode code)
{
    if (req->abort_rc) {
        httpc_finish(self, req, req->abort_rc, req->abort_err);
        return;
    }
    char err[HTTPC_ERR_MAX];
    int rc = httpc_curl_result(req, code, err, sizeof err);
    httpc_finish(self, req, rc, err);
}

/* ------------------------------------------------------------ driving */

/* After curl returned: frees cancelled requests, adds parked ones, and
   ends the ones curl finished. */
static void httpc_settle(httpc_t *self)
{
    if (self->sweep) {
        self->sweep = false;
        httpc_req_t *req = self->reqs;
        while (req) {
            httpc_req_t *next = req->next;
            if (req->cancelled && !req->finishing && req->in_cb == 0)
                httpc_release(self, req);
            req = next;
        }
    }
    bool again = true;
    while (again && !self->dying) {
        again = false;
        for (httpc_req_t *req = self->reqs; req; req = req->next) {
            if (req->added || req->cancelled || req->finishing)
                continue;
            if (curl_multi_add_handle(self->multi, req->easy) == CURLM_OK) {
                req->added = true;
                continue;
            }
            httpc_finish(self, req, SY_ENOMEM, "could not start the request");
            again = true;   /* on_done may have changed the list */
            break;
        }
    }
    CURLMsg *msg;
    int left = 0;
    while (!self->dying && (msg = curl_multi_info_read(self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        httpc_req_t *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
        CURLcode code = msg->data.result;
        if (!req)
            continue;
        if (req->cancelled)
            httpc_release(self, req);
        else
            httpc_finish_curl(self, req, code);
    }
}

static void httpc_drive(httpc_t *self, curl_socket_t fd, int flags)
{
    int running = 0;
    self->in_curl++;
    CURLMcode mc = curl_multi_socket_action(self->multi, fd, flags, &running);
    self->in_curl--;
    if (mc != CURLM_OK)
        sylog_warn("httpc: curl_multi_socket_action: %s",
                   curl_multi_strerror(mc));
    httpc_settle(self);
}

/* Every zloop handler of ours is bracketed by enter/leave, so that a
   destroy asked from inside one happens when it is over. */
static void httpc_enter(httpc_t *self)
{
    self->depth++;
}

static void httpc_leave(httpc_t *self)
{
    self->depth--;
    if (self->depth == 0 && self->dying)
        httpc_free_self(self);
}

static int httpc_on_socket(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    httpc_t *self = arg;
    int flags = 0;
    if (item->revents & ZMQ_POLLIN)
        flags |= CURL_CSELECT_IN;
    if (item->revents & ZMQ_POLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (item->revents & ZMQ_POLLERR)
        flags |= CURL_CSELECT_ERR;
    httpc_enter(self);
    if (!self->dying)
        httpc_drive(self, item->fd, flags);
    httpc_leave(self);
    return 0;
}

static int httpc_on_curl_timer(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    httpc_t *self = arg;
    if (id != self->curl_timer)
        return 0;               /* ended in this pass already */
    self->curl_timer = -1;      /* one-shot: zloop removes it */
    httpc_enter(self);
    if (!self->dying)
        httpc_drive(self, CURL_SOCKET_TIMEOUT, 0);
    httpc_leave(self);
    return 0;
}

static ssize_t httpc_sock_find(const httpc_t *self, curl_socket_t fd)
{
    for (size_t i = 0; i < self->nsocks; i++)
        if (self->socks[i].fd == fd)
            return (ssize_t) i;
    return -1;
}

static void httpc_sock_end(httpc_t *self, curl_socket_t fd)
{
    zmq_pollitem_t item = { NULL, fd, 0, 0 };
    zloop_poller_end(self->loop, &item);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or stop. */
static int httpc_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                           void *socketp)
{
    (void) easy;
    (void) socketp;
    httpc_t *self = userp;
    if (self->dying)
        return 0;
    ssize_t at = httpc_sock_find(self, fd);
    if (what == CURL_POLL_REMOVE) {
        if (at >= 0) {
            httpc_sock_end(self, fd);
            self->socks[at] = self->socks[--self->nsocks];
        }
        return 0;
    }
    short events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLOUT;
    if (at >= 0 && self->socks[at].events == events)
        return 0;
    if (at >= 0)
        httpc_sock_end(self, fd);
    else {
        if (self->nsocks == self->capsocks) {
            size_t cap = self->capsocks ? self->capsocks * 2 : 8;
            httpc_sock_t *ns = realloc(self->socks, cap * sizeof *ns);
            if (!ns)
                return -1;
            self->socks = ns;
            self->capsocks = cap;
        }
        at = (ssize_t) self->nsocks++;
        self->socks[at].fd = fd;
    }
    self->socks[at].events = events;
    zmq_pollitem_t item = { NULL, fd, events, 0 };
    if (zloop_poller(self->loop, &item, httpc_on_socket, self) != 0) {
        sylog_error("httpc: cannot watch a socket (zloop_poller failed)");
        self->socks[at] = self->socks[--self->nsocks];
        return -1;
    }
    /* errors are curl's to handle: zloop would drop the poller silently */
    zloop_poller_set_tolerant(self->loop, &item);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one one-shot zloop timer, replaced each time. */
static int httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void) multi;
    httpc_t *self = userp;
    if (self->dying)
        return 0;
    if (self->curl_timer >= 0) {
        zloop_timer_end(self->loop, self->curl_timer);
        self->curl_timer = -1;
    }
    if (timeout_ms < 0)
        return 0;
    int id = zloop_timer(self->loop, (size_t) timeout_ms, 1,
                         httpc_on_curl_timer, self);
    if (id < 0) {
        sylog_error("httpc: cannot arm a timer (zloop_timer failed)");
        return -1;
    }
    self->curl_timer = id;
    return 0;
}

/* ------------------------------------------------------------ own timeouts */

static bool httpc_expired(const httpc_req_t *req, int64_t now, char *err,
                          size_t cap)
{
    if (req->total_ms && now - req->t_start >= (int64_t) req->total_ms) {
        snprintf(err, cap, "total timeout (%u ms)", req->total_ms);
        return true;
    }
    if (req->t_data == 0 && req->first_byte_ms &&
        now - req->t_start >= (int64_t) req->first_byte_ms) {
        snprintf(err, cap, "first byte timeout (%u ms)", req->first_byte_ms);
        return true;
    }
    if (req->t_data != 0 && req->idle_ms &&
        now - req->t_data >= (int64_t) req->idle_ms) {
        snprintf(err, cap, "idle timeout (%u ms)", req->idle_ms);
        return true;
    }
    return false;
}

static int httpc_on_tick(zloop_t *loop, int id, void *arg);

static void httpc_arm_tick(httpc_t *self)
{
    if (self->tick_timer >= 0 || self->dying)
        return;
    for (httpc_req_t *req = self->reqs; req; req = req->next) {
        if (!req->cancelled && httpc_has_timeouts(req)) {
            self->tick_timer = zloop_timer(self->loop, HTTPC_TICK_MS, 1,
                                           httpc_on_tick, self);
            if (self->tick_timer < 0)
                sylog_error("httpc: cannot arm the timeout tick");
            return;
        }
    }
}

/* Ends every request past one of its timeouts (each on_done may change
   the list, so the scan starts over after each). */
static void httpc_check_timeouts(httpc_t *self)
{
    int64_t now = zclock_mono();
    bool again = true;
    while (again && !self->dying) {
        again = false;
        for (httpc_req_t *req = self->reqs; req; req = req->next) {
            char err[HTTPC_ERR_MAX];
            if (req->cancelled || req->finishing ||
                !httpc_expired(req, now, err, sizeof err))
                continue;
            httpc_finish(self, req, SY_ETIMEOUT, err);
            again = true;
            break;
        }
    }
}

static int httpc_on_tick(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    httpc_t *self = arg;
    if (id != self->tick_timer)
        return 0;
    self->tick_timer = -1;      /* one-shot: zloop removes it */
    httpc_enter(self);
    httpc_check_timeouts(self);
    httpc_arm_tick(self);
    httpc_leave(self);
    return 0;
}

/* ------------------------------------------------------------ public */

int httpc_new(zloop_t *loop, httpc_t **out)
{
    if (!out)
        return SY_EINVAL;
    *out = NULL;
    if (!loop)
        return SY_EINVAL;
    if (pthread_once(&httpc_once, httpc_global_init) != 0 ||
        httpc_global_rc != CURLE_OK) {
        sylog_error("httpc: curl_global_init failed");
        return SY_EINTERNAL;
    }
    httpc_t *self = calloc(1, sizeof *self);
    if (!self)
        return SY_ENOMEM;
    self->loop = loop;
    self->curl_timer = -1;
    self->tick_timer = -1;
    self->multi = curl_multi_init();
    if (!self->multi) {
        free(self);
        sylog_error("httpc: curl_multi_init failed");
        return SY_EINTERNAL;
    }
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb);
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    *out = self;
    return 0;
}

static void httpc_free_self(httpc_t *self)
{
    self->dying = true;         /* curl's callbacks from here on: ignored */
    while (self->reqs)
        httpc_release(self, self->reqs);
    if (self->curl_timer >= 0)
        zloop_timer_end(self->loop, self->curl_timer);
    if (self->tick_timer >= 0)
        zloop_timer_end(self->loop, self->tick_timer);
    curl_multi_cleanup(self->multi);
    for (size_t i = 0; i < self->nsocks; i++)
        httpc_sock_end(self, self->socks[i].fd);
    free(self->socks);
    free(self);
}

void httpc_destroy(httpc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    httpc_t *self = *self_p;
    *self_p = NULL;
    if (self->dying)
        return;
    self->dying = true;
    if (self->depth > 0) {
        sylog_warn("httpc: destroyed from inside its own callback; "
                   "destroy it after the loop instead");
        return;                 /* httpc_leave() frees it */
    }
    httpc_free_self(self);
}

static bool httpc_method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > HTTPC_METHOD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}

/* Checks the URL is http(s) with a host and copies the host out. */
static int httpc_url_host(const char *url, char *host, size_t cap)
{
    CURLU *u = curl_url();
    if (!u)
        return SY_ENOMEM;
    char *scheme = NULL, *h = NULL;
    int rc = SY_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        h[0] != '\0') {
        snprintf(host, cap, "%s", h);
        rc = 0;
    }
    curl_free(scheme);
    curl_free(h);
    curl_url_cleanup(u);
    return rc;
}

static bool httpc_header_ok(const char *h)
{
    return strchr(h, ':') && !strpbrk(h, "\r\n");
}

/* Header list; "Expect:" turns off curl's 100-continue wait for larger
   bodies unless the caller gave an Expect header of its own. */
static int httpc_headers(httpc_req_t *req, const char *const *headers,
                         bool has_body)
{
    bool expect = false;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (!httpc_header_ok(headers[i]))
            return SY_EINVAL;
        if (strncasecmp(headers[i], "Expect:", 7) == 0)
            expect = true;
        struct curl_slist *l = curl_slist_append(req->hdrs, headers[i]);
        if (!l)
            return SY_ENOMEM;
        req->hdrs = l;
    }
    if (has_body && !expect) {
        struct curl_slist *l = curl_slist_append(req->hdrs, "Expect:");
        if (!l)
            return SY_ENOMEM;
        req->hdrs = l;
    }
    return 0;
}

static int httpc_method(httpc_req_t *req, const httpc_opts_t *opts)
{
    CURL *e = req->easy;
    CURLcode c = CURLE_OK;
    const char *m = req->method;
    if (opts->body) {
        req->body = malloc(opts->body_len ? opts->body_len : 1);
        if (!req->body)
            return SY_ENOMEM;
        memcpy(req->body, opts->body, opts->body_len);
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t) opts->body_len);
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
        if (strcmp(m, "POST") != 0)
            c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    else if (strcmp(m, "GET") == 0)
        c |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(m, "HEAD") == 0)
        c |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(m, "POST") == 0) {
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
        c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    else
        c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    return c == CURLE_OK ? 0 : SY_EINVAL;
}

static int httpc_setup(httpc_req_t *req, const httpc_opts_t *opts)
{
    CURL *e = req->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, opts->url) != CURLE_OK)
        return SY_EINVAL;
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *) req);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_write_cb);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, httpc_header_cb);
    c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) req->connect_ms);
    c |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* A laptop's http_proxy is for the internet: a backend on this
       machine (Ollama on 127.0.0.1) is never reached through it. */
    c |= curl_easy_setopt(e, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    if (!req->lines)
        c |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                              (curl_off_t) req->max_body);
    if (c != CURLE_OK)
        return SY_EINTERNAL;
    int rc = httpc_headers(req, opts->headers, opts->body != NULL);
    if (rc != 0)
        return rc;
    if (req->hdrs && curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->hdrs) !=
                     CURLE_OK)
        return SY_EINTERNAL;
    return httpc_method(req, opts);
}

int httpc_start(httpc_t *self, const httpc_opts_t *opts, const httpc_cb_t *cb,
                httpc_req_t **req_out)
{
    if (req_out)
        *req_out = NULL;
    if (!self || self->dying || !opts || !cb || !cb->on_done || !opts->url ||
        (!opts->body && opts->body_len))
        return SY_EINVAL;
    const char *m = opts->method ? opts->method : opts->body ? "POST" : "GET";
    if (!httpc_method_ok(m))
        return SY_EINVAL;
    httpc_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return SY_ENOMEM;
    req->owner = self;
    req->cb = *cb;
    req->lines = opts->lines && cb->on_data;
    req->max_body = opts->max_body ? opts->max_body : HTTPC_MAX_BODY_DEFAULT;
    req->connect_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
                                               : HTTPC_CONNECT_DEFAULT_MS;
    req->first_byte_ms = opts->first_byte_timeout_ms;
    req->idle_ms = opts->idle_timeout_ms;
    req->total_ms = opts->total_timeout_ms;
    snprintf(req->method, sizeof req->method, "%s", m);
    int rc = httpc_url_host(opts->url, req->host, sizeof req->host);
    if (rc == 0) {
        req->easy = curl_easy_init();
        rc = req->easy ? httpc_setup(req, opts) : SY_ENOMEM;
    }
    if (rc == 0 && self->in_curl == 0) {
        CURLMcode mc = curl_multi_add_handle(self->multi, req->easy);
        if (mc == CURLM_OK)
            req->added = true;
        else
            rc = mc == CURLM_OUT_OF_MEMORY ? SY_ENOMEM : SY_EINTERNAL;
    }
    if (rc != 0) {
        httpc_req_free(req);
        return rc;
    }
    /* else parked: httpc_settle() adds it once curl has returned */
    req->t_start = zclock_mono();
    httpc_link(self, req);
    httpc_arm_tick(self);
    if (req_out)
        *req_out = req;
    return 0;
}

void httpc_cancel(httpc_t *self, httpc_req_t **req_p)
{
    if (!req_p || !*req_p)
        return;
    httpc_req_t *req = *req_p;
    *req_p = NULL;
    if (!self || req->owner != self || req->cancelled || req->finishing)
        return;
    req->cancelled = true;
    if (self->in_curl > 0 || req->in_cb > 0) {
        self->sweep = true;     /* curl is running: freed once it returns */
        return;
    }
    httpc_release(self, req);
}

size_t httpc_running(const httpc_t *self)
{
    size_t n = 0;
    for (const httpc_req_t *req = self ? self->reqs : NULL; req; req = req->next)
        if (!req->cancelled)
            n++;
    return n;
}
