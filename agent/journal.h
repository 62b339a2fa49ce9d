/*
 * The open-sample journal: a small preallocated file next to queue.db
 * (queue.db-samples) that holds the samples of the open batch between two
 * seals, so that making them durable costs one pwrite and one fdatasync of
 * (usually) one 4 KiB page, instead of an SQLite commit (WAL frames, the
 * WAL index in -shm, checkpoints). See docs/agent.md, "The queue".
 *
 * Format: JOURNAL_RECORD_BYTES-byte records, record i at offset
 * i * JOURNAL_RECORD_BYTES, each carrying a generation, its own index and a
 * CRC-32 of the rest (little-endian; layout in journal.c). The file is
 * written full of zeros once, when it is created, and then only
 * overwritten in place: a flush changes no file size and no block
 * allocation, so fdatasync has no metadata to write. A generation is a
 * span of records from index 0: the queue stores the current generation in
 * queue.db (meta.journal_gen) and moves to the next one in the transaction
 * that folds the journal's samples into SQLite (a seal), so records of an
 * older generation, still on disk past the new span's end, are never read
 * again. journal_replay() reads records 0, 1, ... of one generation and
 * stops at the first that is not of it, has another index or fails its
 * CRC: a torn tail (power cut in the middle of a write) is dropped, never
 * misread.
 *
 * Like SQLite (SQLITE_POWERSAFE_OVERWRITE), it assumes that a power cut
 * during a write does not damage bytes of the file outside those written.
 * Returns are 0 or -errno; nothing is logged here (the queue logs).
 */
#ifndef PITSTOP_JOURNAL_H
#define PITSTOP_JOURNAL_H

#include <stdint.h>

#include "codec.h"

#define JOURNAL_RECORD_BYTES 64

struct journal;

/*
 * Opens (creating with mode 0600 and writing it full of zeros if it is
 * shorter) the journal at path with room for capacity records. Returns 0
 * and *ret_j, or -errno.
 */
int journal_open(const char *path, unsigned capacity, struct journal **ret_j);

/* Closes the file; records stay as written. Accepts NULL. */
void journal_close(struct journal *j);

/* Records the journal holds at most. */
unsigned journal_capacity(const struct journal *j);

/*
 * Reads records 0, 1, ... of generation gen into out (room for max), up
 * to the first record that is not of that generation, not at its index or
 * damaged. Returns how many (0..max) and, in *ret_damaged, 1 if it stopped
 * at a record of gen that failed its check (a torn tail), else 0; or
 * -errno (a read error).
 */
int journal_replay(struct journal *j, uint64_t gen, struct sample *out, unsigned max,
		   int *ret_damaged);

/*
 * Writes samples s[0..n) as records first..first+n-1 of generation gen and
 * syncs them (fdatasync): they survive a power cut once this returns 0.
 * Returns 0, -ENOSPC when first + n exceeds the capacity, or -errno.
 */
int journal_append(struct journal *j, uint64_t gen, unsigned first, const struct sample *s,
		   unsigned n);

#endif
