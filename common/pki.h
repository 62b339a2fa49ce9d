/*
 * The fleet PKI, made with mbedTLS (no openssl CLI): an EC P-256 fleet CA,
 * the broker's server certificate, the gateway's client certificate, an
 * offer-signing key pair, and one client certificate per vehicle (CN=VIN).
 *
 * Directory layout written by pki_init(dir):
 *   ca.crt ca.key                     fleet CA (key mode 0600)
 *   broker.crt broker.key             CN=pitstop-broker, SAN DNS:localhost, IP:127.0.0.1
 *   gateway.crt gateway.key           CN=pitstop-gateway (client auth)
 *   offer-signing.key offer-signing.pub   offer signing key pair (PEM)
 * and by pki_issue_vehicle(dir, vin):
 *   vehicles/<VIN>.crt vehicles/<VIN>.key   CN=<VIN> (client auth)
 *
 * Returns 0 or a negative errno; -EEXIST when pki_init would overwrite an
 * existing CA, -EINVAL for a bad VIN. err receives a one-line reason.
 */
#ifndef PITSTOP_PKI_H
#define PITSTOP_PKI_H

#include <stddef.h>

#define PKI_GATEWAY_CN "pitstop-gateway"
#define PKI_BROKER_CN "pitstop-broker"

int pki_init(const char *dir, char *err, size_t errlen);
int pki_issue_vehicle(const char *dir, const char *vin, char *err, size_t errlen);

#endif
