/*
 * OBD-II over SocketCAN; see obd_can.h. The codec first (pure), then the
 * source: one raw CAN socket watched by the loop, one request at a time,
 * answers collected for OBD_CAN_COLLECT_MS after the first (several ECUs
 * answer a functional request), a loop timer as the timeout.
 */
#include "obd_can.h"

#include <errno.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "obd_pid.h"
#include "obd_poll.h"
#include "signals.h"

/* ---- frames --------------------------------------------------------- */

void obd_can_request(uint8_t pid, uint8_t ret_data[8])
{
	memset(ret_data, OBD_CAN_PAD, 8);
	ret_data[0] = (ISOTP_SINGLE << 4) | 2;
	ret_data[1] = OBD_SERVICE_CURRENT;
	ret_data[2] = pid;
}

void obd_can_flow_control(uint8_t ret_data[8])
{
	memset(ret_data, OBD_CAN_PAD, 8);
	ret_data[0] = ISOTP_FLOW << 4; /* 0: clear to send */
	ret_data[1] = 0;	       /* block size: all at once */
	ret_data[2] = 0;	       /* STmin: no gap */
}

void obd_can_rx_reset(struct obd_can_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

int obd_can_rx_feed(struct obd_can_rx *rx, uint32_t id, const uint8_t *data, size_t dlc,
		    struct obd_can_msg *ret_msg, uint32_t *ret_fc_id)
{
	unsigned ecu;
	size_t n;

	if (id < OBD_CAN_RESPONSE_FIRST || id >= OBD_CAN_RESPONSE_FIRST + OBD_CAN_NECUS)
		return -ENOENT;
	ecu = id - OBD_CAN_RESPONSE_FIRST;
	if (dlc < 1 || dlc > 8)
		return -EBADMSG;
	switch (data[0] >> 4) {
	case ISOTP_SINGLE:
		n = data[0] & 0x0F;
		if (n == 0 || n > dlc - 1)
			return -EBADMSG;
		rx->ecu[ecu].need = 0;
		memcpy(rx->ecu[ecu].buf, data + 1, n);
		ret_msg->ecu = ecu;
		ret_msg->data = rx->ecu[ecu].buf;
		ret_msg->len = n;
		return OBD_CAN_MESSAGE;
	case ISOTP_FIRST:
		n = (size_t)(data[0] & 0x0F) << 8 | data[1];
		rx->ecu[ecu].need = 0;
		if (dlc != 8 || n < 8 || n > OBD_CAN_MAX_MSG)
			return -EBADMSG;
		memcpy(rx->ecu[ecu].buf, data + 2, 6);
		rx->ecu[ecu].need = n;
		rx->ecu[ecu].have = 6;
		rx->ecu[ecu].sn = 1;
		*ret_fc_id = id - 8;
		return OBD_CAN_SEND_FC;
	case ISOTP_CONSECUTIVE:
		if (!rx->ecu[ecu].need)
			return -EBADMSG;
		if ((data[0] & 0x0F) != rx->ecu[ecu].sn) {
			rx->ecu[ecu].need = 0;
			return -EBADMSG;
		}
		rx->ecu[ecu].sn = (rx->ecu[ecu].sn + 1) & 0x0F;
		n = rx->ecu[ecu].need - rx->ecu[ecu].have;
		if (n > dlc - 1)
			n = dlc - 1;
		memcpy(rx->ecu[ecu].buf + rx->ecu[ecu].have, data + 1, n);
		rx->ecu[ecu].have += n;
		if (rx->ecu[ecu].have < rx->ecu[ecu].need)
			return OBD_CAN_MORE;
		ret_msg->ecu = ecu;
		ret_msg->data = rx->ecu[ecu].buf;
		ret_msg->len = rx->ecu[ecu].need;
		rx->ecu[ecu].need = 0;
		return OBD_CAN_MESSAGE;
	default: /* flow control from an ECU: we never send multi-frame requests */
		return -EBADMSG;
	}
}

/* ---- the source ----------------------------------------------------- */

#define REOPEN_MIN_MS 1000
#define REOPEN_MAX_MS 30000
#define CAR_MIN_MS 1000
#define CAR_MAX_MS 10000
/* After the first answer, other ECUs have this long (ISO 15765-4's P2). */
#define OBD_CAN_COLLECT_MS 50

struct can_src {
	struct signals head; /* must be first */
	struct loop *loop;   /* borrowed */
	char *ifname;	     /* owned */
	int timeout_ms, poll_ms;
	int fd;	      /* -1 when closed */
	int timer;    /* the one pending timer */
	int querying; /* a request is outstanding */
	int pid;
	int collecting; /* an answer came: the timer ends the collection */
	uint8_t ans[OBD_CAN_NECUS][OBD_CAN_MAX_MSG];
	size_t ans_len[OBD_CAN_NECUS];
	size_t nans;
	unsigned reopen_ms, car_ms;
	struct obd_can_rx rx;
	struct obd_said said;
	struct obd_poll poll;
};

static void can_open_now(void *arg);
static void can_next(void *arg);

static void can_lost(struct can_src *c, const char *cause)
{
	if (c->fd >= 0) {
		loop_del_fd(c->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	obd_say(&c->said, LOG_LEVEL_WARN, "obd: CAN interface %s: %s: retrying", c->ifname, cause);
	obd_poll_lost(&c->poll);
	c->querying = 0;
	obd_timer(c->loop, &c->timer, c->reopen_ms, can_open_now, c);
	c->reopen_ms = obd_backoff(c->reopen_ms, REOPEN_MAX_MS);
}

static int can_send(struct can_src *c, uint32_t id, const uint8_t data[8])
{
	struct can_frame f;

	memset(&f, 0, sizeof(f));
	f.can_id = id;
	f.can_dlc = 8;
	memcpy(f.data, data, 8);
	if (write(c->fd, &f, sizeof(f)) != (ssize_t)sizeof(f)) {
		char why[96];

		if (errno == EAGAIN || errno == ENOBUFS)
			return 0; /* shows as a timeout */
		snprintf(why, sizeof(why), "write: %s", strerror(errno));
		can_lost(c, why);
		return -1;
	}
	return 0;
}

static void car_wait(struct can_src *c, const char *why)
{
	obd_say(&c->said, LOG_LEVEL_INFO, "obd: the car does not answer on %s (%s): asking again",
		c->ifname, why);
	obd_poll_lost(&c->poll);
	obd_poll_restart(&c->poll);
	c->querying = 0;
	obd_timer(c->loop, &c->timer, c->car_ms, can_next, c);
	c->car_ms = obd_backoff(c->car_ms, CAR_MAX_MS);
}

/* Timer: the answers are in (or the request timed out). */
static void can_done(void *arg)
{
	struct can_src *c = arg;
	const uint8_t *msgs[OBD_CAN_NECUS];
	int r;

	c->timer = 0;
	c->querying = 0;
	if (!c->nans) {
		/* silence on CAN is what NO DATA is on an ELM327 */
		if (obd_poll_no_data(&c->poll, (uint8_t)c->pid)) {
			car_wait(c, "no answer to the supported-PID request");
			return;
		}
	} else {
		for (size_t i = 0; i < c->nans; i++)
			msgs[i] = c->ans[i];
		r = obd_poll_handle(&c->poll, loop_now_ms(), (uint8_t)c->pid, msgs, c->ans_len,
				    c->nans);
		if (r > 0) {
			car_wait(c, "it refused the supported-PID request");
			return;
		}
		if (r == 0) {
			c->car_ms = CAR_MIN_MS;
			c->reopen_ms = REOPEN_MIN_MS;
			obd_say(&c->said, LOG_LEVEL_INFO, "obd: reading the car on %s", c->ifname);
		}
	}
	obd_timer(c->loop, &c->timer, (uint64_t)c->poll_ms, can_next, c);
}

/* Timer: the next request. */
static void can_next(void *arg)
{
	struct can_src *c = arg;
	uint8_t data[8];
	int pid;

	c->timer = 0;
	if (c->fd < 0)
		return;
	pid = obd_poll_next(&c->poll);
	if (pid < 0) {
		car_wait(c, "it gives none of the PIDs we sample");
		c->car_ms = CAR_MAX_MS;
		return;
	}
	c->pid = pid;
	c->nans = 0;
	c->collecting = 0;
	c->querying = 1;
	obd_can_rx_reset(&c->rx);
	obd_can_request((uint8_t)pid, data);
	if (can_send(c, OBD_CAN_FUNCTIONAL_ID, data) == 0)
		obd_timer(c->loop, &c->timer, (uint64_t)c->timeout_ms, can_done, c);
}

static void can_readable(int fd, short revents, void *arg)
{
	struct can_src *c = arg;
	struct can_frame f;
	struct obd_can_msg m;
	uint32_t fc_id;
	uint8_t fc[8];

	for (;;) {
		ssize_t n = read(fd, &f, sizeof(f));
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !(revents & (POLLERR | POLLHUP)))
			return;
		if (n != (ssize_t)sizeof(f)) {
			can_lost(c, n < 0 && errno != EAGAIN ? strerror(errno) : "read failed");
			return;
		}
		if (!c->querying || (f.can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)))
			continue;
		r = obd_can_rx_feed(&c->rx, f.can_id & CAN_SFF_MASK, f.data, f.can_dlc, &m, &fc_id);
		if (r == OBD_CAN_SEND_FC) {
			obd_can_flow_control(fc);
			if (can_send(c, fc_id, fc) < 0)
				return;
		} else if (r == OBD_CAN_MESSAGE && c->nans < OBD_CAN_NECUS) {
			memcpy(c->ans[c->nans], m.data, m.len);
			c->ans_len[c->nans++] = m.len;
			if (!c->collecting) {
				c->collecting = 1;
				obd_timer(c->loop, &c->timer, OBD_CAN_COLLECT_MS, can_done, c);
			}
		}
	}
}

/* Timer (and at start): opens and binds the socket. */
static void can_open_now(void *arg)
{
	struct can_src *c = arg;
	struct can_filter flt = { OBD_CAN_RESPONSE_FIRST, CAN_SFF_MASK & ~(OBD_CAN_NECUS - 1) };
	struct sockaddr_can addr;
	struct ifreq ifr;
	char why[160];
	int fd;

	c->timer = 0;
	fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
	if (fd < 0) {
		snprintf(why, sizeof(why), "no CAN socket: %s", strerror(errno));
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->ifname);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		snprintf(why, sizeof(why), "no such interface: %s", strerror(errno));
		goto fail_fd;
	}
	flt.can_mask |= CAN_EFF_FLAG | CAN_RTR_FLAG;
	setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, &flt, sizeof(flt));
	memset(&addr, 0, sizeof(addr));
	addr.can_family = AF_CAN;
	addr.can_ifindex = ifr.ifr_ifindex;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    loop_add_fd(c->loop, fd, POLLIN, can_readable, c) < 0) {
		snprintf(why, sizeof(why), "cannot bind: %s", strerror(errno));
		goto fail_fd;
	}
	c->fd = fd;
	obd_say(&c->said, LOG_LEVEL_INFO, "obd: CAN interface %s open: asking for supported PIDs",
		c->ifname);
	obd_poll_restart(&c->poll);
	can_next(c);
	return;
fail_fd:
	close(fd);
fail:
	can_lost(c, why);
}

static int can_read(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret)
{
	obd_poll_read(&((struct can_src *)s)->poll, now_ms, ret);
	return 0;
}

static void can_free(struct signals *s)
{
	struct can_src *c = (struct can_src *)s;

	if (c->timer)
		loop_cancel_timer(c->loop, c->timer);
	if (c->fd >= 0) {
		loop_del_fd(c->loop, c->fd);
		close(c->fd);
	}
	obd_poll_fini(&c->poll);
	free(c->ifname);
	free(c);
}

static const struct signals_ops can_ops = { can_read, can_free };

int obd_can_open(struct loop *loop, const struct obd_can_config *conf, struct signals **ret_s)
{
	struct can_src *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->head.ops = &can_ops;
	c->loop = loop;
	c->fd = -1;
	c->timeout_ms = conf->timeout_ms;
	c->poll_ms = conf->poll_interval_ms;
	c->reopen_ms = REOPEN_MIN_MS;
	c->car_ms = CAR_MIN_MS;
	c->ifname = strdup(conf->interface);
	if (!c->ifname || obd_poll_init(&c->poll, conf->odo_path) < 0) {
		obd_poll_fini(&c->poll);
		free(c->ifname);
		free(c);
		return -ENOMEM;
	}
	can_open_now(c);
	*ret_s = &c->head;
	return 0;
}
