/*
 * The start-up check of a daemon's TLS files; see certcheck.h. Library code:
 * it does not log, it says what is wrong in err and the daemon logs it once.
 */
#include "certcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "pki.h"
#include "vin.h"

/* One TLS file: the option that names it and its path. */
struct certcheck_file {
	const char *option; /* "ca_file" */
	const char *path;   /* borrowed; NULL when not set */
};

/*
 * Whether f is set and can be opened for reading. Returns 0, or a negative
 * errno with "option path: why" in err (-EINVAL when it is not set).
 */
static int file_readable(const struct certcheck_file *f, char *err, size_t errlen)
{
	int fd, r;

	if (!f->path || !*f->path) {
		snprintf(err, errlen,
			 "%s is not set (a TLS broker_uri needs ca_file, cert_file and key_file)",
			 f->option);
		return -EINVAL;
	}
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s %s: cannot read it: %s", f->option, f->path,
			 strerror(-r));
		return r;
	}
	close(fd);
	return 0;
}

/* Writes mbedTLS's text for error code mbed into "option path: what: text". */
static int mbed_error(const struct certcheck_file *f, const char *what, int mbed, char *err,
		      size_t errlen)
{
	char text[160];

	mbedtls_strerror(mbed, text, sizeof(text));
	snprintf(err, errlen, "%s %s: %s (%s)", f->option, f->path, what, text);
	return -EINVAL;
}

/* Formats an X.509 time as "YYYY-MM-DD hh:mm:ss UTC". */
static void format_x509_time(const mbedtls_x509_time *t, char *out, size_t size)
{
	snprintf(out, size, "%04d-%02d-%02d %02d:%02d:%02d UTC", t->year, t->mon, t->day, t->hour,
		 t->min, t->sec);
}

/* Parses every certificate in f into chain (initialised by the caller). */
static int load_certs(const struct certcheck_file *f, mbedtls_x509_crt *chain, char *err,
		      size_t errlen)
{
	int mbed = mbedtls_x509_crt_parse_file(chain, f->path);

	if (mbed < 0)
		return mbed_error(f, "no certificate in it", mbed, err, errlen);
	/* > 0: some PEM blocks did not parse; the others did. */
	if (chain->version == 0) {
		snprintf(err, errlen, "%s %s: no certificate in it", f->option, f->path);
		return -EINVAL;
	}
	return 0;
}

/* The key: unencrypted, and the private half of crt's public key. */
static int check_key(const struct certcheck_file *kf, const struct certcheck_file *cf,
		     mbedtls_x509_crt *crt, char *err, size_t errlen)
{
	mbedtls_pk_context key;
	int mbed, r = 0;

	mbedtls_pk_init(&key);
	mbed = mbedtls_pk_parse_keyfile(&key, kf->path, NULL);
	if (mbed == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
		snprintf(err, errlen,
			 "%s %s: the key is encrypted (needs a password); the daemon needs it "
			 "unencrypted, readable only by its user",
			 kf->option, kf->path);
		r = -EINVAL;
	} else if (mbed != 0) {
		r = mbed_error(kf, "not a private key", mbed, err, errlen);
	} else if ((mbed = mbedtls_pk_check_pair(&crt->pk, &key)) != 0) {
		snprintf(err, errlen, "%s %s: the key does not match %s %s (another pair's key?)",
			 kf->option, kf->path, cf->option, cf->path);
		r = -EINVAL;
	}
	mbedtls_pk_free(&key);
	return r;
}

/* Dates, then the chain to ca. */
static int check_validity(const struct certcheck_file *cf, const struct certcheck_file *caf,
			  mbedtls_x509_crt *crt, mbedtls_x509_crt *ca, char *err, size_t errlen)
{
	char when[40], info[512];
	uint32_t flags = 0;
	int mbed;

	if (mbedtls_x509_time_is_past(&crt->valid_to)) {
		format_x509_time(&crt->valid_to, when, sizeof(when));
		snprintf(err, errlen, "%s %s: the certificate expired on %s", cf->option, cf->path,
			 when);
		return -EINVAL;
	}
	if (mbedtls_x509_time_is_future(&crt->valid_from)) {
		format_x509_time(&crt->valid_from, when, sizeof(when));
		snprintf(err, errlen,
			 "%s %s: the certificate is not valid before %s (is the clock right?)",
			 cf->option, cf->path, when);
		return -EINVAL;
	}
	mbed = mbedtls_x509_crt_verify(crt, ca, NULL, NULL, &flags, NULL, NULL);
	if (mbed == 0)
		return 0;
	if (flags == 0)
		return mbed_error(cf, "cannot be verified", mbed, err, errlen);
	/* One line per flag, joined with "; ". */
	mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
	for (char *p = info; *p; p++)
		if (*p == '\n')
			*p = p[1] ? ';' : '\0';
	snprintf(err, errlen, "%s %s: does not verify to %s %s: %s", cf->option, cf->path,
		 caf->option, caf->path, info);
	return -EINVAL;
}

/* The certificate's CN against what this daemon may be. */
static int check_role(const struct certcheck_file *cf, enum certcheck_role role, const char *vin,
		      char *err, size_t errlen)
{
	char cn[256], why[512];
	int r;

	r = pki_cert_cn(cf->path, cn, sizeof(cn), why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s %s", cf->option, why);
		return r;
	}
	if (role == CERTCHECK_GATEWAY) {
		if (vin_valid(cn)) {
			snprintf(
				err, errlen,
				"%s %s: CN %s is a VIN: that is a vehicle's certificate; a gateway "
				"needs a gateway certificate (pitstopctl pki gateway NAME DIR)",
				cf->option, cf->path, cn);
			return -EINVAL;
		}
		if (!pki_gateway_name_valid(cn)) {
			snprintf(err, errlen,
				 "%s %s: CN '%s' is not a gateway identity (%s or %s-NAME): the "
				 "broker would give it no gateway rights",
				 cf->option, cf->path, cn, PKI_GATEWAY_CN, PKI_GATEWAY_CN);
			return -EINVAL;
		}
		return 0;
	}
	if (!vin || strcmp(cn, vin) != 0) {
		snprintf(err, errlen,
			 "%s %s: CN '%s' is not this car's vin %s%s: the broker would name us "
			 "after the certificate",
			 cf->option, cf->path, cn, vin ? vin : "(unset)",
			 pki_gateway_name_valid(cn) ? " (it is a gateway's certificate)" : "");
		return -EINVAL;
	}
	return 0;
}

int certcheck_files(const char *ca_file, const char *cert_file, const char *key_file,
		    enum certcheck_role role, const char *vin, char *err, size_t errlen)
{
	const struct certcheck_file caf = { "ca_file", ca_file };
	const struct certcheck_file cf = { "cert_file", cert_file };
	const struct certcheck_file kf = { "key_file", key_file };
	mbedtls_x509_crt ca, crt;
	int r;

	if ((r = file_readable(&caf, err, errlen)) < 0 ||
	    (r = file_readable(&cf, err, errlen)) < 0 || (r = file_readable(&kf, err, errlen)) < 0)
		return r;
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&crt);
	if ((r = load_certs(&caf, &ca, err, errlen)) == 0 &&
	    (r = load_certs(&cf, &crt, err, errlen)) == 0 &&
	    (r = check_key(&kf, &cf, &crt, err, errlen)) == 0 &&
	    (r = check_validity(&cf, &caf, &crt, &ca, err, errlen)) == 0)
		r = check_role(&cf, role, vin, err, errlen);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return r;
}
