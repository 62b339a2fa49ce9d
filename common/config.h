/*
 * Table-driven configuration files, shared by the agent, the gateway and
 * pitstopctl. A file is lines of "name = value"; blank lines and lines whose
 * first non-blank character is '#' are ignored, and a '#' at the start of a
 * value or after whitespace starts a comment that runs to the end of the line
 * ("vin = X  # my car"; a '#' inside a word, "a#b", is part of the value).
 * There is no quoting: a value cannot hold " #". Surrounding blanks are
 * trimmed. A name given twice is an error, not "the last one wins". Each
 * program describes its options once, in a table (name, type, range,
 * default, help), and gets a filled-in struct back.
 *
 * Errors are reported as "file:line: what is wrong". A reload parses into a
 * fresh struct: the caller swaps it in only when config_load() succeeded, so
 * a bad edit never half-applies.
 */
#ifndef PITSTOP_CONFIG_H
#define PITSTOP_CONFIG_H

#include <stddef.h>

enum config_type {
	CONFIG_STRING, /* char *, owned by the struct, freed by config_free() */
	CONFIG_INT,    /* int, checked against [min, max] */
	CONFIG_DOUBLE, /* double, checked against [min, max] */
	CONFIG_BOOL,   /* int 0/1; accepts true/false, yes/no, on/off, 1/0 */
};

/*
 * Optional check of a CONFIG_STRING value, run where the value is parsed so
 * a rejection carries its file:line. Returns 0, or < 0 with a short reason
 * in msg ("not a valid VIN").
 */
typedef int (*config_check_fn)(const char *value, char *msg, size_t msglen);

struct config_option {
	const char *name;
	enum config_type type;
	size_t offset;	       /* offsetof() the field in the caller's struct */
	double min, max;       /* numeric range, inclusive */
	const char *def;       /* default as text, parsed like a file value; NULL = none */
	const char *help;      /* one line, for --help and docs */
	config_check_fn check; /* CONFIG_STRING only; NULL = any text */
};

#define CONFIG_END                                             \
	{                                                      \
		NULL, CONFIG_STRING, 0, 0, 0, NULL, NULL, NULL \
	}

/*
 * Zeroes the fields in table, then applies every default. Returns 0, or
 * -EINVAL if a default does not parse (a programmer error, also asserted).
 */
int config_defaults(const struct config_option *table, void *conf);

/*
 * Applies defaults, then reads path. On failure returns -errno (-ENOENT,
 * -EINVAL for a bad line, ...), writes one "file:line: message" (or
 * "file: message") into err, and frees whatever it had set in conf.
 */
int config_load(const char *path, const struct config_option *table, void *conf, char *err,
		size_t errlen);

/*
 * Number of options in table (before CONFIG_END).
 */
size_t config_count(const struct config_option *table);

/*
 * Like config_load(), and on success ret_lines[i] (config_count(table)
 * entries, or NULL) is the line of path that set table[i], 0 when the file
 * did not (the default stands): for checks that span options and still name
 * a file:line. On failure ret_lines holds nothing of use.
 */
int config_load_lines(const char *path, const struct config_option *table, void *conf,
		      unsigned *ret_lines, char *err, size_t errlen);

/* The line of option name in lines (from config_load_lines()); 0: not set. */
unsigned config_line(const struct config_option *table, const unsigned *lines, const char *name);

/*
 * Sets one option by name from text, as if read from a file ("where" is used
 * as the location in the message). Lets command lines override files.
 */
int config_set(const struct config_option *table, void *conf, const char *name, const char *value,
	       const char *where, char *err, size_t errlen);

/* Frees the strings owned by conf (not conf itself). Accepts NULL. */
void config_free(const struct config_option *table, void *conf);

#endif
