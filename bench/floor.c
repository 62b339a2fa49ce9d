/*
 * The memory floor of the car's libraries (bench/footprint.py): a program
 * that links what pitstop-agent links (Paho MQTTAsync with OpenSSL, SQLite,
 * mbedTLS, protobuf-c, libgps with its C++ runtime), opens an SQLite
 * database in WAL mode, and holds one MQTT v5 TLS connection with a client
 * certificate, as the agent does, and nothing else. What the agent uses
 * above this floor is the agent's own memory.
 *
 * usage: bench_floor URI CA CERT KEY CLIENT_ID DB OFFER_KEY
 * Prints "connected" once the broker accepted it, then waits for SIGTERM or
 * SIGINT and exits 0; exits 1 with the cause on any failure.
 */
#include <MQTTAsync.h>
#include <gps.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static volatile int connected; /* 1: CONNACK, -1: refused */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_ok(void *ctx, MQTTAsync_successData5 *resp)
{
	(void)ctx;
	(void)resp;
	connected = 1;
}

static void on_fail(void *ctx, MQTTAsync_failureData5 *resp)
{
	(void)ctx;
	fprintf(stderr, "bench_floor: connect failed: %s\n",
		resp && resp->message ? resp->message : "no reason given");
	connected = -1;
}

int main(int argc, char **argv)
{
	MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync client = NULL;
	mbedtls_x509_crt ca;
	mbedtls_pk_context pk;
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc = 1;

	if (argc != 8) {
		fprintf(stderr, "usage: bench_floor URI CA CERT KEY CLIENT_ID DB OFFER_KEY\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	/*
	 * mbedTLS: the agent checks its certificate files at start (x509) and
	 * keeps the offer-signing public key loaded.
	 */
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&pk);
	if (mbedtls_x509_crt_parse_file(&ca, argv[2]) != 0) {
		fprintf(stderr, "bench_floor: %s: cannot parse the CA certificate\n", argv[2]);
		goto out;
	}
	if (mbedtls_pk_parse_public_keyfile(&pk, argv[7]) != 0) {
		fprintf(stderr, "bench_floor: %s: cannot load the public key\n", argv[7]);
		goto out;
	}
	/* libgps and protobuf-c: linked and their code touched, as the agent's. */
	fprintf(stderr, "bench_floor: protobuf-c %s, %s\n", protobuf_c_version(), gps_errstr(0));

	if (sqlite3_open_v2(argv[6], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
		    SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE IF NOT EXISTS t(seq INTEGER PRIMARY KEY, data BLOB);"
			 "INSERT INTO t(data) VALUES (zeroblob(400));",
			 NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "bench_floor: %s: %s\n", argv[6], err ? err : sqlite3_errmsg(db));
		goto out;
	}

	if (MQTTAsync_createWithOptions(&client, argv[1], argv[5], MQTTCLIENT_PERSISTENCE_NONE,
					NULL, &copts) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "bench_floor: cannot create a client for %s\n", argv[1]);
		client = NULL;
		goto out;
	}
	ssl.trustStore = argv[2];
	ssl.keyStore = argv[3];
	ssl.privateKey = argv[4];
	ssl.enableServerCertAuth = 1;
	ssl.verify = 1;
	ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
	opts.keepAliveInterval = 30;
	opts.cleanstart = 1;
	opts.connectTimeout = 10;
	opts.ssl = &ssl;
	opts.onSuccess5 = on_ok;
	opts.onFailure5 = on_fail;
	if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "bench_floor: connect to %s could not start\n", argv[1]);
		goto out;
	}
	while (!stop && connected == 0)
		usleep(10000);
	if (connected != 1)
		goto out;
	printf("connected\n");
	fflush(stdout);
	while (!stop)
		sleep(1); /* a signal may come between the test and a pause() */
	rc = 0;
out:
	if (client)
		MQTTAsync_destroy(&client);
	sqlite3_free(err);
	sqlite3_close(db);
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&ca);
	return rc;
}
