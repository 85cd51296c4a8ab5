/* fanout_progress: the bar's text.  The counts part (done/total, failed,
 * rate, ETA) is kept whole; the bar in brackets takes what width is left,
 * and is dropped when fewer than 10 columns are. */
#include "fanout_progress.h"

#include <stdio.h>
#include <string.h>

#define BAR_MIN 10               /* a narrower bar is left out */
#define BAR_MAX 40

static double rate_of(const struct fanout_progress *p)
{
	if (p->elapsed_ms <= 0.0)
		return 0.0;
	return (double)p->done * 1000.0 / p->elapsed_ms;
}

char *fanout_progress_eta(char *buf, size_t size, const struct fanout_progress *p)
{
	double rate = rate_of(p);
	unsigned long s;

	if (p->done >= p->total) {
		snprintf(buf, size, "0:00");
		return buf;
	}
	if (p->done == 0 || rate <= 0.0) {
		snprintf(buf, size, "--:--");
		return buf;
	}
	s = (unsigned long)((double)(p->total - p->done) / rate + 0.5);
	if (s >= 3600)
		snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
	return buf;
}

/* "  3/10  1 failed  12.5 req/s  ETA 0:01" (the failed part only when
 * some failed). */
static int counts_text(char *buf, size_t size, const struct fanout_progress *p)
{
	char eta[32], failed[48] = "";

	if (p->failed > 0)
		snprintf(failed, sizeof failed, "  %zu failed", p->failed);
	return snprintf(buf, size, "%zu/%zu%s  %.1f req/s  ETA %s", p->done, p->total,
	                failed, rate_of(p), fanout_progress_eta(eta, sizeof eta, p));
}

/* "[####......] " of inner width n. */
static size_t bar_text(char *buf, const struct fanout_progress *p, size_t n)
{
	size_t fill = p->total ? p->done * n / p->total : n, i;

	if (fill > n)
		fill = n;
	buf[0] = '[';
	for (i = 0; i < n; i++)
		buf[1 + i] = i < fill ? '#' : '.';
	buf[n + 1] = ']';
	buf[n + 2] = ' ';
	return n + 3;
}

size_t fanout_progress_text(char *buf, size_t size, const struct fanout_progress *p,
                            unsigned width)
{
	char counts[160], line[BAR_MAX + 3 + sizeof counts];
	int c = counts_text(counts, sizeof counts, p);
	size_t cols = width > 1 ? width - 1 : 0, len = 0, n;

	if (size == 0)
		return 0;
	if (c < 0)
		c = 0;
	if ((size_t)c + 3 + BAR_MIN <= cols) {
		n = cols - (size_t)c - 3;
		len = bar_text(line, p, n > BAR_MAX ? BAR_MAX : n);
	}
	memcpy(line + len, counts, (size_t)c);
	len += (size_t)c;
	if (len > cols)
		len = cols;
	if (len >= size)
		len = size - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	return len;
}

size_t fanout_progress_frame(char *buf, size_t size, const struct fanout_progress *p,
                             unsigned width)
{
	size_t len;

	if (size < 5) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	buf[0] = '\r';
	len = 1 + fanout_progress_text(buf + 1, size - 4, p, width);
	memcpy(buf + len, "\033[K", 4);
	return len + 3;
}

const char *fanout_progress_clear(void)
{
	return "\r\033[K";
}

bool fanout_progress_due(double last_ms, double now_ms)
{
	return last_ms < 0.0 || now_ms - last_ms >= FANOUT_PROGRESS_INTERVAL_MS;
}
