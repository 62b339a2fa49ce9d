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
 * Sending. Each batch is "unsent" or "in flight"; the in-flight mark lives in
 * memory only (after a restart every batch is unsent again, which at worst
 * sends a duplicate that the gateway drops). queue_peek_unsent() returns the
 * oldest unsent batch, queue_mark_inflight() marks it, queue_ack() deletes a
 * batch (call it only when the broker acknowledged it), queue_requeue() makes
 * in-flight batches unsent again (connection lost, broker refused).
 * Internally "in flight" is every batch with seq <= a send cursor, which is
 * right because batches are always sent oldest first.
 *
 * Bound: at most max_batches batches are kept. When a seal would exceed it,
 * the oldest batch is deleted in the same transaction, counted (persistently)
 * and logged at error level.
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

struct queue;

/*
 * Opens (creating if needed) the queue database at path, keeping at most
 * max_batches batches (>= 1). Returns 0 and *ret_q, or -errno.
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
 * batch with the next sequence number, dropping the oldest batch if the bound
 * is reached, all in one transaction. Returns the number of samples sealed
 * (> 0) and *ret_seq, -ENODATA when nothing is open, or -errno (nothing
 * changed).
 */
int queue_seal(struct queue *q, size_t max_samples, uint64_t *ret_seq);

/*
 * The oldest unsent batch: *ret_seq, and a malloc'ed copy of its encoded
 * bytes in *ret_data / *ret_len (caller frees). Returns 0, -ENODATA when every
 * batch is in flight or the queue is empty, or -errno.
 */
int queue_peek_unsent(struct queue *q, uint64_t *ret_seq, uint8_t **ret_data,
		      size_t *ret_len);

/*
 * Marks seq (the batch queue_peek_unsent just returned) as in flight, and
 * with it every older batch. Returns 0 or -EINVAL if seq is older than the
 * in-flight cursor.
 */
int queue_mark_inflight(struct queue *q, uint64_t seq);

/*
 * The broker acknowledged batch seq: deletes it. Returns 0, -ENOENT if there
 * is no such batch (already acked, or dropped by the bound), or -errno.
 */
int queue_ack(struct queue *q, uint64_t seq);

/*
 * Makes in-flight batches with sequence number >= from_seq unsent again
 * (from_seq 0: all of them); they are returned by queue_peek_unsent() again,
 * oldest first.
 */
void queue_requeue(struct queue *q, uint64_t from_seq);

/* Number of stored batches, or -errno. */
int queue_count(struct queue *q);

/* Number of stored batches that are in flight, or -errno. */
int queue_inflight(struct queue *q);

/* Batches dropped by the bound over the life of this database. */
uint64_t queue_dropped(const struct queue *q);

/* The sequence number the next sealed batch will get. */
uint64_t queue_next_seq(const struct queue *q);

#endif
