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
 *  "64K", "16M", "1G"), returned in bytes; booleans (true/false/yes/no/1/0).
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
   table does not declare is a programming error: it aborts. */
const char *config_str(const config_t *self, const char *path);
int64_t     config_int(const config_t *self, const char *path);  /* ints, durations (ms), sizes (bytes) */
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

#endif
