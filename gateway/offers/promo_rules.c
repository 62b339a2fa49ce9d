/*
 * The rules file parser; see promo_rules.h. One pass over the lines: a
 * section header finishes the section before it (its required keys are
 * checked then, at its header's line), each key is looked up in its
 * section's table and parsed by that entry's parser. Errors accumulate in
 * a bounded buffer; nothing stops at the first.
 */
#include "promo_rules.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "offers.h"

#define RULES_FILE_MAX (4 * 1024 * 1024)  /* bytes of a rules file */
#define CODES_FILE_MAX (64 * 1024 * 1024) /* bytes of a code file */
#define LINE_MAX_BYTES 4096

/* The errors of one parse. */
struct perr {
	const char *path; /* borrowed */
	char *buf;	  /* borrowed, size bytes */
	size_t size, len;
	int count;
};

static void __attribute__((format(printf, 4, 5)))
perr_add(struct perr *e, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	e->count++;
	if (e->count > PROMO_ERRORS_MAX || e->len + 1 >= e->size)
		return;
	n = line ? snprintf(e->buf + e->len, e->size - e->len, "%s%s:%u: ", e->len ? "\n" : "",
			    file, line)
		 : snprintf(e->buf + e->len, e->size - e->len, "%s%s: ", e->len ? "\n" : "", file);
	if (n < 0 || (size_t)n >= e->size - e->len) {
		e->len = e->size - 1;
		return;
	}
	e->len += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(e->buf + e->len, e->size - e->len, fmt, ap);
	va_end(ap);
	e->len = n < 0 || (size_t)n >= e->size - e->len ? e->size - 1 : e->len + (size_t)n;
}

static void perr_finish(struct perr *e)
{
	if (e->count > PROMO_ERRORS_MAX && e->len + 1 < e->size)
		snprintf(e->buf + e->len, e->size - e->len, "\n%s: ... and %d more errors", e->path,
			 e->count - PROMO_ERRORS_MAX);
}

/* ---- small value parsers: 0 or -EINVAL ----------------------------------- */

static int parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	if (!*s || !(isdigit((unsigned char)*s) || *s == '-'))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "90s", "15m", "2h", "7d", or "0". */
static int parse_duration(const char *s, int64_t *ret_ms)
{
	char *end;
	long long v;
	int64_t unit;

	if (strcmp(s, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v < 0 || v > 366LL * 86400)
		return -EINVAL;
	switch (*end) {
	case 's':
		unit = 1000;
		break;
	case 'm':
		unit = 60000;
		break;
	case 'h':
		unit = 3600000;
		break;
	case 'd':
		unit = 86400000;
		break;
	default:
		return -EINVAL;
	}
	if (end[1] || v * unit > 366LL * 86400000)
		return -EINVAL;
	*ret_ms = v * unit;
	return 0;
}

/* [a-z0-9_]{1,max} */
static int valid_word(const char *s, size_t max, int upper_ok, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!(islower(c) || isdigit(c) || c == '_' || (upper_ok && isupper(c)) ||
		      (extra && strchr(extra, c))))
			return 0;
	}
	return 1;
}

static int valid_category(const char *s)
{
	return valid_word(s, PROMO_CATEGORY_MAX, 0, NULL);
}

const char *promo_trigger_name(enum promo_trigger t)
{
	switch (t) {
	case PROMO_FUEL_BELOW:
		return "fuel_below";
	case PROMO_POI_ENTER:
		return "poi_enter";
	case PROMO_SERVICE_DUE:
		return "service_due";
	case PROMO_DRIVEN_SINCE_VISIT:
		return "driven_since_visit";
	}
	return "?";
}

/* ---- templates ----------------------------------------------------------- */

/* Placeholders, once: name and the promo_vars field. */
#define PROMO_PLACEHOLDERS(X)      \
	X("station", station)      \
	X("distance_km", distance) \
	X("fuel_pct", fuel)        \
	X("price", price)          \
	X("code", code)            \
	X("due_days", due_days)    \
	X("driven_km", driven)     \
	X("make", make)            \
	X("model", model)

static const char *placeholder(const struct promo_vars *v, const char *name, size_t n, int *found)
{
#define X(str, field)                                            \
	if (n == sizeof(str) - 1 && memcmp(name, str, n) == 0) { \
		*found = 1;                                      \
		return v->field ? v->field : "";                 \
	}
	PROMO_PLACEHOLDERS(X)
#undef X
	*found = 0;
	return "";
}

/* Appends s[0..n) to out (size, used *len), stopping at a UTF-8 boundary. */
static void append(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	size_t room = size - 1 - *len;

	if (n > room) {
		n = room;
		/* do not end inside a multi-byte character */
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
}

int promo_expand(const char *tmpl, const struct promo_vars *v, char *out, size_t size, char *why,
		 size_t whylen)
{
	size_t len = 0;
	const char *p = tmpl;

	if (!size)
		return -EINVAL;
	out[0] = '\0';
	while (*p) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			append(out, size, &len, p, 1);
			p += 2;
		} else if (*p == '{') {
			const char *end = strchr(p + 1, '}');
			const char *val;
			int found;

			if (!end) {
				if (why)
					snprintf(why, whylen,
						 "'{' without '}' (write {{ for a brace)");
				return -EINVAL;
			}
			val = placeholder(v, p + 1, (size_t)(end - p - 1), &found);
			if (!found) {
				if (why)
					snprintf(why, whylen,
						 "unknown placeholder {%.*s} (known: {station}, "
						 "{distance_km}, {fuel_pct}, {price}, {code}, "
						 "{due_days}, {driven_km}, {make}, {model})",
						 (int)(end - p - 1 > 40 ? 40 : end - p - 1), p + 1);
				return -EINVAL;
			}
			append(out, size, &len, val, strlen(val));
			p = end + 1;
		} else if (*p == '}') {
			if (why)
				snprintf(why, whylen, "'}' without '{' (write }} for a brace)");
			return -EINVAL;
		} else {
			size_t n = strcspn(p, "{}");

			append(out, size, &len, p, n);
			p += n;
		}
	}
	return 0;
}

/* ---- code files ---------------------------------------------------------- */

/* Reads a whole file of at most max bytes, NUL-terminated. Returns 0 or -errno. */
static int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (len > max) {
			r = -EFBIG;
			break;
		}
		if (got == 0) {
			if (ferror(f))
				r = -EIO;
			break;
		}
	}
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

struct code_at {
	char *code;
	unsigned line;
};

static int cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct code_at *)a)->code, ((const struct code_at *)b)->code);
}

static void free_codes(struct promo_rule *r)
{
	for (size_t i = 0; i < r->ncodes; i++)
		free(r->codes[i]);
	free(r->codes);
	r->codes = NULL;
	r->ncodes = 0;
}

/* Loads r->code_file into r->codes; errors name the code file's lines. */
static void load_codes(struct promo_rule *r, struct perr *e, const char *rules_path,
		       unsigned rules_line)
{
	struct code_at *at = NULL;
	size_t n = 0, cap = 0, len;
	char *text = NULL, *p, *next;
	unsigned line = 0;
	int ret = read_file(r->code_file, CODES_FILE_MAX, &text, &len);

	if (ret < 0) {
		perr_add(e, rules_path, rules_line, "cannot read code file %s: %s", r->code_file,
			 ret == -EFBIG ? "larger than 64 MiB" : strerror(-ret));
		return;
	}
	for (p = text; p && *p; p = next) {
		char *s = p, *end;

		line++;
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*s))
			s++;
		end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*s || *s == '#')
			continue;
		if (!valid_word(s, CODEC_MAX_PROMO - 1, 1, "-")) {
			perr_add(e, r->code_file, line,
				 "not a promo code (1..%d of A-Z a-z 0-9 _ -)",
				 CODEC_MAX_PROMO - 1);
			continue;
		}
		if (n == PROMO_CODES_MAX) {
			perr_add(e, r->code_file, line, "more than %d codes", PROMO_CODES_MAX);
			break;
		}
		if (n == cap) {
			struct code_at *na;

			cap = cap ? cap * 2 : 256;
			na = realloc(at, cap * sizeof(*at));
			if (!na) {
				perr_add(e, r->code_file, line, "out of memory");
				break;
			}
			at = na;
		}
		at[n].code = strdup(s);
		if (!at[n].code) {
			perr_add(e, r->code_file, line, "out of memory");
			break;
		}
		at[n++].line = line;
	}
	free(text);
	if (n == 0 && e->count == 0)
		perr_add(e, rules_path, rules_line, "code file %s holds no codes", r->code_file);
	qsort(at, n, sizeof(*at), cmp_code);
	for (size_t i = 1; i < n; i++)
		if (strcmp(at[i].code, at[i - 1].code) == 0)
			perr_add(e, r->code_file,
				 at[i].line > at[i - 1].line ? at[i].line : at[i - 1].line,
				 "duplicate code %s (codes are single-use)", at[i].code);
	r->codes = calloc(n ? n : 1, sizeof(*r->codes));
	if (!r->codes) {
		for (size_t i = 0; i < n; i++)
			free(at[i].code);
		free(at);
		perr_add(e, rules_path, rules_line, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		r->codes[i] = at[i].code;
	r->ncodes = n;
	free(at);
}

/* ---- keys ---------------------------------------------------------------- */

struct pctx {
	struct perr *e;
	const char *path;
	unsigned line;
	struct promo_rules *set;
	struct promo_rule *rule; /* NULL in [limits] */
	char why[256];
};

typedef int (*key_fn)(struct pctx *c, const char *value);

static int k_per_day(struct pctx *c, const char *v)
{
	long n;

	if (parse_long(v, 0, 1000, &n) < 0)
		return snprintf(c->why, sizeof(c->why), "expected 0..1000 (0: no cap)"), -EINVAL;
	c->set->limits.per_day = (int)n;
	return 0;
}

static int k_per_week(struct pctx *c, const char *v)
{
	long n;

	if (parse_long(v, 0, 7000, &n) < 0)
		return snprintf(c->why, sizeof(c->why), "expected 0..7000 (0: no cap)"), -EINVAL;
	c->set->limits.per_week = (int)n;
	return 0;
}

static int parse_hhmm(const char *s, size_t n, int *ret)
{
	if (n != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -EINVAL;
	int h = (s[0] - '0') * 10 + s[1] - '0', m = (s[3] - '0') * 10 + s[4] - '0';

	if (h > 23 || m > 59)
		return -EINVAL;
	*ret = h * 60 + m;
	return 0;
}

static int k_quiet_hours(struct pctx *c, const char *v)
{
	const char *dash = strchr(v, '-');
	int from, to;

	if (strcmp(v, "none") == 0) {
		c->set->limits.quiet_from_min = c->set->limits.quiet_to_min = 0;
		return 0;
	}
	if (!dash || parse_hhmm(v, (size_t)(dash - v), &from) < 0 ||
	    parse_hhmm(dash + 1, strlen(dash + 1), &to) < 0)
		return snprintf(c->why, sizeof(c->why),
				"expected HH:MM-HH:MM (e.g. 21:30-07:00) or none"),
		       -EINVAL;
	if (from == to)
		return snprintf(
			       c->why, sizeof(c->why),
			       "the quiet hours start and end at the same time (none: write none)"),
		       -EINVAL;
	c->set->limits.quiet_from_min = from;
	c->set->limits.quiet_to_min = to;
	return 0;
}

static int k_time_zone(struct pctx *c, const char *v)
{
	if (!localtz_valid(v))
		return snprintf(c->why, sizeof(c->why),
				"unknown time zone %.64s (no such zone in " LOCALTZ_ZONEINFO
				"; is tzdata installed?)",
				v),
		       -EINVAL;
	snprintf(c->set->limits.time_zone, sizeof(c->set->limits.time_zone), "%s", v);
	return 0;
}

/* Splits v into at most max blank-separated words (in buf). Returns the count. */
static size_t words(const char *v, char *buf, size_t size, char **w, size_t max)
{
	size_t n = 0;
	char *save = NULL, *t;

	snprintf(buf, size, "%s", v);
	for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

static int k_trigger(struct pctx *c, const char *v)
{
	struct promo_rule *r = c->rule;
	char buf[256], *w[5];
	size_t n = words(v, buf, sizeof(buf), w, 4);
	long a, b;

	if (n >= 2 && strcmp(w[0], "fuel_below") == 0) {
		if (n != 2 || parse_long(w[1], 0, 100, &a) < 0)
			goto usage;
		r->trigger = PROMO_FUEL_BELOW;
		r->fuel_pct = (int)a;
		return 0;
	}
	if (n >= 1 && strcmp(w[0], "poi_enter") == 0) {
		if (n != 3 || !valid_category(w[1]) || parse_long(w[2], 10, 100000, &a) < 0)
			goto usage;
		r->trigger = PROMO_POI_ENTER;
		snprintf(r->trigger_category, sizeof(r->trigger_category), "%s", w[1]);
		r->trigger_radius_m = (uint32_t)a;
		return 0;
	}
	if (n >= 1 && strcmp(w[0], "service_due") == 0) {
		if (n != 4 || parse_long(w[1], 0, 3650, &a) < 0 || strcmp(w[2], "near_dealer") ||
		    parse_long(w[3], 10, 100000, &b) < 0)
			goto usage;
		r->trigger = PROMO_SERVICE_DUE;
		r->service_days = (int)a;
		r->trigger_radius_m = (uint32_t)b;
		return 0;
	}
	if (n >= 1 && strcmp(w[0], "driven_since_visit") == 0) {
		if (n != 3 || parse_long(w[1], 1, 1000000, &a) < 0 || !valid_category(w[2]))
			goto usage;
		r->trigger = PROMO_DRIVEN_SINCE_VISIT;
		r->driven_m = (int64_t)a * 1000;
		snprintf(r->trigger_category, sizeof(r->trigger_category), "%s", w[2]);
		return 0;
	}
	snprintf(c->why, sizeof(c->why),
		 "unknown trigger (expected fuel_below PCT, poi_enter CATEGORY RADIUS_M, "
		 "service_due DAYS near_dealer RADIUS_M or driven_since_visit KM CATEGORY)");
	return -EINVAL;
usage:
	snprintf(c->why, sizeof(c->why), "bad %s trigger (expected %s)", w[0],
		 strcmp(w[0], "fuel_below") == 0 ? "fuel_below PCT, PCT 0..100"
		 : strcmp(w[0], "poi_enter") == 0
			 ? "poi_enter CATEGORY RADIUS_M, RADIUS_M 10..100000"
		 : strcmp(w[0], "service_due") == 0
			 ? "service_due DAYS near_dealer RADIUS_M, DAYS 0..3650"
			 : "driven_since_visit KM CATEGORY, KM 1..1000000");
	return -EINVAL;
}

/* A number key of the rule into an int or uint32_t field. */
#define NUM_KEY(fn, field, type, lo, hi)                                                         \
	static int fn(struct pctx *c, const char *v)                                             \
	{                                                                                        \
		long n;                                                                          \
		if (parse_long(v, lo, hi, &n) < 0)                                               \
			return snprintf(c->why, sizeof(c->why), "expected %ld..%ld", (long)(lo), \
					(long)(hi)),                                             \
			       -EINVAL;                                                          \
		c->rule->field = (type)n;                                                        \
		return 0;                                                                        \
	}
NUM_KEY(k_rearm_pct, rearm_pct, int, 0, 100)
NUM_KEY(k_visit_radius, visit_radius_m, uint32_t, 10, 10000)
NUM_KEY(k_search_radius, search_radius_m, uint32_t, 100, 500000)
NUM_KEY(k_range, range_km_full_tank, int, 0, 5000)
NUM_KEY(k_ahead, ahead_deg, int, 1, 180)
NUM_KEY(k_area, area_radius_m, uint32_t, 0, 1000000)

#define DURATION_KEY(fn, field, min_ms)                                                          \
	static int fn(struct pctx *c, const char *v)                                             \
	{                                                                                        \
		int64_t ms;                                                                      \
		if (parse_duration(v, &ms) < 0 || ms < (min_ms))                                 \
			return snprintf(c->why, sizeof(c->why),                                  \
					"expected a duration such as 90s, 15m, 2h, 7d (at most " \
					"366d%s)",                                               \
					(min_ms) ? ", not 0" : ""),                              \
			       -EINVAL;                                                          \
		c->rule->field = ms;                                                             \
		return 0;                                                                        \
	}
DURATION_KEY(k_rearm_hold, rearm_hold_ms, 0)
DURATION_KEY(k_valid_for, valid_for_ms, 1)
DURATION_KEY(k_cooldown, cooldown_ms, 0)

static int k_poi_category(struct pctx *c, const char *v)
{
	if (!valid_category(v))
		return snprintf(c->why, sizeof(c->why),
				"expected a POI category ([a-z0-9_], 1..%d)", PROMO_CATEGORY_MAX),
		       -EINVAL;
	snprintf(c->rule->poi_category, sizeof(c->rule->poi_category), "%s", v);
	return 0;
}

static int names(struct pctx *c, const char *v, struct promo_names *out)
{
	const char *p = v;

	out->n = 0;
	for (;;) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);

		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end == p || (size_t)(end - p) > PROMO_AUDIENCE_NAME_MAX)
			return snprintf(c->why, sizeof(c->why),
					"expected a comma list of names of 1..%d bytes",
					PROMO_AUDIENCE_NAME_MAX),
			       -EINVAL;
		if (out->n == PROMO_AUDIENCE_MAX)
			return snprintf(c->why, sizeof(c->why), "more than %d names",
					PROMO_AUDIENCE_MAX),
			       -EINVAL;
		snprintf(out->name[out->n++], sizeof(out->name[0]), "%.*s", (int)(end - p), p);
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int k_fleet(struct pctx *c, const char *v)
{
	return names(c, v, &c->rule->fleets);
}

static int k_make(struct pctx *c, const char *v)
{
	return names(c, v, &c->rule->makes);
}

static int k_model(struct pctx *c, const char *v)
{
	return names(c, v, &c->rule->models);
}

static int k_channel(struct pctx *c, const char *v)
{
	if (strcmp(v, "in_car") != 0)
		return snprintf(c->why, sizeof(c->why),
				"unknown channel %.32s (this version has in_car)", v),
		       -EINVAL;
	return 0;
}

static int k_kind(struct pctx *c, const char *v)
{
	int k = offers_kind_parse(v);

	if (k < 0)
		return snprintf(c->why, sizeof(c->why),
				"unknown kind %.32s (refuel, service, inspection, loyalty, "
				"test_drive)",
				v),
		       -EINVAL;
	c->rule->kind = (enum offer_kind)k;
	return 0;
}

/* Checks a template by expanding it with every placeholder set. */
static int check_template(struct pctx *c, const char *v, char *field, size_t size)
{
	static const struct promo_vars all = { "x", "x", "x", "x", "x", "x", "x", "x", "x" };
	char out[PROMO_TEMPLATE_MAX * 2];

	if (strlen(v) >= size)
		return snprintf(c->why, sizeof(c->why), "longer than %zu bytes", size - 1), -EINVAL;
	if (promo_expand(v, &all, out, sizeof(out), c->why, sizeof(c->why)) < 0)
		return -EINVAL;
	snprintf(field, size, "%s", v);
	return 0;
}

static int k_title(struct pctx *c, const char *v)
{
	return check_template(c, v, c->rule->title, sizeof(c->rule->title));
}

static int k_body(struct pctx *c, const char *v)
{
	return check_template(c, v, c->rule->body, sizeof(c->rule->body));
}

static int k_price(struct pctx *c, const char *v)
{
	if (strlen(v) > PROMO_PRICE_MAX)
		return snprintf(c->why, sizeof(c->why), "longer than %d bytes", PROMO_PRICE_MAX),
		       -EINVAL;
	snprintf(c->rule->price, sizeof(c->rule->price), "%s", v);
	return 0;
}

static int k_codes(struct pctx *c, const char *v)
{
	struct promo_rule *r = c->rule;
	char buf[PROMO_PATH_MAX + 16], *w[4];
	size_t n = words(v, buf, sizeof(buf), w, 3);
	long len;

	if (n == 3 && strcmp(w[0], "generate") == 0) {
		if (!valid_word(w[1], PROMO_CODE_PREFIX_MAX, 1, "-") ||
		    parse_long(w[2], 4, 24, &len) < 0)
			return snprintf(c->why, sizeof(c->why),
					"expected generate PREFIX LEN (PREFIX 1..%d of A-Z 0-9 _ "
					"-, LEN 4..24)",
					PROMO_CODE_PREFIX_MAX),
			       -EINVAL;
		r->codes_mode = PROMO_CODES_GENERATE;
		snprintf(r->code_prefix, sizeof(r->code_prefix), "%s", w[1]);
		r->code_len = (int)len;
		return 0;
	}
	if (n == 2 && strcmp(w[0], "file") == 0) {
		const char *slash = strrchr(c->path, '/');
		int k;

		if (w[1][0] == '/' || !slash)
			k = snprintf(r->code_file, sizeof(r->code_file), "%s", w[1]);
		else
			k = snprintf(r->code_file, sizeof(r->code_file), "%.*s/%s",
				     (int)(slash - c->path), c->path, w[1]);
		if (k < 0 || (size_t)k >= sizeof(r->code_file))
			return snprintf(c->why, sizeof(c->why), "path too long"), -EINVAL;
		r->codes_mode = PROMO_CODES_FILE;
		free_codes(r);
		load_codes(r, c->e, c->path, c->line);
		return 0;
	}
	snprintf(c->why, sizeof(c->why), "expected generate PREFIX LEN or file PATH");
	return -EINVAL;
}

struct key {
	const char *name;
	key_fn fn;
};

static const struct key limit_keys[] = {
	{ "per_day", k_per_day },
	{ "per_week", k_per_week },
	{ "quiet_hours", k_quiet_hours },
	{ "time_zone", k_time_zone },
	{ NULL, NULL },
};

enum { RK_TRIGGER, RK_TITLE, RK_BODY }; /* the required ones, first in the table */

static const struct key rule_keys[] = {
	[RK_TRIGGER] = { "trigger", k_trigger },
	[RK_TITLE] = { "title", k_title },
	[RK_BODY] = { "body", k_body },
	{ "rearm_pct", k_rearm_pct },
	{ "rearm_hold", k_rearm_hold },
	{ "visit_radius_m", k_visit_radius },
	{ "poi_category", k_poi_category },
	{ "search_radius_m", k_search_radius },
	{ "range_km_full_tank", k_range },
	{ "ahead_deg", k_ahead },
	{ "audience.fleet", k_fleet },
	{ "audience.make", k_make },
	{ "audience.model", k_model },
	{ "channel", k_channel },
	{ "kind", k_kind },
	{ "price", k_price },
	{ "codes", k_codes },
	{ "valid_for", k_valid_for },
	{ "area_radius_m", k_area },
	{ "cooldown", k_cooldown },
	{ NULL, NULL },
};

static void rule_defaults(struct promo_rule *r, const char *name, unsigned line)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->line = line;
	r->rearm_pct = 10;
	r->visit_radius_m = 150;
	r->search_radius_m = 10000;
	r->ahead_deg = PROMO_DEFAULT_AHEAD_DEG;
	r->kind = 0; /* from the trigger, at the end of the section */
	r->codes_mode = PROMO_CODES_GENERATE;
	r->code_len = 6;
	r->valid_for_ms = 2 * 3600000LL;
	r->area_radius_m = 5000;
}

/* The end of a [rule] section: required keys, and what follows from the trigger. */
static void rule_finish(struct pctx *c, struct promo_rule *r, const unsigned *seen)
{
	static const char *const required[] = { "trigger", "title", "body" };

	for (int i = RK_TRIGGER; i <= RK_BODY; i++)
		if (!seen[i])
			perr_add(c->e, c->path, r->line, "rule %s: %s is missing", r->name,
				 required[i]);
	if (!r->kind)
		r->kind = r->trigger == PROMO_FUEL_BELOW    ? OFFER_REFUEL
			  : r->trigger == PROMO_SERVICE_DUE ? OFFER_SERVICE
							    : OFFER_LOYALTY;
	if (r->codes_mode == PROMO_CODES_GENERATE && !r->code_prefix[0])
		snprintf(r->code_prefix, sizeof(r->code_prefix), "PROMO-");
	if (r->fuel_pct + r->rearm_pct > 100 && r->trigger == PROMO_FUEL_BELOW && seen[RK_TRIGGER])
		perr_add(c->e, c->path, r->line,
			 "rule %s: fuel_below %d + rearm_pct %d is above 100 %%: it never re-arms",
			 r->name, r->fuel_pct, r->rearm_pct);
}

/* Strips a comment and surrounding blanks in place; returns the start. */
static char *strip(char *s)
{
	char *p, *end;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '#')
		return s + strlen(s); /* "" */
	for (p = s + 1; *p; p++)
		if (*p == '#' && isspace((unsigned char)p[-1])) {
			*p = '\0';
			break;
		}
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int promo_rules_parse(const char *path, const char *text, size_t len, struct promo_rules **ret,
		      char *err, size_t errlen)
{
	struct promo_rules *set = calloc(1, sizeof(*set));
	struct perr e = { .path = path, .buf = err, .size = errlen };
	struct pctx c = { .e = &e, .path = path };
	enum { S_NONE, S_LIMITS, S_RULE, S_SKIP } sec = S_NONE;
	unsigned seen[sizeof(rule_keys) / sizeof(rule_keys[0])] = { 0 }, limits_line = 0;
	const char *p = text, *end = text + len;
	char line[LINE_MAX_BYTES];

	if (errlen)
		err[0] = '\0';
	if (!set)
		return -ENOMEM;
	set->rules = calloc(PROMO_RULES_MAX, sizeof(*set->rules));
	if (!set->rules) {
		free(set);
		return -ENOMEM;
	}
	snprintf(set->path, sizeof(set->path), "%s", path);
	set->limits.per_day = 2;
	set->limits.per_week = 5;
	snprintf(set->limits.time_zone, sizeof(set->limits.time_zone), "UTC");
	c.set = set;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *s, *eq, *key, *val;
		const struct key *table, *k;

		c.line++;
		if (n >= sizeof(line)) {
			perr_add(&e, path, c.line, "line longer than %d bytes", LINE_MAX_BYTES - 1);
			p += n + 1;
			continue;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + 1;
		if (memchr(line, '\0', n)) {
			perr_add(&e, path, c.line, "a NUL byte");
			continue;
		}
		s = strip(line);
		if (!*s)
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']'), *name;

			if (sec == S_RULE)
				rule_finish(&c, c.rule, seen);
			sec = S_SKIP;
			c.rule = NULL;
			if (!close || close[1]) {
				perr_add(&e, path, c.line, "expected [limits] or [rule NAME]");
				continue;
			}
			*close = '\0';
			name = strip(s + 1);
			if (strcmp(name, "limits") == 0) {
				if (limits_line)
					perr_add(&e, path, c.line,
						 "[limits] again (the first is at line %u)",
						 limits_line);
				else
					sec = S_LIMITS;
				limits_line = limits_line ? limits_line : c.line;
				memset(seen, 0, sizeof(seen));
				continue;
			}
			if (strncmp(name, "rule", 4) != 0 || !isspace((unsigned char)name[4])) {
				perr_add(&e, path, c.line,
					 "unknown section [%.64s] (expected [limits] or [rule "
					 "NAME])",
					 name);
				continue;
			}
			name = strip(name + 4);
			if (!valid_word(name, PROMO_NAME_MAX, 0, "-")) {
				perr_add(&e, path, c.line,
					 "bad rule name %.64s (1..%d of a-z 0-9 _ -)", name,
					 PROMO_NAME_MAX);
				continue;
			}
			if (promo_rules_find(set, name)) {
				perr_add(&e, path, c.line,
					 "rule %s again (the first is at line %u)", name,
					 promo_rules_find(set, name)->line);
				continue;
			}
			if (set->n == PROMO_RULES_MAX) {
				perr_add(&e, path, c.line, "more than %d rules", PROMO_RULES_MAX);
				continue;
			}
			c.rule = &set->rules[set->n++];
			rule_defaults(c.rule, name, c.line);
			memset(seen, 0, sizeof(seen));
			sec = S_RULE;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			perr_add(&e, path, c.line, "expected key = value");
			continue;
		}
		*eq = '\0';
		key = strip(s);
		val = strip(eq + 1);
		if (sec == S_SKIP)
			continue; /* the bad header was reported */
		if (sec == S_NONE) {
			perr_add(&e, path, c.line,
				 "%.64s outside a section ([limits] or [rule NAME])", key);
			continue;
		}
		table = sec == S_LIMITS ? limit_keys : rule_keys;
		for (k = table; k->name && strcmp(k->name, key) != 0; k++)
			;
		if (!k->name) {
			perr_add(&e, path, c.line, "unknown key %.64s in %s", key,
				 sec == S_LIMITS ? "[limits]" : "a [rule]");
			continue;
		}
		if (seen[k - table]) {
			perr_add(&e, path, c.line, "%s again (the first is at line %u)", key,
				 seen[k - table]);
			continue;
		}
		seen[k - table] = c.line;
		if (!*val) {
			perr_add(&e, path, c.line, "%s: no value", key);
			continue;
		}
		c.why[0] = '\0';
		if (k->fn(&c, val) < 0)
			perr_add(&e, path, c.line, "%s: %s", key, c.why);
	}
	if (sec == S_RULE)
		rule_finish(&c, c.rule, seen);
	if (!e.count && set->n == 0)
		perr_add(&e, path, 0, "no rules (add a [rule NAME] section)");
	if (e.count) {
		perr_finish(&e);
		promo_rules_free(set);
		return -EINVAL;
	}
	*ret = set;
	return 0;
}

int promo_rules_load(const char *path, struct promo_rules **ret, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r = read_file(path, RULES_FILE_MAX, &text, &len);

	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path,
			 r == -EFBIG ? "larger than 4 MiB" : strerror(-r));
		return r;
	}
	r = promo_rules_parse(path, text, len, ret, err, errlen);
	free(text);
	return r;
}

void promo_rules_free(struct promo_rules *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free_codes(&s->rules[i]);
	free(s->rules);
	free(s);
}

const struct promo_rule *promo_rules_find(const struct promo_rules *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->rules[i].name, name) == 0)
			return &s->rules[i];
	return NULL;
}
