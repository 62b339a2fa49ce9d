/*
 * Configuration files; see config.h for the format and the contract.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_LINE 4096

static const struct config_option *config_find(const struct config_option *table, const char *name)
{
	for (; table->name; table++)
		if (strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

static int parse_bool(const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* Stores value into the field of o; on error writes a bare message into err. */
static int config_apply(const struct config_option *o, void *conf, const char *value, char *err,
			size_t errlen)
{
	char *field = (char *)conf + o->offset;
	char *end;

	switch (o->type) {
	case CONFIG_STRING: {
		char *copy;
		char why[128];

		if (o->check && o->check(value, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: '%s' %s", o->name, value, why);
			return -EINVAL;
		}
		copy = strdup(value);

		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case CONFIG_INT: {
		long long v;

		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || end == value || *end) {
			snprintf(err, errlen, "%s: '%s' is not a whole number", o->name, value);
			return -EINVAL;
		}
		if ((double)v < o->min || (double)v > o->max) {
			snprintf(err, errlen, "%s: %lld is out of range [%.0f, %.0f]", o->name, v,
				 o->min, o->max);
			return -ERANGE;
		}
		*(int *)field = (int)v;
		return 0;
	}
	case CONFIG_DOUBLE: {
		double v;

		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !isfinite(v)) {
			snprintf(err, errlen, "%s: '%s' is not a number", o->name, value);
			return -EINVAL;
		}
		if (v < o->min || v > o->max) {
			snprintf(err, errlen, "%s: %g is out of range [%g, %g]", o->name, v, o->min,
				 o->max);
			return -ERANGE;
		}
		*(double *)field = v;
		return 0;
	}
	case CONFIG_BOOL: {
		int b = parse_bool(value);

		if (b < 0) {
			snprintf(err, errlen, "%s: '%s' is not true or false", o->name, value);
			return -EINVAL;
		}
		*(int *)field = b;
		return 0;
	}
	}
	assert(0 && "unknown config type");
	return -EINVAL;
}

void config_free(const struct config_option *table, void *conf)
{
	if (!conf)
		return;
	for (; table->name; table++) {
		if (table->type == CONFIG_STRING) {
			char **field = (char **)((char *)conf + table->offset);

			free(*field);
			*field = NULL;
		}
	}
}

int config_defaults(const struct config_option *table, void *conf)
{
	char err[256];

	for (const struct config_option *o = table; o->name; o++) {
		char *field = (char *)conf + o->offset;

		switch (o->type) {
		case CONFIG_STRING:
			*(char **)field = NULL;
			break;
		case CONFIG_INT:
		case CONFIG_BOOL:
			*(int *)field = 0;
			break;
		case CONFIG_DOUBLE:
			*(double *)field = 0;
			break;
		}
	}
	for (const struct config_option *o = table; o->name; o++) {
		if (o->def && config_apply(o, conf, o->def, err, sizeof(err)) < 0) {
			assert(0 && "config default does not parse");
			return -EINVAL;
		}
	}
	return 0;
}

int config_set(const struct config_option *table, void *conf, const char *name, const char *value,
	       const char *where, char *err, size_t errlen)
{
	const struct config_option *o = config_find(table, name);
	char msg[512];
	int r;

	if (!o) {
		snprintf(err, errlen, "%s: unknown option '%s'", where, name);
		return -EINVAL;
	}
	r = config_apply(o, conf, value, msg, sizeof(msg));
	if (r < 0)
		snprintf(err, errlen, "%s: %s", where, msg);
	return r;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Reads one line, its '\n' included, into buf (NUL-terminated) and returns
 * its length, NUL bytes inside it counted (fgets() cannot tell them from the
 * end); 0 at end of file or on a read error. A line longer than size - 1
 * bytes is cut there, and the rest comes with the next call.
 */
static size_t read_line(FILE *f, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while (n + 1 < size && (c = getc(f)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

/*
 * Cuts a trailing comment off value in place: a '#' at its start or after
 * whitespace begins one ("vin = X # my car"); a '#' inside a word ("a#b")
 * is kept.
 */
static void cut_comment(char *value)
{
	for (char *p = value; *p; p++) {
		if (*p == '#' && (p == value || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

size_t config_count(const struct config_option *table)
{
	size_t n = 0;

	while (table[n].name)
		n++;
	return n;
}

unsigned config_line(const struct config_option *table, const unsigned *lines, const char *name)
{
	const struct config_option *o = config_find(table, name);

	return o && lines ? lines[o - table] : 0;
}

int config_load_lines(const char *path, const struct config_option *table, void *conf,
		      unsigned *ret_lines, char *err, size_t errlen)
{
	char line[CONFIG_MAX_LINE + 2];
	char where[512];
	unsigned lineno = 0;
	unsigned *lines = ret_lines;
	size_t len, n = config_count(table);
	FILE *f = NULL;
	int r = 0;

	config_defaults(table, conf);
	if (!lines) {
		lines = calloc(n ? n : 1, sizeof(*lines));
		if (!lines) {
			snprintf(err, errlen, "%s: out of memory", path);
			return -ENOMEM;
		}
	} else {
		memset(lines, 0, n * sizeof(*lines));
	}
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((len = read_line(f, line, sizeof(line))) > 0) {
		const struct config_option *o;
		char *name, *value, *eq;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (len > CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s: line longer than %d bytes", where,
				 CONFIG_MAX_LINE);
			r = -EINVAL;
			goto out;
		}
		/* The text after a NUL would be dropped unseen (and a long line's rest
		 * read as a line of its own): refuse it. */
		if (strlen(line) != len) {
			snprintf(err, errlen, "%s: NUL byte in line", where);
			r = -EINVAL;
			goto out;
		}
		name = trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		eq = strchr(name, '=');
		if (!eq) {
			snprintf(err, errlen, "%s: expected 'name = value'", where);
			r = -EINVAL;
			goto out;
		}
		*eq = '\0';
		name = trim(name);
		value = eq + 1;
		cut_comment(value);
		value = trim(value);
		if (*name == '\0') {
			snprintf(err, errlen, "%s: missing option name before '='", where);
			r = -EINVAL;
			goto out;
		}
		/* A second value would win silently (the agent once ran as the
		 * second VIN with the first VIN's certificate). */
		o = config_find(table, name);
		if (o && lines[o - table]) {
			snprintf(err, errlen, "%s: key '%s' given twice (first at line %u)", where,
				 name, lines[o - table]);
			r = -EINVAL;
			goto out;
		}
		r = config_set(table, conf, name, value, where, err, errlen);
		if (r < 0)
			goto out;
		lines[o - table] = lineno;
	}
	if (ferror(f)) {
		r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
out:
	if (f)
		fclose(f);
	if (lines != ret_lines)
		free(lines);
	if (r < 0)
		config_free(table, conf);
	return r;
}

int config_load(const char *path, const struct config_option *table, void *conf, char *err,
		size_t errlen)
{
	return config_load_lines(path, table, conf, NULL, err, errlen);
}
