/*  syctl_chat.h -- `syctl chat` and `syctl route` (docs/CHAT.md).
 *
 *  syctl chat is the chat client for tailnet devices.  It connects as
 *  the other syctl commands do (configuration, --cert, --endpoint) and
 *  talks to the service `frontdoor`:
 *    - sends chat.message {text} (not durable) for each line typed, or
 *      once with --once;
 *    - shows what comes back: chat.token pieces as they stream (only in
 *      interactive mode with stdout on a terminal; a piece with reset, a
 *      new attempt, or a `retry` notice marks the partial answer void),
 *      chat.notice on a line of its own as "* text", chat.reply as the
 *      final answer ("error CODE: text" for an error reply);
 *    - on every reconnect (and, interactively, at the first connect)
 *      sends chat.sync {after: the last outbox seq shown}, and again when
 *      a front door joins (it subscribes to presence.join), and shows
 *      each seq once;
 *    - a NO_SERVICE receipt for a message says "the front door is not
 *      available".
 *  Interactive mode reads stdin through the actor's zloop (a poller on
 *  fd 0): the loop never blocks on the keyboard, so heartbeats and
 *  streamed pieces go on while the user types.  EOF (Ctrl-D) ends it.
 *
 *  --once sends one message (the arguments, else all of stdin), prints
 *  the final answer's text on stdout, notices on stderr, and returns 0;
 *  an error reply, a refusal, no broker or no answer within the timeout
 *  return 1 with the error on stderr.  The final answer is the first
 *  chat.reply after the message.  For a /command that reply is the
 *  command's answer whatever error it carries (/cancel's is the job's
 *  CANCELLED reply): its text goes to stdout and the exit is 0, unless the
 *  message itself was refused (TOO_LONG, BAD_INPUT, RATE_LIMITED).
 *
 *  Text coming from the broker is printed with control characters other
 *  than newline and tab replaced by '?', so an answer cannot drive the
 *  terminal.
 *
 *  syctl route classifies a text with the router's rules
 *  (actors/rules.h) and the configuration syctl loaded, without a broker.
 *
 *  Ownership: nothing is kept after the calls return.
 */
#ifndef SYCTL_CHAT_H
#define SYCTL_CHAT_H

#include <stdbool.h>

#include "../common/config.h"

typedef struct {
    bool        once;
    const char *text;       /* the arguments joined, or NULL */
    const char *name;       /* --name (plaintext only), or NULL: syctl-<pid> */
    const char *endpoint;   /* --endpoint or NULL */
    const char *cert;       /* --cert or NULL */
    int         timeout_ms; /* --timeout, or <= 0: --once waits at most
                               chat/timeout in all; interactive mode waits
                               syctl/timeout for the first connect */
} syctl_chat_opts_t;

/* Runs syctl chat.  Returns syctl's exit code: 0, 1 (error reply, no
   front door, no broker, timeout), 2 (usage, e.g. an empty or too long
   text) or 4 (configuration). */
int syctl_chat_run(const syctl_chat_opts_t *o, const config_t *cfg);

/* Runs syctl route TEXT [--attach KIND] [--json]: prints
   "CLASS  why" (or {"class","why","service"} as JSON).  Returns 0, or 4
   when the rules in cfg are invalid. */
int syctl_chat_route(const config_t *cfg, const char *text,
                     const char *attach, bool json);

#endif
