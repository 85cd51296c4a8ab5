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
struct hedge;

/* f's attempt began: hedge it if it has no answer in time. */
void hedge_arm(struct fetch *f);

/* A twin got its slots and goes out now: the hedge is sent (counted,
 * and its request marked "hedged"). */
void hedge_began(struct fetch *twin);

/* A twin is under way for f (queued or sent). */
bool hedge_running(const struct fetch *f);

/* f's attempt ended (or f is aborted): take its hedge off it (NULL if it
 * has none), to hand to hedge_drop() once f is done with. */
struct hedge *hedge_detach(struct fetch *f);

/* Cancel a detached hedge's twin, if it is under way (its stream reset,
 * its connection closed: that hands back slots, which may run other
 * requests), and free the hedge on the next turn of the loop.  NULL:
 * nothing. */
void hedge_drop(struct hedge *h);

#endif
