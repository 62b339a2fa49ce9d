/*
 * Offer signing; see offer_signing.h. The signature covers the serialized
 * Offer exactly as carried in SignedOffer.offer, so the car verifies the
 * bytes it decodes and never a re-encoding of them.
 */
#include "offer_signing.h"

#include <stdlib.h>

int offer_signing_wrap(struct crypto_signer *signer, const uint8_t *offer, size_t len,
		       uint8_t **ret_buf, size_t *ret_len)
{
	uint8_t sig[CRYPTO_SIG_MAX];
	size_t sig_len = 0;
	int r = crypto_sign(signer, offer, len, sig, &sig_len);

	if (r < 0)
		return r;
	return codec_encode_signed_offer(offer, len, sig, sig_len, crypto_signer_key_id(signer),
					 ret_buf, ret_len);
}

int offer_signing_encode(struct crypto_signer *signer, const struct offer *o, uint8_t **ret_buf,
			 size_t *ret_len)
{
	uint8_t *offer = NULL;
	size_t offer_len = 0;
	int r = codec_encode_offer(o, &offer, &offer_len);

	if (r == 0)
		r = offer_signing_wrap(signer, offer, offer_len, ret_buf, ret_len);
	free(offer);
	return r;
}
