/*  benchllm.c -- sy-bench-llm, an LLM backend that answers at once.
 *
 *  The chat benchmark measures what the actors and the broker add to a
 *  question's round trip, so the backend must cost next to nothing: this
 *  is a single-threaded poll() HTTP/1.1 server on 127.0.0.1 that answers
 *  GET /api/tags with one model and POST /api/chat with Ollama's
 *  streaming shape (one content line, then the done line), keep-alive,
 *  no parsing beyond the request line and Content-Length.  The Python
 *  fake under tests/fakes is the faithful one; this one is only fast.
 *
 *  Usage: sy-bench-llm PORT_FILE   (binds port 0, writes the port there)
 *  Runs until SIGTERM / SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LLM_MAX_CONNS 64
#define LLM_BUF       (64 * 1024)

typedef struct {
    int    fd;
    size_t len;
    char   buf[LLM_BUF];
} llm_conn_t;

static volatile sig_atomic_t llm_stop;

static void llm_on_signal(int sig)
{
    (void) sig;
    llm_stop = 1;
}

static int llm_listen(const char *port_file)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) != 0
        || listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *) &a, &alen) != 0) {
        perror("sy-bench-llm: listen");
        return -1;
    }
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0
        || rename(tmp, port_file) != 0) {
        perror("sy-bench-llm: port file");
        return -1;
    }
    return fd;
}

static int llm_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* One write per response: a head and a body in two segments would meet
   Nagle's algorithm and the client's delayed ACK (40 ms a request). */
static int llm_respond(int fd, const char *ctype, const char *body)
{
    char out[2048];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s", ctype, strlen(body), body);
    if (n < 0 || (size_t) n >= sizeof out)
        return -1;
    return llm_write_all(fd, out, (size_t) n);
}

static const char llm_tags[] =
    "{\"models\":[{\"name\":\"llama3.2:latest\",\"model\":\"llama3.2:latest\"}]}";
static const char llm_chat[] =
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
    "\"content\":\"ok\"},\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\","
    "\"total_duration\":1000,\"load_duration\":0,\"prompt_eval_count\":1,"
    "\"prompt_eval_duration\":1,\"eval_count\":1,\"eval_duration\":1}\n";

/* The Content-Length of the request head buf..end, 0 if none. */
static size_t llm_content_length(const char *buf, const char *end)
{
    for (const char *p = strstr(buf, "\r\n"); p && p < end; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            return strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* Answers every complete request in c's buffer.  Returns -1 to close. */
static int llm_serve(llm_conn_t *c)
{
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return c->len + 1 >= sizeof c->buf ? -1 : 0;
        size_t head = (size_t) (end - c->buf) + 4;
        size_t body = llm_content_length(c->buf, end);
        if (head + body > sizeof c->buf - 1)
            return -1;
        if (c->len < head + body)
            return 0;
        int rc = strncmp(c->buf, "GET /api/tags", 13) == 0
                     ? llm_respond(c->fd, "application/json", llm_tags)
               : strncmp(c->buf, "POST /api/chat", 14) == 0
                     ? llm_respond(c->fd, "application/x-ndjson", llm_chat)
                     : llm_write_all(c->fd, "HTTP/1.1 404 Not Found\r\n"
                                     "Content-Length: 0\r\n\r\n", 45);
        if (rc != 0)
            return -1;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sy-bench-llm PORT_FILE\n");
        return 2;
    }
    signal(SIGTERM, llm_on_signal);
    signal(SIGINT, llm_on_signal);
    signal(SIGPIPE, SIG_IGN);
    int lfd = llm_listen(argv[1]);
    if (lfd < 0)
        return 1;
    static llm_conn_t conns[LLM_MAX_CONNS];
    struct pollfd pfd[LLM_MAX_CONNS + 1];
    size_t n = 0;
    while (!llm_stop) {
        pfd[0] = (struct pollfd) { .fd = lfd, .events = POLLIN };
        for (size_t i = 0; i < n; i++)
            pfd[i + 1] = (struct pollfd) { .fd = conns[i].fd, .events = POLLIN };
        if (poll(pfd, n + 1, 500) < 0)
            continue;
        for (size_t i = n; i-- > 0;) {
            if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            llm_conn_t *c = &conns[i];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r > 0)
                c->len += (size_t) r;
            if (r <= 0 || llm_serve(c) != 0) {
                close(c->fd);
                conns[i].fd = conns[n - 1].fd;
                conns[i].len = conns[n - 1].len;
                memcpy(conns[i].buf, conns[n - 1].buf, conns[n - 1].len);
                n--;
            }
        }
        if ((pfd[0].revents & POLLIN) && n < LLM_MAX_CONNS) {
            int fd = accept(lfd, NULL, NULL);
            int one = 1;
            if (fd >= 0)
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (fd >= 0)
                conns[n++] = (llm_conn_t) { .fd = fd, .len = 0 };
        }
    }
    for (size_t i = 0; i < n; i++)
        close(conns[i].fd);
    close(lfd);
    return 0;
}
