/* upstream_internal: what upstream.c (live upstreams, their limits, the
 * registry) and upstream_series.c (the series kept until exit, GET
 * /v1/upstreams) share.  Included by nothing else. */
#ifndef FANOUTD_UPSTREAM_INTERNAL_H
#define FANOUTD_UPSTREAM_INTERNAL_H

#include <stddef.h>

#include "config.h"
#include "upstream.h"

/* Every series, the registry's (owned by it). */
struct upstream_series_table;

/* upstream_series.c's, for upstream.c. */

struct upstream_series_table *upstream_series_table_new(void);
/* Only once no live upstream counts into any series. */
void upstream_series_table_free(struct upstream_series_table *t);
/* From now on u counts into its own series if it has one or may have one
 * (a section in cfg, or fewer than UPSTREAM_MAX_SERIES without), else
 * into "other"; what its pool counted before is not the series'. */
void upstream_series_join(struct upstream_series_table *t, const struct config *cfg,
                          struct upstream *u);
/* u stops counting into its series, which keeps what u counted. */
void upstream_series_leave(struct upstream *u);
/* Reload: u counted into "other" and has a section now: its own series. */
void upstream_series_reseat(struct upstream_series_table *t, const struct config *cfg,
                            struct upstream *u);
/* upstream_foreach_series and upstream_series_count, on the table. */
void upstream_series_table_foreach(struct upstream_series_table *t, const struct config *cfg,
                                   void (*fn)(const struct upstream_stats *s, void *arg),
                                   void *arg);
size_t upstream_series_table_count(const struct upstream_series_table *t);

/* upstream.c's, for upstream_series.c. */

/* The concurrency limit of key: its section's, else upstream_concurrency. */
size_t upstream_configured_limit(const struct config *cfg, const char *key);

#endif
