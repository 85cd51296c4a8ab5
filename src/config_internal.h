/* config_internal: what the config*.c files share, included by nothing
 * else.  The one table of keys (config.c), the value types it names
 * (config_types.c: how each parses, dumps and clears), and the section
 * walks; config_load.c adds INI lines and line numbers on top. */
#ifndef FANOUTD_CONFIG_INTERNAL_H
#define FANOUTD_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* Where a key is written and where its value is stored. */
enum config_section {
	CONFIG_SECTION_NONE,      /* before the first section header: no keys */
	CONFIG_SECTION_FANOUTD,   /* [fanoutd]: struct config */
	CONFIG_SECTION_UPSTREAM,  /* [upstream "URL"]: struct config_upstream */
	CONFIG_SECTION_REDIS,     /* [redis]: struct config_redis (cfg->redis) */
};

/* The value types; config_types.c has one {parse, dump, clear} row each. */
enum config_key_type {
	CONFIG_KEY_LISTEN,    /* listen address; repeatable, first use replaces default */
	CONFIG_KEY_INT,       /* long, decimal, min..max */
	CONFIG_KEY_SIZE,      /* uint64_t bytes with K/M/G, min..max */
	CONFIG_KEY_DURATION,  /* long milliseconds, min..max */
	CONFIG_KEY_BOOL,      /* bool */
	CONFIG_KEY_TRIBOOL,   /* int: -1 unset, 0, 1 (upstream sections) */
	CONFIG_KEY_PATH,      /* char *, "" = NULL; relative to the config file */
	CONFIG_KEY_HOSTS,     /* char ** host globs; repeatable like listen */
	CONFIG_KEY_CIDRS,     /* char ** CIDRs; repeatable like listen */
	CONFIG_KEY_MODE,      /* long, octal file mode, min..max */
	CONFIG_KEY_RATE,      /* double per second, (0, 1000000/s] */
	CONFIG_KEY_HTTP2,     /* int: enum config_http2, -1 unset (upstream sections) */
	CONFIG_KEY_PERCENT,   /* double fraction from "N%" (0.2 for 20%), -1 unset;
	                       * min..max in percent */
	CONFIG_KEY_RETRY_ON,  /* struct config_retry_on: retry.h's list */
	CONFIG_KEY_WORD,      /* char *: min..max printable characters, no space
	                       * or ';' */
	CONFIG_KEY_REDIS_URL, /* char *, "" = NULL: redis://... or unix:/path */
	CONFIG_KEY_HEDGE,     /* long ms, "off" = 0, "p95" = CONFIG_HEDGE_P95, -1 unset */
	CONFIG_KEY_NTYPES
};

/* One row of the table: a key of one section.  A name both sections
 * take (request_timeout, ...) has a row in each. */
struct config_key {
	const char *name;
	enum config_key_type type;
	enum config_section section;
	size_t offset;         /* into the section's struct */
	long long min, max;    /* for INT, SIZE, DURATION, MODE; PERCENT in %;
	                          WORD's length */
	bool reload;           /* a SIGHUP reload applies it (else restart) */
	const char *def;       /* default, parsed by the same code as the file;
	                          NULL = unset (the [fanoutd] value applies) */
	const char *desc;
};

/* One value to store: its text and where it came from. */
struct config_input {
	const char *value;
	bool again;            /* a list key seen before in this section: add to
	                          the list (else the value replaces it) */
	const char *dir;       /* relative paths are taken from here; NULL: as given */
};

/* The longest line config_load reads (inih's INI_MAX_LINE 200, less the
 * line end and NUL).  config_dump must write every line within it, so a
 * value that would not fit once normalised is refused. */
#define CONFIG_MAX_LINE 198

/* Every key: [fanoutd]'s, [upstream]'s, then [redis]'s; within a section
 * in the order config_dump writes them. */
#define CONFIG_N_KEYS 64
extern const struct config_key config_keys[CONFIG_N_KEYS];

/* The key NAME of section SEC, or NULL. */
const struct config_key *config_key_find(enum config_section sec, const char *name);

/* A list key: it may be given again in one section, and adds. */
bool config_key_repeats(const struct config_key *k);

/* Parse IN for key K and store it at BASE (the struct of K's section).
 * On failure writes MSG, starting "NAME: ", and leaves BASE as it was. */
int config_key_set(const struct config_key *k, void *base, const struct config_input *in,
                   char *msg, size_t len)
	__attribute__((warn_unused_result));

/* Free what K's value at BASE owns and leave it unset. */
void config_key_clear(const struct config_key *k, void *base);

/* Write K's value at BASE as "name = value" lines that parse back to it;
 * an unset value of an upstream section is left out. */
void config_key_dump(FILE *out, const struct config_key *k, const void *base);

/* A new upstream section with every key unset; KEY is owned from now on. */
void config_upstream_init(struct config_upstream *u, char *key);

#endif
