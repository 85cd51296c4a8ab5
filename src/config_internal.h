/* config_internal: what config.c and config_load.c share, included by
 * nothing else.  The key tables (defined in config.c) and setting one key
 * from its text; config_load.c adds sections and line numbers on top. */
#ifndef FANOUTD_CONFIG_INTERNAL_H
#define FANOUTD_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

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
	CONFIG_KEY_RATE,      /* double per second, (0, MAX_RATE_PER_S] */
};

struct config_key {
	const char *name;
	enum config_key_type type;
	size_t offset;         /* into struct config or struct config_upstream */
	long long min, max;    /* for INT, SIZE, DURATION, MODE */
	bool reload;           /* a SIGHUP reload applies it (else restart) */
	const char *def;       /* default, parsed by the same code as the file */
	const char *desc;
};

/* The longest line config_load reads (inih's INI_MAX_LINE 200, less the
 * line end and NUL).  config_dump must write every line within it, so a
 * value that would not fit once normalised is refused. */
#define CONFIG_MAX_LINE 198

/* The number of entries in each table (checked in config.c). */
#define CONFIG_N_FANOUTD_KEYS 22
#define CONFIG_N_UPSTREAM_KEYS 7

/* Keys of [fanoutd] (stored in struct config) and of [upstream "..."]
 * (stored in struct config_upstream; defaults all "unset"). */
extern const struct config_key config_fanoutd_keys[];
extern const struct config_key config_upstream_keys[];

/* Parse VALUE for key K and store it at BASE (struct config for [fanoutd],
 * struct config_upstream for upstream sections).  APPEND: a list key seen
 * before in this file (else the list is replaced).  DIR: directory that
 * relative paths are taken from, or NULL.  On failure writes MSG. */
int config_set_value(const struct config_key *k, void *base, const char *value,
                     bool append, const char *dir, char *msg, size_t len);

#endif
