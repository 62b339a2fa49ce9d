/*
 * Unit tests of common/pki.c. One fleet PKI is made in a mkdtemp() directory
 * (removed by the group teardown, also after a failure) and then checked the
 * way its users will check it: OpenSSL 3's "openssl verify -purpose" for the
 * broker (sslserver) and clients (sslclient), including the purposes each
 * certificate must NOT pass; mbedtls_x509_crt_verify in-process; names, SAN,
 * key usages, key ids, serials, validity, file modes under hostile umasks;
 * refusals (existing CA, existing vehicle, bad VINs, mismatched CA key) and
 * the rollback that leaves no half-made PKI; missing parents made by
 * pki_init; the broker re-issued for other names (pki_issue_broker); a
 * vehicle issued on an offline CA machine that holds only ca.crt/ca.key. The openssl assertions are
 * skipped only when the openssl binary is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "crypto.h"
#include "pki.h"

#define VIN1 "WVWZZZ1JZXW000001"

static char base[] = "/tmp/pitstop-test-pki-XXXXXX";
static char dir[600];	/* base/pki: created by pki_init */
static int have_openssl;

/* base-relative or dir-relative path in a rotating static buffer. */
static const char *at(const char *root, const char *name)
{
	static char bufs[8][1024];
	static int which;
	char *p = bufs[which++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", root, name);
	return p;
}

/*
 * Runs cmd (in dir) with stderr folded into stdout; the output goes to out.
 * Returns the exit status.
 */
static int run(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int run(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048];
	size_t got = 0;
	va_list ap;
	FILE *p;
	int n, st;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ( ", dir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ) 2>&1");
	p = popen(cmd, "r");
	assert_non_null(p);
	if (out && size) {
		got = fread(out, 1, size - 1, p);
		out[got] = '\0';
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	if (!mkdtemp(base))
		return -1;
	snprintf(dir, sizeof(dir), "%s/pki", base);
	have_openssl = system("openssl version >/dev/null 2>&1") == 0;
	return 0;
}

static int group_teardown(void **state)
{
	return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void load_crt(mbedtls_x509_crt *crt, const char *path)
{
	mbedtls_x509_crt_init(crt);
	assert_int_equal(mbedtls_x509_crt_parse_file(crt, path), 0);
}

/* Must run first: the other tests use the PKI it makes. */
static void test_init(void **state)
{
	static const struct {
		const char *name;
		mode_t mode;
	} files[] = {
		{ "ca.crt", 0644 }, { "ca.key", 0600 },
		{ "broker.crt", 0644 }, { "broker.key", 0600 },
		{ "gateway.crt", 0644 }, { "gateway.key", 0600 },
		{ "offer-signing.key", 0600 }, { "offer-signing.pub", 0644 },
		{ "ca.crl", 0644 },
	};
	char err[256] = "stale";
	mode_t old = umask(0);	/* modes must not depend on the umask */
	int r = pki_init(dir, err, sizeof(err));

	umask(old);
	assert_int_equal(r, 0);
	assert_string_equal(err, "");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		print_message("  %s %o\n", files[i].name, (unsigned)mode_of(at(dir, files[i].name)));
		assert_int_equal(mode_of(at(dir, files[i].name)), files[i].mode);
	}
	{
		struct stat st;

		assert_int_equal(stat(at(dir, "vehicles"), &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
}

static void test_init_refuses_existing_ca(void **state)
{
	char err[256] = "";
	char before[4096], after[4096];
	FILE *f;
	size_t n1, n2;

	f = fopen(at(dir, "ca.key"), "r");
	assert_non_null(f);
	n1 = fread(before, 1, sizeof(before), f);
	fclose(f);
	assert_int_equal(pki_init(dir, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "ca.key"));
	f = fopen(at(dir, "ca.key"), "r");
	assert_non_null(f);
	n2 = fread(after, 1, sizeof(after), f);
	fclose(f);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
}

static void test_ca_certificate(void **state)
{
	mbedtls_x509_crt ca;
	char name[256];
	uint32_t flags = 0;
	time_t now = time(NULL);
	struct tm tm;

	load_crt(&ca, at(dir, "ca.crt"));
	assert_true(mbedtls_x509_dn_gets(name, sizeof(name), &ca.subject) > 0);
	assert_string_equal(name, "CN=Pitstop Fleet CA");
	assert_true(ca.ca_istrue);
	assert_int_equal(ca.version, 3);
	assert_int_equal(mbedtls_x509_crt_check_key_usage(&ca, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
	assert_int_equal(mbedtls_x509_crt_check_key_usage(&ca, MBEDTLS_X509_KU_CRL_SIGN), 0);
	assert_int_not_equal(mbedtls_x509_crt_check_key_usage(&ca, MBEDTLS_X509_KU_DIGITAL_SIGNATURE),
			     0);
	/* 10 years, starting about an hour ago */
	gmtime_r(&now, &tm);
	assert_int_equal(ca.valid_to.year - ca.valid_from.year, 10);
	assert_false(mbedtls_x509_time_is_future(&ca.valid_from));
	assert_true(ca.valid_from.year == tm.tm_year + 1900 || ca.valid_from.year == tm.tm_year + 1899);
	assert_int_equal(ca.serial.len, 16);
	assert_int_equal(mbedtls_x509_crt_verify(&ca, &ca, NULL, NULL, &flags, NULL, NULL), 0);
	assert_int_equal(flags, 0);
	mbedtls_x509_crt_free(&ca);
}

/* Checks one leaf in-process: chain, CN, EKU, key pair, AKI, serial, years. */
static void check_leaf(const char *crt_path, const char *key_path, const char *cn,
		       const char *eku_oid, size_t eku_len, const char *not_eku, size_t not_len,
		       int years)
{
	mbedtls_x509_crt ca, crt;
	mbedtls_pk_context key;
	char name[256], want[128];
	uint32_t flags = 0;

	load_crt(&ca, at(dir, "ca.crt"));
	load_crt(&crt, crt_path);
	assert_int_equal(mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL), 0);
	assert_int_equal(flags, 0);
	assert_true(mbedtls_x509_dn_gets(name, sizeof(name), &crt.subject) > 0);
	snprintf(want, sizeof(want), "CN=%s", cn);
	assert_string_equal(name, want);
	assert_false(crt.ca_istrue);
	assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(&crt, eku_oid, eku_len), 0);
	assert_int_not_equal(mbedtls_x509_crt_check_extended_key_usage(&crt, not_eku, not_len), 0);
	assert_int_equal(mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE), 0);
	assert_int_not_equal(mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
	assert_int_equal(crt.serial.len, 16);
	assert_true(crt.serial.len != ca.serial.len ||
		    memcmp(crt.serial.p, ca.serial.p, crt.serial.len) != 0);
	assert_false(mbedtls_x509_time_is_future(&crt.valid_from));
	assert_true(crt.valid_to.year - crt.valid_from.year >= years - 1 &&
		    crt.valid_to.year - crt.valid_from.year <= years);
	mbedtls_pk_init(&key);
	assert_int_equal(mbedtls_pk_parse_keyfile(&key, key_path, NULL), 0);
	assert_int_equal(mbedtls_pk_check_pair(&crt.pk, &key), 0);
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
}

static void test_leaves_in_process(void **state)
{
	check_leaf(at(dir, "broker.crt"), at(dir, "broker.key"), PKI_BROKER_CN,
		   MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH),
		   MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH), 2);
	check_leaf(at(dir, "gateway.crt"), at(dir, "gateway.key"), PKI_GATEWAY_CN,
		   MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH),
		   MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH), 2);
}

static void test_broker_names(void **state)
{
	mbedtls_x509_crt crt;
	uint32_t flags = 0;
	mbedtls_x509_crt ca;
	char out[4096];

	/* mbedTLS checks the DNS SAN as a TLS client would */
	load_crt(&ca, at(dir, "ca.crt"));
	load_crt(&crt, at(dir, "broker.crt"));
	assert_int_equal(mbedtls_x509_crt_verify(&crt, &ca, NULL, "localhost", &flags, NULL, NULL), 0);
	assert_int_not_equal(mbedtls_x509_crt_verify(&crt, &ca, NULL, "example.com", &flags, NULL,
						     NULL), 0);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	if (!have_openssl)
		skip();
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -ext subjectAltName -in broker.crt"), 0);
	print_message("%s", out);
	assert_non_null(strstr(out, "DNS:localhost"));
	assert_non_null(strstr(out, "IP Address:127.0.0.1"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -subject -in broker.crt"), 0);
	assert_non_null(strstr(out, "CN = pitstop-broker"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -ext keyUsage,extendedKeyUsage -in broker.crt"), 0);
	assert_non_null(strstr(out, "Digital Signature, Key Agreement"));
	assert_non_null(strstr(out, "TLS Web Server Authentication"));
}

/* The broker's SAN as its clients check it: name (DNS or IP text) verifies or not. */
static int broker_verifies(const char *d, const char *name)
{
	mbedtls_x509_crt crt, ca;
	uint32_t flags = 0;
	int r;

	load_crt(&ca, at(d, "ca.crt"));
	load_crt(&crt, at(d, "broker.crt"));
	r = mbedtls_x509_crt_verify(&crt, &ca, NULL, name, &flags, NULL, NULL);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return r == 0;
}

/* Reads a whole (small) file into buf. */
static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void test_broker_reissue(void **state)
{
	static const char *const dns[] = { "broker.example.com", "mqtt" };
	static const char *const ip[] = { "192.0.2.10", "2001:db8::1" };
	static const char *const bad_dns[] = { "bad_name" }, *const bad_ip[] = { "1.2.3" };
	static const char *const many[PKI_BROKER_NAMES_MAX + 1] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q" };
	const struct pki_names names = { dns, 2, ip, 2 };
	char err[256] = "", old_crt[4096], old_key[4096], crt[4096], key[4096], out[4096];
	char d[700];
	mbedtls_x509_crt c;
	mbedtls_pk_context pk;

	snprintf(d, sizeof(d), "%s/broker", base);
	assert_int_equal(pki_init(d, err, sizeof(err)), 0);
	assert_true(broker_verifies(d, "localhost"));
	slurp(at(d, "broker.crt"), old_crt, sizeof(old_crt));
	slurp(at(d, "broker.key"), old_key, sizeof(old_key));

	/* re-issued over the old pair: new key, exactly these names */
	assert_int_equal(pki_issue_broker(d, &names, err, sizeof(err)), 0);
	slurp(at(d, "broker.crt"), crt, sizeof(crt));
	slurp(at(d, "broker.key"), key, sizeof(key));
	assert_string_not_equal(crt, old_crt);
	assert_string_not_equal(key, old_key);
	assert_int_equal(mode_of(at(d, "broker.crt")), 0644);
	assert_int_equal(mode_of(at(d, "broker.key")), 0600);
	assert_int_not_equal(access(at(d, "broker.crt.tmp"), F_OK), 0);
	assert_true(broker_verifies(d, "broker.example.com"));
	assert_true(broker_verifies(d, "mqtt"));
	/* (mbedTLS 2.28 matches DNS names only: the IPs are checked with openssl below) */
	assert_false(broker_verifies(d, "localhost"));
	assert_false(broker_verifies(d, "example.com"));
	load_crt(&c, at(d, "broker.crt"));
	mbedtls_pk_init(&pk);
	assert_int_equal(mbedtls_pk_parse_keyfile(&pk, at(d, "broker.key"), NULL), 0);
	assert_int_equal(mbedtls_pk_check_pair(&c.pk, &pk), 0);
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&c);

	/* bad names are refused with the reason, and nothing is replaced */
	assert_int_equal(pki_issue_broker(d, &(struct pki_names){ bad_dns, 1, NULL, 0 }, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad_name"));
	assert_int_equal(pki_issue_broker(d, &(struct pki_names){ NULL, 0, bad_ip, 1 }, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1.2.3"));
	assert_int_equal(pki_issue_broker(d, &(struct pki_names){ NULL, 0, NULL, 0 }, err, sizeof(err)), -EINVAL);
	assert_int_equal(pki_issue_broker(d, &(struct pki_names){ many, PKI_BROKER_NAMES_MAX + 1, NULL, 0 }, err, sizeof(err)), -EINVAL);
	assert_int_equal(pki_issue_broker(d, &(struct pki_names){ many, PKI_BROKER_NAMES_MAX, NULL, 0 }, err, sizeof(err)), 0);
	assert_true(broker_verifies(d, "q") == 0 && broker_verifies(d, "p"));
	slurp(at(d, "broker.crt"), out, sizeof(out));
	assert_string_not_equal(out, crt);

	if (!have_openssl)
		skip();
	assert_int_equal(pki_issue_broker(d, &names, err, sizeof(err)), 0);
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -ext subjectAltName -in '%s/broker.crt'", d), 0);
	assert_non_null(strstr(out, "DNS:broker.example.com, DNS:mqtt, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:1"));
	assert_int_equal(run(out, sizeof(out), "openssl verify -purpose sslserver -CAfile '%s/ca.crt' '%s/broker.crt'", d, d), 0);
	assert_int_equal(run(out, sizeof(out), "openssl verify -verify_ip 192.0.2.10 -CAfile '%s/ca.crt' '%s/broker.crt'", d, d), 0);
	assert_int_equal(run(out, sizeof(out), "openssl verify -verify_ip 2001:db8::1 -CAfile '%s/ca.crt' '%s/broker.crt'", d, d), 0);
	assert_int_not_equal(run(out, sizeof(out), "openssl verify -verify_ip 127.0.0.1 -CAfile '%s/ca.crt' '%s/broker.crt'", d, d), 0);
}

/* An offline CA machine holds ca.crt and ca.key only: issuing works there. */
static void test_issue_vehicle_offline_ca(void **state)
{
	char err[256] = "", d[700], cmd[2048], out[4096];
	mbedtls_x509_crt crt, ca;
	uint32_t flags = 0;

	snprintf(d, sizeof(d), "%s/offline", base);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s/ca.crt' '%s/ca.key' '%s/'", dir, dir, d);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pki_issue_vehicle(d, VIN1, err, sizeof(err)), 0);
	load_crt(&ca, at(d, "ca.crt"));
	load_crt(&crt, at(d, "vehicles/" VIN1 ".crt"));
	assert_int_equal(mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL), 0);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	assert_int_equal(mode_of(at(d, "vehicles/" VIN1 ".key")), 0600);
	/* nothing else appeared: no CRL, no broker or gateway files */
	assert_int_not_equal(access(at(d, "ca.crl"), F_OK), 0);
	assert_int_not_equal(access(at(d, "broker.crt"), F_OK), 0);
	/* with an empty CRL next to it (as pki init writes one), too */
	snprintf(cmd, sizeof(cmd), "cp '%s/ca.crl' '%s/'", dir, d);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pki_issue_gateway(d, "pitstop-gateway-b", err, sizeof(err)), 0);
	/* a revocation there writes the CRL the broker host then gets */
	assert_int_equal(pki_revoke(d, VIN1, err, sizeof(err)), 0);
	if (!have_openssl)
		skip();
	assert_int_equal(run(out, sizeof(out), "openssl crl -noout -text -in '%s/ca.crl'", d), 0);
	assert_non_null(strstr(out, "Serial Number"));
}

static void test_openssl_verify(void **state)
{
	static const struct {
		const char *crt, *purpose;
		int ok;
	} cases[] = {
		{ "broker.crt", "sslserver", 1 },
		{ "gateway.crt", "sslclient", 1 },
		{ "broker.crt", "sslclient", 0 },	/* EKU serverAuth only */
		{ "gateway.crt", "sslserver", 0 },	/* EKU clientAuth only */
		{ "ca.crt", "sslserver", 0 },		/* the CA is no server */
	};
	char out[4096];

	if (!have_openssl)
		skip();
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int st = run(out, sizeof(out), "openssl verify -CAfile ca.crt -purpose %s %s",
			     cases[c].purpose, cases[c].crt);

		print_message("  %s -purpose %s: %s", cases[c].crt, cases[c].purpose, out);
		if (cases[c].ok) {
			char want[128];

			assert_int_equal(st, 0);
			snprintf(want, sizeof(want), "%s: OK", cases[c].crt);
			assert_non_null(strstr(out, want));
		} else {
			assert_int_not_equal(st, 0);
		}
	}
	/* the key files parse in OpenSSL and belong to their certificates */
	assert_int_equal(run(NULL, 0, "test \"$(openssl x509 -in broker.crt -noout -pubkey)\" = "
				      "\"$(openssl pkey -in broker.key -pubout)\""), 0);
	assert_int_equal(run(NULL, 0, "test \"$(openssl x509 -in gateway.crt -noout -pubkey)\" = "
				      "\"$(openssl pkey -in gateway.key -pubout)\""), 0);
	/* leaves name their issuer's key: AKI == the CA's SKI */
	{
		char ski[256], aki[1024];

		assert_int_equal(run(ski, sizeof(ski), "openssl x509 -in ca.crt -noout -ext "
					 "subjectKeyIdentifier | tail -n 1 | tr -d ' '"), 0);
		assert_int_equal(run(aki, sizeof(aki), "openssl x509 -in gateway.crt -noout -ext "
					 "authorityKeyIdentifier | tail -n 1 | tr -d ' '"), 0);
		assert_true(strlen(ski) > 20);
		assert_non_null(strstr(aki, ski));
	}
}

static void test_offer_signing_keys(void **state)
{
	struct crypto_signer *s = NULL;
	struct crypto_verifier *v = NULL;
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t len = 0;

	assert_int_equal(crypto_signer_load(at(dir, "offer-signing.key"), &s), 0);
	assert_int_equal(crypto_verifier_load(at(dir, "offer-signing.pub"), &v), 0);
	assert_string_equal(crypto_signer_key_id(s), crypto_verifier_key_id(v));
	assert_int_equal(crypto_sign(s, (const uint8_t *)"offer", 5, sig, &len), 0);
	assert_int_equal(crypto_verify(v, (const uint8_t *)"offer", 5, sig, len), 0);
	crypto_signer_free(s);
	crypto_verifier_free(v);
}

static void test_issue_vehicle(void **state)
{
	char err[256] = "stale", out[4096];
	mode_t old = umask(0077);	/* the cert must still come out 0644 */
	int r = pki_issue_vehicle(dir, VIN1, err, sizeof(err));
	mbedtls_x509_crt ca, crt;

	umask(old);
	assert_int_equal(r, 0);
	assert_string_equal(err, "");
	assert_int_equal(mode_of(at(dir, "vehicles/" VIN1 ".crt")), 0644);
	assert_int_equal(mode_of(at(dir, "vehicles/" VIN1 ".key")), 0600);
	check_leaf(at(dir, "vehicles/" VIN1 ".crt"), at(dir, "vehicles/" VIN1 ".key"), VIN1,
		   MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH),
		   MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH), 10);
	/* never valid past the CA */
	load_crt(&ca, at(dir, "ca.crt"));
	load_crt(&crt, at(dir, "vehicles/" VIN1 ".crt"));
	assert_true(memcmp(&crt.valid_to, &ca.valid_to, sizeof(ca.valid_to)) == 0 ||
		    crt.valid_to.year < ca.valid_to.year);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);

	/* a second one for the same VIN is refused, the first stays */
	assert_int_equal(pki_issue_vehicle(dir, VIN1, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, VIN1));
	assert_int_equal(mode_of(at(dir, "vehicles/" VIN1 ".key")), 0600);

	if (!have_openssl)
		skip();
	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile ca.crt -purpose sslclient "
				      "vehicles/" VIN1 ".crt"), 0);
	assert_non_null(strstr(out, ": OK"));
	assert_int_not_equal(run(out, sizeof(out), "openssl verify -CAfile ca.crt -purpose sslserver "
					  "vehicles/" VIN1 ".crt"), 0);
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -subject -in vehicles/" VIN1 ".crt"), 0);
	assert_non_null(strstr(out, "CN = " VIN1));
}

static void test_issue_vehicle_bad_vin(void **state)
{
	static const char *const bad[] = {
		"", "WVWZZZ1JZXW00000", "WVWZZZ1JZXW0000012", "wvwzzz1jzxw000001",
		"WVWZZZ1JZXW00000I", "WVWZZZ1JZXW00000O", "WVWZZZ1JZXW00000Q", "WVWZZZ1JZXW0000-1",
		"../../../etc/pass", "WVWZZZ1JZ/W000001",
	};

	char before[256], after[256];

	/* nothing may be written anywhere: compare a listing of the whole PKI */
	assert_int_equal(run(before, sizeof(before), "find . -type f | sort | md5sum"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";

		assert_int_equal(pki_issue_vehicle(dir, bad[i], err, sizeof(err)), -EINVAL);
		print_message("  '%s': %s\n", bad[i], err);
		assert_non_null(strstr(err, "VIN"));
	}
	assert_int_equal(run(after, sizeof(after), "find . -type f | sort | md5sum"), 0);
	assert_string_equal(before, after);
	{
		char err[256] = "";

		assert_int_equal(pki_issue_vehicle(dir, NULL, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
	}
}

static void test_issue_vehicle_without_or_wrong_ca(void **state)
{
	char err[256] = "";
	char other[700], cmd[2400];

	/* no CA at all */
	assert_int_equal(pki_issue_vehicle(at(base, "nothing-here"), VIN1, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "ca.crt"));

	/* a CA certificate with another CA's key */
	snprintf(other, sizeof(other), "%s/other", base);
	assert_int_equal(pki_init(other, err, sizeof(err)), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s/ca.crt' '%s/ca.crt'", dir, other);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pki_issue_vehicle(other, "WVWZZZ1JZXW000002", err, sizeof(err)), -EINVAL);
	print_message("  %s\n", err);
	assert_non_null(strstr(err, "ca.key"));
	assert_int_not_equal(access(at(other, "vehicles/WVWZZZ1JZXW000002.key"), F_OK), 0);
}

static void test_gateway_names(void **state)
{
	static const struct {
		const char *name;
		int ok;
	} cases[] = {
		{ "pitstop-gateway", 1 },
		{ "pitstop-gateway-2", 1 },
		{ "pitstop-gateway-eu-west-1", 1 },
		{ "pitstop-gateway-x-", 1 },
		{ "pitstop-gateway-", 0 },
		{ "pitstop-gateway2", 0 },
		{ "pitstop-gateway-A", 0 },
		{ "pitstop-gateway-a/b", 0 },
		{ "pitstop-gateway-a.b", 0 },
		{ "pitstop-gateway-../x", 0 },
		{ "pitstop-gw1", 0 },
		{ "pitstop-broker", 0 },
		{ "PITSTOP-GATEWAY", 0 },
		{ "", 0 },
		{ VIN1, 0 },
		/* 64 characters is the most */
		{ "pitstop-gateway-012345678901234567890123456789012345678901234567", 1 },
		{ "pitstop-gateway-0123456789012345678901234567890123456789012345679", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  '%s' -> %d\n", cases[i].name, cases[i].ok);
		assert_int_equal(pki_gateway_name_valid(cases[i].name), cases[i].ok);
	}
	assert_int_equal(pki_gateway_name_valid(NULL), 0);
}

static void test_issue_gateway(void **state)
{
	char err[256] = "stale", cn[PKI_GATEWAY_NAME_MAX + 1] = "", out[4096];
	char small[8];
	mode_t old = umask(0077);
	int r = pki_issue_gateway(dir, "pitstop-gateway-2", err, sizeof(err));

	umask(old);
	assert_int_equal(r, 0);
	assert_string_equal(err, "");
	assert_int_equal(mode_of(at(dir, "gateways/pitstop-gateway-2.crt")), 0644);
	assert_int_equal(mode_of(at(dir, "gateways/pitstop-gateway-2.key")), 0600);
	check_leaf(at(dir, "gateways/pitstop-gateway-2.crt"),
		   at(dir, "gateways/pitstop-gateway-2.key"), "pitstop-gateway-2",
		   MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH),
		   MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH), 2);
	assert_int_equal(pki_cert_cn(at(dir, "gateways/pitstop-gateway-2.crt"), cn, sizeof(cn), err,
				     sizeof(err)),
			 0);
	assert_string_equal(cn, "pitstop-gateway-2");
	assert_int_equal(pki_cert_cn(at(dir, "gateway.crt"), cn, sizeof(cn), err, sizeof(err)), 0);
	assert_string_equal(cn, PKI_GATEWAY_CN);
	/* too small a buffer, no file, not a certificate: ret_cn untouched */
	memcpy(small, "keep", 5);
	assert_int_equal(
		pki_cert_cn(at(dir, "gateway.crt"), small, sizeof(small), err, sizeof(err)),
		-ENAMETOOLONG);
	assert_string_equal(small, "keep");
	assert_int_equal(pki_cert_cn(at(dir, "nope.crt"), small, sizeof(small), err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(pki_cert_cn(at(dir, "ca.key"), small, sizeof(small), err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(small, "keep");

	/* again, the first instance (pki init's), a bad name */
	assert_int_equal(pki_issue_gateway(dir, "pitstop-gateway-2", err, sizeof(err)), -EEXIST);
	assert_int_equal(pki_issue_gateway(dir, PKI_GATEWAY_CN, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "gateway.crt"));
	assert_int_equal(pki_issue_gateway(dir, "pitstop-gateway-../../x", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "gateway name"));
	assert_int_equal(pki_issue_gateway(dir, VIN1, err, sizeof(err)), -EINVAL);

	if (!have_openssl)
		skip();
	assert_int_equal(run(out, sizeof(out),
			     "openssl verify -CAfile ca.crt -purpose sslclient "
			     "gateways/pitstop-gateway-2.crt"),
			 0);
}

/* 1 if dir/ca.crl lists the serial of the certificate at path. */
static int crl_lists(const char *path)
{
	mbedtls_x509_crt crt;
	mbedtls_x509_crl crl;
	const mbedtls_x509_crl_entry *e;
	int found = 0;

	load_crt(&crt, path);
	mbedtls_x509_crl_init(&crl);
	assert_int_equal(mbedtls_x509_crl_parse_file(&crl, at(dir, "ca.crl")), 0);
	for (e = &crl.entry; e && e->serial.len; e = e->next)
		if (e->serial.len == crt.serial.len &&
		    memcmp(e->serial.p, crt.serial.p, crt.serial.len) == 0)
			found = 1;
	mbedtls_x509_crl_free(&crl);
	mbedtls_x509_crt_free(&crt);
	return found;
}

static void test_revoke(void **state)
{
	char err[256] = "", out[4096];
	const char *vin2 = "WVWZZZ1JZXW000003";

	assert_int_equal(pki_issue_vehicle(dir, vin2, err, sizeof(err)), 0);
	assert_int_equal(run(NULL, 0, "cp vehicles/%s.crt revoked-copy.crt", vin2), 0);
	assert_int_equal(run(NULL, 0, "cp gateways/pitstop-gateway-2.crt gw2-copy.crt"), 0);
	assert_false(crl_lists(at(dir, "revoked-copy.crt")));

	assert_int_equal(pki_revoke(dir, vin2, err, sizeof(err)), 0);
	assert_true(crl_lists(at(dir, "revoked-copy.crt")));
	assert_int_equal(mode_of(at(dir, "ca.crl")), 0644);
	assert_int_not_equal(access(at(dir, "vehicles/WVWZZZ1JZXW000003.crt"), F_OK), 0);
	assert_int_equal(run(NULL, 0, "ls revoked/%s.*.crt revoked/%s.*.key", vin2, vin2), 0);
	/* nothing left to revoke under that name; a replacement can be issued */
	assert_int_equal(pki_revoke(dir, vin2, err, sizeof(err)), -ENOENT);
	assert_int_equal(pki_issue_vehicle(dir, vin2, err, sizeof(err)), 0);

	/* a second entry keeps the first */
	assert_int_equal(pki_revoke(dir, "pitstop-gateway-2", err, sizeof(err)), 0);
	assert_true(crl_lists(at(dir, "revoked-copy.crt")));
	assert_true(crl_lists(at(dir, "gw2-copy.crt")));
	assert_false(crl_lists(at(dir, "vehicles/WVWZZZ1JZXW000003.crt")));
	assert_false(crl_lists(at(dir, "gateway.crt")));

	/* rewriting keeps the entries; a PKI without a list gets an empty one */
	assert_int_equal(pki_write_crl(dir, err, sizeof(err)), 0);
	assert_true(crl_lists(at(dir, "revoked-copy.crt")));
	assert_true(crl_lists(at(dir, "gw2-copy.crt")));
	assert_int_equal(run(NULL, 0, "mv ca.crl ca.crl.keep"), 0);
	assert_int_equal(pki_write_crl(dir, err, sizeof(err)), 0);
	assert_false(crl_lists(at(dir, "revoked-copy.crt")));
	assert_int_equal(run(NULL, 0, "mv ca.crl.keep ca.crl"), 0);

	assert_int_equal(pki_revoke(dir, "not-a-name", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "neither a VIN nor a gateway name"));
	assert_int_equal(pki_revoke(dir, "WVWZZZ1JZXW000009", err, sizeof(err)), -ENOENT);

	if (!have_openssl)
		skip();
	assert_int_equal(run(out, sizeof(out), "openssl crl -in ca.crl -noout -CAfile ca.crt"), 0);
	assert_non_null(strstr(out, "verify OK"));
	assert_int_equal(run(out, sizeof(out), "openssl crl -in ca.crl -noout -text"), 0);
	assert_non_null(strstr(out, "Version 2"));
	assert_non_null(strstr(out, "X509v3 CRL Number"));
	assert_int_not_equal(run(out, sizeof(out),
				 "openssl verify -crl_check -CAfile ca.crt "
				 "-CRLfile ca.crl revoked-copy.crt"),
			     0);
	assert_non_null(strstr(out, "certificate revoked"));
	assert_int_equal(run(out, sizeof(out),
			     "openssl verify -crl_check -CAfile ca.crt "
			     "-CRLfile ca.crl gateway.crt vehicles/%s.crt",
			     vin2),
			 0);
}

static void test_init_rollback_and_bad_dirs(void **state)
{
	char err[256] = "";
	char d[700], cmd[800];
	FILE *f;

	/* a stray broker.crt makes pki_init fail; it removes what it made */
	snprintf(d, sizeof(d), "%s/partial", base);
	assert_int_equal(mkdir(d, 0755), 0);
	f = fopen(at(d, "broker.crt"), "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(pki_init(d, err, sizeof(err)), -EEXIST);
	print_message("  %s\n", err);
	assert_non_null(strstr(err, "broker.crt"));
	assert_int_not_equal(access(at(d, "ca.key"), F_OK), 0);
	assert_int_not_equal(access(at(d, "ca.crt"), F_OK), 0);
	assert_int_not_equal(access(at(d, "broker.key"), F_OK), 0);
	assert_int_equal(access(at(d, "broker.crt"), F_OK), 0);	/* not ours: kept */

	/* once it is gone, pki_init works there */
	assert_int_equal(unlink(at(d, "broker.crt")), 0);
	assert_int_equal(pki_init(d, err, sizeof(err)), 0);

	/* missing parents are made (0755, as mkdir -p); a file in the way is refused */
	{
		mode_t old = umask(022);

		assert_int_equal(pki_init(at(base, "no/such/parent/"), err, sizeof(err)), 0);
		umask(old);
	}
	assert_int_equal(mode_of(at(base, "no")), 0755);
	assert_int_equal(mode_of(at(base, "no/such")), 0755);
	assert_int_equal(mode_of(at(base, "no/such/parent")), 0755);
	assert_int_equal(access(at(base, "no/such/parent/ca.key"), F_OK), 0);
	snprintf(cmd, sizeof(cmd), "touch '%s/afile'", base);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pki_init(at(base, "afile"), err, sizeof(err)), -ENOTDIR);
	assert_int_equal(pki_init(at(base, "afile/below"), err, sizeof(err)), -ENOTDIR);
	print_message("  %s\n", err);
	assert_non_null(strstr(err, "afile"));
	assert_int_equal(pki_init(NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(pki_init("", NULL, 0), -EINVAL);	/* err may be NULL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_init_refuses_existing_ca),
		cmocka_unit_test(test_ca_certificate),
		cmocka_unit_test(test_leaves_in_process),
		cmocka_unit_test(test_broker_names),
		cmocka_unit_test(test_broker_reissue),
		cmocka_unit_test(test_openssl_verify),
		cmocka_unit_test(test_offer_signing_keys),
		cmocka_unit_test(test_issue_vehicle),
		cmocka_unit_test(test_issue_vehicle_bad_vin),
		cmocka_unit_test(test_issue_vehicle_without_or_wrong_ca),
		cmocka_unit_test(test_issue_vehicle_offline_ca),
		cmocka_unit_test(test_gateway_names),
		cmocka_unit_test(test_issue_gateway),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_init_rollback_and_bad_dirs),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
