/*
 * Unit tests of common/crypto.c: ECDSA P-256 sign/verify, tampering (data,
 * signature, wrong key), key kinds that must be refused (RSA, P-384, public
 * vs private), file errors, key ids, and interoperability with the openssl
 * CLI in both directions (it signs, we verify; we sign, it verifies; it
 * computes the same key id). Keys are made with openssl in a mkdtemp()
 * directory that the group teardown removes, also after a failure. Without
 * the openssl binary the tests are skipped (they have no keys to use).
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
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"

static char tmpdir[] = "/tmp/pitstop-test-crypto-XXXXXX";
static int have_keys;

/* tmpdir/name into a static buffer (rotating, 4 at a time). */
static const char *tpath(const char *name)
{
	static char bufs[4][512];
	static int which;
	char *p = bufs[which++ % 4];

	snprintf(p, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return p;
}

/* Runs a shell command in tmpdir, output discarded; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n, r;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ( ", tmpdir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ) >/dev/null 2>&1");
	r = system(cmd);
	return r == -1 ? -1 : WEXITSTATUS(r);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	if (system("openssl version >/dev/null 2>&1") != 0)
		return 0;	/* have_keys stays 0: tests skip */
	have_keys =
		sh("openssl ecparam -name prime256v1 -genkey -noout -out a.key") == 0 &&
		sh("openssl pkey -in a.key -pubout -out a.pub") == 0 &&
		sh("openssl pkey -in a.key -out a-pkcs8.key") == 0 &&	/* same key, PKCS#8 */
		sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out b.key") == 0 &&
		sh("openssl pkey -in b.key -pubout -out b.pub") == 0 &&
		sh("openssl genrsa -out rsa.key 2048") == 0 &&
		sh("openssl pkey -in rsa.key -pubout -out rsa.pub") == 0 &&
		sh("openssl ecparam -name secp384r1 -genkey -noout -out p384.key") == 0 &&
		sh("openssl pkey -in p384.key -pubout -out p384.pub") == 0 &&
		sh("printf 'not a key\\n' > junk.pem") == 0 &&
		sh("printf 'offer bytes to sign' > data.bin") == 0;
	return have_keys ? 0 : -1;
}

static int group_teardown(void **state)
{
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define NEED_KEYS() \
	do { \
		if (!have_keys) \
			skip(); \
	} while (0)

static struct crypto_signer *signer(const char *name)
{
	struct crypto_signer *s = NULL;

	assert_int_equal(crypto_signer_load(tpath(name), &s), 0);
	assert_non_null(s);
	return s;
}

static struct crypto_verifier *verifier(const char *name)
{
	struct crypto_verifier *v = NULL;

	assert_int_equal(crypto_verifier_load(tpath(name), &v), 0);
	assert_non_null(v);
	return v;
}

static void test_sign_verify(void **state)
{
	static const char *const msgs[] = { "", "x", "a longer offer, serialized protobuf" };
	struct crypto_signer *s;
	struct crypto_verifier *v;

	NEED_KEYS();
	s = signer("a.key");
	v = verifier("a.pub");
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		uint8_t sig[CRYPTO_SIG_MAX];
		size_t len = 0;

		assert_int_equal(crypto_sign(s, (const uint8_t *)msgs[i], strlen(msgs[i]), sig, &len),
				 0);
		assert_true(len >= 8 && len <= 72);
		assert_int_equal(sig[0], 0x30);	/* DER SEQUENCE */
		assert_int_equal(crypto_verify(v, (const uint8_t *)msgs[i], strlen(msgs[i]), sig, len),
				 0);
	}
	/* NULL data with length 0 is the empty message */
	{
		uint8_t sig[CRYPTO_SIG_MAX];
		size_t len = 0;

		assert_int_equal(crypto_sign(s, NULL, 0, sig, &len), 0);
		assert_int_equal(crypto_verify(v, (const uint8_t *)"", 0, sig, len), 0);
	}
	crypto_signer_free(s);
	crypto_verifier_free(v);
}

static void test_tampering(void **state)
{
	uint8_t data[64], sig[CRYPTO_SIG_MAX + 8];
	size_t len = 0;
	struct crypto_signer *s;
	struct crypto_verifier *v, *other;

	NEED_KEYS();
	s = signer("a.key");
	v = verifier("a.pub");
	other = verifier("b.pub");
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(crypto_sign(s, data, sizeof(data), sig, &len), 0);
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len), 0);

	/* every byte of the data, one bit flipped */
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] ^= 0x01;
		assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len), -EBADMSG);
		data[i] ^= 0x01;
	}
	/* shorter data */
	assert_int_equal(crypto_verify(v, data, sizeof(data) - 1, sig, len), -EBADMSG);
	/* every byte of the signature, each bit flipped in turn */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			sig[i] ^= (uint8_t)(1u << b);
			assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len), -EBADMSG);
			sig[i] ^= (uint8_t)(1u << b);
		}
	}
	/* truncated, empty, trailing garbage, oversized */
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len - 1), -EBADMSG);
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, 0), -EBADMSG);
	sig[len] = 0;
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len + 1), -EBADMSG);
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, CRYPTO_SIG_MAX + 1), -EBADMSG);
	/* the right signature under the wrong key */
	assert_int_equal(crypto_verify(other, data, sizeof(data), sig, len), -EBADMSG);
	/* and still fine with the right one: nothing above changed state */
	assert_int_equal(crypto_verify(v, data, sizeof(data), sig, len), 0);
	crypto_signer_free(s);
	crypto_verifier_free(v);
	crypto_verifier_free(other);
}

static void test_rejected_keys(void **state)
{
	static const struct {
		const char *file;
		int as_signer, want;
	} cases[] = {
		{ "rsa.key", 1, -EINVAL },	/* not EC */
		{ "rsa.pub", 0, -EINVAL },
		{ "p384.key", 1, -EINVAL },	/* EC, wrong curve */
		{ "p384.pub", 0, -EINVAL },
		{ "a.pub", 1, -EINVAL },	/* public key where a private one is needed */
		{ "a.key", 0, -EINVAL },	/* and the other way round */
		{ "junk.pem", 1, -EINVAL },
		{ "junk.pem", 0, -EINVAL },
		{ "missing.pem", 1, -ENOENT },
		{ "missing.pem", 0, -ENOENT },
		{ "nodir/missing.pem", 0, -ENOENT },
	};

	NEED_KEYS();
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		print_message("  %s as %s\n", cases[c].file, cases[c].as_signer ? "signer" : "verifier");
		if (cases[c].as_signer) {
			struct crypto_signer *s = (struct crypto_signer *)(uintptr_t)0x1;

			assert_int_equal(crypto_signer_load(tpath(cases[c].file), &s), cases[c].want);
			assert_ptr_equal(s, (struct crypto_signer *)(uintptr_t)0x1);
		} else {
			struct crypto_verifier *v = (struct crypto_verifier *)(uintptr_t)0x1;

			assert_int_equal(crypto_verifier_load(tpath(cases[c].file), &v), cases[c].want);
			assert_ptr_equal(v, (struct crypto_verifier *)(uintptr_t)0x1);
		}
	}
	crypto_signer_free(NULL);
	crypto_verifier_free(NULL);
}

/* Reads the first line of a file into buf; returns 0 or -1. */
static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	return ok ? 0 : -1;
}

static void test_key_ids(void **state)
{
	struct crypto_signer *sa, *sa8, *sb;
	struct crypto_verifier *va, *vb;
	char expect[128];

	NEED_KEYS();
	sa = signer("a.key");
	sa8 = signer("a-pkcs8.key");
	sb = signer("b.key");
	va = verifier("a.pub");
	vb = verifier("b.pub");
	assert_int_equal(strlen(crypto_signer_key_id(sa)), CRYPTO_KEY_ID_LEN);
	assert_int_equal(strspn(crypto_signer_key_id(sa), "0123456789abcdef"), CRYPTO_KEY_ID_LEN);
	assert_string_equal(crypto_signer_key_id(sa), crypto_verifier_key_id(va));
	assert_string_equal(crypto_signer_key_id(sa8), crypto_verifier_key_id(va));
	assert_string_equal(crypto_signer_key_id(sb), crypto_verifier_key_id(vb));
	assert_string_not_equal(crypto_signer_key_id(sa), crypto_signer_key_id(sb));

	/* The id is SHA-256 over the DER SubjectPublicKeyInfo, as openssl writes it. */
	assert_int_equal(sh("openssl pkey -pubin -in a.pub -outform DER | sha256sum | cut -c1-16 > a.id"),
			 0);
	assert_int_equal(read_line(tpath("a.id"), expect, sizeof(expect)), 0);
	expect[strcspn(expect, "\n")] = '\0';
	assert_string_equal(crypto_verifier_key_id(va), expect);
	crypto_signer_free(sa);
	crypto_signer_free(sa8);
	crypto_signer_free(sb);
	crypto_verifier_free(va);
	crypto_verifier_free(vb);
}

static void test_openssl_interop(void **state)
{
	uint8_t sig[CRYPTO_SIG_MAX], data[64];
	size_t len = 0, dlen;
	struct crypto_signer *s;
	struct crypto_verifier *v;
	FILE *f;

	NEED_KEYS();
	s = signer("b.key");
	v = verifier("b.pub");
	f = fopen(tpath("data.bin"), "rb");
	assert_non_null(f);
	dlen = fread(data, 1, sizeof(data), f);
	fclose(f);
	assert_true(dlen > 0);

	/* we sign, openssl verifies */
	assert_int_equal(crypto_sign(s, data, dlen, sig, &len), 0);
	f = fopen(tpath("ours.sig"), "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(sig, 1, len, f), len);
	fclose(f);
	assert_int_equal(sh("openssl dgst -sha256 -verify b.pub -signature ours.sig data.bin"), 0);
	assert_int_not_equal(sh("openssl dgst -sha256 -verify a.pub -signature ours.sig data.bin"), 0);

	/* openssl signs, we verify */
	assert_int_equal(sh("openssl dgst -sha256 -sign b.key -out theirs.sig data.bin"), 0);
	f = fopen(tpath("theirs.sig"), "rb");
	assert_non_null(f);
	len = fread(sig, 1, sizeof(sig), f);
	fclose(f);
	assert_true(len > 0);
	assert_int_equal(crypto_verify(v, data, dlen, sig, len), 0);
	data[0] ^= 1;
	assert_int_equal(crypto_verify(v, data, dlen, sig, len), -EBADMSG);
	crypto_signer_free(s);
	crypto_verifier_free(v);
}

static void test_bad_arguments(void **state)
{
	struct crypto_signer *s;
	struct crypto_verifier *v;
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t len = 1234;

	NEED_KEYS();
	s = signer("a.key");
	v = verifier("a.pub");
	assert_int_equal(crypto_sign(s, NULL, 5, sig, &len), -EINVAL);
	assert_int_equal(crypto_sign(s, (const uint8_t *)"x", 1, NULL, &len), -EINVAL);
	assert_int_equal(len, 1234);	/* untouched on failure */
	assert_int_equal(crypto_verify(v, NULL, 5, sig, 10), -EINVAL);
	assert_int_equal(crypto_signer_load(NULL, &s), -EINVAL);
	assert_int_equal(crypto_verifier_load(tpath("a.pub"), NULL), -EINVAL);
	crypto_signer_free(s);
	crypto_verifier_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_rejected_keys),
		cmocka_unit_test(test_key_ids),
		cmocka_unit_test(test_openssl_interop),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
