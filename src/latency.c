/* latency: the rolling window of one upstream's request times and its
 * nearest-rank quantiles from a sorted copy refreshed lazily (see
 * latency.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"

void latency_init(struct latency_window *w)
{
	memset(w, 0, sizeof *w);
	w->p50 = w->p95 = -1;
	w->fresh = true;        /* no samples, and the copy holds none */
}

void latency_add(struct latency_window *w, double ms)
{
	if (isnan(ms) || ms < 0)
		return;
	w->v[w->next] = (float)ms;
	w->next = (w->next + 1) % LATENCY_WINDOW;
	if (w->n < LATENCY_WINDOW)
		w->n++;
	w->total++;
	w->since_sort++;
	w->fresh = false;
}

unsigned latency_samples(const struct latency_window *w)
{
	return w->n;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* Nearest rank on the copy: x[ceil(q * n)], 1-based.  The rank is worked
 * out without ceil() (no libm), and a hair of slack keeps 0.95 * 100 from
 * rounding up to 96. */
static double pick(const struct latency_window *w, double q)
{
	unsigned n = w->sorted_n, rank;
	double exact;

	if (n == 0)
		return -1;
	if (!(q > 0))           /* NaN too */
		return w->sorted[0];
	if (q >= 1)
		return w->sorted[n - 1];
	exact = q * n;
	rank = (unsigned)exact;
	if ((double)rank < exact - 1e-9)
		rank++;
	if (rank < 1)
		rank = 1;
	return w->sorted[rank - 1];
}

static void resort(struct latency_window *w)
{
	/* the ring's order does not matter to a sort: copy it as it lies */
	memcpy(w->sorted, w->v, w->n * sizeof w->v[0]);
	w->sorted_n = w->n;
	qsort(w->sorted, w->sorted_n, sizeof w->sorted[0], cmp_float);
	w->since_sort = 0;
	w->fresh = true;
	w->p50 = pick(w, 0.5);
	w->p95 = pick(w, 0.95);
}

double latency_quantile(struct latency_window *w, double q)
{
	if (!w->fresh && (w->n <= LATENCY_EXACT || w->since_sort >= LATENCY_RESORT))
		resort(w);
	return pick(w, q);
}
