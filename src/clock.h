/* clock: the daemon's time.  Monotonic milliseconds for every duration it
 * measures, the wall clock for dates from the network, and the struct
 * timeval that libevent's timers take. */
#ifndef FANOUTD_CLOCK_H
#define FANOUTD_CLOCK_H

#include <sys/time.h>

/* Milliseconds on the monotonic clock (not wall time). */
double clock_now_ms(void);

/* The wall clock in milliseconds since 1970: only for dates the network
 * sends (Retry-After's HTTP-date). */
double clock_wall_ms(void);

/* ms as a timeval, rounded up to the microsecond (a timer must never fire
 * a hair early); negative gives zero. */
struct timeval clock_timeval(double ms);

#endif
