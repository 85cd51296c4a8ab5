/* latency: one upstream's rolling latency window -- the last LATENCY_WINDOW
 * request times in ms -- and its quantiles, for hedging (hedge_after = p95)
 * and /v1/upstreams (p50, p95).  Pure: no clock, no events, no allocation.
 *
 * Quantiles are nearest-rank: of n samples sorted ascending x[1..n], the
 * q-quantile is x[ceil(q * n)] (so of 1..100, p50 = 50 and p95 = 95).  They
 * come from a sorted copy that is refreshed at most once every
 * LATENCY_RESORT additions, and on every query while at most LATENCY_EXACT
 * samples are held (so the first hundred are exact); between refreshes a
 * query answers from the copy, up to LATENCY_RESORT - 1 samples behind. */
#ifndef FANOUTD_LATENCY_H
#define FANOUTD_LATENCY_H

#include <stdbool.h>

/* the last this many samples: 2 KiB a window, made for each upstream with
 * an answer, and 10,000 upstreams may live at once */
#define LATENCY_WINDOW 256
#define LATENCY_RESORT 16       /* additions between refreshes of the copy */
#define LATENCY_EXACT  100      /* held samples up to which every query is exact */

struct latency_window {
	float v[LATENCY_WINDOW];        /* ring of samples, oldest at next once full
	                                   (a float holds ms to far below 0.1 ms) */
	unsigned n;                     /* samples held, <= LATENCY_WINDOW */
	unsigned next;                  /* where the next sample goes */
	unsigned long total;            /* samples ever added */
	float sorted[LATENCY_WINDOW];   /* a sorted copy of v[0..sorted_n) */
	unsigned sorted_n;              /* samples in it (0: never sorted) */
	unsigned since_sort;            /* additions since the copy was made */
	double p50, p95;                /* of the copy, -1 when empty */
	bool fresh;                     /* the copy holds every sample held */
};

void latency_init(struct latency_window *w);

/* One request took MS; negative and NaN values are ignored. */
void latency_add(struct latency_window *w, double ms);

/* The q-quantile (0 < q < 1, e.g. 0.95; q <= 0 gives the least, q >= 1 the
 * greatest) of the samples held, nearest-rank as above, -1 when there are
 * none.  Cheap enough to call for every request: it sorts only when the
 * copy is due for a refresh (see the top of this file). */
double latency_quantile(struct latency_window *w, double q);

unsigned latency_samples(const struct latency_window *w);

#endif
