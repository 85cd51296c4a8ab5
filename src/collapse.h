/* collapse: identical GET and HEAD requests to one upstream joined into
 * one upstream request (SPEC 15, collapse = yes).  A flight is that one
 * request: a fetch of its own with a copy of the request, under the
 * upstream's request_timeout and retry settings, taking the slots one
 * request takes.  The batches' fetches that asked for it wait on it
 * (FETCH_JOINED) and each gets its answer, the body shared, not copied.
 * A waiter that leaves (its deadline, its batch failing fast or going
 * away) leaves the flight going for the others; the last one to leave
 * aborts it at the upstream.  The upstream owns its table of flights
 * (upstream.flights); each flight owns its fetch, request and outcome. */
#ifndef FANOUTD_COLLAPSE_H
#define FANOUTD_COLLAPSE_H

#include <stdbool.h>

struct collapse_table;
struct fetch;
struct flight;

/* Is a request identical to f's in flight (f would join it)? */
bool collapse_in_flight(const struct fetch *f);

/* f (FETCH_JOINED, a collapsible request) joins the flight of its
 * identity, or starts one if there is none: true then (f's request is
 * the one sent for all; it may be answered before this returns). */
bool collapse_join(struct fetch *f);

/* f leaves its flight (f->flight) and gets no answer from it.  Returns
 * the flight when f was its last waiter: the caller hands it to
 * collapse_abandon() once f is done (aborting it hands back slots, which
 * may run other requests), else NULL. */
struct flight *collapse_leave(struct fetch *f);

/* Abort a flight nobody waits for any more (its request is cancelled at
 * the upstream); it is freed on the next turn of the loop.  NULL: none. */
void collapse_abandon(struct flight *fl);

/* Where the flight f waits on is: "queued", "connect", …, "response". */
const char *collapse_phase(const struct fetch *f);

/* Free an upstream's table (it has no flight left: each holds the
 * upstream); NULL is fine. */
void collapse_table_free(struct collapse_table *t);

#endif
