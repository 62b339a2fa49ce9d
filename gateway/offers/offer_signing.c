/*
 * Offer signing; see offer_signing.h. The signature covers the serialized
 * Offer exactly as carried in SignedOffer.offer, so the car verifies the
 * bytes it decodes and never a re-encoding of them.
 */
#include "offer_signing.h"

#include <stdlib.h>

int offer_signing_encode(struct crypto_signer *signer, const struct offer *o, uint8_t **ret_buf,
			 size_t *ret_len)
{
	uint8_t *offer = NULL, sig[CRYPTO_SIG_MAX];
	size_t offer_len = 0, sig_len = 0;
	int r;

	r = codec_encode_offer(o, &offer, &offer_len);
	if (r < 0)
		goto out;
	r = crypto_sign(signer, offer, offer_len, sig, &sig_len);
	if (r < 0)
		goto out;
	r = codec_encode_signed_offer(offer, offer_len, sig, sig_len, crypto_signer_key_id(signer),
				      ret_buf, ret_len);
out:
	free(offer);
	return r;
}
