/*
 * Pitstop's own cryptography, on mbedTLS: ECDSA P-256 signatures over offers
 * (the gateway signs, the agent verifies) and the key identifiers that name
 * a signing key. (At-rest encryption will live here too.)
 *
 * Returns 0 or a negative errno; mbedTLS error codes are translated here and
 * never leak to callers: -ENOENT/-EACCES for key files, -EINVAL for a key of
 * the wrong kind or a malformed PEM, -EBADMSG for a signature that does not
 * verify, -ENOMEM.
 */
#ifndef PITSTOP_CRYPTO_H
#define PITSTOP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SIG_MAX 80    /* DER ECDSA P-256 signature */
#define CRYPTO_KEY_ID_LEN 16 /* hex chars of SHA-256(public key DER) */

struct crypto_signer;
struct crypto_verifier;

/* Loads an EC P-256 private key (PEM). */
int crypto_signer_load(const char *pem_path, struct crypto_signer **ret_signer);
void crypto_signer_free(struct crypto_signer *s);

/*
 * Signs SHA-256(data) with ECDSA. sig must have CRYPTO_SIG_MAX bytes;
 * *ret_sig_len receives the DER length.
 */
int crypto_sign(struct crypto_signer *s, const uint8_t *data, size_t len, uint8_t *sig,
		size_t *ret_sig_len);

/* The signer's key id: CRYPTO_KEY_ID_LEN hex chars + NUL, borrowed. */
const char *crypto_signer_key_id(const struct crypto_signer *s);

/* Loads an EC P-256 public key (PEM, SubjectPublicKeyInfo). */
int crypto_verifier_load(const char *pem_path, struct crypto_verifier **ret_verifier);
void crypto_verifier_free(struct crypto_verifier *v);

/* Returns 0 if sig is a valid signature of data by this key, else -EBADMSG. */
int crypto_verify(struct crypto_verifier *v, const uint8_t *data, size_t len, const uint8_t *sig,
		  size_t sig_len);

const char *crypto_verifier_key_id(const struct crypto_verifier *v);

#endif
