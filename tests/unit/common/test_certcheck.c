/*
 * Unit tests of common/certcheck.c against certificates the test makes: a
 * fleet made with pki_init() (CA, gateway, broker), a vehicle, a second
 * gateway instance and a second, unrelated fleet; an expired and a not yet
 * valid gateway certificate signed by the fleet CA with mbedTLS here (pki.c
 * has no way to set dates); an encrypted key when the openssl tool is there.
 * Each case checks the return code and the exact words of the message.
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
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "certcheck.h"
#include "pki.h"

#define VIN1 "WVWZZZ1JZXW000001"
#define VIN2 "WP0ZZZ99ZTS392124"

static char base[] = "/tmp/pitstop-test-certcheck-XXXXXX";

/* base-relative path in a rotating static buffer. */
static const char *at(const char *name)
{
	static char bufs[16][1024];
	static int which;
	char *p = bufs[which++ % 16];

	snprintf(p, sizeof(bufs[0]), "%s/%s", base, name);
	return p;
}

static void write_text(const char *path, const unsigned char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs((const char *)text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/*
 * Writes name.crt / name.key: a fresh EC key and a certificate CN=cn valid
 * from..until ("YYYYMMDDhhmmss"), signed by the fleet CA in base/pki.
 */
static void make_dated(const char *name, const char *cn, const char *from, const char *until)
{
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context ca_key, key;
	mbedtls_x509_crt ca;
	mbedtls_x509write_cert w;
	mbedtls_mpi serial;
	unsigned char pem[4096];
	char issuer[256], subject[128], path[64];

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_pk_init(&ca_key);
	mbedtls_pk_init(&key);
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509write_crt_init(&w);
	mbedtls_mpi_init(&serial);
	assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), 0);
	assert_int_equal(mbedtls_x509_crt_parse_file(&ca, at("pki/ca.crt")), 0);
	assert_int_equal(mbedtls_pk_parse_keyfile(&ca_key, at("pki/ca.key"), NULL), 0);
	assert_int_equal(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
					     mbedtls_ctr_drbg_random, &drbg),
			 0);
	assert_true(mbedtls_x509_dn_gets(issuer, sizeof(issuer), &ca.subject) > 0);
	snprintf(subject, sizeof(subject), "CN=%s", cn);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &key);
	mbedtls_x509write_crt_set_issuer_key(&w, &ca_key);
	assert_int_equal(mbedtls_x509write_crt_set_subject_name(&w, subject), 0);
	assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, issuer), 0);
	assert_int_equal(mbedtls_mpi_lset(&serial, 4242), 0);
	assert_int_equal(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
	assert_int_equal(mbedtls_x509write_crt_set_validity(&w, from, until), 0);
	assert_int_equal(
		mbedtls_x509write_crt_pem(&w, pem, sizeof(pem), mbedtls_ctr_drbg_random, &drbg), 0);
	snprintf(path, sizeof(path), "%s.crt", name);
	write_text(at(path), pem);
	assert_int_equal(mbedtls_pk_write_key_pem(&key, pem, sizeof(pem)), 0);
	snprintf(path, sizeof(path), "%s.key", name);
	write_text(at(path), pem);
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&w);
	mbedtls_x509_crt_free(&ca);
	mbedtls_pk_free(&key);
	mbedtls_pk_free(&ca_key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
}

static int group_setup(void **state)
{
	char err[256];

	if (!mkdtemp(base))
		return -1;
	if (pki_init(at("pki"), err, sizeof(err)) < 0 ||
	    pki_issue_vehicle(at("pki"), VIN1, err, sizeof(err)) < 0 ||
	    pki_issue_gateway(at("pki"), "pitstop-gateway-2", err, sizeof(err)) < 0 ||
	    pki_init(at("other"), err, sizeof(err)) < 0) {
		fprintf(stderr, "pki: %s\n", err);
		return -1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_teardown(void **state)
{
	return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs certcheck_files(); checks the code and that err contains want. */
static void expect(const char *ca, const char *crt, const char *key, enum certcheck_role role,
		   const char *vin, int want_rc, const char *want)
{
	char err[1024] = "";
	int r = certcheck_files(ca, crt, key, role, vin, err, sizeof(err));

	if (r != want_rc || (want && !strstr(err, want)))
		fail_msg("rc %d (want %d), message '%s' (want '%s')", r, want_rc, err,
			 want ? want : "");
	if (want_rc == 0)
		assert_string_equal(err, "");
}

static void test_good_pairs(void **state)
{
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("pki/gateway.key"), CERTCHECK_GATEWAY,
	       NULL, 0, NULL);
	expect(at("pki/ca.crt"), at("pki/gateways/pitstop-gateway-2.crt"),
	       at("pki/gateways/pitstop-gateway-2.key"), CERTCHECK_GATEWAY, NULL, 0, NULL);
	expect(at("pki/ca.crt"), at("pki/vehicles/" VIN1 ".crt"), at("pki/vehicles/" VIN1 ".key"),
	       CERTCHECK_VEHICLE, VIN1, 0, NULL);
}

static void test_files(void **state)
{
	char want[1200];

	expect(NULL, at("pki/gateway.crt"), at("pki/gateway.key"), CERTCHECK_GATEWAY, NULL, -EINVAL,
	       "ca_file is not set (a TLS broker_uri needs ca_file, cert_file and key_file)");
	expect(at("pki/ca.crt"), "", at("pki/gateway.key"), CERTCHECK_GATEWAY, NULL, -EINVAL,
	       "cert_file is not set");
	snprintf(want, sizeof(want), "key_file %s: cannot read it: No such file or directory",
		 at("nope.key"));
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("nope.key"), CERTCHECK_GATEWAY, NULL,
	       -ENOENT, want);
	snprintf(want, sizeof(want), "ca_file %s: no certificate in it", at("pki/ca.key"));
	expect(at("pki/ca.key"), at("pki/gateway.crt"), at("pki/gateway.key"), CERTCHECK_GATEWAY,
	       NULL, -EINVAL, want);
	snprintf(want, sizeof(want), "key_file %s: not a private key", at("pki/ca.crt"));
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("pki/ca.crt"), CERTCHECK_GATEWAY, NULL,
	       -EINVAL, want);
}

static void test_key_and_chain(void **state)
{
	char want[1200];

	snprintf(want, sizeof(want), "key_file %s: the key does not match cert_file %s",
		 at("pki/gateways/pitstop-gateway-2.key"), at("pki/gateway.crt"));
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("pki/gateways/pitstop-gateway-2.key"),
	       CERTCHECK_GATEWAY, NULL, -EINVAL, want);
	/* The other fleet's CA did not sign ours, nor ours theirs. */
	snprintf(want, sizeof(want),
		 "cert_file %s: does not verify to ca_file %s: The certificate is not correctly "
		 "signed by the trusted CA",
		 at("pki/gateway.crt"), at("other/ca.crt"));
	expect(at("other/ca.crt"), at("pki/gateway.crt"), at("pki/gateway.key"), CERTCHECK_GATEWAY,
	       NULL, -EINVAL, want);
	expect(at("pki/ca.crt"), at("other/gateway.crt"), at("other/gateway.key"),
	       CERTCHECK_GATEWAY, NULL, -EINVAL, "does not verify to ca_file");
}

static void test_dates(void **state)
{
	char want[1200];

	make_dated("expired", PKI_GATEWAY_CN, "20200101000000", "20210102030405");
	make_dated("future", PKI_GATEWAY_CN, "20990101000000", "21000101000000");
	snprintf(want, sizeof(want),
		 "cert_file %s: the certificate expired on 2021-01-02 03:04:05 UTC",
		 at("expired.crt"));
	expect(at("pki/ca.crt"), at("expired.crt"), at("expired.key"), CERTCHECK_GATEWAY, NULL,
	       -EINVAL, want);
	snprintf(want, sizeof(want),
		 "cert_file %s: the certificate is not valid before 2099-01-01 00:00:00 UTC",
		 at("future.crt"));
	expect(at("pki/ca.crt"), at("future.crt"), at("future.key"), CERTCHECK_GATEWAY, NULL,
	       -EINVAL, want);
}

static void test_roles(void **state)
{
	const char *vcrt = at("pki/vehicles/" VIN1 ".crt"), *vkey = at("pki/vehicles/" VIN1 ".key");

	expect(at("pki/ca.crt"), vcrt, vkey, CERTCHECK_GATEWAY, NULL, -EINVAL,
	       "CN " VIN1 " is a VIN: that is a vehicle's certificate; a gateway needs a gateway "
	       "certificate");
	expect(at("pki/ca.crt"), at("pki/broker.crt"), at("pki/broker.key"), CERTCHECK_GATEWAY,
	       NULL, -EINVAL,
	       "CN '" PKI_BROKER_CN "' is not a gateway identity (pitstop-gateway or "
	       "pitstop-gateway-NAME)");
	expect(at("pki/ca.crt"), vcrt, vkey, CERTCHECK_VEHICLE, VIN2, -EINVAL,
	       "CN '" VIN1 "' is not this car's vin " VIN2 ": the broker would name us after the "
	       "certificate");
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("pki/gateway.key"), CERTCHECK_VEHICLE,
	       VIN1, -EINVAL, "is not this car's vin " VIN1 " (it is a gateway's certificate)");
}

static void test_encrypted_key(void **state)
{
	char cmd[2400];

	snprintf(cmd, sizeof(cmd),
		 "openssl ec -in '%s' -aes256 -passout pass:secret -out '%s' 2>/dev/null",
		 at("pki/gateway.key"), at("encrypted.key"));
	if (system(cmd) != 0)
		skip(); /* no openssl tool */
	expect(at("pki/ca.crt"), at("pki/gateway.crt"), at("encrypted.key"), CERTCHECK_GATEWAY,
	       NULL, -EINVAL, "the key is encrypted (needs a password)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_pairs),    cmocka_unit_test(test_files),
		cmocka_unit_test(test_key_and_chain), cmocka_unit_test(test_dates),
		cmocka_unit_test(test_roles),	      cmocka_unit_test(test_encrypted_key),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
