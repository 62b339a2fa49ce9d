/*
 * pitstopctl's poi commands (issue 11, docs/poi.md), clients of the
 * gateway's API (ctl_api.h): import a CSV or GeoJSON file (checked whole
 * first: every bad line is said as FILE:LINE and nothing is sent), list
 * the POIs near a point, show and delete one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "poi.h"
#include "poi_file.h"

#define EXIT_USAGE 2

const char ctl_poi_usage[] =
	"  poi import FILE              points of interest: CSV id,name,category,lat,lon\n"
	"                               [,brand,address] or GeoJSON Point features\n"
	"  poi near --lat LAT --lon LON --radius-m R [--category C] [--limit N]\n"
	"                               the POIs within R metres, nearest first\n"
	"  poi show ID                  one POI\n"
	"  poi delete ID                delete one POI\n";

/* Row i of the file as the API takes it. */
static json_t *poi_row_json(size_t i, void *arg)
{
	const struct poi *p = (const struct poi *)arg + i;

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:f}", "id", p->id, "name", p->name, "category",
			 p->category, "brand", p->brand, "address", p->address, "lat", p->lat,
			 "lon", p->lon);
}

static int poi_import(struct ctl_client *c, const struct ctl_api_opts *o, const char *path)
{
	struct poi *rows = NULL;
	long long id = 0;
	int n, r;

	n = poi_file_read(path, POI_FILE_AUTO, ctl_file_error, ctl_file_progress, (void *)path,
			  &rows);
	if (n == -EINVAL)
		return ctl_fail(1, "%s: nothing imported: fix the lines above", path);
	if (n < 0)
		return ctl_fail(1, "%s: nothing imported (%s)", path, strerror(-n));
	r = ctl_import_send(c, o, path, "/api/v1/poi/imports",
			    json_pack("{s:s,s:i}", "source", path, "rows", n), (size_t)n,
			    POI_IMPORT_CHUNK, poi_row_json, rows, &id);
	free(rows);
	if (r == 0 && !o->json)
		printf("%s: %d POIs imported (import %lld)\n", path, n, id);
	return r;
}

static int poi_near_cmd(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	const char *lat = NULL, *lon = NULL, *radius = NULL, *cat = NULL, *limit = NULL;
	char path[512], *esc = NULL;
	json_t *reply = NULL, *it;
	size_t i;
	int r;

	for (int k = 2; k < argc; k++) {
		const char **dst = strcmp(argv[k], "--lat") == 0	? &lat
				   : strcmp(argv[k], "--lon") == 0	? &lon
				   : strcmp(argv[k], "--radius-m") == 0 ? &radius
				   : strcmp(argv[k], "--category") == 0 ? &cat
				   : strcmp(argv[k], "--limit") == 0	? &limit
									: NULL;

		if (!dst || k + 1 == argc)
			return ctl_fail(EXIT_USAGE,
					"poi near: unexpected '%s'; try pitstopctl --help",
					argv[k]);
		*dst = argv[++k];
	}
	if (!lat || !lon || !radius)
		return ctl_fail(EXIT_USAGE, "poi near: expected --lat LAT --lon LON --radius-m R");
	if (cat && !(esc = curl_easy_escape(c->curl, cat, 0)))
		return ctl_fail(1, "out of memory");
	/* The API checks the values and names a bad one. */
	r = snprintf(path, sizeof(path), "/api/v1/poi/near?lat=%s&lon=%s&radius_m=%s%s%s%s%s", lat,
		     lon, radius, esc ? "&category=" : "", esc ? esc : "", limit ? "&limit=" : "",
		     limit ? limit : "");
	curl_free(esc);
	if (r < 0 || (size_t)r >= sizeof(path) || strpbrk(lat, "&#? ") || strpbrk(lon, "&#? ") ||
	    strpbrk(radius, "&#? ") || (limit && strpbrk(limit, "&#? ")))
		return ctl_fail(EXIT_USAGE, "poi near: bad argument");
	r = ctl_run(c, o, "poi near", "GET", path, NULL, 200, &reply);
	if (r == 0 && !o->json) {
		printf("%-20s %-10s %10s %11s %12s  %s\n", "ID", "CATEGORY", "DISTANCE_M", "LAT",
		       "LON", "NAME");
		json_array_foreach(json_object_get(reply, "items"), i, it)
			printf("%-20s %-10s %10.1f %11.7f %12.7f  %s\n", ctl_str(it, "id"),
			       ctl_str(it, "category"),
			       json_number_value(json_object_get(it, "distance_m")),
			       json_number_value(json_object_get(it, "lat")),
			       json_number_value(json_object_get(it, "lon")), ctl_str(it, "name"));
		if (json_is_true(json_object_get(reply, "truncated")))
			printf("(the limit was reached: there may be more; see --limit)\n");
	}
	json_decref(reply);
	return r;
}

/* "show ID" or "delete ID": GET or DELETE /api/v1/poi/ID. */
static int poi_one(struct ctl_client *c, const struct ctl_api_opts *o, const char *method,
		   const char *id)
{
	char path[300], *esc = curl_easy_escape(c->curl, id, 0);
	json_t *reply = NULL;
	int r;

	if (!esc)
		return ctl_fail(1, "out of memory");
	snprintf(path, sizeof(path), "/api/v1/poi/%s", esc);
	curl_free(esc);
	r = ctl_run(c, o, strcmp(method, "GET") == 0 ? "poi show" : "poi delete", method, path,
		    NULL, 200, &reply);
	if (r == 0 && !o->json && strcmp(method, "GET") == 0)
		printf("id:       %s\nname:     %s\ncategory: %s\nbrand:    %s\naddress:  %s\n"
		       "position: %.7f, %.7f\n",
		       ctl_str(reply, "id"), ctl_str(reply, "name"), ctl_str(reply, "category"),
		       ctl_str(reply, "brand"), ctl_str(reply, "address"),
		       json_number_value(json_object_get(reply, "lat")),
		       json_number_value(json_object_get(reply, "lon")));
	else if (r == 0 && !o->json)
		printf("POI %s deleted\n", id);
	json_decref(reply);
	return r;
}

int ctl_poi_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "import") == 0)
		return poi_import(c, o, argv[2]);
	if (argc >= 2 && strcmp(argv[1], "near") == 0)
		return poi_near_cmd(c, o, argc, argv);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return poi_one(c, o, "GET", argv[2]);
	if (argc == 3 && strcmp(argv[1], "delete") == 0)
		return poi_one(c, o, "DELETE", argv[2]);
	return ctl_fail(EXIT_USAGE,
			"poi: expected import FILE, near --lat --lon --radius-m, show ID or "
			"delete ID; try pitstopctl --help");
}
