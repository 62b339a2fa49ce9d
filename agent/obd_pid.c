/*
 * OBD-II PID decoding; see obd_pid.h. Pure functions over bytes.
 */
#include "obd_pid.h"

#include <errno.h>
#include <string.h>

int obd_pid_is_bitmap(uint8_t pid)
{
	return (pid & 0x1F) == 0;
}

int obd_pid_support_add(struct obd_pid_support *s, uint8_t base, const uint8_t data[4])
{
	if (!obd_pid_is_bitmap(base) || base > OBD_PID_BITMAP_LAST)
		return -EINVAL;
	/* data bit 7 of A is PID base+1, ..., bit 0 of D is base+0x20. */
	for (unsigned i = 0; i < 32; i++) {
		unsigned pid = base + 1 + i;

		if (data[i / 8] & (0x80u >> (i % 8)))
			s->map[(pid - 1) / 8] |= (uint8_t)(1u << ((pid - 1) % 8));
	}
	s->have |= 1u << (base / 0x20);
	return (data[3] & 1) ? 1 : 0;
}

int obd_pid_supported(const struct obd_pid_support *s, uint8_t pid)
{
	if (pid == 0 || pid > OBD_PID_BITMAP_LAST + 0x20)
		return 0;
	return (s->map[(pid - 1) / 8] >> ((pid - 1) % 8)) & 1;
}

int obd_pid_decode(uint8_t pid, const uint8_t *data, size_t len, struct obd_value *ret)
{
	size_t need;

	switch (pid) {
	case OBD_PID_SPEED:
	case OBD_PID_FUEL:
		need = 1;
		break;
	case OBD_PID_ODOMETER:
		need = 4;
		break;
	default:
		return -ENOTSUP;
	}
	if (len < need)
		return -EBADMSG;
	ret->pid = pid;
	if (pid == OBD_PID_SPEED)
		ret->value = data[0];
	else if (pid == OBD_PID_FUEL)
		ret->value = data[0] * 100.0 / 255.0;
	else
		ret->value = (double)(((uint32_t)data[0] << 24) | ((uint32_t)data[1] << 16) |
				      ((uint32_t)data[2] << 8) | data[3]) /
			     10.0;
	return 0;
}

int obd_pid_answer(const uint8_t *msg, size_t len, uint8_t pid, const uint8_t **ret_data,
		   size_t *ret_len)
{
	if (len >= 3 && msg[0] == OBD_NEGATIVE && msg[1] == OBD_SERVICE_CURRENT)
		return msg[2] ? msg[2] : -EBADMSG;
	if (len < 2 || msg[0] != OBD_SERVICE_CURRENT + OBD_RESPONSE_OFFSET || msg[1] != pid)
		return -EBADMSG;
	*ret_data = msg + 2;
	*ret_len = len - 2;
	return 0;
}
