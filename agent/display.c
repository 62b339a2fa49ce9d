/*
 * Displays; see display.h. The file display writes <path>.tmp (mode 0600,
 * whatever the umask), fsyncs it, renames it over <path> and fsyncs the
 * directory, so a reader (or a power cut) sees the old card or the new one,
 * never half of one.
 */
#include "display.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileperm.h"
#include "log.h"

struct file_display {
	struct display head; /* must be first */
	char *path;	     /* owned */
	char *tmp;	     /* owned: path + ".tmp" */
};

int display_show(struct display *d, const struct offer *o, int64_t shown_at_ms)
{
	return d->ops->show(d, o, shown_at_ms);
}

int display_clear(struct display *d)
{
	return d->ops->clear(d);
}

void display_free(struct display *d)
{
	if (d)
		d->ops->free(d);
}

const char *display_kind_name(enum offer_kind kind)
{
	switch (kind) {
	case OFFER_REFUEL:
		return "refuel";
	case OFFER_SERVICE:
		return "service";
	case OFFER_INSPECTION:
		return "inspection";
	case OFFER_LOYALTY:
		return "loyalty";
	case OFFER_TEST_DRIVE:
		return "test_drive";
	}
	return "unknown";
}

void display_format_time(int64_t unix_ms, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	if (unix_ms < 0 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* Writes "name: text" with control characters replaced by spaces. */
static void put_field(FILE *f, const char *name, const char *text)
{
	fprintf(f, "%s: ", name);
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
	fputc('\n', f);
}

/* fsyncs the directory holding path, so a rename is durable. */
static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (!copy)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Writes the card to a temporary file and renames it into place. */
static int file_show(struct display *d, const struct offer *o, int64_t shown_at_ms)
{
	struct file_display *fd = (struct file_display *)d;
	char until[32];
	FILE *f = NULL;
	int r = 0, fdn;

	/* 0600 whatever the umask: the card holds a promo code. */
	fdn = open(fd->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, FILEPERM_MODE);
	if (fdn >= 0 && fchmod(fdn, FILEPERM_MODE) == 0)
		f = fdopen(fdn, "w");
	if (!f) {
		r = -errno;
		if (fdn >= 0) {
			close(fdn);
			unlink(fd->tmp);
		}
		log_error("display: cannot write %s: %s", fd->tmp, strerror(-r));
		return r;
	}
	display_format_time(o->valid_until_ms, until, sizeof(until));
	put_field(f, "offer_id", o->id);
	put_field(f, "kind", display_kind_name(o->kind));
	put_field(f, "title", o->title);
	put_field(f, "body", o->body);
	put_field(f, "promo_code", o->promo_code);
	put_field(f, "valid_until", until);
	fprintf(f, "shown_at_ms: %lld\n", (long long)shown_at_ms);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(fd->tmp, fd->path) != 0)
		r = -errno;
	if (r < 0) {
		log_error("display: cannot write %s: %s", fd->path, strerror(-r));
		unlink(fd->tmp);
		return r;
	}
	sync_dir(fd->path);
	return 0;
}

/* Removes the card file; a missing file is fine. */
static int file_clear(struct display *d)
{
	struct file_display *fd = (struct file_display *)d;

	if (unlink(fd->path) != 0 && errno != ENOENT) {
		int r = -errno;

		log_error("display: cannot remove %s: %s", fd->path, strerror(errno));
		return r;
	}
	sync_dir(fd->path);
	return 0;
}

static void file_free(struct display *d)
{
	struct file_display *fd = (struct file_display *)d;

	free(fd->path);
	free(fd->tmp);
	free(fd);
}

static const struct display_ops file_ops = { file_show, file_clear, file_free };

int display_file_new(const char *path, struct display **ret_d)
{
	struct file_display *fd;
	size_t n;

	if (!path || !*path)
		return -EINVAL;
	fd = calloc(1, sizeof(*fd));
	if (!fd)
		return -ENOMEM;
	fd->head.ops = &file_ops;
	n = strlen(path) + sizeof(".tmp");
	fd->path = strdup(path);
	fd->tmp = malloc(n);
	if (!fd->path || !fd->tmp) {
		file_free(&fd->head);
		return -ENOMEM;
	}
	snprintf(fd->tmp, n, "%s.tmp", path);
	*ret_d = &fd->head;
	return 0;
}

struct tee_display {
	struct display head;   /* must be first */
	struct display *a, *b; /* borrowed */
};

static int tee_show(struct display *d, const struct offer *o, int64_t shown_at_ms)
{
	struct tee_display *t = (struct tee_display *)d;
	int ra = display_show(t->a, o, shown_at_ms), rb = display_show(t->b, o, shown_at_ms);

	return ra < 0 ? ra : rb;
}

static int tee_clear(struct display *d)
{
	struct tee_display *t = (struct tee_display *)d;
	int ra = display_clear(t->a), rb = display_clear(t->b);

	return ra < 0 ? ra : rb;
}

static void tee_free(struct display *d)
{
	free(d);
}

static const struct display_ops tee_ops = { tee_show, tee_clear, tee_free };

int display_tee_new(struct display *a, struct display *b, struct display **ret_d)
{
	struct tee_display *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->head.ops = &tee_ops;
	t->a = a;
	t->b = b;
	*ret_d = &t->head;
	return 0;
}
