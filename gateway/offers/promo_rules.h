/*
 * Promotion rules as data (issue 11): the rules file the gateway loads at
 * start and on SIGHUP, parsed into an in-memory rule set that the engine
 * (rules.c) evaluates after every batch. Pure: no database, no clock, no
 * logging; the only files read are the rules file, the code files it names
 * and the tz database (localtz_valid(): to check a time zone name exists).
 *
 * The format is INI-like, as our config files (common/config.h): "key =
 * value" lines, '#' comments (at the start of a line, or after blanks),
 * sections "[limits]" (once) and "[rule NAME]" (a name once). Every error is
 * "FILE:LINE: what is wrong", and all of them are reported, not just the
 * first: unknown sections and keys, a key twice, a bad value, a missing
 * trigger/title/body, an unknown template placeholder, a code file that
 * does not read. docs/promotions.md describes every key with examples.
 */
#ifndef PITSTOP_PROMO_RULES_H
#define PITSTOP_PROMO_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "localtz.h"

#define PROMO_RULES_MAX 64	      /* rules in one file */
#define PROMO_NAME_MAX 32	      /* bytes of a rule name: [a-z0-9_-]+ */
#define PROMO_CATEGORY_MAX 32	      /* a POI category, as poi.h */
#define PROMO_AUDIENCE_MAX 16	      /* names in one audience.* list */
#define PROMO_AUDIENCE_NAME_MAX 64    /* bytes of one of them */
#define PROMO_TEMPLATE_MAX 1024	      /* bytes of a title or body template */
#define PROMO_PRICE_MAX 128	      /* bytes of the {price} text */
#define PROMO_CODE_PREFIX_MAX 16      /* generated codes: prefix bytes */
#define PROMO_CODES_MAX 1000000	      /* codes in one code file */
#define PROMO_TZ_MAX LOCALTZ_NAME_MAX /* bytes of a time zone name */
#define PROMO_PATH_MAX 512	      /* bytes of a path */
#define PROMO_ERRORS_MAX 50	      /* errors listed at most (then "... and N more") */
#define PROMO_DEFAULT_AHEAD_DEG 60    /* half angle of "ahead of the car" */
#define PROMO_VISIT_SPEED_CMS 300     /* driven_since_visit: slower than this is a visit */

enum promo_trigger {
	PROMO_FUEL_BELOW,	  /* fuel at or below fuel_pct */
	PROMO_POI_ENTER,	  /* within trigger_radius_m of a POI of trigger_category */
	PROMO_SERVICE_DUE,	  /* service due within service_days, near the dealer */
	PROMO_DRIVEN_SINCE_VISIT, /* driven_m since the last visit to trigger_category */
};

enum promo_codes_mode {
	PROMO_CODES_GENERATE, /* code_prefix + code_len random characters, unique */
	PROMO_CODES_FILE,     /* a pool of codes[0..ncodes) read from code_file */
};

/* One list of audience names ("" entries never occur). */
struct promo_names {
	size_t n; /* 0: anyone */
	char name[PROMO_AUDIENCE_MAX][PROMO_AUDIENCE_NAME_MAX + 1];
};

struct promo_rule {
	char name[PROMO_NAME_MAX + 1];
	unsigned line; /* of its [rule NAME] header */

	/* trigger */
	enum promo_trigger trigger;
	int fuel_pct;	       /* fuel_below: 0..100 */
	int rearm_pct;	       /* fuel_below: re-arm this far above (default 10) */
	int64_t rearm_hold_ms; /* fuel_below: and held this long (default 0) */
	char trigger_category[PROMO_CATEGORY_MAX + 1]; /* poi_enter, driven_since_visit */
	uint32_t trigger_radius_m; /* poi_enter: the radius; service_due: near the dealer */
	int service_days;	   /* service_due: due within this many days */
	int64_t driven_m;	   /* driven_since_visit: metres */
	uint32_t visit_radius_m;   /* driven_since_visit: a visit is this close (150) */

	/* the POI the offer is about ("" none: poi_enter's or the dealer, or the car) */
	char poi_category[PROMO_CATEGORY_MAX + 1];
	uint32_t search_radius_m; /* default 10000 */
	int range_km_full_tank;	  /* 0: range unknown, not limited */
	int ahead_deg;		  /* half angle of "ahead" (default 60) */

	/* audience: every non-empty list must match */
	struct promo_names fleets, makes, models;

	/* the offer */
	enum offer_kind kind;
	char title[PROMO_TEMPLATE_MAX + 1]; /* templates, checked at load */
	char body[PROMO_TEMPLATE_MAX + 1];
	char price[PROMO_PRICE_MAX + 1];
	enum promo_codes_mode codes_mode;
	char code_prefix[PROMO_CODE_PREFIX_MAX + 1];
	int code_len;			/* generate: 4..24 */
	char code_file[PROMO_PATH_MAX]; /* file: as resolved (relative to the rules file) */
	char **codes;			/* file: owned, ncodes strings */
	size_t ncodes;
	int64_t valid_for_ms;	/* default 2 h */
	uint32_t area_radius_m; /* 0: no area (shown anywhere) */
	int64_t cooldown_ms;	/* 0: none */
};

struct promo_limits {
	int per_day;  /* offers per vehicle per local day, all rules; 0: no cap */
	int per_week; /* per local ISO week (Monday..Sunday); 0: no cap */
	int quiet_from_min, quiet_to_min; /* minutes of the local day; from == to: none */
	char time_zone[PROMO_TZ_MAX + 1]; /* for vehicles without one ("UTC") */
};

struct promo_rules {
	char path[PROMO_PATH_MAX]; /* "" for the built-in rule */
	struct promo_limits limits;
	struct promo_rule *rules; /* owned, n of them, in file order */
	size_t n;
};

/*
 * Parses the rules in text (len bytes; what the file path holds: path is
 * used in messages and to resolve code files). Returns 0 and *ret (free
 * with promo_rules_free()), -ENOMEM, or -EINVAL with every error, one
 * "path:line: ..." per line, in err (cut at PROMO_ERRORS_MAX and at errlen).
 */
int promo_rules_parse(const char *path, const char *text, size_t len, struct promo_rules **ret,
		      char *err, size_t errlen);

/* Reads path and parses it. -errno ("path: why" in err) when it cannot be read. */
int promo_rules_load(const char *path, struct promo_rules **ret, char *err, size_t errlen);

/* Accepts NULL. */
void promo_rules_free(struct promo_rules *s);

/* The rule named name, or NULL. */
const struct promo_rule *promo_rules_find(const struct promo_rules *s, const char *name);

/* "fuel_below", "poi_enter", "service_due", "driven_since_visit". */
const char *promo_trigger_name(enum promo_trigger t);

/* What a template's placeholders expand to; NULL or "" fields expand to "". */
struct promo_vars {
	const char *station;  /* {station}: the POI's name */
	const char *distance; /* {distance_km}: "2.4" */
	const char *fuel;     /* {fuel_pct}: "12" or "12.5" */
	const char *price;    /* {price} */
	const char *code;     /* {code} */
	const char *due_days; /* {due_days}: days until the service is due */
	const char *driven;   /* {driven_km}: since the last visit */
	const char *make;     /* {make} */
	const char *model;    /* {model} */
};

/*
 * Expands tmpl into out (size bytes, NUL-terminated), cutting it at a UTF-8
 * character boundary when it does not fit. "{{" and "}}" are literal braces.
 * Returns 0, or -EINVAL for an unknown placeholder or an unbalanced brace
 * (with a short reason in why when why is not NULL).
 */
int promo_expand(const char *tmpl, const struct promo_vars *v, char *out, size_t size, char *why,
		 size_t whylen);

#endif
