/*
 * The fleet PKI, made with mbedTLS (no openssl CLI): an EC P-256 fleet CA,
 * the broker's server certificate, the gateway's client certificate, an
 * offer-signing key pair, and one client certificate per vehicle (CN=VIN).
 *
 * Directory layout written by pki_init(dir):
 *   ca.crt ca.key                     fleet CA (key mode 0600)
 *   broker.crt broker.key             CN=pitstop-broker, SAN DNS:localhost, IP:127.0.0.1
 *                                     (pki_issue_broker() replaces them with
 *                                     the names a real broker host has)
 *   gateway.crt gateway.key           CN=pitstop-gateway (client auth)
 *   offer-signing.key offer-signing.pub   offer signing key pair (PEM)
 *   ca.crl                            the CA's revocation list (empty at first)
 * by pki_issue_vehicle(dir, vin):
 *   vehicles/<VIN>.crt vehicles/<VIN>.key   CN=<VIN> (client auth)
 * by pki_issue_gateway(dir, name), one per gateway instance:
 *   gateways/<name>.crt gateways/<name>.key CN=<name> (client auth)
 *   (name pitstop-gateway is the first instance: gateway.crt/.key above)
 * Issuing needs only ca.crt and ca.key in dir (an offline CA machine holds
 * nothing else): no broker or gateway files, no ca.crl.
 * pki_init() creates dir's missing parents (0755) and dir itself.
 * And by pki_revoke(dir, name):
 *   ca.crl rewritten with that certificate's serial added; the certificate
 *   and key moved to revoked/<name>.<serial hex>.crt/.key, so a replacement
 *   can be issued under the same name.
 *
 * Returns 0 or a negative errno; -EEXIST when pki_init would overwrite an
 * existing CA, -EINVAL for a bad VIN or gateway name. err receives a
 * one-line reason.
 */
#ifndef PITSTOP_PKI_H
#define PITSTOP_PKI_H

#include <stddef.h>
#include <string.h>

#define PKI_GATEWAY_CN "pitstop-gateway"
#define PKI_BROKER_CN "pitstop-broker"

int pki_init(const char *dir, char *err, size_t errlen);

/* Names a broker is reached by: its certificate's subjectAltName. */
#define PKI_BROKER_NAMES_MAX 16 /* DNS names and IP addresses together */
#define PKI_DNS_NAME_MAX 253

struct pki_names {
	const char *const *dns; /* borrowed: host names, e.g. "broker.example.com" */
	size_t n_dns;
	const char *const *ip; /* borrowed: IPv4 or IPv6 addresses as text */
	size_t n_ip;
};

/* 0 if names would do for pki_issue_broker(), else -EINVAL with the reason in err. */
int pki_names_check(const struct pki_names *names, char *err, size_t errlen);

/*
 * Issues (or re-issues: replaces, each file atomically) dir/broker.crt and
 * dir/broker.key, CN=pitstop-broker, with subjectAltName = names (at least
 * one, at most PKI_BROKER_NAMES_MAX; DNS names of letters, digits and -,
 * dot-separated; IP addresses in inet_pton() form). Clients check the name
 * they connect to against these. -EINVAL with a reason for a bad name.
 */
int pki_issue_broker(const char *dir, const struct pki_names *names, char *err, size_t errlen);

/*
 * The same for the gateway's HTTPS API (api_cert_file/api_key_file):
 * dir/api.crt and dir/api.key, CN=pitstop-api, a server certificate whose
 * subjectAltName is names (what browsers and pitstopctl --api dial).
 */
#define PKI_API_CN "pitstop-api"
int pki_issue_api(const char *dir, const struct pki_names *names, char *err, size_t errlen);
int pki_issue_vehicle(const char *dir, const char *vin, char *err, size_t errlen);

/* Longest gateway name (certificate CN), without the NUL. */
#define PKI_GATEWAY_NAME_MAX 64

/*
 * 1 if name is a gateway identity: PKI_GATEWAY_CN, or PKI_GATEWAY_CN "-"
 * followed by one or more of [a-z0-9-], at most PKI_GATEWAY_NAME_MAX
 * characters in all; else 0. Inline, so that the broker plugin
 * (gateway/broker/plugin), which links nothing but libc, grants gateway
 * rights by this very rule.
 */
static inline int pki_gateway_name_valid(const char *name)
{
	static const char prefix[] = PKI_GATEWAY_CN;
	size_t len, plen = sizeof(prefix) - 1;

	if (!name)
		return 0;
	len = strnlen(name, PKI_GATEWAY_NAME_MAX + 1);
	if (len > PKI_GATEWAY_NAME_MAX || strncmp(name, prefix, plen) != 0)
		return 0;
	if (len == plen)
		return 1;
	if (name[plen] != '-' || len == plen + 1)
		return 0;
	for (size_t i = plen + 1; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * Issues a gateway instance's client certificate with CN = name (valid per
 * pki_gateway_name_valid()). -EEXIST if that name already has one.
 */
int pki_issue_gateway(const char *dir, const char *name, char *err, size_t errlen);

/*
 * Revokes the certificate of name (a VIN or a gateway name) issued in dir:
 * adds its serial to dir/ca.crl (written anew, signed by the CA, replaced
 * atomically) and moves the certificate and key to dir/revoked/. Returns 0;
 * -ENOENT if name has no certificate in dir, -EINVAL for a name that is
 * neither. The broker reads ca.crl at start (docs/operations.md says when
 * else).
 */
int pki_revoke(const char *dir, const char *name, char *err, size_t errlen);

/*
 * Writes dir/ca.crl anew with the entries it already has (none if it does
 * not exist): for a PKI made before pki_init wrote one, since the broker
 * refuses to start when its crlfile is missing. Returns 0 or a negative errno.
 */
int pki_write_crl(const char *dir, char *err, size_t errlen);

/*
 * Writes the subject CN of the first certificate in the PEM file path into
 * ret_cn[cn_size] (untouched on failure). Returns 0; -ENOENT and friends if
 * the file cannot be read, -EINVAL if it holds no certificate or no CN,
 * -ENAMETOOLONG if the CN does not fit.
 */
int pki_cert_cn(const char *path, char *ret_cn, size_t cn_size, char *err, size_t errlen);

#endif
