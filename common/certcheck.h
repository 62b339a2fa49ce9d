/*
 * The start-up check of a daemon's TLS files. Without it every mistake looks
 * the same from our side (Paho's "TCP/TLS connect failure", retried forever)
 * and only the broker's log says why; worse, a gateway given a vehicle's
 * certificate connects, says "ready" and receives nothing. So the agent and
 * the gateway check their files before they connect, with mbedTLS, and refuse
 * to start (exit 2) with one line that names the file and what is wrong.
 */
#ifndef PITSTOP_CERTCHECK_H
#define PITSTOP_CERTCHECK_H

#include <stddef.h>

enum certcheck_role {
	CERTCHECK_GATEWAY, /* CN a gateway identity (pki_gateway_name_valid), never a VIN */
	CERTCHECK_VEHICLE, /* CN the car's configured VIN */
};

/*
 * Checks, in this order: ca_file, cert_file and key_file are set, exist and
 * can be read (the errno); ca_file holds certificates and cert_file one;
 * key_file is an unencrypted private key that matches cert_file; cert_file
 * is valid now (its dates) and verifies to ca_file (mbedTLS's verify flags,
 * in words); its CN fits role (vin: the configured VIN, for
 * CERTCHECK_VEHICLE; ignored otherwise). Returns 0, or a negative errno
 * (-ENOENT, -EACCES, -EINVAL, ...) with one line in err that starts with the
 * option's name and file ("cert_file /etc/x.crt: expired on ...").
 */
int certcheck_files(const char *ca_file, const char *cert_file, const char *key_file,
		    enum certcheck_role role, const char *vin, char *err, size_t errlen);

#endif
