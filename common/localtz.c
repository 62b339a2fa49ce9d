/* Local time in a named zone; see localtz.h. */
#include "localtz.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_MS 900000LL /* a quarter of an hour */

static int name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > LOCALTZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && !strchr("_/+-", c))
			return 0;
	}
	return 1;
}

int localtz_valid(const char *name)
{
	char path[sizeof(LOCALTZ_ZONEINFO) + LOCALTZ_NAME_MAX + 2], magic[4];
	struct stat st;
	int fd, ok;

	if (!name || !name_ok(name))
		return 0;
	if (strcmp(name, "UTC") == 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", LOCALTZ_ZONEINFO, name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ok = read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	     memcmp(magic, "TZif", 4) == 0;
	close(fd);
	return ok;
}

long localtz_offset(struct localtz_cache *c, const char *zone, int64_t now_ms)
{
	int64_t bucket = now_ms / BUCKET_MS;
	time_t t = (time_t)(now_ms / 1000);
	char old[256];
	const char *cur;
	struct localtz_entry *e;
	struct tm tm;
	int had;

	if (!*zone || strcmp(zone, "UTC") == 0)
		return 0;
	for (size_t i = 0; i < LOCALTZ_CACHE; i++)
		if (c->e[i].bucket == bucket && strcmp(c->e[i].zone, zone) == 0)
			return c->e[i].off_s;
	cur = getenv("TZ");
	had = cur != NULL;
	snprintf(old, sizeof(old), "%s", cur ? cur : "");
	setenv("TZ", zone, 1);
	tzset();
	memset(&tm, 0, sizeof(tm));
	localtime_r(&t, &tm);
	if (had)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	e = &c->e[c->next++ % LOCALTZ_CACHE];
	snprintf(e->zone, sizeof(e->zone), "%s", zone);
	e->bucket = bucket;
	e->off_s = tm.tm_gmtoff;
	return e->off_s;
}
