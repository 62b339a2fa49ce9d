/*
 * Turns an offer into the bytes the gateway publishes: the Offer is encoded,
 * SHA-256/ECDSA-signed over exactly those bytes, and wrapped in a
 * SignedOffer together with the signing key's id. Shared by the daemon and
 * `pitstopctl offer sign`, so both produce the same thing.
 */
#ifndef PITSTOP_GATEWAY_OFFER_SIGNING_H
#define PITSTOP_GATEWAY_OFFER_SIGNING_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "crypto.h"

/*
 * Encodes, signs and wraps o. On success *ret_buf is malloc'ed (caller frees)
 * and *ret_len is its size. Returns 0 or -errno from codec / crypto
 * (-EINVAL for an offer the codec refuses, -EMSGSIZE, -ENOMEM, ...).
 */
int offer_signing_encode(struct crypto_signer *signer, const struct offer *o, uint8_t **ret_buf,
			 size_t *ret_len);

/*
 * The same for an Offer already encoded (codec_encode_offer()): signs
 * exactly those len bytes and wraps them. Errors as above (-EMSGSIZE when
 * the SignedOffer would exceed CODEC_MAX_OFFER_BYTES).
 */
int offer_signing_wrap(struct crypto_signer *signer, const uint8_t *offer, size_t len,
		       uint8_t **ret_buf, size_t *ret_len);

#endif
