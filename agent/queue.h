/*
 * The agent's power-safe store-and-forward queue, in SQLite (queue.db).
 *
 * Two stages. A sample is written to the database the moment it is taken
 * (queue_add_sample) and stays "open". queue_seal() then moves up to n open
 * samples, oldest first, into one encoded TelemetryBatch with the next
 * sequence number, in one transaction: after a crash either the samples are
 * still open or the batch exists, never both or neither. The next sequence
 * number is stored in the same database, so sequence numbers keep increasing
 * across restarts and are never reused (not even after a batch is deleted).
 *
 * Epoch. A new queue database draws a random non-zero 64-bit epoch
 * (getrandom(2)), stored with the schema in the same transaction, and every
 * batch it seals carries it: (VIN, epoch, seq) identifies a batch, so the
 * seq 1 of a queue created afresh (a wiped flash, a new head unit) is not
 * mistaken for the seq 1 of the queue before it. A queue.db created by an
 * agent that predates epochs keeps epoch 0 (see queue_create in queue.c).
 *
 * Delivery. Each batch is "unsent", "in flight" (published, waiting for
 * the broker's PUBACK) or "sent" (the broker has it, waiting for the
 * gateway's receipt); a receipt deletes it. queue_peek_unsent() returns the
 * oldest unsent batch, queue_mark_inflight() marks it published,
 * queue_mark_sent() records the PUBACK, queue_delete() applies a receipt
 * (whatever state the batch is in: a receipt may come before the PUBACK),
 * queue_requeue() makes in-flight batches unsent again (connection lost,
 * broker refused) and queue_expire_sent() sent ones whose receipt is overdue.
 * A PUBACK deletes nothing: the broker may still lose the batch (see
 * docs/agent.md). In flight and sent are kept in memory only, in a table of
 * at most QUEUE_MAX_UNCONFIRMED batches (after a restart every batch is
 * unsent again, which at worst sends a duplicate that the gateway
 * acknowledges and drops). While the table is full nothing more is handed
 * out, so a gateway that never answers costs at most that many batches per
 * receipt timeout, not the whole queue.
 *
 * Bounds: at most max_batches batches are kept; when a seal would exceed
 * it, the oldest batch is deleted (whatever its delivery state) in the same
 * transaction. With a byte cap (queue_set_limits: max_bytes, the sum of the
 * encoded batches' sizes), a seal that would exceed it first thins the
 * oldest unsent batches (keeps every thin_every-th sample, re-encoded under
 * the same epoch and seq: the gateway keeps whichever version of (epoch,
 * seq) reaches it first, so a receipt names the batch either way), each at
 * most once, oldest first, until the new batch fits; only when nothing is
 * left to thin does it drop the oldest batches. Thinned samples and batches
 * and dropped batches are counted persistently (queue_stats) and logged.
 * The queue holds telemetry only: offer events wait in the uplink's own
 * buffer and the status is rebuilt at every connect, so neither is ever
 * evicted for telemetry.
 *
 * Durability: WAL journal with synchronous=FULL, so every commit has reached
 * the storage when it returns. With max_loss_ms 0 (the default after
 * queue_open) every queue_add_sample is one transaction and one fsync, a
 * row of the samples table; with max_loss_ms > 0 samples wait in memory and
 * are made durable before the oldest of them is max_loss_ms old
 * (queue_flush_due(), judged from the time between adds), or at
 * queue_flush_now(), by appending them to the sample journal
 * (<path>-samples, journal.h: one pwrite and one fdatasync, no SQLite
 * commit); a seal folds the journal's samples into its batch in its own
 * transaction (sealed samples are never written as rows), and queue_open
 * takes back what a crash left in the journal. Without a usable journal, or
 * when it is full, flushes write rows instead. A power cut then loses at
 * most the samples of the last max_loss_ms. See docs/agent.md and
 * docs/performance.md for the cost.
 *
 * SQLite errors are translated to -errno here and logged once with the
 * operation that failed (repeats of the same failure are summarised).
 * Single-threaded: use one queue from one thread.
 */
#ifndef PITSTOP_QUEUE_H
#define PITSTOP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Batches published and not yet confirmed by a receipt (in flight + sent). */
#define QUEUE_MAX_UNCONFIRMED 64
/* Open samples held in memory at most (written at once when full). */
#define QUEUE_MAX_PENDING 1024
#define QUEUE_MAX_LOSS_MS 60000 /* largest max_loss_ms */
#define QUEUE_THIN_EVERY 2	/* default thin_every */

/* Limits of queue_set_limits(); all 0 is queue_open's default. */
struct queue_limits {
	unsigned max_loss_ms; /* 0..QUEUE_MAX_LOSS_MS: samples kept in memory
			       * at most this long; 0 = each written at once */
	size_t max_bytes;     /* cap on the stored batches' bytes; 0 = none */
	unsigned thin_every;  /* thinning keeps every Nth sample, N >= 2;
			       * 0 = QUEUE_THIN_EVERY */
};

/* Counters of queue_stats(). */
struct queue_stats {
	int64_t batches;	  /* stored batches */
	uint64_t bytes;		  /* their encoded size */
	unsigned pending;	  /* open samples in memory, not yet written */
	uint64_t dropped;	  /* batches dropped by a bound, ever */
	uint64_t thinned_batches; /* batches thinned by the byte cap, ever */
	uint64_t thinned_samples; /* samples thinning removed, ever */
};

struct queue;

/*
 * Opens (creating if needed, with a new epoch) the queue database at path,
 * keeping at most max_batches batches (>= 1), and its sample journal
 * <path>-samples: the samples a crash left there become open samples rows
 * (queue_open_samples() counts them). Returns 0 and *ret_q, or -errno.
 */
int queue_open(const char *path, unsigned max_batches, struct queue **ret_q);

/*
 * Sets the memory buffering and byte cap (see "Bounds" and "Durability"
 * above); applies from the next add or seal. Returns 0, or -EINVAL
 * (max_loss_ms too large, thin_every 1).
 */
int queue_set_limits(struct queue *q, const struct queue_limits *lim);

/*
 * Closes the database; stored open samples stay stored, samples still in
 * memory are lost (queue_flush_now() first). Accepts NULL.
 */
void queue_close(struct queue *q);

/*
 * Takes one open sample. With max_loss_ms 0 it is committed and synced on
 * return; else it is kept in memory and written when due (see above).
 * Returns 0, -EINVAL for values outside the protocol's ranges, or -errno for
 * a storage error (-ENOSPC disk full, -EIO, ...) when the sample could not
 * be kept (max_loss_ms 0, or memory full of samples that cannot be written).
 */
int queue_add_sample(struct queue *q, const struct sample *s);

/*
 * Writes the samples held in memory now, in one transaction (ignition off,
 * shutdown). Returns how many (0 when none), or -errno (they stay in memory).
 */
int queue_flush_now(struct queue *q);

/*
 * queue_flush_now() if it is due: the oldest sample in memory would be
 * max_loss_ms old by the next add (judged from the time between the last
 * two adds). Call it after each add and the seal that may follow it (a seal
 * writes the samples itself, so the two need not both commit): then at most
 * max_loss_ms of samples are in memory. Without the call, queue_add_sample
 * writes them once the oldest is max_loss_ms old (one interval later).
 * Returns how many were written (0: none due), or -errno.
 */
int queue_flush_due(struct queue *q);

/* Number of open (not yet sealed) samples, stored or in memory, or -errno. */
int queue_open_samples(struct queue *q);

/*
 * Seals up to max_samples (1..CODEC_MAX_SAMPLES) oldest open samples (stored
 * or in memory) into one batch of the queue's epoch with the next sequence
 * number, thinning or dropping older batches if a bound is reached, all in
 * one transaction. Returns the
 * number of samples sealed (> 0) and *ret_seq, -ENODATA when nothing is open,
 * or -errno (nothing changed).
 */
int queue_seal(struct queue *q, size_t max_samples, uint64_t *ret_seq);

/*
 * The oldest unsent batch: *ret_seq, and a malloc'ed copy of its encoded
 * bytes in *ret_data / *ret_len (caller frees). Returns 0, -ENODATA when no
 * batch is unsent, -ENOBUFS when QUEUE_MAX_UNCONFIRMED batches are already
 * in flight or sent (publish nothing more until receipts or timeouts free
 * room), or -errno.
 */
int queue_peek_unsent(struct queue *q, uint64_t *ret_seq, uint8_t **ret_data, size_t *ret_len);

/*
 * queue_peek_unsent() among the batches with seq > after_seq only (the
 * uplink's live batches, sealed since it connected). Same returns.
 */
int queue_peek_unsent_after(struct queue *q, uint64_t after_seq, uint64_t *ret_seq,
			    uint8_t **ret_data, size_t *ret_len);

/*
 * Marks seq (the batch queue_peek_unsent just returned) as in flight.
 * Returns 0, -EINVAL for seq 0, -EEXIST if it is already in flight or sent,
 * or -ENOBUFS if QUEUE_MAX_UNCONFIRMED batches are.
 */
int queue_mark_inflight(struct queue *q, uint64_t seq);

/*
 * The broker acknowledged batch seq (PUBACK) at now_ms (monotonic): it goes
 * from in flight to sent and waits for its receipt; nothing is deleted.
 * Returns 0, or -ENOENT if seq is not in flight (a receipt already deleted
 * it, or a requeue made it unsent again: it will be published again).
 */
int queue_mark_sent(struct queue *q, uint64_t seq, uint64_t now_ms);

/*
 * The gateway's receipt names seq (or the batch can never be sent): deletes
 * it, whatever its state. Returns 1 when a batch was deleted, 0 when there is
 * no such batch (already deleted, dropped by the bound, never existed), or
 * -errno (the batch stays).
 */
int queue_delete(struct queue *q, uint64_t seq);

/*
 * Makes in-flight batches with sequence number >= from_seq unsent again
 * (from_seq 0: all of them); they are returned by queue_peek_unsent() again,
 * oldest first. Sent batches keep waiting for their receipt.
 */
void queue_requeue(struct queue *q, uint64_t from_seq);

/*
 * Makes every sent batch acknowledged by the broker at or before
 * sent_before_ms unsent again (its receipt is overdue); they are returned by
 * queue_peek_unsent() again, oldest first. Returns how many.
 */
int queue_expire_sent(struct queue *q, uint64_t sent_before_ms);

/*
 * The earliest PUBACK time (now_ms of queue_mark_sent) of the sent batches
 * in *ret_ms. Returns 0, or -ENODATA when no batch is sent.
 */
int queue_oldest_sent(const struct queue *q, uint64_t *ret_ms);

/* Number of stored batches, or -errno. */
int queue_count(struct queue *q);

/* Number of batches in flight (published, no PUBACK yet). */
int queue_inflight(const struct queue *q);

/* Number of sent batches (PUBACK received, waiting for the receipt). */
int queue_sent(const struct queue *q);

/* Batches dropped by the bound over the life of this database. */
uint64_t queue_dropped(const struct queue *q);

/* The queue's counters (cached, no I/O). */
void queue_stats(const struct queue *q, struct queue_stats *ret);

/*
 * This queue's epoch: random and non-zero for a queue created by this agent,
 * 0 for one created before epochs existed. It never changes. A receipt of
 * another epoch is not for this queue (see uplink.c).
 */
uint64_t queue_epoch(const struct queue *q);

/* The sequence number the next sealed batch will get. */
uint64_t queue_next_seq(const struct queue *q);

#endif
