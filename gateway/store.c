/*
 * Backend selection and the small helpers every backend shares (names of
 * reject reasons and offer states). The backends themselves live in
 * store_<backend>.c; see store.h for the interface.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_sqlite.h"

static const char *const reject_names[STORE_REJECT_COUNT] = {
	[STORE_REJECT_BAD_TOPIC] = "bad_topic", [STORE_REJECT_BAD_VIN] = "bad_vin",
	[STORE_REJECT_OVERSIZED] = "oversized", [STORE_REJECT_MALFORMED] = "malformed",
	[STORE_REJECT_STORAGE] = "storage",
};

const char *store_reject_name(enum store_reject r)
{
	if ((unsigned)r >= STORE_REJECT_COUNT)
		return NULL;
	return reject_names[r];
}

const char *store_offer_state_name(enum store_offer_state st)
{
	switch (st) {
	case STORE_OFFER_SENT:
		return "sent";
	case STORE_OFFER_SHOWN:
		return "shown";
	case STORE_OFFER_ACCEPTED:
		return "accepted";
	case STORE_OFFER_DISMISSED:
		return "dismissed";
	case STORE_OFFER_REJECTED:
		return "rejected";
	}
	return "?";
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Dispatches on the URL scheme. Returns what the backend's open returns;
 * err always says why on failure.
 */
int store_open(const char *url_or_path, enum store_mode mode, struct store **ret_store, char *err,
	       size_t errlen)
{
	if (!url_or_path || !*url_or_path) {
		snprintf(err, errlen, "no database given");
		return -EINVAL;
	}
	if (has_prefix(url_or_path, "postgresql://") || has_prefix(url_or_path, "postgres://")) {
		snprintf(err, errlen,
			 "PostgreSQL is not supported yet (planned backend); use a SQLite path");
		return -ENOTSUP;
	}
	if (has_prefix(url_or_path, "sqlite:"))
		url_or_path += strlen("sqlite:");
	else if (strstr(url_or_path, "://")) {
		snprintf(err, errlen, "unknown database URL scheme in '%s'", url_or_path);
		return -ENOTSUP;
	}
	if (!*url_or_path) {
		snprintf(err, errlen, "empty SQLite path");
		return -EINVAL;
	}
	return store_sqlite_open(url_or_path, mode, ret_store, err, errlen);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}
