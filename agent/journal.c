/*
 * The open-sample journal; see journal.h for the contract and docs/agent.md
 * for why it exists.
 *
 * Record layout (JOURNAL_RECORD_BYTES = 64, little-endian; a power of two,
 * so a record never straddles a 4 KiB page and a flush of a few samples
 * dirties one page):
 *    0 u64 generation     8 u32 index          12 u32 present
 *   16 i64 time_ms       24 i64 odometer_m     32 i32 lat_e7
 *   36 i32 lon_e7        40 i32 speed_cms      44 i32 fuel_permille
 *   48 i32 heading_cdeg  52 i32 fix            56 u32 0 (reserved)
 *   60 u32 CRC-32 (IEEE, as zlib's crc32) of bytes 0..59
 * Generation 0 is never used (queue.c draws the first one at random), so
 * the zeros the file is created with are never mistaken for records.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileperm.h"

#define JOURNAL_CHUNK 64 /* records per pwrite/pread: 4 KiB of stack */
#define JOURNAL_CRC_AT 60

struct journal {
	int fd;		   /* owned */
	unsigned capacity; /* records */
};

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()) of len bytes. */
static uint32_t crc32_ieee(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Encodes sample s as record index of generation gen into rec. */
static void record_encode(uint8_t *rec, uint64_t gen, uint32_t index, const struct sample *s)
{
	put64(rec + 0, gen);
	put32(rec + 8, index);
	put32(rec + 12, s->present);
	put64(rec + 16, (uint64_t)s->time_ms);
	put64(rec + 24, (uint64_t)s->odometer_m);
	put32(rec + 32, (uint32_t)s->lat_e7);
	put32(rec + 36, (uint32_t)s->lon_e7);
	put32(rec + 40, (uint32_t)s->speed_cms);
	put32(rec + 44, (uint32_t)s->fuel_permille);
	put32(rec + 48, (uint32_t)s->heading_cdeg);
	put32(rec + 52, (uint32_t)s->fix);
	put32(rec + 56, 0);
	put32(rec + JOURNAL_CRC_AT, crc32_ieee(rec, JOURNAL_CRC_AT));
}

/*
 * Decodes rec, expected to be record index of generation gen, into *ret_s.
 * Returns 0, -ENOENT when it is not of gen (zeros, an older generation), or
 * -EBADMSG when it claims gen but has another index or fails its CRC.
 */
static int record_decode(const uint8_t *rec, uint64_t gen, uint32_t index, struct sample *ret_s)
{
	if (get64(rec) != gen)
		return -ENOENT;
	if (get32(rec + JOURNAL_CRC_AT) != crc32_ieee(rec, JOURNAL_CRC_AT) ||
	    get32(rec + 8) != index)
		return -EBADMSG;
	ret_s->present = get32(rec + 12);
	ret_s->time_ms = (int64_t)get64(rec + 16);
	ret_s->odometer_m = (int64_t)get64(rec + 24);
	ret_s->lat_e7 = (int32_t)get32(rec + 32);
	ret_s->lon_e7 = (int32_t)get32(rec + 36);
	ret_s->speed_cms = (int32_t)get32(rec + 40);
	ret_s->fuel_permille = (int32_t)get32(rec + 44);
	ret_s->heading_cdeg = (int32_t)get32(rec + 48);
	ret_s->fix = (enum fix_mode)(int32_t)get32(rec + 52);
	return 0;
}

/* pwrite(2) of all len bytes, retried on EINTR and short writes. */
static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Syncs the directory holding path, so a new file's name is durable too. */
static int sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, r = 0;

	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return r;
}

/* Writes zeros from the file's end up to size, then syncs file and name. */
static int preallocate(int fd, const char *path, off_t from, off_t size)
{
	static const uint8_t zeros[JOURNAL_CHUNK * JOURNAL_RECORD_BYTES];
	int r;

	for (off_t off = from; off < size; off += (off_t)sizeof(zeros)) {
		size_t len =
			size - off < (off_t)sizeof(zeros) ? (size_t)(size - off) : sizeof(zeros);

		r = write_all(fd, zeros, len, off);
		if (r < 0)
			return r;
	}
	if (fsync(fd) < 0)
		return -errno;
	return sync_parent(path);
}

int journal_open(const char *path, unsigned capacity, struct journal **ret_j)
{
	off_t size = (off_t)capacity * JOURNAL_RECORD_BYTES;
	struct journal *j;
	struct stat st;
	int r;

	if (!path || capacity == 0)
		return -EINVAL;
	r = fileperm_private(path);
	if (r < 0)
		return r;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->capacity = capacity;
	j->fd = open(path, O_RDWR | O_CLOEXEC);
	if (j->fd < 0 || fstat(j->fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (st.st_size < size) {
		r = preallocate(j->fd, path, st.st_size, size);
		if (r < 0)
			goto fail;
	}
	*ret_j = j;
	return 0;
fail:
	journal_close(j);
	return r;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

unsigned journal_capacity(const struct journal *j)
{
	return j->capacity;
}

int journal_replay(struct journal *j, uint64_t gen, struct sample *out, unsigned max,
		   int *ret_damaged)
{
	uint8_t buf[JOURNAL_CHUNK * JOURNAL_RECORD_BYTES];
	unsigned n = 0;

	*ret_damaged = 0;
	if (max > j->capacity)
		max = j->capacity;
	while (n < max) {
		unsigned want = max - n < JOURNAL_CHUNK ? max - n : JOURNAL_CHUNK;
		ssize_t got = pread(j->fd, buf, (size_t)want * JOURNAL_RECORD_BYTES,
				    (off_t)n * JOURNAL_RECORD_BYTES);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got < JOURNAL_RECORD_BYTES)
			break; /* the end of a file shorter than its capacity */
		for (unsigned i = 0; i < (unsigned)got / JOURNAL_RECORD_BYTES; i++) {
			int r = record_decode(&buf[i * JOURNAL_RECORD_BYTES], gen, n, &out[n]);

			if (r < 0) {
				*ret_damaged = r == -EBADMSG;
				return (int)n;
			}
			n++;
		}
	}
	return (int)n;
}

int journal_append(struct journal *j, uint64_t gen, unsigned first, const struct sample *s,
		   unsigned n)
{
	uint8_t buf[JOURNAL_CHUNK * JOURNAL_RECORD_BYTES];
	int r;

	if (first > j->capacity || n > j->capacity - first)
		return -ENOSPC;
	for (unsigned done = 0; done < n;) {
		unsigned k = n - done < JOURNAL_CHUNK ? n - done : JOURNAL_CHUNK;

		for (unsigned i = 0; i < k; i++)
			record_encode(&buf[i * JOURNAL_RECORD_BYTES], gen, first + done + i,
				      &s[done + i]);
		r = write_all(j->fd, buf, (size_t)k * JOURNAL_RECORD_BYTES,
			      (off_t)(first + done) * JOURNAL_RECORD_BYTES);
		if (r < 0)
			return r;
		done += k;
	}
	if (fdatasync(j->fd) < 0)
		return -errno;
	return 0;
}
