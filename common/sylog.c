/*  sylog.c -- the one logging module (see sylog.h).
 *
 *  Ideas:
 *  - Each call formats its whole line (time, program[pid], level, message,
 *    newline) into one stack buffer and hands it to the kernel with a single
 *    write().  The file is opened O_APPEND, so several processes sharing one
 *    log file never interleave inside a line: the kernel appends each write
 *    as a unit.  A message longer than the buffer is cut and marked "...".
 *  - A message never spans lines: a newline or other control character in
 *    the formatted message becomes a space, so a hostile string cannot forge
 *    a log line.
 *  - The pid is read at each call, so a child after fork() shows its own.
 *  - The state below is the project's single documented piece of global
 *    state: set from main() by sylog_open() before threads start, read-only
 *    afterwards (sylog_set_level is a plain int store).
 */
#include "common/sylog.h"
#include "schemas/syerr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SYLOG_LINE_MAX 4096

static struct {
    sylog_level_t level;
    char prog[48];
    int fd;          /* 2 (stderr) or a file we opened */
} sylog_state = { SYLOG_INFO, "switchyard", 2 };

static const char *const sylog_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

int sylog_open(const char *prog, sylog_level_t level, const char *path)
{
    sylog_close();
    if (prog && *prog) {
        const char *slash = strrchr(prog, '/');   /* argv[0] -> its basename */
        snprintf(sylog_state.prog, sizeof sylog_state.prog, "%s",
                 slash ? slash + 1 : prog);
    }
    sylog_set_level(level);
    if (path == NULL || *path == '\0' || strcmp(path, "-") == 0)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        sylog_error("cannot open log file %s: %s", path, strerror(errno));
        return SY_EIO;
    }
    sylog_state.fd = fd;
    return 0;
}

int sylog_level_parse(const char *s, sylog_level_t *out)
{
    static const char *const words[] = { "debug", "info", "warn", "error" };
    if (s == NULL || out == NULL)
        return SY_EINVAL;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, words[i]) == 0) {
            *out = (sylog_level_t) i;
            return 0;
        }
    }
    return SY_EINVAL;
}

void sylog_set_level(sylog_level_t level)
{
    if ((int) level < SYLOG_DEBUG)
        level = SYLOG_DEBUG;
    if (level > SYLOG_ERROR)
        level = SYLOG_ERROR;
    sylog_state.level = level;
}

sylog_level_t sylog_get_level(void)
{
    return sylog_state.level;
}

/* Writes "2026-11-21T19:40:00.123Z" into buf; returns its length. */
static size_t sylog_timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    return n < 0 ? 0 : (size_t) n < cap ? (size_t) n : cap - 1;
}

/* Hands the finished line to the kernel in one write; retries only what an
   interrupted or short write left (which a regular O_APPEND file never
   does). */
static void sylog_emit(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(sylog_state.fd, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;   /* nowhere left to report a logging failure */
        line += n;
        len -= (size_t) n;
    }
}

void sylog_write(sylog_level_t level, const char *fmt, ...)
{
    if (level < sylog_state.level || fmt == NULL)
        return;
    if ((int) level < SYLOG_DEBUG || level > SYLOG_ERROR)
        level = SYLOG_ERROR;

    char line[SYLOG_LINE_MAX];
    size_t len = sylog_timestamp(line, sizeof line);
    int n = snprintf(line + len, sizeof line - len, " %s[%ld] %-5s ",
                     sylog_state.prog, (long) getpid(), sylog_names[level]);
    if (n < 0)
        return;
    len += (size_t) n;

    size_t room = sizeof line - len - 1;          /* keep 1 for the newline */
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + len, room + 1, fmt, ap);  /* +1: its NUL */
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t msg = (size_t) n;
    if (msg > room) {                              /* cut: mark it */
        msg = room;
        memcpy(line + len + msg - 3, "...", 3);
    }
    for (size_t i = len; i < len + msg; i++) {
        unsigned char c = (unsigned char) line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = ' ';
    }
    len += msg;
    line[len++] = '\n';
    sylog_emit(line, len);
}

/* -------------------------------------------------------------- redaction */

/* True if the parameter name that ends just before s[i] (the '=') ends in
   "token" or "key", case-insensitively: token=, access_token=, key=,
   api_key=, apikey= all hide their value. */
static int sylog_secret_param(const char *s, size_t eq)
{
    size_t start = eq;
    while (start > 0 && s[start - 1] != '?' && s[start - 1] != '&'
           && s[start - 1] != ';' && s[start - 1] != '/' && s[start - 1] != ' ')
        start--;
    size_t len = eq - start;
    return (len >= 5 && strncasecmp(s + eq - 5, "token", 5) == 0)
        || (len >= 3 && strncasecmp(s + eq - 3, "key", 3) == 0);
}

/* Index of the end of the secret starting at s[i]: the next character that
   ends a path segment or parameter. */
static size_t sylog_secret_end(const char *s, size_t i, const char *stops)
{
    while (s[i] && !strchr(stops, s[i]))
        i++;
    return i;
}

void sylog_redact(const char *s, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    size_t o = 0;
    if (s == NULL)
        s = "";
#define SYLOG_PUT(ch) do { if (o + 1 < cap) out[o++] = (ch); } while (0)
    size_t i = 0;
    while (s[i]) {
        size_t skip_to = 0;
        if (s[i] == '/' && strncmp(s + i + 1, "bot", 3) == 0
            && s[i + 4] && !strchr("/?#", s[i + 4])) {
            /* "/bot<token>": Telegram puts the bot token in the path */
            for (int k = 0; k < 4; k++)
                SYLOG_PUT(s[i + k]);
            skip_to = sylog_secret_end(s, i + 4, "/?# ");
        }
        else if (s[i] == '=' && sylog_secret_param(s, i)) {
            SYLOG_PUT('=');
            skip_to = sylog_secret_end(s, i + 1, "&#; ");
            if (skip_to == i + 1) {          /* empty value: nothing to hide */
                i++;
                continue;
            }
        }
        if (skip_to) {
            SYLOG_PUT('*'); SYLOG_PUT('*'); SYLOG_PUT('*');
            i = skip_to;
            continue;
        }
        SYLOG_PUT(s[i]);
        i++;
    }
#undef SYLOG_PUT
    out[o] = '\0';
}

void sylog_close(void)
{
    if (sylog_state.fd > 2)
        close(sylog_state.fd);
    sylog_state.fd = 2;
}
