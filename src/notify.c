/* notify: sd_notify(3) states and sd_listen_fds(3) sockets for systemd.
 * Owns nothing; every function is a no-op when fanoutd is built without
 * libsystemd (configure --without-systemd). */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "notify.h"

#ifdef HAVE_SYSTEMD
static void send_state(const char *state)
{
	int r = sd_notify(0, state);

	/* 0 = no NOTIFY_SOCKET: not run by systemd, nothing to tell */
	if (r < 0)
		log_warn("sd_notify %s: %s", state, strerror(-r));
}
#endif

void notify_ready(void)
{
#ifdef HAVE_SYSTEMD
	send_state("READY=1");
#endif
}

void notify_reloading(void)
{
#ifdef HAVE_SYSTEMD
	/* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the
	 * reload to its request; older ones ignore it. */
	struct timespec ts;
	char state[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	         (unsigned long long)ts.tv_nsec / 1000ULL);
	send_state(state);
#endif
}

void notify_stopping(void)
{
#ifdef HAVE_SYSTEMD
	send_state("STOPPING=1");
#endif
}

size_t notify_listen_fds(int *fds, size_t max)
{
#ifdef HAVE_SYSTEMD
	int n = sd_listen_fds(1);
	size_t i;

	if (n < 0) {
		log_warn("LISTEN_FDS: %s; not using socket activation", strerror(-n));
		return 0;
	}
	for (i = max; i < (size_t)n; i++) {
		log_warn("LISTEN_FDS: more than %zu sockets; closing fd %d", max,
		         SD_LISTEN_FDS_START + (int)i);
		close(SD_LISTEN_FDS_START + (int)i);
	}
	if ((size_t)n > max)
		n = (int)max;
	for (i = 0; i < (size_t)n; i++)
		fds[i] = SD_LISTEN_FDS_START + (int)i;
	return (size_t)n;
#else
	(void)fds;
	(void)max;
	return 0;
#endif
}

bool notify_available(void)
{
#ifdef HAVE_SYSTEMD
	return true;
#else
	return false;
#endif
}
