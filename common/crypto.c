/*
 * ECDSA P-256 offer signatures and key ids on mbedTLS 2.28 (see crypto.h).
 * This file is the only place that sees mbedTLS error codes for signing: they
 * are translated to negative errno values here and never reach callers.
 *
 * Keys are read with mbedtls_pk_parse_keyfile / _public_keyfile and must be
 * EC keys on secp256r1; anything else (RSA, other curves) is -EINVAL. A key
 * id is the lowercase hex of the first 8 bytes of SHA-256 over the DER
 * SubjectPublicKeyInfo, the same bytes OpenSSL prints with
 * "openssl pkey -pubin -outform DER", so a signer (private key) and a
 * verifier (public key) of one pair get the same id.
 *
 * Nothing here logs, and key material is never copied out of the mbedTLS
 * contexts. A signer owns a CTR-DRBG, and its key's group keeps the table of
 * multiples of the generator its first signature computed, so one signer
 * must not be used from two threads at once. The same holds for a verifier:
 * its key's group keeps that table from its first verification.
 */
#include "crypto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#define CRYPTO_KEY_ID_BYTES (CRYPTO_KEY_ID_LEN / 2)
#define CRYPTO_PUBKEY_DER_MAX 256 /* a P-256 SubjectPublicKeyInfo is 91 bytes */

struct crypto_signer {
	mbedtls_pk_context pk; /* private key, EC P-256 */
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg; /* seeded from entropy */
	char key_id[CRYPTO_KEY_ID_LEN + 1];
};

struct crypto_verifier {
	mbedtls_pk_context pk; /* public key, EC P-256 */
	char key_id[CRYPTO_KEY_ID_LEN + 1];
};

/*
 * Translates the result of an mbedtls_pk_parse_*file() call. saved_errno is
 * errno right after the call: on MBEDTLS_ERR_PK_FILE_IO_ERROR it is what
 * fopen()/fread() left there.
 */
static int parse_error(int mbed, int saved_errno)
{
	switch (mbed) {
	case MBEDTLS_ERR_PK_FILE_IO_ERROR:
		return saved_errno > 0 ? -saved_errno : -EIO;
	case MBEDTLS_ERR_PK_ALLOC_FAILED:
		return -ENOMEM;
	default:
		return -EINVAL; /* malformed PEM/DER, needs a password, ... */
	}
}

/* 0 if pk holds an EC key on secp256r1, else -EINVAL. */
static int check_p256(const mbedtls_pk_context *pk)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);

	if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA)
		return -EINVAL;
	if (mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
		return -EINVAL;
	return 0;
}

/* Writes pk's key id (CRYPTO_KEY_ID_LEN hex chars + NUL) into out. */
static int key_id(mbedtls_pk_context *pk, char out[CRYPTO_KEY_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char der[CRYPTO_PUBKEY_DER_MAX];
	unsigned char hash[32];
	int len;

	/* Writes at the END of der; returns the length. */
	len = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));
	if (len <= 0)
		return -EINVAL;
	if (mbedtls_sha256_ret(der + sizeof(der) - (size_t)len, (size_t)len, hash, 0) != 0)
		return -EINVAL;
	for (size_t i = 0; i < CRYPTO_KEY_ID_BYTES; i++) {
		out[2 * i] = hex[hash[i] >> 4];
		out[2 * i + 1] = hex[hash[i] & 0xf];
	}
	out[CRYPTO_KEY_ID_LEN] = '\0';
	return 0;
}

int crypto_signer_load(const char *pem_path, struct crypto_signer **ret_signer)
{
	static const char pers[] = "pitstop-crypto-signer";
	struct crypto_signer *s;
	int r, mbed;

	if (!pem_path || !ret_signer)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	mbedtls_pk_init(&s->pk);
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);

	errno = 0;
	mbed = mbedtls_pk_parse_keyfile(&s->pk, pem_path, NULL);
	if (mbed != 0) {
		r = parse_error(mbed, errno);
		goto fail;
	}
	r = check_p256(&s->pk);
	if (r < 0)
		goto fail;
	r = key_id(&s->pk, s->key_id);
	if (r < 0)
		goto fail;
	if (mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
				  (const unsigned char *)pers, sizeof(pers) - 1) != 0) {
		r = -EIO; /* no entropy source */
		goto fail;
	}
	*ret_signer = s;
	return 0;
fail:
	crypto_signer_free(s);
	return r;
}

void crypto_signer_free(struct crypto_signer *s)
{
	if (!s)
		return;
	mbedtls_ctr_drbg_free(&s->drbg);
	mbedtls_entropy_free(&s->entropy);
	mbedtls_pk_free(&s->pk); /* zeroizes the private key */
	free(s);
}

int crypto_sign(struct crypto_signer *s, const uint8_t *data, size_t len, uint8_t *sig,
		size_t *ret_sig_len)
{
	/*
	 * 2.28's mbedtls_ecdsa_write_signature() has no output size: it may
	 * write up to MBEDTLS_ECDSA_MAX_LEN bytes. Sign into a buffer that large
	 * and copy, so callers only need CRYPTO_SIG_MAX (a P-256 DER signature
	 * is at most 72 bytes).
	 */
	unsigned char buf[MBEDTLS_ECDSA_MAX_LEN];
	unsigned char hash[32];
	size_t n = 0;
	int mbed;

	if (!s || (!data && len) || !sig || !ret_sig_len)
		return -EINVAL;
	if (mbedtls_sha256_ret(data, len, hash, 0) != 0)
		return -EINVAL;
	/*
	 * Not mbedtls_pk_sign(): 2.28 copies the key into a fresh ECDSA context
	 * for every call, and a fresh group has lost the table of multiples of
	 * the generator that the first signature computed, so each signature
	 * built it again (1.0 ms a signature here, against 0.45 ms with the key's
	 * own group, which keeps it). The key is an EC P-256 key (check_p256()).
	 */
	mbed = mbedtls_ecdsa_write_signature(mbedtls_pk_ec(s->pk), MBEDTLS_MD_SHA256, hash,
					     sizeof(hash), buf, &n, mbedtls_ctr_drbg_random,
					     &s->drbg);
	if (mbed != 0)
		return mbed == MBEDTLS_ERR_ECP_ALLOC_FAILED || mbed == MBEDTLS_ERR_MPI_ALLOC_FAILED
			       ? -ENOMEM
			       : -EIO;
	if (n == 0 || n > CRYPTO_SIG_MAX)
		return -EIO; /* cannot happen for P-256 */
	memcpy(sig, buf, n);
	*ret_sig_len = n;
	return 0;
}

const char *crypto_signer_key_id(const struct crypto_signer *s)
{
	return s->key_id;
}

int crypto_verifier_load(const char *pem_path, struct crypto_verifier **ret_verifier)
{
	struct crypto_verifier *v;
	int r, mbed;

	if (!pem_path || !ret_verifier)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	mbedtls_pk_init(&v->pk);
	errno = 0;
	mbed = mbedtls_pk_parse_public_keyfile(&v->pk, pem_path);
	if (mbed != 0) {
		r = parse_error(mbed, errno);
		goto fail;
	}
	r = check_p256(&v->pk);
	if (r < 0)
		goto fail;
	r = key_id(&v->pk, v->key_id);
	if (r < 0)
		goto fail;
	*ret_verifier = v;
	return 0;
fail:
	crypto_verifier_free(v);
	return r;
}

void crypto_verifier_free(struct crypto_verifier *v)
{
	if (!v)
		return;
	mbedtls_pk_free(&v->pk);
	free(v);
}

int crypto_verify(struct crypto_verifier *v, const uint8_t *data, size_t len, const uint8_t *sig,
		  size_t sig_len)
{
	unsigned char hash[32];
	int mbed;

	if (!v || (!data && len) || (!sig && sig_len))
		return -EINVAL;
	if (sig_len == 0 || sig_len > CRYPTO_SIG_MAX)
		return -EBADMSG;
	if (mbedtls_sha256_ret(data, len, hash, 0) != 0)
		return -EINVAL;
	/*
	 * Any failure is "does not verify": a wrong signature, malformed DER,
	 * or trailing bytes after a valid one (MBEDTLS_ERR_ECP_SIG_LEN_MISMATCH).
	 */
	/* On the key's own group, as crypto_sign(): 2.1 -> 1.5 ms a verification. */
	mbed = mbedtls_ecdsa_read_signature(mbedtls_pk_ec(v->pk), hash, sizeof(hash), sig, sig_len);
	if (mbed == 0)
		return 0;
	if (mbed == MBEDTLS_ERR_ECP_ALLOC_FAILED || mbed == MBEDTLS_ERR_MPI_ALLOC_FAILED)
		return -ENOMEM;
	return -EBADMSG;
}

const char *crypto_verifier_key_id(const struct crypto_verifier *v)
{
	return v->key_id;
}
