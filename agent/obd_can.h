/*
 * OBD-II on a CAN bus (ISO 15765-4, 11-bit identifiers, 500 or 250 kbit/s
 * as the interface is set up): the frame codec, pure and unit-tested, and
 * a vehicle-signal source (signals.h) on a SocketCAN raw socket.
 *
 * Requests go to the functional address 0x7DF as a single frame
 * "02 01 PID" padded to 8 bytes; ECUs answer from 0x7E8..0x7EF. Answers are
 * ISO-TP (ISO 15765-2): a single frame, or a first frame, to which we send
 * a flow control (clear to send, no block limit, no separation time) to the
 * ECU's physical address (answer id - 8), then consecutive frames. Every
 * answer to the PIDs we sample fits a single frame; the multi-frame path is
 * there for bitmaps of chatty gateways and is bounded by OBD_CAN_MAX_MSG.
 *
 * Why a raw socket and our own ISO-TP rather than CAN_ISOTP sockets: an
 * ISO-TP socket is bound to one (tx, rx) pair, so a functional request
 * answered by several ECUs needs a socket per ECU, and answers are single
 * frames anyway; the raw socket works on every kernel. docs/agent.md.
 */
#ifndef PITSTOP_OBD_CAN_H
#define PITSTOP_OBD_CAN_H

#include <stddef.h>
#include <stdint.h>

#define OBD_CAN_FUNCTIONAL_ID 0x7DF
#define OBD_CAN_RESPONSE_FIRST 0x7E8
#define OBD_CAN_NECUS 8 /* 0x7E8..0x7EF */
#define OBD_CAN_PAD 0x00
#define OBD_CAN_MAX_MSG 64 /* bytes of one reassembled answer */

/* ISO-TP protocol control information (high nibble of byte 0). */
#define ISOTP_SINGLE 0x0
#define ISOTP_FIRST 0x1
#define ISOTP_CONSECUTIVE 0x2
#define ISOTP_FLOW 0x3

/* Builds the 8 data bytes of a service 01 request for pid (id 0x7DF). */
void obd_can_request(uint8_t pid, uint8_t ret_data[8]);

/* Builds a flow control frame: clear to send, block size 0, STmin 0. */
void obd_can_flow_control(uint8_t ret_data[8]);

/* Reassembly of the answers of up to OBD_CAN_NECUS ECUs. */
struct obd_can_rx {
	struct {
		uint8_t buf[OBD_CAN_MAX_MSG];
		size_t need; /* announced length; 0 = nothing in progress */
		size_t have;
		uint8_t sn; /* next sequence number expected */
	} ecu[OBD_CAN_NECUS];
};

/* One complete answer. */
struct obd_can_msg {
	unsigned ecu;	     /* 0..7: answer id 0x7E8 + ecu */
	const uint8_t *data; /* borrowed from the rx struct until the next feed */
	size_t len;
};

/* What obd_can_rx_feed() says. */
enum {
	OBD_CAN_MORE = 0,    /* frame taken, the message is not complete */
	OBD_CAN_MESSAGE = 1, /* *ret_msg is a complete answer */
	OBD_CAN_SEND_FC = 2, /* a first frame: send obd_can_flow_control() to *ret_fc_id */
};

/*
 * Feeds one received frame (11-bit id, dlc data bytes). Returns one of the
 * values above, -ENOENT for an id that is not an OBD answer (ignored),
 * -EBADMSG for a malformed frame (bad length, a consecutive frame out of
 * sequence or without a first frame: that ECU's message is dropped).
 */
int obd_can_rx_feed(struct obd_can_rx *rx, uint32_t id, const uint8_t *data, size_t dlc,
		    struct obd_can_msg *ret_msg, uint32_t *ret_fc_id);

/* Drops every message in progress. */
void obd_can_rx_reset(struct obd_can_rx *rx);

struct loop;
struct signals;

struct obd_can_config {
	const char *interface; /* e.g. can0 (copied) */
	int timeout_ms;
	int poll_interval_ms;
	const char *odo_path; /* estimated-odometer file (copied), or NULL */
};

/*
 * Creates the source: a CAN_RAW socket bound to the interface, filtered to
 * 0x7E8..0x7EF. An interface that does not exist (yet) or is down is
 * retried with a backoff. Returns 0 and *ret_s, or -ENOMEM.
 */
int obd_can_open(struct loop *loop, const struct obd_can_config *conf, struct signals **ret_s);

#endif
