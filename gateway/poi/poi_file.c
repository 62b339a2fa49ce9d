/*
 * Reading POI files (poi_file.h): CSV through libcsv (quoted fields,
 * commas and line breaks inside quotes), GeoJSON through jansson. Each row
 * goes through poi_set(), the check the API runs again on its side; every
 * bad row is reported with where it is, and no rows are returned unless
 * all of them are good.
 */
#include "poi_file.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELDS_MAX 64 /* CSV columns a row may have */
#define PROGRESS_EVERY 100000

enum { C_ID, C_NAME, C_CATEGORY, C_LAT, C_LON, C_BRAND, C_ADDRESS, C_N };
static const char *const col_name[C_N] = { "id",  "name",  "category", "lat",
					   "lon", "brand", "address" };

/* The reader's state, for both formats. */
struct reader {
	const char *path;
	void (*on_error)(const char *msg, void *arg);
	void (*progress)(size_t rows, void *arg);
	void *arg;
	size_t errors, rows, cap;
	struct poi *out; /* owned until returned */
	int fatal;	 /* -E2BIG, -ENOMEM */
	/* CSV */
	size_t line, rec_line;
	char *fields[FIELDS_MAX]; /* owned, this record's */
	size_t nfields;
	int too_many, header_done, header_bad;
	int col[C_N]; /* the column of each field, -1: absent */
};

static void say(struct reader *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports one bad row (the first POI_FILE_ERRORS_SHOWN of them), fmt after "FILE". */
static void say(struct reader *s, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	int n;

	if (++s->errors > POI_FILE_ERRORS_SHOWN || !s->on_error)
		return;
	n = snprintf(msg, sizeof(msg), "%s", s->path);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	s->on_error(msg, s->arg);
}

/* Keeps a good row (only while there are no errors: then nothing is returned). */
static void keep(struct reader *s, const struct poi *p)
{
	if (s->rows >= POI_IMPORT_ROWS_MAX) {
		s->fatal = -E2BIG;
		return;
	}
	if (!s->errors) {
		if (s->rows == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 1024;
			void *q = realloc(s->out, cap * sizeof(*s->out));

			if (!q) {
				s->fatal = -ENOMEM;
				return;
			}
			s->out = q;
			s->cap = cap;
		}
		s->out[s->rows] = *p;
	}
	s->rows++;
	if (s->progress && s->rows % PROGRESS_EVERY == 0)
		s->progress(s->rows, s->arg);
}

/* A coordinate: the whole of text is a finite number. Returns 0 or -EINVAL. */
static int coord_parse(const char *text, double *ret)
{
	char *end;

	errno = 0;
	*ret = strtod(text, &end);
	return end == text || *end || errno || !isfinite(*ret) ? -EINVAL : 0;
}

/* ---- CSV --------------------------------------------------------------- */

static void on_field(void *p, size_t len, void *arg)
{
	struct reader *s = arg;

	(void)len;
	if (s->nfields == 0)
		s->rec_line = s->line;
	if (s->nfields == FIELDS_MAX) {
		s->too_many = 1;
		return;
	}
	s->fields[s->nfields] = strdup(p ? (const char *)p : "");
	if (!s->fields[s->nfields])
		s->fatal = -ENOMEM;
	else
		s->nfields++;
}

/* The header: which column holds which field. */
static void csv_header(struct reader *s)
{
	const char *missing = NULL;

	for (int c = 0; c < C_N; c++)
		s->col[c] = -1;
	for (size_t i = 0; i < s->nfields; i++) {
		const char *f = s->fields[i];

		if (i == 0 && strncmp(f, "\xef\xbb\xbf", 3) == 0)
			f += 3; /* a UTF-8 byte order mark, as spreadsheets write */
		for (int c = 0; c < C_N; c++)
			if (s->col[c] < 0 && strcasecmp(f, col_name[c]) == 0)
				s->col[c] = (int)i;
	}
	for (int c = C_LON; c >= C_ID; c--)
		if (s->col[c] < 0)
			missing = col_name[c];
	s->header_bad = missing != NULL;
	if (missing)
		say(s,
		    ":%zu: the header line must name id,name,category,lat,lon "
		    "(brand,address optional): no column %s",
		    s->rec_line, missing);
	s->header_done = 1;
}

static void csv_row(struct reader *s)
{
	const char *v[C_N];
	double lat, lon;
	struct poi p;
	char why[200];

	for (int c = 0; c < C_N; c++)
		v[c] = s->col[c] >= 0 && (size_t)s->col[c] < s->nfields ? s->fields[s->col[c]]
									: NULL;
	if (!v[C_ID] || !v[C_NAME] || !v[C_CATEGORY] || !v[C_LAT] || !v[C_LON]) {
		say(s, ":%zu: %zu columns, fewer than the header names", s->rec_line, s->nfields);
		return;
	}
	if (coord_parse(v[C_LAT], &lat) < 0) {
		say(s, ":%zu: lat: '%.40s' is not a number", s->rec_line, v[C_LAT]);
		return;
	}
	if (coord_parse(v[C_LON], &lon) < 0) {
		say(s, ":%zu: lon: '%.40s' is not a number", s->rec_line, v[C_LON]);
		return;
	}
	if (poi_set(&p, v[C_ID], v[C_NAME], v[C_CATEGORY], v[C_BRAND], v[C_ADDRESS], lat, lon, why,
		    sizeof(why)) < 0) {
		say(s, ":%zu: %s", s->rec_line, why);
		return;
	}
	keep(s, &p);
}

static void on_row(int c, void *arg)
{
	struct reader *s = arg;

	(void)c;
	if (s->nfields == 0)
		s->rec_line = s->line;
	if (!s->header_done)
		csv_header(s);
	else if (s->header_bad)
		; /* said once, at the header */
	else if (s->too_many)
		say(s, ":%zu: more than %d columns", s->rec_line, FIELDS_MAX);
	else if (!(s->nfields == 1 && !s->fields[0][0])) /* a blank line */
		csv_row(s);
	for (size_t i = 0; i < s->nfields; i++)
		free(s->fields[i]);
	s->nfields = 0;
	s->too_many = 0;
}

static int csv_read(struct reader *s, FILE *f)
{
	const int opts = CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI;
	struct csv_parser p;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r = 0;

	if (csv_init(&p, (unsigned char)opts) != 0)
		return -ENOMEM;
	while (!s->fatal && (len = getline(&line, &cap, f)) >= 0) {
		s->line++;
		if (csv_parse(&p, line, (size_t)len, on_field, on_row, s) != (size_t)len) {
			say(s, ":%zu: %s", s->line, csv_strerror(csv_error(&p)));
			for (size_t i = 0; i < s->nfields; i++)
				free(s->fields[i]);
			s->nfields = 0;
			csv_free(&p);
			if (csv_init(&p, (unsigned char)opts) != 0)
				return -ENOMEM;
		}
	}
	if (ferror(f))
		r = -EIO;
	if (!s->fatal && csv_fini(&p, on_field, on_row, s) != 0)
		say(s, ":%zu: %s", s->line, csv_strerror(csv_error(&p)));
	for (size_t i = 0; i < s->nfields; i++)
		free(s->fields[i]);
	csv_free(&p);
	free(line);
	if (!s->header_done && !s->fatal)
		say(s, ":1: empty file: expected a header line id,name,category,lat,lon");
	return r;
}

/* ---- GeoJSON ----------------------------------------------------------- */

/* A string property (or NULL when absent or not a string). */
static const char *prop_str(json_t *props, const char *key)
{
	return json_string_value(json_object_get(props, key));
}

static void geojson_feature(struct reader *s, size_t i, json_t *ft)
{
	json_t *props = json_object_get(ft, "properties"), *geom = json_object_get(ft, "geometry");
	json_t *xy = json_object_get(geom, "coordinates"), *jid;
	const char *type = json_string_value(json_object_get(geom, "type")), *id;
	char idbuf[32], why[200];
	struct poi p;

	if (!json_is_object(ft) || !json_is_object(props)) {
		say(s, ": feature %zu: expected a Feature with properties", i + 1);
		return;
	}
	if (!type || strcmp(type, "Point") != 0 || json_array_size(xy) < 2 ||
	    !json_is_number(json_array_get(xy, 0)) || !json_is_number(json_array_get(xy, 1))) {
		say(s, ": feature %zu: geometry: expected a Point [lon, lat]", i + 1);
		return;
	}
	/* The id: properties.id, else the Feature's own id (a string or a number). */
	jid = json_object_get(props, "id");
	if (!jid)
		jid = json_object_get(ft, "id");
	id = json_string_value(jid);
	if (json_is_integer(jid)) {
		snprintf(idbuf, sizeof(idbuf), "%lld", (long long)json_integer_value(jid));
		id = idbuf;
	}
	if (poi_set(&p, id, prop_str(props, "name"), prop_str(props, "category"),
		    prop_str(props, "brand"), prop_str(props, "address"),
		    json_number_value(json_array_get(xy, 1)),
		    json_number_value(json_array_get(xy, 0)), why, sizeof(why)) < 0) {
		say(s, ": feature %zu: %s", i + 1, why);
		return;
	}
	keep(s, &p);
}

static int geojson_read(struct reader *s, FILE *f)
{
	json_error_t je;
	json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je), *features, *ft;
	const char *type;
	size_t i;

	if (!root) {
		s->line = (size_t)(je.line > 0 ? je.line : 1);
		say(s, ":%zu: not JSON: %s", s->line, je.text);
		return 0;
	}
	type = json_string_value(json_object_get(root, "type"));
	features = json_object_get(root, "features");
	if (!type || strcmp(type, "FeatureCollection") != 0 || !json_is_array(features)) {
		say(s, ": expected a GeoJSON FeatureCollection with features");
		json_decref(root);
		return 0;
	}
	json_array_foreach(features, i, ft)
	{
		if (s->fatal)
			break;
		geojson_feature(s, i, ft);
	}
	json_decref(root);
	return 0;
}

/* ---- either ------------------------------------------------------------ */

static enum poi_file_format guess(const char *path, FILE *f)
{
	const char *dot = strrchr(path, '.');
	int c;

	if (dot && strcasecmp(dot, ".csv") == 0)
		return POI_FILE_CSV;
	if (dot && (strcasecmp(dot, ".geojson") == 0 || strcasecmp(dot, ".json") == 0))
		return POI_FILE_GEOJSON;
	while ((c = getc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n')
		;
	rewind(f);
	return c == '{' ? POI_FILE_GEOJSON : POI_FILE_CSV;
}

/* Says one whole-file message, "FILE: what". */
static void tell(struct reader *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tell(struct reader *s, const char *fmt, ...)
{
	char what[300], msg[600];
	va_list ap;

	if (!s->on_error)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: %s", s->path, what);
	s->on_error(msg, s->arg);
}

int poi_file_read(const char *path, enum poi_file_format format,
		  void (*on_error)(const char *msg, void *arg),
		  void (*progress)(size_t rows, void *arg), void *arg, struct poi **ret)
{
	struct reader s = { .path = path, .on_error = on_error, .progress = progress, .arg = arg };
	FILE *f = fopen(path, "r");
	int r;

	*ret = NULL;
	if (!f) {
		r = errno == ENOENT ? -ENOENT : -EIO;
		tell(&s, "%s", strerror(errno));
		return r;
	}
	r = (format == POI_FILE_AUTO ? guess(path, f) : format) == POI_FILE_CSV
		    ? csv_read(&s, f)
		    : geojson_read(&s, f);
	fclose(f);
	if (r == -EIO)
		tell(&s, "%s", strerror(EIO));
	else if (s.fatal == -E2BIG)
		tell(&s, "more than %d rows: split the file", POI_IMPORT_ROWS_MAX);
	if (s.errors > POI_FILE_ERRORS_SHOWN)
		tell(&s, "%zu more bad rows not shown", s.errors - POI_FILE_ERRORS_SHOWN);
	r = r < 0 ? r : s.fatal ? s.fatal : s.errors ? -EINVAL : (int)s.rows;
	if (r < 0)
		free(s.out);
	else
		*ret = s.out;
	return r;
}
