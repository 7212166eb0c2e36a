/*  syctl_telegram.h -- `syctl telegram`, the operator's side of the
 *  Telegram bridge's pairing (docs/TELEGRAM.md).
 *
 *      syctl telegram approve CODE    allow the chat that was given CODE
 *      syctl telegram deny CODE       refuse it (told once, then ignored)
 *      syctl telegram ls              pending, allowed and denied chats
 *      ... [--bridge NAME]            the bridge's service (default
 *                                     "telegram", telegram/name's default)
 *
 *  CODE may also be a chat id, to allow or deny a chat decided before
 *  (e.g. revoke an allowed chat with deny CHAT_ID).
 *
 *  It sends telegram.approve {code, deny?} or telegram.list to the
 *  bridge's service and waits for the telegram.answer whose corr is the
 *  request's id, printing its text (or, with json, the answer's body as
 *  one JSON line).
 *
 *  Exit codes: 0 done, 1 refused (no such code, expired, store error),
 *  2 usage, 3 no answer ("the telegram bridge is not running").
 *
 *  Ownership: the actor is the caller's, connected already; this call
 *  installs its own handlers for telegram.answer and sy.receipt on it and
 *  runs its loop (actor_run_for) for at most timeout_ms.
 */
#ifndef SYCTL_TELEGRAM_H
#define SYCTL_TELEGRAM_H

#include <stdbool.h>

#include "../actors/actor.h"

/* argv: the words after "telegram" (argc of them). */
int syctl_telegram_run(actor_t *actor, int argc, char **argv, bool json,
                       int timeout_ms);

#endif
