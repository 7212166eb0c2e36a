/*  sylog.h -- the one logging module.
 *
 *  Every line any switchyard process writes about itself goes through
 *  here: one line per event, to stderr (or a file), as
 *      2026-11-21T19:40:00.123Z sy-broker[1234] INFO  actor echo-1 joined
 *  Levels: debug, info, warn, error.  Below the configured level a call
 *  costs one comparison.
 *
 *  Secrets: never pass a secret (secret key, token, message body) to these
 *  functions.  sylog_redact() exists for the places where a value that may
 *  contain one (a URL with a token in its path) has to be shown.
 *
 *  State: the level, the program name and the output stream are the one
 *  piece of process-wide state in the project, set once from main() by
 *  sylog_open() before any thread starts.  Before sylog_open() lines go to
 *  stderr at level info under the name "switchyard".
 *
 *  One call is one line, handed to the kernel in a single write() on a file
 *  opened O_APPEND, so processes sharing a log file never interleave within
 *  a line.  Control characters in the message (newlines) become spaces; a
 *  message longer than about 4 KiB is cut and ends in "...".
 */
#ifndef SYLOG_H
#define SYLOG_H

#include <stddef.h>

typedef enum { SYLOG_DEBUG = 0, SYLOG_INFO, SYLOG_WARN, SYLOG_ERROR } sylog_level_t;

/* Sets the program name shown on each line and the level.  path == NULL or
   "" or "-" logs to stderr; otherwise lines are appended to that file.
   Returns 0 or SY_EIO. */
int sylog_open(const char *prog, sylog_level_t level, const char *path);

/* Parses "debug" / "info" / "warn" / "error".  Returns 0 or SY_EINVAL. */
int sylog_level_parse(const char *s, sylog_level_t *out);

void sylog_set_level(sylog_level_t level);
sylog_level_t sylog_get_level(void);

void sylog_write(sylog_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define sylog_debug(...) sylog_write(SYLOG_DEBUG, __VA_ARGS__)
#define sylog_info(...)  sylog_write(SYLOG_INFO,  __VA_ARGS__)
#define sylog_warn(...)  sylog_write(SYLOG_WARN,  __VA_ARGS__)
#define sylog_error(...) sylog_write(SYLOG_ERROR, __VA_ARGS__)

/* Copies s into out (capacity cap, NUL-terminated) with every run of
   characters after a "bot" path segment or a "token=" / "key=" parameter
   replaced by "***".  For showing URLs.  Precisely: in "/bot<secret>" the
   secret runs to the next '/', '?', '#' or space; a parameter whose name
   ends in "token" or "key" (any case: token=, access_token=, api_key=)
   has its value hidden up to the next '&', ';', '#' or space.  Output that
   does not fit is cut (still NUL-terminated). */
void sylog_redact(const char *s, char *out, size_t cap);

/* Closes a log file opened by sylog_open (stderr is left alone). */
void sylog_close(void);

#endif
