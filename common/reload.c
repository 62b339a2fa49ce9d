/*
 * Configuration reload helpers; see reload.h. Options are compared and
 * moved by their table entry (type and offset), so a daemon's reload needs
 * no per-option code besides acting on the values it took.
 */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int reload_same(const struct config_option *o, const void *a, const void *b)
{
	const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;

	switch (o->type) {
	case CONFIG_STRING: {
		const char *sa = *(char *const *)(const void *)fa;
		const char *sb = *(char *const *)(const void *)fb;

		if (!sa || !sb)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	}
	case CONFIG_INT:
	case CONFIG_BOOL:
		return *(const int *)(const void *)fa == *(const int *)(const void *)fb;
	case CONFIG_DOUBLE:
		return *(const double *)(const void *)fa == *(const double *)(const void *)fb;
	}
	return 0;
}

int reload_listed(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

void reload_format(const struct config_option *o, const void *conf, char *buf, size_t len)
{
	const char *f = (const char *)conf + o->offset;

	switch (o->type) {
	case CONFIG_STRING: {
		const char *s = *(char *const *)(const void *)f;

		snprintf(buf, len, "%s", s ? s : "");
		return;
	}
	case CONFIG_INT:
		snprintf(buf, len, "%d", *(const int *)(const void *)f);
		return;
	case CONFIG_BOOL:
		snprintf(buf, len, "%s", *(const int *)(const void *)f ? "true" : "false");
		return;
	case CONFIG_DOUBLE:
		snprintf(buf, len, "%g", *(const double *)(const void *)f);
		return;
	}
	snprintf(buf, len, "?");
}

int reload_diff(const struct config_option *table, const void *running, const void *fresh,
		const char *const *reloadable, reload_fn fn, void *arg)
{
	int restart = 0;

	for (const struct config_option *o = table; o->name; o++) {
		int r;

		if (reload_same(o, running, fresh))
			continue;
		r = reload_listed(reloadable, o->name);
		restart += !r;
		if (fn)
			fn(o, r, running, fresh, arg);
	}
	return restart;
}

/* Swaps the field of o between a and b. */
static void swap_field(const struct config_option *o, void *a, void *b)
{
	char *fa = (char *)a + o->offset, *fb = (char *)b + o->offset;
	unsigned char tmp[sizeof(double) > sizeof(char *) ? sizeof(double) : sizeof(char *)];
	size_t n = o->type == CONFIG_STRING   ? sizeof(char *)
		   : o->type == CONFIG_DOUBLE ? sizeof(double)
					      : sizeof(int);

	memcpy(tmp, fa, n);
	memcpy(fa, fb, n);
	memcpy(fb, tmp, n);
}

int reload_take(const struct config_option *table, void *running, void *fresh,
		const char *const *reloadable)
{
	int changed = 0;

	for (const struct config_option *o = table; o->name; o++) {
		if (!reload_listed(reloadable, o->name))
			continue;
		changed += !reload_same(o, running, fresh);
		swap_field(o, running, fresh);
	}
	return changed;
}

/* reload_fn of reload_apply(): one log line per change. */
static void log_change(const struct config_option *o, int reloadable, const void *running,
		       const void *fresh, void *arg)
{
	char was[128], now[128];

	(void)arg;
	if (!reloadable) {
		log_warn("reload: %s changed; it takes effect only after a restart", o->name);
		return;
	}
	reload_format(o, running, was, sizeof(was));
	reload_format(o, fresh, now, sizeof(now));
	log_info("reload: %s %s -> %s", o->name, was, now);
}

int reload_apply(const struct config_option *table, void *running, void *fresh,
		 const char *const *reloadable, int *ret_applied)
{
	int restart = reload_diff(table, running, fresh, reloadable, log_change, NULL);
	int applied = reload_take(table, running, fresh, reloadable);

	if (ret_applied)
		*ret_applied = applied;
	return restart;
}
