/* clock: CLOCK_MONOTONIC in milliseconds, and ms to timeval. */
#include <time.h>

#include "clock.h"

double clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

double clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

struct timeval clock_timeval(double ms)
{
	struct timeval tv;
	long long us;

	if (ms < 0)
		ms = 0;
	us = (long long)(ms * 1000.0);
	if ((double)us < ms * 1000.0)
		us++;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return tv;
}
