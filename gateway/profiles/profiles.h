/*
 * Vehicle profiles (issue 11): the facts about a vehicle the promotion
 * rules need and telemetry does not carry: make and model (a rule's
 * audience), the vehicle's time zone (quiet hours, local days and weeks),
 * the owner's dealer (a POI id, for the service_due trigger) and the
 * driver's opt-out from offers. The profiles domain owns the table
 * vehicle_profiles (gateway/profiles/schema/); others call these functions.
 *
 * A vehicle without a row has the empty profile (nothing known, not opted
 * out). Customer consent per channel arrives later with the customer record
 * and then takes over from offers_opt_out.
 */
#ifndef PITSTOP_PROFILES_H
#define PITSTOP_PROFILES_H

#include <stdint.h>

#include "db.h"
#include "vin.h"

#define PROFILES_TEXT_MAX 64 /* bytes of make, model, time_zone, dealer_poi_id */

struct profile {
	char vin[VIN_LEN + 1];
	char make[PROFILES_TEXT_MAX + 1];	   /* "" unknown */
	char model[PROFILES_TEXT_MAX + 1];	   /* "" unknown */
	char time_zone[PROFILES_TEXT_MAX + 1];	   /* "" the rules' default zone */
	char dealer_poi_id[PROFILES_TEXT_MAX + 1]; /* "" none */
	int offers_opt_out;			   /* 1: no offers at all */
	int64_t updated_ms;			   /* 0: no row */
};

struct profiles;
struct accounts;
struct accounts_principal;

/* The domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration profiles_migrations[];
extern const size_t profiles_migrations_count;

/* Prepares the statements on db (borrowed). Returns 0 and *ret, or -errno. */
int profiles_new(struct db *db, struct profiles **ret);

/* Accepts NULL. */
void profiles_free(struct profiles *p);

/*
 * vin's profile into *ret (one prepared SELECT). Returns 1 (a row), 0 (no
 * row: *ret is the empty profile of vin), or an error class.
 */
int profiles_get(struct profiles *p, const char *vin, struct profile *ret);

/*
 * Checks a profile as profiles_put() takes it: a valid VIN, texts within
 * PROFILES_TEXT_MAX of printable ASCII, a time zone of the tz database (or
 * ""). Returns 0, or -EINVAL with why (naming the field) in err.
 */
int profiles_check(const struct profile *prof, char *err, size_t errlen);

/*
 * Writes prof (checked) as vin's whole profile, in one transaction with its
 * audit row "vehicle.profile" (accounts_audit(); acc may be NULL in tests:
 * no audit row). Opens its own transaction unless one is open. Returns 0,
 * -EINVAL or an error class.
 */
int profiles_put(struct profiles *p, struct accounts *acc, const struct accounts_principal *actor,
		 const struct profile *prof, int64_t now_ms);

#endif
