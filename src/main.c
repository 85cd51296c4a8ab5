/* main: command line, config, the event loop, signals.  Owns the config,
 * the event base, the DNS base, the upstream registry and the server, and
 * frees them in reverse order at exit. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "acl.h"
#include "clock.h"
#include "auth.h"
#include "config.h"
#include "dns.h"
#include "env.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "tls.h"
#include "upstream.h"
#include "xalloc.h"

enum exit_code {
	EXIT_OK = 0,          /* clean shutdown */
	EXIT_CONFIG = 1,      /* bad config or arguments */
	EXIT_RUNTIME = 2,     /* e.g. cannot bind */
	EXIT_FORCED = 3,      /* a second signal cut running batches off */
};

/* How far shutdown has gone. */
enum shutdown_mode {
	SHUTDOWN_NONE,        /* serving */
	SHUTDOWN_DRAINING,    /* not accepting; running batches may finish */
	SHUTDOWN_FORCED,      /* second signal: exit now, cutting running
	                         batches off (exit status EXIT_FORCED) */
};

struct daemon {
	struct event_base *base;
	struct dns *dns;
	struct config cfg;
	char *token;                    /* from auth_token_file; NULL = no auth */
	const char *config_path;        /* NULL = embedded defaults */
	char **cli_listen;              /* -l values, borrowed from argv */
	size_t ncli_listen;
	struct fetch_env env;
	struct limit_sem global;        /* global_concurrency, shared by all */
	size_t queued;                  /* fetches waiting, for max_queued */
	struct acl *acl;                /* of the running config */
	struct metrics *metrics;        /* for /metrics */
	struct upstream_registry *reg;
	struct server *srv;
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *shutdown_timer;
	enum shutdown_mode shutdown;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: fanoutd [-c FILE] [-l LISTEN]... [-t] [-v|-q] [-V] [-h]\n"
	        "  -c, --config FILE    read the INI config FILE (default: embedded defaults)\n"
	        "  -l, --listen ADDR    listen on ADDR (repeatable; replaces `listen`):\n"
	        "                       127.0.0.1:8642, [::1]:8642, unix:/run/fanoutd.sock\n"
	        "  -t, --test           check the config and exit (with -v: and print it)\n"
	        "  -v, --verbose        log debug detail\n"
	        "  -q, --quiet          log errors only\n"
	        "  -V, --version        print the version and exit (with -v: and \"+systemd\"\n"
	        "                       when built with sd_notify and socket activation)\n"
	        "  -h, --help           print this help and exit\n");
}

/* One CA file: a readable regular file that OpenSSL loads certificates
 * from.  TC is a scratch cache; the contexts the fetches use are made on
 * the first https request, too late to refuse the file. */
static int check_ca_file(struct tls_cache *tc, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: a FIFO named by mistake must not hang -t */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	close(fd);
	if (tls_context(tc, true, path, err, errlen) == NULL) {
		/* a reload goes on running: leave no stale error for the next
		 * handshake to report */
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* Every ca_file of cfg (read from FILE), [fanoutd] first, then the
 * upstream sections; the message names the key and its section. */
static int check_ca_files(const struct config *cfg, const char *file, char *err, size_t errlen)
{
	struct tls_cache *tc = tls_cache_new();
	char msg[768];
	int rc = 0;

	if (cfg->ca_file != NULL && check_ca_file(tc, cfg->ca_file, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: ca_file: %s", file, msg);
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < cfg->nupstreams; i++) {
		const struct config_upstream *u = &cfg->upstreams[i];

		if (u->ca_file != NULL && check_ca_file(tc, u->ca_file, msg, sizeof msg) < 0) {
			snprintf(err, errlen, "%s: [upstream \"%s\"] ca_file: %s", file, u->key, msg);
			rc = -1;
		}
	}
	tls_cache_free(tc);
	return rc;
}

/* Settings that are valid alone but not together.  The server counts a
 * whole batch against max_queued before it starts, so a batch larger
 * than max_queued is refused even by an idle daemon. */
static void warn_limits(const struct config *cfg, const char *file)
{
	if (cfg->max_queued < cfg->max_batch_size)
		log_warn("%s: max_queued (%ld) is below max_batch_size (%ld): every batch of "
		         "more than %ld requests will be refused with 503 overloaded",
		         file, cfg->max_queued, cfg->max_batch_size, cfg->max_queued);
}

/* Config from the file (or the defaults) with -l applied on top, and the
 * token its auth_token_file names.  Files the config names are checked
 * here, so -t, start-up and reload refuse the same things. */
static int load_config(struct daemon *d, struct config *cfg, char **token)
{
	const char *file = d->config_path ? d->config_path : "(embedded defaults)";
	char err[1024];

	*token = NULL;
	config_defaults(cfg);
	if (d->config_path != NULL &&
	    config_load(cfg, d->config_path, err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (d->ncli_listen > 0 &&
	    config_set_listeners(cfg, d->cli_listen, d->ncli_listen, err, sizeof err) < 0) {
		log_error("%s", err);
		config_free(cfg);
		return -1;
	}
	if (check_ca_files(cfg, file, err, sizeof err) < 0) {
		log_error("%s", err);
		config_free(cfg);
		return -1;
	}
	if (cfg->auth_token_file != NULL &&
	    auth_token_read(cfg->auth_token_file, token, err, sizeof err) < 0) {
		log_error("%s", err);
		config_free(cfg);
		return -1;
	}
	warn_limits(cfg, file);
	return 0;
}

/* Verification off is for development only: say so loudly. */
static void warn_insecure(const struct config *cfg)
{
	size_t i;

	if (!cfg->tls_verify)
		log_warn("tls_verify = no: upstream TLS certificates are NOT checked");
	for (i = 0; i < cfg->nupstreams; i++)
		if (cfg->upstreams[i].tls_verify == 0)
			log_warn("tls_verify = no for %s: its TLS certificate is NOT checked",
			         cfg->upstreams[i].key);
}

/* The parts of the config every fetch reads, from d->cfg. */
static void set_env(struct daemon *d)
{
	acl_free(d->acl);
	d->acl = acl_new(d->cfg.allow_hosts, d->cfg.deny_networks);
	d->env.acl = d->acl;
	d->env.max_response_body = d->cfg.max_response_body;
	d->env.max_batch_response = d->cfg.max_batch_response;
	limit_sem_set_limit(&d->global, (size_t)d->cfg.global_concurrency);
}

static void apply_config(struct daemon *d)
{
	set_env(d);
	/* a kept-alive connection skips the check on resolved addresses */
	pool_close_denied(d->acl);
	warn_insecure(&d->cfg);
	upstream_registry_configure(d->reg, &d->cfg);
	server_configure(d->srv, &d->cfg);
	server_set_token(d->srv, d->token);
}

/* --- signals ----------------------------------------------------------- */

static void on_idle(void *arg)
{
	struct daemon *d = arg;

	/* after a forced exit server_free() ends the cut-off batches, and the
	 * last of them lands here: nothing was answered */
	if (d->shutdown == SHUTDOWN_FORCED)
		return;
	log_info("all batches answered; exiting");
	event_base_loopexit(d->base, NULL);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	log_warn("shutdown_timeout reached: cancelling the batches still running");
	server_cancel_all(d->srv);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv;

	(void)what;
	if (d->shutdown != SHUTDOWN_NONE) {
		size_t n = server_running(d->srv);

		/* a request that holds its global slot while it waits for a rate
		 * token counts in both */
		log_warn("second signal: exiting now; cutting off %zu running batch%s "
		         "(%zu upstream requests in flight, %zu queued)",
		         n, n == 1 ? "" : "es", d->global.in_use, d->queued);
		d->shutdown = SHUTDOWN_FORCED;
		event_base_loopbreak(d->base);
		return;
	}
	log_info("signal %d: shutting down (up to %ld ms for running batches)",
	         (int)sig, d->cfg.shutdown_timeout_ms);
	notify_stopping();
	d->shutdown = SHUTDOWN_DRAINING;
	tv = clock_timeval((double)d->cfg.shutdown_timeout_ms);
	d->shutdown_timer = evtimer_new(d->base, on_shutdown_timeout, d);
	evtimer_add(d->shutdown_timer, &tv);
	server_drain(d->srv, on_idle, d);
}

/* All or nothing: a bad file leaves the running config untouched. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config fresh;
	char *token, err[1024];

	(void)sig;
	(void)what;
	if (d->config_path == NULL) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	notify_reloading();
	if (load_config(d, &fresh, &token) < 0) {
		log_error("reload failed; keeping the running config");
		notify_ready();
		return;
	}
	if (server_relisten(d->srv, &fresh, err, sizeof err) < 0) {
		log_error("%s; reload failed, keeping the running config", err);
		config_free(&fresh);
		auth_token_free(token);
		notify_ready();
		return;
	}
	config_free(&d->cfg);
	d->cfg = fresh;
	auth_token_free(d->token);
	d->token = token;
	apply_config(d);
	log_info("reloaded %s", d->config_path);
	notify_ready();
}

/* --- set-up and tear-down ---------------------------------------------- */

/* The sockets systemd passed (socket activation) win over `listen`/-l. */
static int listen_all(struct daemon *d, char *err, size_t errlen)
{
	int fds[CONFIG_MAX_LISTEN];
	size_t n = notify_listen_fds(fds, CONFIG_MAX_LISTEN);

	if (n == 0)
		return server_listen(d->srv, err, errlen);
	log_info("socket activation: %zu socket%s from systemd; `listen` not used",
	         n, n == 1 ? "" : "s");
	return server_listen_fds(d->srv, fds, n, err, errlen);
}

/* epoll with libevent's change list: evhttp deletes and re-adds a socket's
 * events around every request, and the change list folds those into one
 * epoll_ctl per socket per loop turn (a fifth of the CPU of a batch of
 * small answers went to epoll_ctl without it).  fanoutd never dup()s a
 * socket, the case the change list gets wrong. */
static struct event_base *new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

static int start(struct daemon *d)
{
	char err[1024];

	signal(SIGPIPE, SIG_IGN);
	d->base = new_base();
	d->dns = d->base ? dns_new(d->base, d->cfg.resolv_conf) : NULL;
	if (d->base == NULL || d->dns == NULL) {
		log_error("cannot set up the event loop");
		return -1;
	}
	d->env.base = d->base;
	d->env.dns = d->dns;
	d->env.global = &d->global;
	d->env.queued = &d->queued;
	d->metrics = metrics_new();
	d->env.metrics = d->metrics;
	limit_sem_init(&d->global, 1);
	set_env(d);
	d->reg = upstream_registry_new(d->base, &d->cfg);
	d->srv = server_new(d->base, &d->cfg, d->reg, &d->env);
	server_set_token(d->srv, d->token);
	if (listen_all(d, err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);
	log_info("fanoutd %s ready", PACKAGE_VERSION);
	notify_ready();
	return 0;
}

static void stop(struct daemon *d)
{
	if (d->srv != NULL)
		server_free(d->srv);
	/* let abandoned batches run their deferred frees */
	if (d->base != NULL)
		event_base_loop(d->base, EVLOOP_NONBLOCK);
	if (d->reg != NULL)
		upstream_registry_free(d->reg);
	/* ... and the closed upstream connections theirs (conn_free) */
	if (d->base != NULL)
		event_base_loop(d->base, EVLOOP_NONBLOCK);
	if (d->sig_term != NULL) {
		event_free(d->sig_term);
		event_free(d->sig_int);
		event_free(d->sig_hup);
	}
	if (d->shutdown_timer != NULL)
		event_free(d->shutdown_timer);
	dns_free(d->dns);
	metrics_free(d->metrics);
	acl_free(d->acl);
	d->acl = NULL;
	if (d->base != NULL)
		event_base_free(d->base);
	config_free(&d->cfg);
	auth_token_free(d->token);
	free(d->cli_listen);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	bool test_only = false, show_version = false;
	int c, rc;

	memset(&d, 0, sizeof d);
	d.cli_listen = xcalloc((size_t)argc, sizeof *d.cli_listen);
	while ((c = getopt_long(argc, argv, "c:l:tvqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 'l': d.cli_listen[d.ncli_listen++] = optarg; break;
		case 't': test_only = true; break;
		case 'v': log_set_level(LOG_LEVEL_DEBUG); break;
		case 'q': log_set_level(LOG_LEVEL_ERROR); break;
		case 'V': show_version = true; break;
		case 'h': usage(stdout); free(d.cli_listen); return EXIT_OK;
		default: usage(stderr); free(d.cli_listen); return EXIT_CONFIG;
		}
	}
	if (show_version) {
		/* -v -V adds the build's optional features */
		printf("fanoutd %s%s\n", PACKAGE_VERSION, log_get_level() < LOG_LEVEL_DEBUG ? "" :
		       notify_available() ? " (+systemd)" : " (-systemd)");
		free(d.cli_listen);
		return EXIT_OK;
	}
	if (optind < argc) {
		log_error("unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		free(d.cli_listen);
		return EXIT_CONFIG;
	}
	if (load_config(&d, &d.cfg, &d.token) < 0) {
		free(d.cli_listen);
		return EXIT_CONFIG;
	}
	if (test_only) {
		fprintf(stderr, "fanoutd: configuration %s is ok\n",
		        d.config_path ? d.config_path : "(embedded defaults)");
		/* -t -v: what the file means, defaults and -l included */
		if (log_get_level() >= LOG_LEVEL_DEBUG)
			config_dump(&d.cfg, stdout);
		stop(&d);
		return EXIT_OK;
	}
	warn_insecure(&d.cfg);
	rc = start(&d) < 0 ? EXIT_RUNTIME : EXIT_OK;
	if (rc == EXIT_OK)
		event_base_dispatch(d.base);
	if (d.shutdown == SHUTDOWN_FORCED)
		rc = EXIT_FORCED;
	stop(&d);
	if (rc == EXIT_OK)
		log_info("bye");
	return rc;
}
