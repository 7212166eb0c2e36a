/*  config.h -- the one configuration file, read with CZMQ's zconfig.
 *
 *  Every setting any binary reads is declared in the table in config.c
 *  with its path ("broker/heartbeat"), kind, default, range and a line of
 *  documentation.  Loading checks the whole file against that table, so a
 *  typo or a bad value is reported up front, naming the file, the line and
 *  the setting, e.g.
 *      etc/switchyard.cfg:12: broker/heartbeat: "fast" is not a duration
 *  A setting absent from the file has its default, so no file at all is a
 *  valid configuration.
 *
 *  Kinds: strings; integers; durations ("250ms", "5s", "10m", "24h", "2d";
 *  a bare number is milliseconds), returned in milliseconds; sizes ("512",
 *  "64K", "16M", "1G"), returned in bytes; booleans (true/false, yes/no,
 *  on/off, 1/0).
 *
 *  Sizes take K, M, G or T (binary: 1K = 1024; either case, an optional
 *  trailing "B" or "iB" is allowed).  Enums are one word from a fixed list;
 *  endpoints are tcp://... or ipc://... (a comma-separated list where the
 *  table says "endpoints").
 *
 *  Per-service overrides: the table may declare pattern settings such as
 *  service/NAME/lease (written with a star for NAME in the table), where
 *  NAME stands for any one service name, so a file may say
 *      service
 *          inference
 *              lease = 10m
 *  Fallback rule: config_int(cfg, "service/inference/lease") returns the
 *  file's override when there is one, otherwise the value of the setting
 *  the pattern names as its fallback (here "store/lease", itself from the
 *  file or its default).  Any service name may be asked for.
 *
 *  Strictness: a setting the table does not declare is an error (with "did
 *  you mean" when one is close), as are a value of the wrong kind, out of
 *  its range, set twice, a section given a value, and cross-field rules
 *  (broker/liveness >= 2 x broker/heartbeat, *_min <= *_max pairs).  The
 *  first error found is reported.  Values holding '#' must be quoted.
 *
 *  Ownership: config_load() returns a config_t the caller destroys; strings
 *  returned by config_str() belong to it.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct _config_t config_t;

/* Loads path (NULL: defaults only) and validates it against the table.
   Returns 0 with *out set, or SY_ECONFIG / SY_EIO with a message in err
   naming file, line and setting. */
int config_load(const char *path, config_t **out, char *err, size_t errlen);

void config_destroy(config_t **self_p);

/* The value of a setting declared in the table.  Asking for a path the
   table does not declare, or config_int/config_bool of a setting of
   another kind, is a programming error: it aborts.  config_str works on
   every kind and returns the value as written (or the default's text). */
const char *config_str(const config_t *self, const char *path);
int64_t     config_int(const config_t *self, const char *path);  /* ints, durations (ms), sizes (bytes), enums (index in the list) */
bool        config_bool(const config_t *self, const char *path);

/* Where the values came from: the path given to config_load, or
   "(defaults)". */
const char *config_source(const config_t *self);

/* Finds the configuration file the way every binary does: the --config
   argument if given, else $SWITCHYARD_CONFIG, else ./etc/switchyard.cfg if
   it exists, else NULL (defaults).  Returns a static or argv string. */
const char *config_pick_path(const char *from_argv);

/* Prints every setting with its default and doc line (for `--help-config`
   and docs/CONFIG.md). */
void config_print_table(FILE *f, bool markdown);

/* The parsers config_load uses, for command-line values (syctl --timeout):
   each returns 0 with *out set, or SY_EINVAL for text that is not one. */
int config_parse_duration(const char *s, int64_t *ms_out);
int config_parse_size(const char *s, int64_t *bytes_out);
int config_parse_bool(const char *s, bool *out);

#endif
