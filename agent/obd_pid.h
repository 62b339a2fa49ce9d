/*
 * OBD-II service 01 PIDs, decoded without any I/O, shared by the ELM327
 * (obd_elm327.c) and SocketCAN (obd_can.c) transports: the supported-PID
 * bitmaps (PIDs 0x00, 0x20, ..., 0xA0) and the three values the agent
 * samples, fuel level (0x2F), vehicle speed (0x0D) and odometer (0xA6).
 * Formulas are SAE J1979's: 0x2F A*100/255 %, 0x0D A km/h, 0xA6
 * ((A<<24)+(B<<16)+(C<<8)+D)/10 km.
 */
#ifndef PITSTOP_OBD_PID_H
#define PITSTOP_OBD_PID_H

#include <stddef.h>
#include <stdint.h>

#define OBD_PID_SPEED 0x0D
#define OBD_PID_FUEL 0x2F
#define OBD_PID_ODOMETER 0xA6
/* The last bitmap PID we ask for: it covers 0xA1..0xC0, so 0xA6. */
#define OBD_PID_BITMAP_LAST 0xA0

/* Service 01 request and its positive response id; the negative response id. */
#define OBD_SERVICE_CURRENT 0x01
#define OBD_RESPONSE_OFFSET 0x40
#define OBD_NEGATIVE 0x7F

/* Which PIDs 0x01..0xC0 a vehicle supports (the union over its ECUs). */
struct obd_pid_support {
	uint8_t map[OBD_PID_BITMAP_LAST / 8 + 4]; /* bit p-1 (LSB first in each byte): PID p */
	unsigned have;				  /* bit b/0x20: bitmap b answered */
};

/* 1 if pid is a supported-PID bitmap request (0x00, 0x20, ..., 0xE0). */
int obd_pid_is_bitmap(uint8_t pid);

/*
 * Folds the 4 data bytes of bitmap PID base (0x00..0xA0) into s (ORed, so
 * several ECUs' answers combine). Returns 1 if the bitmap says the next one
 * (base + 0x20) is supported, 0 if not, -EINVAL for a base out of range.
 */
int obd_pid_support_add(struct obd_pid_support *s, uint8_t base, const uint8_t data[4]);

/* 1 if a bitmap answered so far says pid (0x01..0xC0) is supported, else 0. */
int obd_pid_supported(const struct obd_pid_support *s, uint8_t pid);

/* A decoded value. */
struct obd_value {
	uint8_t pid;
	double value; /* % for 0x2F, km/h for 0x0D, km for 0xA6 */
};

/*
 * Decodes the data bytes of a positive response to pid (the bytes after
 * 41 pid). Returns 0 and *ret, -EBADMSG if fewer bytes than the PID needs
 * (more are ignored), -ENOTSUP for a PID this module does not decode.
 */
int obd_pid_decode(uint8_t pid, const uint8_t *data, size_t len, struct obd_value *ret);

/*
 * Checks one ECU's service 01 answer msg (service byte first) to a request
 * for pid. Returns 0 and the data after "41 pid" in *ret_data / *ret_len; a
 * positive value, the negative response code, for "7F 01 NRC"; -EBADMSG for
 * anything else (another PID's answer, too short).
 */
int obd_pid_answer(const uint8_t *msg, size_t len, uint8_t pid, const uint8_t **ret_data,
		   size_t *ret_len);

#endif
