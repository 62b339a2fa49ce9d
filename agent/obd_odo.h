/*
 * The odometer of a car that does not give one over OBD-II (PID 0xA6 is
 * missing on many): distance integrated from vehicle speed (trapezoids
 * between speed readings), continuing from the last known odometer, which
 * is kept in a small file in state_dir so a restart continues where the
 * last run stopped. Readings of the real odometer (when the car has 0xA6)
 * replace the estimate and become the new starting point.
 *
 * A car whose odometer was never read and without a saved value starts at
 * 0 km: the estimate is then the distance driven since the agent first ran
 * on it, and is marked estimated like every estimate. Gaps between speed
 * readings longer than OBD_ODO_MAX_GAP_MS (the adapter unplugged, the car
 * not answering) are not integrated: that distance is lost, not guessed.
 */
#ifndef PITSTOP_OBD_ODO_H
#define PITSTOP_OBD_ODO_H

#include <stdint.h>

#define OBD_ODO_MAX_GAP_MS 5000
/* The file is rewritten when the value moved this far, and at close. */
#define OBD_ODO_SAVE_KM 0.1

struct obd_odo {
	char *path;	  /* owned; NULL: nothing persisted */
	double km;	  /* current value (real or estimated) */
	int have_speed;	  /* last_kmh/last_ms hold a reading */
	double last_kmh;  /* previous speed reading */
	uint64_t last_ms; /* its monotonic time */
	double saved_km;  /* value in the file */
	int saved;	  /* the file holds saved_km */
};

/*
 * Opens the estimator persisted at path (may be NULL; copied). A missing
 * file starts at 0 km; an unreadable or malformed one is logged and
 * ignored. Returns 0 or -ENOMEM.
 */
int obd_odo_init(struct obd_odo *o, const char *path);

/* A reading of the car's own odometer. */
void obd_odo_real(struct obd_odo *o, double km);

/* A speed reading (km/h) at monotonic time now_ms: integrates since the last. */
void obd_odo_speed(struct obd_odo *o, uint64_t now_ms, double kmh);

/* Forgets the last speed reading (the link to the car was lost). */
void obd_odo_gap(struct obd_odo *o);

/* Writes the value to the file now if it changed. Returns 0 or -errno. */
int obd_odo_save(struct obd_odo *o);

/* Saves and frees what o owns. */
void obd_odo_fini(struct obd_odo *o);

#endif
