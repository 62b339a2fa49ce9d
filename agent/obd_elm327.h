/*
 * OBD-II through an ELM327-compatible adapter on a serial device (termios,
 * raw, non-blocking, watched by the loop): a vehicle-signal source
 * (signals.h). The adapter is set up with ATZ, ATE0 (echo off), ATL0, ATS1,
 * ATH0 (headers off: answers are the service bytes only, one line per ECU,
 * which is all the PIDs we sample need) and ATSP0 (automatic protocol);
 * then obd_poll.h decides what to ask. One request is outstanding at a
 * time, with a loop timer as its timeout; nothing blocks the loop.
 *
 * Faults: NO DATA, SEARCHING..., UNABLE TO CONNECT, BUS INIT: ...ERROR and
 * other bus errors, STOPPED, '?', negative responses (7F 01 NRC), echo
 * lines, garbage bytes and timeouts are each handled (docs/agent.md, "OBD-II").
 * EOF, EIO, ENODEV or a hang-up close the device; it is reopened by path
 * (following a symlink again, so a replugged adapter behind the same udev
 * symlink is found) with a backoff, and every change of state is logged
 * once with its cause.
 */
#ifndef PITSTOP_OBD_ELM327_H
#define PITSTOP_OBD_ELM327_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct signals;

/* Bounds of one answer (text up to the '>' prompt) and of what it holds. */
#define ELM327_MAX_ANSWER 1024
#define ELM327_MAX_MSGS 8   /* ECUs answering one request */
#define ELM327_MAX_BYTES 64 /* bytes in one ECU's answer */

/* What one answer says. */
enum elm327_kind {
	ELM327_DATA,	  /* hex lines: msgs[] */
	ELM327_TEXT,	  /* another reply (OK, ELM327 v1.5, ...) */
	ELM327_NO_DATA,	  /* no ECU answered */
	ELM327_UNABLE,	  /* UNABLE TO CONNECT: no protocol found */
	ELM327_BUS_ERROR, /* BUS INIT: ...ERROR, CAN ERROR, BUS ERROR, ... */
	ELM327_STOPPED,	  /* the adapter was interrupted */
	ELM327_UNKNOWN,	  /* '?': command not understood */
	ELM327_GARBAGE,	  /* nothing of the above could be read */
};

struct elm327_answer {
	enum elm327_kind kind;
	char text[64]; /* the line that decided a non-DATA kind (for logs) */
	size_t nmsgs;
	struct {
		uint8_t b[ELM327_MAX_BYTES];
		size_t len;
	} msgs[ELM327_MAX_MSGS];
};

/*
 * Parses one answer (the bytes before the '>' prompt) to command cmd.
 * Robust to echo (a line equal to cmd), spaces or none between hex bytes,
 * CR and LF line ends, SEARCHING..., BUS INIT: ... lines, multi-frame
 * ("0: ..." after a length line) and several ECUs' lines, and bytes that
 * are not printable (dropped). Lines that are none of these are garbage
 * and ignored; if nothing else remains the kind is ELM327_GARBAGE.
 */
void elm327_parse(const char *buf, size_t len, const char *cmd, struct elm327_answer *ret);

/* How the source is set up. */
struct elm327_config {
	const char *device;   /* path, may be a symlink (copied) */
	int baud;	      /* 9600, 19200, 38400, 57600, 115200, 230400 */
	int timeout_ms;	      /* per request */
	int poll_interval_ms; /* pause between requests */
	const char *odo_path; /* estimated-odometer file (copied), or NULL */
};

/* 1 if baud is one elm327_open() accepts. */
int elm327_baud_valid(int baud);

/*
 * Creates the source on loop and starts opening the device (a device that
 * is missing now is retried: the adapter may be plugged in later). Returns
 * 0 and *ret_s, or -errno (-EINVAL for a bad baud rate, -ENOMEM).
 */
int elm327_open(struct loop *loop, const struct elm327_config *conf, struct signals **ret_s);

#endif
