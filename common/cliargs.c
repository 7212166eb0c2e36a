/*  cliargs.c -- the command line of every actor binary (see cliargs.h).
 *
 *  One parser instead of one per binary: the rules (both "--flag value"
 *  and "--flag=value", a prefix is not a flag, an empty value is refused)
 *  are then the same everywhere.
 */
#include "common/cliargs.h"

#include <stdio.h>
#include <string.h>

/* The flag arg names, or NULL; *inline_val is the text after '=' if any. */
static const cliargs_flag_t *cliargs_find(const char *arg,
                                          const cliargs_flag_t *flags,
                                          size_t nflags, const char **inline_val)
{
    for (size_t f = 0; f < nflags; f++) {
        size_t n = strlen(flags[f].flag);
        if (strncmp(arg, flags[f].flag, n) != 0 || (arg[n] && arg[n] != '='))
            continue;
        *inline_val = arg[n] == '=' ? arg + n + 1 : NULL;
        return &flags[f];
    }
    return NULL;
}

int cliargs_parse(const char *prog, int argc, char **argv,
                  const cliargs_flag_t *flags, size_t nflags, void *out)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CLIARGS_HELP;
        const char *val = NULL;
        const cliargs_flag_t *f = cliargs_find(arg, flags, nflags, &val);
        if (!f) {
            fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", prog, arg);
            return -1;
        }
        if (!val && i + 1 < argc)
            val = argv[++i];
        if (!val || !*val) {
            fprintf(stderr, "%s: %s needs a value\n", prog, f->flag);
            return -1;
        }
        *(const char **) ((char *) out + f->off) = val;
    }
    return 0;
}
