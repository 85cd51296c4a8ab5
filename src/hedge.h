/* hedge: a second attempt of a slow idempotent request (SPEC 15).  An
 * attempt that has no answer hedge_after ms after it got its slot (or the
 * upstream's rolling p95) gets a twin: a fetch of its own, through the
 * same FIFO limits, drawing on the retry budget.  The first answer wins;
 * the other attempt is cancelled (its stream reset, or its connection
 * closed).  Owns the twin, its outcome and the timer; the request it
 * hedges owns the hedge (fetch.hedge). */
#ifndef FANOUTD_HEDGE_H
#define FANOUTD_HEDGE_H

#include <stdbool.h>

struct fetch;

/* f's attempt began: hedge it if it has no answer in time. */
void hedge_arm(struct fetch *f);

/* A twin is under way for f. */
bool hedge_running(const struct fetch *f);

/* f's attempt ended (or f is aborted): its twin, if any, is cancelled and
 * the hedge freed.  Nothing if f has none. */
void hedge_cancel(struct fetch *f);

#endif
