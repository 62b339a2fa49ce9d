/*
 * Replays a fuzz corpus without libFuzzer: feeds every regular file of the
 * directory given as argv[1] to LLVMFuzzerTestOneInput(), so each fuzz
 * target's corpus runs as an ordinary test under gcc, valgrind or a
 * sanitizer build. Exits 0 when every file ran (a crash or abort() in the
 * target fails the test by itself), 1 if the directory is missing, empty or
 * unreadable, 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_FILE (16 * 1024 * 1024)	/* corpus files are small; refuse absurd ones */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads path into a malloc'ed buffer; returns 0, or -1 with a message printed. */
static int read_file(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r = -1;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || st.st_size > REPLAY_MAX_FILE) {
		fprintf(stderr, "replay: %s: cannot size it or too big\n", path);
		goto out;
	}
	len = (size_t)st.st_size;
	buf = malloc(len ? len : 1);
	if (!buf || fread(buf, 1, len, f) != len) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		goto out;
	}
	*ret_buf = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	fclose(f);
	return r;
}

int main(int argc, char **argv)
{
	struct dirent *de;
	unsigned count = 0;
	int failed = 0;
	DIR *d;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		uint8_t *buf;
		size_t len;

		if (de->d_name[0] == '.')
			continue;	/* ".", "..", hidden files */
		if (snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (read_file(path, &buf, &len) < 0) {
			failed = 1;
			continue;
		}
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		count++;
	}
	closedir(d);
	if (failed)
		return 1;
	if (count == 0) {
		fprintf(stderr, "replay: %s: no corpus files\n", argv[1]);
		return 1;
	}
	printf("replayed %u files from %s\n", count, argv[1]);
	return 0;
}
