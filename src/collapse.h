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

struct collapse_table;
struct fetch;

/* f (FETCH_JOINED, a collapsible request) joins the flight of its
 * identity, started if there is none; its answer comes through
 * fetch_adopt(), maybe before this returns. */
void collapse_join(struct fetch *f);

/* f leaves its flight (f->flight) and gets no answer from it; the last to
 * leave aborts the flight. */
void collapse_leave(struct fetch *f);

/* Where the flight f waits on is: "queued", "connect", …, "response". */
const char *collapse_phase(const struct fetch *f);

/* Free an upstream's table (it has no flight left: each holds the
 * upstream); NULL is fine. */
void collapse_table_free(struct collapse_table *t);

#endif
