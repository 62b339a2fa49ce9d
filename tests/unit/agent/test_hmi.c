/*
 * Unit tests of agent/hmi.c: the line parser (table-driven: every verb,
 * every malformed form), the OFFER line's JSON (escaping, bound), and the
 * socket itself on a real loop in a temporary directory: the greeting, an
 * offer pushed to a client and to one that connects later, CLEAR, ACCEPT
 * handed to the owner and answered, errors answered, the client limit, the
 * line-length limit and a client that never reads being dropped.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "display.h"
#include "hmi.h"
#include "loop.h"
#include "testdir.h"

static void test_parse_table(void **state)
{
	static const struct {
		const char *line;
		int ok;
		enum hmi_verb verb;
		const char *id_or_why;
	} cases[] = {
		{ "PING", 1, HMI_PING, "" },
		{ "PING\r", 1, HMI_PING, "" },
		{ "ACCEPT offer-1", 1, HMI_ACCEPT, "offer-1" },
		{ "DISMISS o:2/x\r", 1, HMI_DISMISS, "o:2/x" },
		{ "", 0, 0, "unknown command" },
		{ "accept offer-1", 0, 0, "unknown command" },
		{ "ACCEPTED offer-1", 0, 0, "unknown command" },
		{ "ACCEPT", 0, 0, "missing offer id" },
		{ "ACCEPT ", 0, 0, "missing offer id" },
		{ "ACCEPT a b", 0, 0, "one offer id expected" },
		{ "ACCEPT  a", 0, 0, "one offer id expected" },
		{ "DISMISS a\tb", 0, 0, "bad offer id" },
		{ "DISMISS \xc3\xa9", 0, 0, "bad offer id" },
		{ "PING x", 0, 0, "unexpected argument" },
		{ "ACCEPT 0123456789012345678901234567890123456789012345678901234567890123", 0, 0,
		  "bad offer id" }, /* 64 characters: one too many */
	};
	char longest[80];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hmi_command cmd;
		const char *why = NULL;
		int r = hmi_parse_line(cases[i].line, strlen(cases[i].line), &cmd, &why);

		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(cmd.verb, cases[i].verb);
			assert_string_equal(cmd.id, cases[i].id_or_why);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_string_equal(why, cases[i].id_or_why);
		}
	}
	/* 63 characters fit; a NUL inside a line is not part of an id. */
	{
		struct hmi_command cmd;
		const char *why;

		snprintf(longest, sizeof(longest), "ACCEPT %063d", 7);
		assert_int_equal(hmi_parse_line(longest, strlen(longest), &cmd, &why), 0);
		assert_int_equal(strlen(cmd.id), 63);
		assert_int_equal(hmi_parse_line("ACCEPT a\0b", 10, &cmd, &why), -EINVAL);
	}
}

static struct offer make_offer(const char *id)
{
	struct offer o;

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	o.kind = OFFER_REFUEL;
	snprintf(o.title, sizeof(o.title), "Fuel \"up\" \\ now");
	snprintf(o.body, sizeof(o.body), "line one\nline\ttwo");
	snprintf(o.promo_code, sizeof(o.promo_code), "FUEL5");
	o.valid_until_ms = 1800000000000LL;
	return o;
}

static void test_offer_json(void **state)
{
	struct offer o = make_offer("o-1");
	char buf[1024];
	int n;

	(void)state;
	n = hmi_offer_json(&o, 1799999999000LL, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_string_equal(buf,
			    "{\"id\":\"o-1\",\"kind\":\"refuel\","
			    "\"title\":\"Fuel \\\"up\\\" \\\\ now\","
			    "\"body\":\"line one\\u000aline\\u0009two\","
			    "\"promo_code\":\"FUEL5\",\"valid_until\":\"2027-01-15T08:00:00Z\","
			    "\"valid_until_ms\":1800000000000,\"shown_at_ms\":1799999999000}");
	assert_int_equal(hmi_offer_json(&o, 0, buf, 40), -ENOSPC);
	assert_int_equal(hmi_offer_json(&o, 1799999999000LL, buf, (size_t)n),
			 -ENOSPC); /* no room for NUL */
	assert_int_equal(hmi_offer_json(&o, 1799999999000LL, buf, (size_t)n + 1), n);
}

/* The socket tests: a loop, an HMI on it, and what the owner was told. */
struct fixture {
	struct testdir dir;
	char path[300];
	struct loop *loop;
	struct hmi *hmi;
	char decided[CODEC_MAX_ID];
	enum offer_action action;
	int answer; /* what on_decision returns */
};

static int on_decision(const char *id, enum offer_action action, void *arg)
{
	struct fixture *f = arg;

	snprintf(f->decided, sizeof(f->decided), "%s", id);
	f->action = action;
	if (f->answer == 0)
		display_clear(hmi_display(f->hmi));
	return f->answer;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	testdir_file(&f->dir, "hmi.sock", f->path, sizeof(f->path));
	if (loop_new(&f->loop) < 0 || hmi_new(f->loop, f->path, 2, on_decision, f, &f->hmi) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hmi_free(f->hmi);
	loop_free(f->loop);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static void stop_loop(void *arg)
{
	loop_stop(arg);
}

/* Runs the loop for ms milliseconds. */
static void spin(struct fixture *f, unsigned ms)
{
	assert_true(loop_add_timer(f->loop, ms, stop_loop, f->loop) > 0);
	assert_int_equal(loop_run(f->loop), 0);
}

static int client(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	spin(f, 20);
	return fd;
}

/* Reads what the agent sent so far (after letting the loop run). */
static void take(struct fixture *f, int fd, char *buf, size_t len)
{
	size_t n = 0;

	spin(f, 20);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 0) != 1 || n + 1 >= len)
			break;
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
}

static void say(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void test_socket_mode(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	/* A second HMI on the same path replaces the stale socket... */
	hmi_free(f->hmi);
	assert_int_equal(stat(f->path, &st), -1); /* removed at free */
	assert_int_equal(hmi_new(f->loop, f->path, 1, on_decision, f, &f->hmi), 0);
	/* ...but not a file that is not a socket. */
	{
		struct hmi *h = NULL;
		char other[300];
		FILE *fp;

		testdir_file(&f->dir, "plain", other, sizeof(other));
		fp = fopen(other, "w");
		assert_non_null(fp);
		fclose(fp);
		assert_int_equal(hmi_new(f->loop, other, 1, on_decision, f, &h), -EEXIST);
		assert_int_equal(hmi_new(f->loop, other, 0, on_decision, f, &h), -EINVAL);
	}
}

static void test_offer_accept_clear(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("o-1");
	char buf[4096];
	int a, b;

	a = client(f);
	take(f, a, buf, sizeof(buf));
	assert_string_equal(buf, "HELLO pitstop-hmi 1\n");
	assert_int_equal(display_show(hmi_display(f->hmi), &o, 1000), 0);
	take(f, a, buf, sizeof(buf));
	assert_true(strncmp(buf, "OFFER {\"id\":\"o-1\",", 18) == 0);
	assert_non_null(strstr(buf, "\"shown_at_ms\":1000}\n"));
	/* A later client gets the card at once. */
	b = client(f);
	take(f, b, buf, sizeof(buf));
	assert_true(strncmp(buf, "HELLO pitstop-hmi 1\nOFFER {\"id\":\"o-1\",", 38) == 0);
	assert_int_equal(hmi_clients(f->hmi), 2);
	/* A refused choice is answered with the owner's reason. */
	f->answer = -ENOENT;
	say(a, "DISMISS o-9\n");
	take(f, a, buf, sizeof(buf));
	assert_string_equal(buf, "ERR DISMISS o-9: not on screen\n");
	assert_string_equal(f->decided, "o-9");
	assert_int_equal(f->action, OFFER_ACTION_DISMISSED);
	/* Bad lines are answered, the client stays; two lines in one write. */
	say(a, "HELLO\nPING\n");
	take(f, a, buf, sizeof(buf));
	assert_string_equal(buf, "ERR unknown command\nPONG\n");
	/* ACCEPT: the owner clears the screen: every client hears CLEAR. */
	f->answer = 0;
	say(b, "ACCEPT o-1\r\n");
	take(f, b, buf, sizeof(buf));
	assert_string_equal(buf, "CLEAR o-1\nOK ACCEPT o-1\n");
	assert_int_equal(f->action, OFFER_ACTION_ACCEPTED);
	take(f, a, buf, sizeof(buf));
	assert_string_equal(buf, "CLEAR o-1\n");
	/* A third client is one too many. */
	{
		int c = client(f);

		take(f, c, buf, sizeof(buf));
		assert_string_equal(buf, "ERR too many clients\n");
		assert_int_equal(read(c, buf, sizeof(buf)), 0); /* closed */
		close(c);
	}
	close(a);
	spin(f, 20);
	assert_int_equal(hmi_clients(f->hmi), 1);
	close(b);
}

static void test_line_too_long(void **state)
{
	struct fixture *f = *state;
	char line[HMI_MAX_LINE + 1], buf[512];
	int a = client(f);

	take(f, a, buf, sizeof(buf));
	memset(line, 'A', sizeof(line));
	assert_int_equal(write(a, line, sizeof(line)), (ssize_t)sizeof(line));
	take(f, a, buf, sizeof(buf));
	assert_string_equal(buf, "ERR line too long\n");
	assert_int_equal(hmi_clients(f->hmi), 0);
	close(a);
}

static void test_slow_client_dropped(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("o-1");
	char buf[64];
	int a = client(f), b = client(f), sz = 4096;

	/* Small kernel buffers so the HMI's own bound is what fills up. */
	setsockopt(a, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	take(f, b, buf, sizeof(buf));
	memset(o.body, 'x', sizeof(o.body) - 1);
	/* a never reads; b reads after every card. */
	for (int i = 0; i < 200 && hmi_clients(f->hmi) == 2; i++) {
		char big[8192];

		assert_int_equal(display_show(hmi_display(f->hmi), &o, i), 0);
		take(f, b, big, sizeof(big));
	}
	assert_int_equal(hmi_clients(f->hmi), 1);
	/* b still hears what follows. */
	assert_int_equal(display_clear(hmi_display(f->hmi)), 0);
	take(f, b, buf, sizeof(buf));
	assert_string_equal(buf, "CLEAR o-1\n");
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_offer_json),
		cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_accept_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_dropped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
