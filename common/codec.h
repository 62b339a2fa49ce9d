/*
 * Encoding and decoding of the protocol v1 messages (proto/pitstop.proto)
 * with protobuf-c: telemetry batches (columnar, delta-coded), events, agent
 * status and offers. Everything that comes from the network is bounded here
 * before anything is allocated, so callers can trust the sizes they get.
 *
 * All functions return 0 on success or a negative errno: -EMSGSIZE for input
 * or output over the limits below, -EBADMSG for bytes that are not a valid
 * message (or decode to out-of-range values), -EINVAL for bad arguments,
 * -ENOMEM.
 */
#ifndef PITSTOP_CODEC_H
#define PITSTOP_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Limits of protocol v1; docs/protocol.md repeats them. */
#define CODEC_MAX_SAMPLES 3600		   /* per batch: one hour at 1 Hz */
#define CODEC_MAX_BATCH_BYTES (128 * 1024) /* encoded telemetry batch */
#define CODEC_MAX_EVENT_BYTES 4096
#define CODEC_MAX_ACK_SEQS 4096 /* seqs in one TelemetryAck */
/* seqs as varints (10 bytes at most), their packed header, epoch and clock */
#define CODEC_MAX_ACK_BYTES (CODEC_MAX_ACK_SEQS * 10 + 48)
#define CODEC_MAX_STATUS_BYTES 1024
#define CODEC_MAX_OFFER_BYTES 8192 /* a SignedOffer, signature included */
#define CODEC_MAX_ID 64		   /* offer id, incl. NUL */
#define CODEC_MAX_TITLE 128
#define CODEC_MAX_BODY 1024
#define CODEC_MAX_PROMO 64
#define CODEC_MAX_REASON 128
#define CODEC_MAX_VERSION 32
#define CODEC_MAX_SIG 160 /* DER ECDSA P-256 is <= 72 */
#define CODEC_MAX_KEY_ID 65

/* Presence bits of struct sample.present (same as the wire flags). */
#define SAMPLE_ODOMETER (1u << 0)
#define SAMPLE_FUEL (1u << 1)
#define SAMPLE_POSITION (1u << 2)
#define SAMPLE_SPEED (1u << 3)
#define SAMPLE_HEADING (1u << 4)
/*
 * The odometer value is an estimate (speed integrated over time by the car,
 * which cannot read its odometer); only with SAMPLE_ODOMETER (alone it is
 * -EINVAL on encode and cleared on decode). A flag bit, not a column: older readers
 * ignore it (docs/protocol.md).
 */
#define SAMPLE_ODOMETER_EST (1u << 5)
/* Every SAMPLE_* bit this version knows. */
#define SAMPLE_KNOWN                                                                       \
	(SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING | \
	 SAMPLE_ODOMETER_EST)

/* GNSS fix mode, as on the wire (and as libgps's MODE_* values). */
enum fix_mode {
	FIX_UNKNOWN = 0,
	FIX_NONE = 1,
	FIX_2D = 2,
	FIX_3D = 3,
};

/*
 * One sample; a field is meaningful only when its bit is set in present.
 * The ranges below (inclusive) are enforced on encode (-EINVAL) and, after
 * un-delta-ing, on decode (-EBADMSG); fields whose bit is clear are ignored
 * on encode and 0 after decode.
 */
struct sample {
	int64_t time_ms;       /* unix milliseconds, always present, 0..2^53 */
	unsigned present;      /* SAMPLE_* bits; no others on encode */
	enum fix_mode fix;     /* FIX_UNKNOWN..FIX_3D */
	int64_t odometer_m;    /* metres, 0..10000000000 (1e10 m) */
	int32_t fuel_permille; /* 0..1000 (0.1 % units) */
	int32_t lat_e7;	       /* -900000000..900000000 */
	int32_t lon_e7;	       /* -1800000000..1800000000 */
	int32_t speed_cms;     /* cm/s, 0..19999 (under 200 m/s) */
	int32_t heading_cdeg;  /* 0..35999 */
};

/*
 * Encodings of a TelemetryBatch (docs/protocol.md): v1 is the delta-coded
 * columns (fields 2-9) every reader knows; v2 is the bit-packed stream in
 * field 11 (delta or delta-of-delta per column, exp-Golomb coded), about a
 * third of v1's size, which readers before it refuse as empty. Both are
 * lossless; codec_decode_batch() reads both.
 */
#define CODEC_BATCH_V1 1
#define CODEC_BATCH_V2 2

/*
 * Encodes n samples (1..CODEC_MAX_SAMPLES) as a TelemetryBatch of queue
 * epoch `epoch` (0: none, a pre-epoch car) with sequence number seq, in
 * encoding v2. On success *ret_buf is malloc'ed (caller frees) and *ret_len
 * its size; out-of-range sample values give -EINVAL.
 */
int codec_encode_batch(uint64_t epoch, uint64_t seq, const struct sample *samples, size_t n,
		       uint8_t **ret_buf, size_t *ret_len);

/* codec_encode_batch() in a given encoding (CODEC_BATCH_V1 or _V2; else -EINVAL). */
int codec_encode_batch_version(int version, uint64_t epoch, uint64_t seq,
			       const struct sample *samples, size_t n, uint8_t **ret_buf,
			       size_t *ret_len);

/*
 * Decodes a TelemetryBatch of either encoding (one that carries both is
 * -EBADMSG). Rejects (-EMSGSIZE) len > CODEC_MAX_BATCH_BYTES or
 * more than CODEC_MAX_SAMPLES samples, and (-EBADMSG) columns whose lengths
 * disagree with the flags, a zero seq, or values out of range after
 * un-delta-ing. On success *ret_samples is malloc'ed (caller frees) and
 * *ret_epoch (when ret_epoch is not NULL) is the batch's epoch, 0 if absent.
 */
int codec_decode_batch(const uint8_t *buf, size_t len, uint64_t *ret_epoch, uint64_t *ret_seq,
		       struct sample **ret_samples, size_t *ret_n);

/*
 * TelemetryAck: the batches (seqs, 1..CODEC_MAX_ACK_SEQS of them, none 0) of
 * queue epoch `epoch` the gateway has stored for one vehicle, and the
 * gateway's clock when it sent it (unix ms, 0 for none). decode returns a
 * malloc'ed array, the epoch in *ret_epoch and the time in
 * *ret_gateway_time_ms (either may be NULL).
 */
int codec_encode_ack(uint64_t epoch, int64_t gateway_time_ms, const uint64_t *seqs, size_t n,
		     uint8_t **ret_buf, size_t *ret_len);
int codec_decode_ack(const uint8_t *buf, size_t len, uint64_t *ret_epoch,
		     int64_t *ret_gateway_time_ms, uint64_t **ret_seqs, size_t *ret_n);

enum offer_action {
	OFFER_ACTION_SHOWN = 1,
	OFFER_ACTION_ACCEPTED = 2,
	OFFER_ACTION_DISMISSED = 3,
	OFFER_ACTION_REJECTED = 4,
	OFFER_ACTION_DELIVERED = 5, /* verified and stored in the car */
};

struct offer_event {
	int64_t time_ms;
	char offer_id[CODEC_MAX_ID];
	enum offer_action action;
	char reason[CODEC_MAX_REASON]; /* "" when none */
};

int codec_encode_offer_event(const struct offer_event *ev, uint8_t **ret_buf, size_t *ret_len);
int codec_decode_offer_event(const uint8_t *buf, size_t len, struct offer_event *ret_ev);

enum agent_state {
	AGENT_ONLINE = 1,
	AGENT_OFFLINE = 2,
};

struct agent_status {
	enum agent_state state;
	int64_t time_ms;
	char agent_version[CODEC_MAX_VERSION];
	int has_queue_depth;
	uint32_t queue_depth;
};

int codec_encode_status(const struct agent_status *st, uint8_t **ret_buf, size_t *ret_len);
int codec_decode_status(const uint8_t *buf, size_t len, struct agent_status *ret_st);

enum offer_kind {
	OFFER_REFUEL = 1,
	OFFER_SERVICE = 2,
	OFFER_INSPECTION = 3,
	OFFER_LOYALTY = 4,
	OFFER_TEST_DRIVE = 5,
};

struct offer {
	char id[CODEC_MAX_ID];
	enum offer_kind kind;
	char title[CODEC_MAX_TITLE];
	char body[CODEC_MAX_BODY];
	char promo_code[CODEC_MAX_PROMO];
	int64_t valid_from_ms;
	int64_t valid_until_ms;
	int has_area;
	int32_t area_lat_e7;
	int32_t area_lon_e7;
	uint32_t area_radius_m;
	char vin[18];
};

/* Serializes an Offer (the bytes that get signed). */
int codec_encode_offer(const struct offer *o, uint8_t **ret_buf, size_t *ret_len);

/* Parses Offer bytes; strings longer than the struct's fields give -EBADMSG. */
int codec_decode_offer(const uint8_t *buf, size_t len, struct offer *ret_o);

/*
 * A SignedOffer as carried on the wire. decode returns pointers into a
 * malloc'ed copy owned by the struct: free with codec_signed_offer_free().
 */
struct signed_offer {
	uint8_t *offer; /* owned: serialized Offer */
	size_t offer_len;
	uint8_t *sig; /* owned: DER signature */
	size_t sig_len;
	char key_id[CODEC_MAX_KEY_ID];
};

int codec_encode_signed_offer(const uint8_t *offer, size_t offer_len, const uint8_t *sig,
			      size_t sig_len, const char *key_id, uint8_t **ret_buf,
			      size_t *ret_len);
int codec_decode_signed_offer(const uint8_t *buf, size_t len, struct signed_offer *ret_so);
void codec_signed_offer_free(struct signed_offer *so);

#endif
