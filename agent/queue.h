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
 * Bound: at most max_batches batches are kept. When a seal would exceed it,
 * the oldest batch is deleted (whatever its delivery state) in the same
 * transaction, counted (persistently) and logged at error level.
 *
 * Durability: WAL journal with synchronous=FULL, so every committed sample or
 * batch has reached the storage when the call returns. Each queue_add_sample
 * costs one transaction and one fsync; see docs/agent.md for the eMMC cost.
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

struct queue;

/*
 * Opens (creating if needed, with a new epoch) the queue database at path,
 * keeping at most max_batches batches (>= 1). Returns 0 and *ret_q, or
 * -errno.
 */
int queue_open(const char *path, unsigned max_batches, struct queue **ret_q);

/* Closes the database; open samples stay stored. Accepts NULL. */
void queue_close(struct queue *q);

/*
 * Stores one open sample (committed and synced on return). Returns 0,
 * -EINVAL for values outside the protocol's ranges, or -errno for a storage
 * error (-ENOSPC disk full, -EIO, ...): the sample is then not stored.
 */
int queue_add_sample(struct queue *q, const struct sample *s);

/* Number of open (not yet sealed) samples, or -errno. */
int queue_open_samples(struct queue *q);

/*
 * Seals up to max_samples (1..CODEC_MAX_SAMPLES) oldest open samples into one
 * batch of the queue's epoch with the next sequence number, dropping the
 * oldest batch if the bound is reached, all in one transaction. Returns the
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

/*
 * This queue's epoch: random and non-zero for a queue created by this agent,
 * 0 for one created before epochs existed. It never changes. A receipt of
 * another epoch is not for this queue (see uplink.c).
 */
uint64_t queue_epoch(const struct queue *q);

/* The sequence number the next sealed batch will get. */
uint64_t queue_next_seq(const struct queue *q);

#endif
