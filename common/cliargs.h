/*  cliargs.h -- the command line of every actor binary.
 *
 *  Actors take a few "--flag VALUE" (or "--flag=VALUE") options that
 *  override settings of the configuration file.  Each binary lists its
 *  flags with the offset of a `const char *` member in its own argument
 *  struct; cliargs_parse() fills those members with pointers into argv,
 *  so a flag not given stays NULL ("take the configuration's value").
 *
 *  Ownership: nothing is allocated; the values point into argv.
 */
#ifndef CLIARGS_H
#define CLIARGS_H

#include <stddef.h>

typedef struct {
    const char *flag;           /* "--config" */
    size_t      off;            /* offsetof(ARGS, member), a const char * */
} cliargs_flag_t;

#define CLIARGS_HELP 1

/* Parses argv[1..argc) into out.  Returns 0, CLIARGS_HELP when --help
   or -h was given (the caller prints its usage), or -1 after printing
   "PROG: unknown argument ..." / "PROG: --flag needs a value" (an empty
   value counts as none) to stderr. */
int cliargs_parse(const char *prog, int argc, char **argv,
                  const cliargs_flag_t *flags, size_t nflags, void *out);

#endif
