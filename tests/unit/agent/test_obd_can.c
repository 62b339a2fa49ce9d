/*
 * Unit tests of the OBD-II CAN frame codec (agent/obd_can.c): the request
 * and flow-control frames, single-frame answers from several ECUs, ISO-TP
 * first + consecutive frames with the flow control they need, and malformed
 * frames (bad lengths, a wrong sequence number, a consecutive frame alone,
 * an id that is no OBD answer). There is no vcan here: the socket is not
 * tested.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "obd_can.h"

static void test_request_frames(void **state)
{
	static const uint8_t req[8] = { 0x02, 0x01, 0xA6, 0, 0, 0, 0, 0 };
	static const uint8_t fc[8] = { 0x30, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t d[8];

	obd_can_request(0xA6, d);
	assert_memory_equal(d, req, 8);
	obd_can_flow_control(d);
	assert_memory_equal(d, fc, 8);
}

static void test_single_frames(void **state)
{
	static const uint8_t ecu0[8] = { 0x03, 0x41, 0x0D, 0x32, 0xAA, 0xAA, 0xAA, 0xAA };
	static const uint8_t ecu2[8] = { 0x06, 0x41, 0x00, 0xBE, 0x3E, 0xB8, 0x11, 0 };
	static const uint8_t neg[8] = { 0x03, 0x7F, 0x01, 0x12, 0, 0, 0, 0 };
	struct obd_can_rx rx;
	struct obd_can_msg m;
	uint32_t fc_id = 0;

	obd_can_rx_reset(&rx);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ecu0, 8, &m, &fc_id), OBD_CAN_MESSAGE);
	assert_int_equal(m.ecu, 0);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.data, ecu0 + 1, 3);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7EA, ecu2, 8, &m, &fc_id), OBD_CAN_MESSAGE);
	assert_int_equal(m.ecu, 2);
	assert_int_equal(m.len, 6);
	assert_memory_equal(m.data, ecu2 + 1, 6);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7EF, neg, 8, &m, &fc_id), OBD_CAN_MESSAGE);
	assert_int_equal(m.ecu, 7);
	assert_memory_equal(m.data, neg + 1, 3);
	/* a short frame (DLC 4, as some ECUs send) is fine if the length fits */
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ecu0, 4, &m, &fc_id), OBD_CAN_MESSAGE);
}

static void test_multi_frame(void **state)
{
	/* 14 bytes: 49 02 01 then 11 VIN bytes; first frame + 2 consecutive */
	static const uint8_t ff[8] = { 0x10, 0x0E, 0x49, 0x02, 0x01, 'W', 'P', '0' };
	static const uint8_t cf1[8] = { 0x21, 'Z', 'Z', 'Z', '9', '9', 'Z', 'T' };
	static const uint8_t cf2[8] = { 0x22, 'S', '3', 0, 0, 0, 0, 0 };
	static const uint8_t want[14] = { 0x49, 0x02, 0x01, 'W', 'P', '0', 'Z',
					  'Z',	'Z',  '9',  '9', 'Z', 'T', 'S' };
	struct obd_can_rx rx;
	struct obd_can_msg m;
	uint32_t fc_id = 0;

	obd_can_rx_reset(&rx);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, ff, 8, &m, &fc_id), OBD_CAN_SEND_FC);
	assert_int_equal(fc_id, 0x7E1); /* the ECU's physical request id */
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, cf1, 8, &m, &fc_id), OBD_CAN_MORE);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, cf2, 8, &m, &fc_id), OBD_CAN_MESSAGE);
	assert_int_equal(m.ecu, 1);
	assert_int_equal(m.len, 14);
	assert_memory_equal(m.data, want, 14);
	/* out of sequence: that message is dropped, later frames too */
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, ff, 8, &m, &fc_id), OBD_CAN_SEND_FC);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, cf2, 8, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E9, cf1, 8, &m, &fc_id), -EBADMSG);
}

static void test_malformed(void **state)
{
	static const uint8_t sf0[8] = { 0x00, 0x41 };
	static const uint8_t sf_long[8] = { 0x07, 0x41, 0x0D };
	static const uint8_t ff_big[8] = { 0x10, 0xFF, 0x49, 0x02, 0x01, 0, 0, 0 };
	static const uint8_t ff_small[8] = { 0x10, 0x05, 0x41, 0x0D, 0x01, 0, 0, 0 };
	static const uint8_t fc[8] = { 0x30, 0, 0 };
	static const uint8_t ok[8] = { 0x03, 0x41, 0x0D, 0x32 };
	struct obd_can_rx rx;
	struct obd_can_msg m;
	uint32_t fc_id = 0;

	obd_can_rx_reset(&rx);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, sf0, 8, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, sf_long, 4, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ff_big, 8, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ff_small, 8, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, fc, 8, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ok, 0, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ok, 9, &m, &fc_id), -EBADMSG);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7DF, ok, 8, &m, &fc_id), -ENOENT);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7F0, ok, 8, &m, &fc_id), -ENOENT);
	assert_int_equal(obd_can_rx_feed(&rx, 0x7E8, ok, 8, &m, &fc_id), OBD_CAN_MESSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_frames),
		cmocka_unit_test(test_single_frames),
		cmocka_unit_test(test_multi_frame),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
