/*
 * The fleet PKI (see pki.h), written with mbedTLS 2.28 only: key generation,
 * X.509 v3 certificates and PEM files that OpenSSL 3, mosquitto 2 and Paho
 * accept as they are.
 *
 * What every certificate gets:
 *  - EC P-256 key, ECDSA-SHA256 signature, a random positive 16-byte serial;
 *  - notBefore one hour in the past (clock skew between the CA host, the
 *    broker and the cars), notAfter a number of calendar years later;
 *  - leaves: basicConstraints CA:FALSE, an authority key id matching the
 *    CA's subject key id, an extendedKeyUsage for their one role.
 * The CA: CN=Pitstop Fleet CA, basicConstraints CA:TRUE pathlen:0 (it signs
 * leaves only), keyUsage keyCertSign|cRLSign, subject key id, 10 years.
 *
 * mbedTLS 2.28 has neither a subjectAltName nor an extendedKeyUsage setter, so
 * both extensions are built here with mbedtls_asn1_write_* and added with
 * mbedtls_x509write_crt_set_extension().
 *
 * Files: keys are created 0600 and certificates 0644 with O_CREAT|O_EXCL and
 * an fchmod(), so the modes do not depend on the umask and nothing existing
 * is ever overwritten. If writing one file fails, the files this call
 * created are removed again: no half-made PKI is left behind.
 *
 * Library code: nothing is logged; a one-line reason goes into err.
 */
#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "vin.h"

#define PKI_CA_SUBJECT "CN=Pitstop Fleet CA"
#define PKI_CA_YEARS 10
#define PKI_LEAF_YEARS 2 /* broker, gateway: rotated by operations */
/*
 * A car lives 15 years or more and may be parked, offline, for months: a
 * short-lived certificate would lock it out with nobody there to renew it.
 * Vehicles get 10 years, clamped to the CA's own notAfter (a leaf cannot be
 * used past its issuer). CA rotation is therefore an operations task.
 */
#define PKI_VEHICLE_YEARS 10
#define PKI_BACKDATE_S 3600
#define PKI_SERIAL_BYTES 16
#define PKI_PEM_MAX 4096 /* a P-256 certificate PEM is under 1 KiB */
#define PKI_MAX_FILES 8

#define MODE_KEY 0600
#define MODE_CERT 0644
#define MODE_DIR 0755

/* The role a certificate is made for. */
enum pki_role {
	ROLE_CA,
	ROLE_SERVER, /* the broker: serverAuth, subjectAltName (struct pki_names) */
	ROLE_CLIENT, /* gateway, vehicles: clientAuth */
};

/* Random bits for keys, serials and signatures. */
struct pki_rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

/* One file to be written: name relative to the PKI dir, PEM text. */
struct pki_file {
	char name[64];
	mode_t mode;
	int created;			/* set once this call created it */
	unsigned char pem[PKI_PEM_MAX]; /* NUL-terminated; zeroized after use */
};

/* printf into err (one line); err may be NULL or errlen 0. */
static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Translates an mbedTLS error from operation what into errno + message. */
static int mbed_fail(int mbed, const char *what, char *err, size_t errlen)
{
	char msg[128];

	mbedtls_strerror(mbed, msg, sizeof(msg));
	seterr(err, errlen, "%s: %s", what, msg);
	if (mbed == MBEDTLS_ERR_PK_ALLOC_FAILED || mbed == MBEDTLS_ERR_MPI_ALLOC_FAILED ||
	    mbed == MBEDTLS_ERR_ECP_ALLOC_FAILED || mbed == MBEDTLS_ERR_ASN1_ALLOC_FAILED ||
	    mbed == MBEDTLS_ERR_X509_ALLOC_FAILED)
		return -ENOMEM;
	return -EIO;
}

/* Sets up rng (always: rng_free() it) and seeds it from the system's entropy. */
static int rng_init(struct pki_rng *rng, char *err, size_t errlen)
{
	static const char pers[] = "pitstop-pki";
	int mbed;

	mbedtls_entropy_init(&rng->entropy);
	mbedtls_ctr_drbg_init(&rng->drbg);
	mbed = mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
				     (const unsigned char *)pers, sizeof(pers) - 1);
	return mbed ? mbed_fail(mbed, "seeding the random generator", err, errlen) : 0;
}

/* Frees what rng_init() set up (also after a failed seed). */
static void rng_free(struct pki_rng *rng)
{
	mbedtls_ctr_drbg_free(&rng->drbg);
	mbedtls_entropy_free(&rng->entropy);
}

/* Generates a fresh EC P-256 key into pk (initialised by the caller). */
static int gen_key(mbedtls_pk_context *pk, struct pki_rng *rng, char *err, size_t errlen)
{
	int mbed = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));

	if (mbed == 0)
		mbed = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
					   mbedtls_ctr_drbg_random, &rng->drbg);
	return mbed ? mbed_fail(mbed, "generating an EC P-256 key", err, errlen) : 0;
}

/* Formats t as mbedTLS's "YYYYMMDDhhmmss" (UTC). */
static void format_time(time_t t, char out[15])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14)
		snprintf(out, 15, "99991231235959"); /* year > 9999: cannot happen */
}

/*
 * Validity: from one hour ago for years calendar years (29 February rolls to
 * 1 March), but never past max ("YYYYMMDDhhmmss", may be NULL).
 */
static void validity(int years, const char *max, char from[15], char until[15])
{
	time_t start = time(NULL) - PKI_BACKDATE_S;
	struct tm tm;

	format_time(start, from);
	gmtime_r(&start, &tm);
	tm.tm_year += years;
	format_time(timegm(&tm), until);
	/* Same fixed-width format: string order is time order. */
	if (max && strcmp(until, max) > 0)
		memcpy(until, max, 15);
}

/* Sets a random positive serial of exactly PKI_SERIAL_BYTES bytes. */
static int set_serial(mbedtls_x509write_cert *crt, struct pki_rng *rng)
{
	unsigned char b[PKI_SERIAL_BYTES];
	mbedtls_mpi serial;
	int mbed;

	mbedtls_mpi_init(&serial);
	mbed = mbedtls_ctr_drbg_random(&rng->drbg, b, sizeof(b));
	if (mbed == 0) {
		b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, full length */
		mbed = mbedtls_mpi_read_binary(&serial, b, sizeof(b));
	}
	if (mbed == 0)
		mbed = mbedtls_x509write_crt_set_serial(crt, &serial);
	mbedtls_mpi_free(&serial);
	return mbed;
}

/* Adds extendedKeyUsage = SEQUENCE { oid }. Returns 0 or an mbedTLS error. */
static int set_eku(mbedtls_x509write_cert *crt, const char *oid, size_t oid_len)
{
	unsigned char buf[32];
	unsigned char *p = buf + sizeof(buf);
	size_t len = 0;
	int ret;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(&p, buf, oid, oid_len));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
	MBEDTLS_ASN1_CHK_ADD(
		len,
		mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
						   MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
						   0, p, len);
}

/* Writes one GeneralName [tag] IMPLICIT data before *p. Returns its length. */
static int write_general_name(unsigned char **p, unsigned char *start, int tag,
			      const unsigned char *data, size_t n)
{
	size_t len = 0;
	int ret;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, data, n));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(
		len, mbedtls_asn1_write_tag(p, start,
					    (unsigned char)(MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag)));
	return (int)len;
}

/* What pki_init() puts in the broker's subjectAltName. */
static const char *const default_dns[] = { "localhost" };
static const char *const default_ip[] = { "127.0.0.1" };
static const struct pki_names default_names = { default_dns, 1, default_ip, 1 };

/* 1 if s is a DNS name we put in a certificate: labels of [A-Za-z0-9-], dots between. */
static int dns_name_valid(const char *s)
{
	size_t len = strnlen(s, PKI_DNS_NAME_MAX + 1), label = 0;

	if (len == 0 || len > PKI_DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

int pki_names_check(const struct pki_names *names, char *err, size_t errlen)
{
	unsigned char addr[16];

	if (names->n_dns + names->n_ip == 0) {
		seterr(err, errlen, "the broker needs at least one DNS name or IP address");
		return -EINVAL;
	}
	if (names->n_dns + names->n_ip > PKI_BROKER_NAMES_MAX) {
		seterr(err, errlen, "%zu broker names: at most %d", names->n_dns + names->n_ip,
		       PKI_BROKER_NAMES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < names->n_dns; i++)
		if (!names->dns[i] || !dns_name_valid(names->dns[i])) {
			seterr(err, errlen,
			       "'%s' is not a DNS name (letters, digits and - in dot-separated "
			       "labels, at most %d characters)",
			       names->dns[i] ? names->dns[i] : "", PKI_DNS_NAME_MAX);
			return -EINVAL;
		}
	for (size_t i = 0; i < names->n_ip; i++)
		if (!names->ip[i] || (inet_pton(AF_INET, names->ip[i], addr) != 1 &&
				      inet_pton(AF_INET6, names->ip[i], addr) != 1)) {
			seterr(err, errlen, "'%s' is not an IPv4 or IPv6 address",
			       names->ip[i] ? names->ip[i] : "");
			return -EINVAL;
		}
	return 0;
}

/*
 * Adds subjectAltName = the DNS names then the IP addresses of names
 * (checked by pki_names_check()). Returns 0 or an mbedTLS error.
 */
static int set_broker_san(mbedtls_x509write_cert *crt, const struct pki_names *names)
{
	unsigned char buf[PKI_BROKER_NAMES_MAX * (PKI_DNS_NAME_MAX + 4) + 8], addr[16];
	unsigned char *p = buf + sizeof(buf);
	size_t len = 0;
	int ret;

	/* Written back to front: the last entry first. */
	for (size_t i = names->n_ip; i-- > 0;) {
		size_t n = 16;

		if (inet_pton(AF_INET, names->ip[i], addr) == 1)
			n = 4;
		else if (inet_pton(AF_INET6, names->ip[i], addr) != 1)
			return MBEDTLS_ERR_X509_BAD_INPUT_DATA;
		MBEDTLS_ASN1_CHK_ADD(len, write_general_name(&p, buf, 7, addr, n));
	}
	for (size_t i = names->n_dns; i-- > 0;)
		MBEDTLS_ASN1_CHK_ADD(len, write_general_name(&p, buf, 2,
							     (const unsigned char *)names->dns[i],
							     strlen(names->dns[i])));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
	MBEDTLS_ASN1_CHK_ADD(
		len,
		mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
						   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
						   0, p, len);
}

/*
 * Makes a certificate for subject_key as PEM into out[PKI_PEM_MAX]. issuer_key
 * and issuer_name are the CA's (the subject's own for the CA itself);
 * not_after_max clamps notAfter (NULL: no clamp); names is the
 * subjectAltName of a ROLE_SERVER certificate (NULL otherwise).
 */
static int make_cert(enum pki_role role, const char *subject, int years,
		     const struct pki_names *names, mbedtls_pk_context *subject_key,
		     mbedtls_pk_context *issuer_key, const char *issuer_name,
		     const char *not_after_max, struct pki_rng *rng, unsigned char *out, char *err,
		     size_t errlen)
{
	mbedtls_x509write_cert crt;
	char from[15], until[15];
	int mbed;

	mbedtls_x509write_crt_init(&crt);
	mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&crt, subject_key);
	mbedtls_x509write_crt_set_issuer_key(&crt, issuer_key);
	validity(years, not_after_max, from, until);

	mbed = mbedtls_x509write_crt_set_subject_name(&crt, subject);
	if (!mbed)
		mbed = mbedtls_x509write_crt_set_issuer_name(&crt, issuer_name);
	if (!mbed)
		mbed = set_serial(&crt, rng);
	if (!mbed)
		mbed = mbedtls_x509write_crt_set_validity(&crt, from, until);
	if (!mbed)
		mbed = mbedtls_x509write_crt_set_basic_constraints(&crt, role == ROLE_CA,
								   role == ROLE_CA ? 0 : -1);
	if (!mbed)
		mbed = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
	if (!mbed && role != ROLE_CA)
		mbed = mbedtls_x509write_crt_set_authority_key_identifier(&crt);
	if (!mbed) {
		unsigned ku = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;

		if (role == ROLE_CA)
			ku = MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN;
		else if (role == ROLE_SERVER)
			ku |= MBEDTLS_X509_KU_KEY_AGREEMENT;
		mbed = mbedtls_x509write_crt_set_key_usage(&crt, (unsigned char)ku);
	}
	if (!mbed && role == ROLE_SERVER)
		mbed = set_eku(&crt, MBEDTLS_OID_SERVER_AUTH,
			       MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
	if (!mbed && role == ROLE_CLIENT)
		mbed = set_eku(&crt, MBEDTLS_OID_CLIENT_AUTH,
			       MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
	if (!mbed && role == ROLE_SERVER)
		mbed = set_broker_san(&crt, names);
	if (!mbed)
		mbed = mbedtls_x509write_crt_pem(&crt, out, PKI_PEM_MAX, mbedtls_ctr_drbg_random,
						 &rng->drbg);
	mbedtls_x509write_crt_free(&crt);
	if (mbed) {
		char what[128];

		snprintf(what, sizeof(what), "writing certificate %s", subject);
		return mbed_fail(mbed, what, err, errlen);
	}
	return 0;
}

/* PEM of pk's private key (SEC1 "EC PRIVATE KEY") into out[PKI_PEM_MAX]. */
static int key_pem(mbedtls_pk_context *pk, unsigned char *out, char *err, size_t errlen)
{
	int mbed = mbedtls_pk_write_key_pem(pk, out, PKI_PEM_MAX);

	return mbed ? mbed_fail(mbed, "writing a private key", err, errlen) : 0;
}

/* "dir/name" into path[PATH_MAX]; -ENAMETOOLONG if it does not fit. */
static int join(char *path, const char *dir, const char *name, char *err, size_t errlen)
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_MAX) {
		seterr(err, errlen, "%s/%s: path too long", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Creates directory path (mode 0755) unless it already is a directory. */
static int ensure_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, MODE_DIR) == 0)
		return 0;
	if (errno != EEXIST) {
		int r = -errno;

		seterr(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
		return r;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		seterr(err, errlen, "%s: exists and is not a directory", path);
		return -ENOTDIR;
	}
	return 0;
}

/*
 * Creates path's missing parent directories (mode 0755, as mkdir -p), not
 * path itself.
 */
static int ensure_parents(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	int r;

	if (len >= sizeof(buf)) {
		seterr(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(buf, path, len + 1);
	while (len > 0 && buf[len - 1] == '/') /* "a/b/" is a/b */
		buf[--len] = '\0';
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '/' || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		r = ensure_dir(buf, err, errlen);
		buf[i] = '/';
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Creates path (which must not exist) with exactly mode, whatever the umask,
 * and writes len bytes. On failure nothing is left at path.
 */
static int write_new_file(const char *path, const unsigned char *data, size_t len, mode_t mode,
			  char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	size_t off = 0;
	int r = 0;

	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			seterr(err, errlen, "%s already exists: refusing to overwrite it", path);
		else
			seterr(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fchmod(fd, mode) < 0)
		r = -errno;
	while (r == 0 && off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else
			off += (size_t)n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(-r));
		unlink(path);
	}
	return r;
}

/*
 * Writes dir/name anew through dir/name.tmp and a rename, so a reader sees
 * the old file or the new one, never half of one.
 */
static int replace_file(const char *dir, const char *name, const unsigned char *data, size_t len,
			mode_t mode, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int r, n;

	r = join(path, dir, name, err, errlen);
	if (r < 0)
		return r;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		seterr(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	unlink(tmp); /* a leftover of a run that died */
	r = write_new_file(tmp, data, len, mode, err, errlen);
	if (r == 0 && rename(tmp, path) < 0) {
		r = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return r;
}

/*
 * Writes files[0..n) into dir in order. On failure removes the ones this call
 * created and returns the error. Buffers are zeroized either way.
 */
static int write_files(const char *dir, struct pki_file *files, size_t n, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r = 0;
	size_t i;

	for (i = 0; i < n && r == 0; i++) {
		r = join(path, dir, files[i].name, err, errlen);
		if (r == 0)
			r = write_new_file(path, files[i].pem, strlen((char *)files[i].pem),
					   files[i].mode, err, errlen);
		files[i].created = r == 0;
	}
	for (i = n; r < 0 && i-- > 0;)
		if (files[i].created && join(path, dir, files[i].name, NULL, 0) == 0)
			unlink(path);
	for (i = 0; i < n; i++)
		mbedtls_platform_zeroize(files[i].pem, sizeof(files[i].pem));
	return r;
}

/* Names slot i of files and sets its mode; returns the slot for its PEM. */
static struct pki_file *file_at(struct pki_file *files, size_t i, const char *name, mode_t mode)
{
	snprintf(files[i].name, sizeof(files[i].name), "%s", name);
	files[i].mode = mode;
	return &files[i];
}

static int crl_update(const char *dir, const mbedtls_x509_buf *add, char *err, size_t errlen);

int pki_init(const char *dir, char *err, size_t errlen)
{
	enum { K_CA, K_BROKER, K_GATEWAY, K_OFFER, NKEYS };
	mbedtls_pk_context keys[NKEYS];
	struct pki_file *files = NULL;
	struct pki_rng rng;
	char path[PATH_MAX];
	size_t nf = 0;
	int r, mbed;

	seterr(err, errlen, "%s", "");
	for (int k = 0; k < NKEYS; k++)
		mbedtls_pk_init(&keys[k]);
	r = rng_init(&rng, err, errlen);
	if (r < 0)
		goto out;
	if (!dir || !*dir) {
		seterr(err, errlen, "no PKI directory given");
		r = -EINVAL;
		goto out;
	}
	r = join(path, dir, "ca.key", err, errlen);
	if (r < 0)
		goto out;
	if (access(path, F_OK) == 0) {
		seterr(err, errlen, "%s exists: refusing to replace the fleet CA", path);
		r = -EEXIST;
		goto out;
	}
	r = ensure_parents(dir, err, errlen);
	if (r == 0)
		r = ensure_dir(dir, err, errlen);
	if (r < 0)
		goto out;
	r = join(path, dir, "vehicles", err, errlen);
	if (r == 0)
		r = ensure_dir(path, err, errlen);
	if (r < 0)
		goto out;

	for (int k = 0; k < NKEYS && r == 0; k++)
		r = gen_key(&keys[k], &rng, err, errlen);
	if (r < 0)
		goto out;
	files = calloc(PKI_MAX_FILES, sizeof(*files));
	if (!files) {
		r = -ENOMEM;
		seterr(err, errlen, "out of memory");
		goto out;
	}
	/* ca.key first: its O_EXCL creation claims the directory. */
	r = key_pem(&keys[K_CA], file_at(files, nf++, "ca.key", MODE_KEY)->pem, err, errlen);
	if (r == 0)
		r = make_cert(ROLE_CA, PKI_CA_SUBJECT, PKI_CA_YEARS, NULL, &keys[K_CA], &keys[K_CA],
			      PKI_CA_SUBJECT, NULL, &rng,
			      file_at(files, nf++, "ca.crt", MODE_CERT)->pem, err, errlen);
	if (r == 0)
		r = key_pem(&keys[K_BROKER], file_at(files, nf++, "broker.key", MODE_KEY)->pem, err,
			    errlen);
	if (r == 0)
		r = make_cert(ROLE_SERVER, "CN=" PKI_BROKER_CN, PKI_LEAF_YEARS, &default_names,
			      &keys[K_BROKER], &keys[K_CA], PKI_CA_SUBJECT, NULL, &rng,
			      file_at(files, nf++, "broker.crt", MODE_CERT)->pem, err, errlen);
	if (r == 0)
		r = key_pem(&keys[K_GATEWAY], file_at(files, nf++, "gateway.key", MODE_KEY)->pem,
			    err, errlen);
	if (r == 0)
		r = make_cert(ROLE_CLIENT, "CN=" PKI_GATEWAY_CN, PKI_LEAF_YEARS, NULL,
			      &keys[K_GATEWAY], &keys[K_CA], PKI_CA_SUBJECT, NULL, &rng,
			      file_at(files, nf++, "gateway.crt", MODE_CERT)->pem, err, errlen);
	if (r == 0)
		r = key_pem(&keys[K_OFFER],
			    file_at(files, nf++, "offer-signing.key", MODE_KEY)->pem, err, errlen);
	if (r == 0) {
		struct pki_file *f = file_at(files, nf++, "offer-signing.pub", MODE_CERT);

		mbed = mbedtls_pk_write_pubkey_pem(&keys[K_OFFER], f->pem, sizeof(f->pem));
		if (mbed)
			r = mbed_fail(mbed, "writing the offer-signing public key", err, errlen);
	}
	if (r == 0)
		r = write_files(dir, files, nf, err, errlen);
	if (r == 0) {
		r = crl_update(dir, NULL, err, errlen); /* the broker needs a list, if empty */
		for (size_t i = nf; r < 0 && i-- > 0;)
			if (join(path, dir, files[i].name, NULL, 0) == 0)
				unlink(path);
	}
out:
	if (files) {
		mbedtls_platform_zeroize(files, PKI_MAX_FILES * sizeof(*files));
		free(files);
	}
	for (int k = 0; k < NKEYS; k++)
		mbedtls_pk_free(&keys[k]);
	rng_free(&rng);
	return r;
}

/* Explains why vin is not a valid VIN (vin_valid(vin) is 0). */
static void vin_reason(const char *vin, char *err, size_t errlen)
{
	size_t len = strlen(vin);

	if (len != VIN_LEN) {
		seterr(err, errlen, "invalid VIN: %zu characters, a VIN has %d", len, VIN_LEN);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		char c = vin[i];
		int ok = (c >= '0' && c <= '9') ||
			 (c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q');

		if (!ok) {
			seterr(err, errlen,
			       "invalid VIN: character %zu is not one of 0-9 or A-Z without I, O, "
			       "Q",
			       i + 1);
			return;
		}
	}
	seterr(err, errlen, "invalid VIN");
}

/* mbedTLS time as "YYYYMMDDhhmmss" (the format of format_time()). */
static void x509_time_string(const mbedtls_x509_time *t, char out[15])
{
	char tmp[80];

	snprintf(tmp, sizeof(tmp), "%04d%02d%02d%02d%02d%02d", t->year, t->mon, t->day, t->hour,
		 t->min, t->sec);
	memcpy(out, tmp, 14); /* mbedTLS checked the fields' ranges when parsing */
	out[14] = '\0';
}

/* Loads and checks dir/ca.crt and dir/ca.key. */
static int load_ca(const char *dir, mbedtls_x509_crt *ca, mbedtls_pk_context *ca_key, char *err,
		   size_t errlen)
{
	char path[PATH_MAX];
	int r, mbed;

	r = join(path, dir, "ca.crt", err, errlen);
	if (r < 0)
		return r;
	errno = 0;
	mbed = mbedtls_x509_crt_parse_file(ca, path);
	if (mbed == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
		r = errno > 0 ? -errno : -EIO;
		seterr(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (mbed != 0 || !ca->ca_istrue) {
		seterr(err, errlen, "%s: not a CA certificate", path);
		return -EINVAL;
	}
	r = join(path, dir, "ca.key", err, errlen);
	if (r < 0)
		return r;
	errno = 0;
	mbed = mbedtls_pk_parse_keyfile(ca_key, path, NULL);
	if (mbed == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
		r = errno > 0 ? -errno : -EIO;
		seterr(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (mbed != 0) {
		seterr(err, errlen, "%s: not a private key", path);
		return -EINVAL;
	}
	if (mbedtls_pk_check_pair(&ca->pk, ca_key) != 0) {
		seterr(err, errlen, "%s does not belong to ca.crt", path);
		return -EINVAL;
	}
	return 0;
}

/* A leaf certificate to issue: what issue_leaf() makes. */
struct leaf {
	enum pki_role role;
	const char *cn;			 /* subject CN */
	const struct pki_names *names;	 /* ROLE_SERVER: the subjectAltName */
	const char *subdir;		 /* made if missing; NULL for none */
	const char *crt_name, *key_name; /* relative to dir */
	int years;			 /* but never past the CA */
	int replace; /* 1: replace the files (each atomically); 0: -EEXIST if crt_name exists */
};

/* Issues l with dir's CA (dir/ca.crt, dir/ca.key: nothing else is needed). */
static int issue_leaf(const char *dir, const struct leaf *l, char *err, size_t errlen)
{
	mbedtls_x509_crt ca;
	mbedtls_pk_context ca_key, key;
	struct pki_file *files = NULL;
	struct pki_rng rng;
	char path[PATH_MAX], subject[PKI_GATEWAY_NAME_MAX + 8], issuer[256], ca_until[15];
	int r;

	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&ca_key);
	mbedtls_pk_init(&key);
	r = rng_init(&rng, err, errlen);
	if (r < 0)
		goto out;
	r = join(path, dir, l->crt_name, err, errlen);
	if (r < 0)
		goto out;
	if (!l->replace && access(path, F_OK) == 0) {
		seterr(err, errlen, "%s already exists: refusing to overwrite it", path);
		r = -EEXIST;
		goto out;
	}
	r = load_ca(dir, &ca, &ca_key, err, errlen);
	if (r < 0)
		goto out;
	if (l->subdir) {
		r = join(path, dir, l->subdir, err, errlen);
		if (r == 0)
			r = ensure_dir(path, err, errlen);
		if (r < 0)
			goto out;
	}
	if (mbedtls_x509_dn_gets(issuer, sizeof(issuer), &ca.subject) < 0) {
		seterr(err, errlen, "ca.crt: subject name too long");
		r = -EINVAL;
		goto out;
	}
	x509_time_string(&ca.valid_to, ca_until);

	r = gen_key(&key, &rng, err, errlen);
	if (r < 0)
		goto out;
	files = calloc(2, sizeof(*files));
	if (!files) {
		r = -ENOMEM;
		seterr(err, errlen, "out of memory");
		goto out;
	}
	snprintf(subject, sizeof(subject), "CN=%s", l->cn);
	r = key_pem(&key, file_at(files, 0, l->key_name, MODE_KEY)->pem, err, errlen);
	if (r == 0)
		r = make_cert(l->role, subject, l->years, l->names, &key, &ca_key, issuer, ca_until,
			      &rng, file_at(files, 1, l->crt_name, MODE_CERT)->pem, err, errlen);
	if (r == 0 && !l->replace)
		r = write_files(dir, files, 2, err, errlen);
	/* key first: a broker restarted in between fails on a mismatch, not silently */
	for (size_t i = 0; r == 0 && l->replace && i < 2; i++)
		r = replace_file(dir, files[i].name, files[i].pem, strlen((char *)files[i].pem),
				 files[i].mode, err, errlen);
out:
	if (files) {
		mbedtls_platform_zeroize(files, 2 * sizeof(*files));
		free(files);
	}
	mbedtls_pk_free(&key);
	mbedtls_pk_free(&ca_key);
	mbedtls_x509_crt_free(&ca);
	rng_free(&rng);
	return r;
}

/* A client certificate CN=cn (see struct leaf); -EEXIST if crt_name exists. */
static int issue_client(const char *dir, const char *cn, const char *subdir, const char *crt_name,
			const char *key_name, int years, char *err, size_t errlen)
{
	const struct leaf l = { .role = ROLE_CLIENT,
				.cn = cn,
				.subdir = subdir,
				.crt_name = crt_name,
				.key_name = key_name,
				.years = years };

	return issue_leaf(dir, &l, err, errlen);
}

/* A server certificate cn with names into dir/<crt>, dir/<key> (replaced). */
static int issue_server(const char *dir, const char *cn, const char *crt, const char *key,
			const struct pki_names *names, char *err, size_t errlen)
{
	const struct leaf l = { .role = ROLE_SERVER,
				.cn = cn,
				.names = names,
				.crt_name = crt,
				.key_name = key,
				.years = PKI_LEAF_YEARS,
				.replace = 1 };
	int r;

	seterr(err, errlen, "%s", "");
	if (!dir || !*dir || !names) {
		seterr(err, errlen, "%s", !names ? "no names given" : "no PKI directory given");
		return -EINVAL;
	}
	r = pki_names_check(names, err, errlen);
	return r < 0 ? r : issue_leaf(dir, &l, err, errlen);
}

int pki_issue_broker(const char *dir, const struct pki_names *names, char *err, size_t errlen)
{
	return issue_server(dir, PKI_BROKER_CN, "broker.crt", "broker.key", names, err, errlen);
}

int pki_issue_api(const char *dir, const struct pki_names *names, char *err, size_t errlen)
{
	return issue_server(dir, PKI_API_CN, "api.crt", "api.key", names, err, errlen);
}

int pki_issue_vehicle(const char *dir, const char *vin, char *err, size_t errlen)
{
	char crt[64], key[64];

	seterr(err, errlen, "%s", "");
	if (!dir || !*dir || !vin) {
		seterr(err, errlen, "%s",
		       !vin ? "invalid VIN: none given" : "no PKI directory given");
		return -EINVAL;
	}
	if (!vin_valid(vin)) {
		vin_reason(vin, err, errlen);
		return -EINVAL;
	}
	snprintf(crt, sizeof(crt), "vehicles/%s.crt", vin);
	snprintf(key, sizeof(key), "vehicles/%s.key", vin);
	return issue_client(dir, vin, "vehicles", crt, key, PKI_VEHICLE_YEARS, err, errlen);
}

/*
 * Where name's certificate and key live in a PKI dir: vehicles/<VIN>.*,
 * gateway.* for the first gateway, gateways/<name>.* for the others.
 * -EINVAL (with a reason) if name is neither a VIN nor a gateway name.
 */
static int cert_files(const char *name, char crt[96], char key[96], const char **ret_subdir,
		      char *err, size_t errlen)
{
	const char *subdir = NULL;

	if (name && vin_valid(name)) {
		subdir = "vehicles";
	} else if (pki_gateway_name_valid(name)) {
		if (strcmp(name, PKI_GATEWAY_CN) != 0)
			subdir = "gateways";
	} else {
		seterr(err, errlen,
		       "'%s' is neither a VIN nor a gateway name (" PKI_GATEWAY_CN
		       " or " PKI_GATEWAY_CN "-<a-z0-9->, at most %d characters)",
		       name ? name : "", PKI_GATEWAY_NAME_MAX);
		return -EINVAL;
	}
	if (subdir) {
		snprintf(crt, 96, "%s/%s.crt", subdir, name);
		snprintf(key, 96, "%s/%s.key", subdir, name);
	} else {
		snprintf(crt, 96, "gateway.crt");
		snprintf(key, 96, "gateway.key");
	}
	*ret_subdir = subdir;
	return 0;
}

int pki_issue_gateway(const char *dir, const char *name, char *err, size_t errlen)
{
	char crt[96], key[96];
	const char *subdir;
	int r;

	seterr(err, errlen, "%s", "");
	if (!dir || !*dir) {
		seterr(err, errlen, "no PKI directory given");
		return -EINVAL;
	}
	if (!pki_gateway_name_valid(name)) {
		seterr(err, errlen,
		       "invalid gateway name '%s': use " PKI_GATEWAY_CN " or " PKI_GATEWAY_CN
		       "-<suffix> (a-z, 0-9, -), at most %d characters",
		       name ? name : "", PKI_GATEWAY_NAME_MAX);
		return -EINVAL;
	}
	r = cert_files(name, crt, key, &subdir, err, errlen);
	if (r < 0)
		return r;
	return issue_client(dir, name, subdir, crt, key, PKI_LEAF_YEARS, err, errlen);
}

int pki_cert_cn(const char *path, char *ret_cn, size_t cn_size, char *err, size_t errlen)
{
	const mbedtls_x509_name *n;
	mbedtls_x509_crt crt;
	int r = -EINVAL, mbed;

	seterr(err, errlen, "%s", "");
	mbedtls_x509_crt_init(&crt);
	errno = 0;
	mbed = mbedtls_x509_crt_parse_file(&crt, path);
	if (mbed == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
		r = errno > 0 ? -errno : -EIO;
		seterr(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (mbed < 0) { /* > 0: some PEM blocks failed; the first one parsed */
		seterr(err, errlen, "%s: not a certificate", path);
		goto out;
	}
	for (n = &crt.subject; n; n = n->next)
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
			break;
	if (!n || n->val.len == 0 || memchr(n->val.p, '\0', n->val.len)) {
		seterr(err, errlen, "%s: the certificate has no subject CN", path);
		goto out;
	}
	if (n->val.len >= cn_size) {
		seterr(err, errlen, "%s: subject CN too long", path);
		r = -ENAMETOOLONG;
		goto out;
	}
	memcpy(ret_cn, n->val.p, n->val.len);
	ret_cn[n->val.len] = '\0';
	r = 0;
out:
	mbedtls_x509_crt_free(&crt);
	return r;
}

/* ---- the revocation list ---- */

/* An upper bound on a CRL's entries (each is ~40 bytes of DER). */
#define PKI_CRL_MAX_ENTRIES 1000000
#define PKI_CRL_ENTRY_DER 64 /* bytes reserved per entry: serial <= 20 B + time + headers */
#define PKI_CRL_FIXED_DER 1024
#define PKI_CRL_NAME "ca.crl"

/* One revoked certificate: its serial (DER INTEGER content) and when. */
struct crl_entry {
	const unsigned char *serial; /* borrowed */
	size_t serial_len;
	char when[15]; /* "YYYYMMDDhhmmss" UTC */
};

/*
 * Writes an X.509 Time ("YYYYMMDDhhmmss") before *p: UTCTime through 2049,
 * GeneralizedTime from 2050 (RFC 5280 4.1.2.5). Returns its length.
 */
static int write_time(unsigned char **p, unsigned char *start, const char t[15])
{
	char z[16];
	int utc = strncmp(t, "2050", 4) < 0 && strncmp(t, "1950", 4) >= 0;

	snprintf(z, sizeof(z), "%sZ", utc ? t + 2 : t);
	return mbedtls_asn1_write_tagged_string(
		p, start, utc ? MBEDTLS_ASN1_UTC_TIME : MBEDTLS_ASN1_GENERALIZED_TIME, z,
		strlen(z));
}

/* Writes AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758). */
static int write_sig_alg(unsigned char **p, unsigned char *start)
{
	const char *oid;
	size_t oid_len, len = 0;
	int ret;

	ret = mbedtls_oid_get_oid_by_sig_alg(MBEDTLS_PK_ECDSA, MBEDTLS_MD_SHA256, &oid, &oid_len);
	if (ret)
		return ret;
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, oid, oid_len));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(
		len,
		mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return (int)len;
}

/*
 * Puts a tag and length before the len content bytes that precede *p (a
 * SEQUENCE, OCTET STRING, ...). Returns the header's length, not the total.
 */
static int wrap(unsigned char **p, unsigned char *start, size_t len, unsigned char tag)
{
	size_t n = 0;
	int ret;

	MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(p, start, tag));
	return (int)n;
}

#define SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)

/*
 * TBSCertList (RFC 5280 5.1) before *p: v2, ecdsa-with-SHA256, issuer = the
 * CA's subject, thisUpdate now, nextUpdate = the CA's notAfter, the entries,
 * and a cRLNumber extension of number. Returns its length.
 */
static int write_tbs(unsigned char **p, unsigned char *start, const mbedtls_x509_crt *ca,
		     const struct crl_entry *entries, size_t n, int number, const char now[15],
		     const char until[15])
{
	size_t len = 0, sub;
	int ret;

	/* crlExtensions [0] EXPLICIT SEQUENCE { cRLNumber } */
	sub = 0;
	MBEDTLS_ASN1_CHK_ADD(sub, mbedtls_asn1_write_int(p, start, number));
	MBEDTLS_ASN1_CHK_ADD(sub, wrap(p, start, sub, MBEDTLS_ASN1_OCTET_STRING));
	MBEDTLS_ASN1_CHK_ADD(sub, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_CRL_NUMBER,
							 MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER)));
	MBEDTLS_ASN1_CHK_ADD(sub, wrap(p, start, sub, SEQ)); /* Extension */
	MBEDTLS_ASN1_CHK_ADD(sub, wrap(p, start, sub, SEQ)); /* Extensions */
	MBEDTLS_ASN1_CHK_ADD(
		sub, wrap(p, start, sub, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED));
	len += sub;
	/* revokedCertificates, absent when empty */
	if (n > 0) {
		sub = 0;
		for (size_t i = n; i-- > 0;) {
			size_t e = 0;

			MBEDTLS_ASN1_CHK_ADD(e, write_time(p, start, entries[i].when));
			MBEDTLS_ASN1_CHK_ADD(
				e, mbedtls_asn1_write_raw_buffer(p, start, entries[i].serial,
								 entries[i].serial_len));
			MBEDTLS_ASN1_CHK_ADD(
				e, mbedtls_asn1_write_len(p, start, entries[i].serial_len));
			MBEDTLS_ASN1_CHK_ADD(
				e, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_INTEGER));
			MBEDTLS_ASN1_CHK_ADD(e, wrap(p, start, e, SEQ));
			sub += e;
		}
		MBEDTLS_ASN1_CHK_ADD(sub, wrap(p, start, sub, SEQ));
		len += sub;
	}
	MBEDTLS_ASN1_CHK_ADD(len, write_time(p, start, until));
	MBEDTLS_ASN1_CHK_ADD(len, write_time(p, start, now));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, ca->subject_raw.p,
								ca->subject_raw.len));
	MBEDTLS_ASN1_CHK_ADD(len, write_sig_alg(p, start));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_int(p, start, 1)); /* v2 */
	MBEDTLS_ASN1_CHK_ADD(len, wrap(p, start, len, SEQ));
	return (int)len;
}

/*
 * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm,
 * signatureValue } before *p. Returns its length.
 */
static int write_signed(unsigned char **p, unsigned char *start, const unsigned char *tbs,
			size_t tbs_len, const unsigned char *sig, size_t sig_len)
{
	size_t len = 0;
	int ret;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_bitstring(p, start, sig, sig_len * 8));
	MBEDTLS_ASN1_CHK_ADD(len, write_sig_alg(p, start));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, tbs, tbs_len));
	MBEDTLS_ASN1_CHK_ADD(len, wrap(p, start, len, SEQ));
	return (int)len;
}

/*
 * Signs and writes dir/ca.crl with entries[0..n) (PEM, 0644, replaced
 * atomically through ca.crl.tmp). number is the cRLNumber.
 */
static int write_crl(const char *dir, const mbedtls_x509_crt *ca, mbedtls_pk_context *ca_key,
		     const struct crl_entry *entries, size_t n, int number, struct pki_rng *rng,
		     char *err, size_t errlen)
{
	size_t cap = PKI_CRL_FIXED_DER + n * PKI_CRL_ENTRY_DER, pem_cap = cap * 2;
	unsigned char *tbs = malloc(cap), *der = malloc(cap), *pem = malloc(pem_cap);
	unsigned char hash[32], sig[MBEDTLS_ECDSA_MAX_LEN];
	char now[15], until[15];
	size_t sig_len = 0, tbs_len, len = 0, olen = 0;
	unsigned char *p, *q;
	int r = 0, ret;

	if (!tbs || !der || !pem) {
		seterr(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	format_time(time(NULL), now);
	x509_time_string(&ca->valid_to, until);
	p = tbs + cap;
	ret = write_tbs(&p, tbs, ca, entries, n, number, now, until);
	if (ret < 0)
		goto fail;
	tbs_len = (size_t)ret;
	ret = mbedtls_sha256_ret(p, tbs_len, hash, 0);
	if (ret == 0)
		ret = mbedtls_pk_sign(ca_key, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &sig_len,
				      mbedtls_ctr_drbg_random, &rng->drbg);
	if (ret)
		goto fail;
	q = der + cap;
	ret = write_signed(&q, der, p, tbs_len, sig, sig_len);
	if (ret < 0)
		goto fail;
	len = (size_t)ret;
	ret = mbedtls_pem_write_buffer("-----BEGIN X509 CRL-----\n", "-----END X509 CRL-----\n", q,
				       len, pem, pem_cap, &olen);
	if (ret)
		goto fail;
	r = replace_file(dir, PKI_CRL_NAME, pem, strlen((char *)pem), MODE_CERT, err, errlen);
	goto out;
fail:
	r = mbed_fail(ret, "writing the revocation list", err, errlen);
out:
	free(tbs);
	free(der);
	free(pem);
	return r;
}

/*
 * Reads dir/ca.crl into crl (initialised by the caller; a missing file is an
 * empty list) and checks it is the CA's. Returns the number of entries.
 */
static int read_crl(const char *dir, const mbedtls_x509_crt *ca, mbedtls_x509_crl *crl, char *err,
		    size_t errlen)
{
	char path[PATH_MAX];
	const mbedtls_x509_crl_entry *e;
	int r, mbed, n = 0;

	r = join(path, dir, PKI_CRL_NAME, err, errlen);
	if (r < 0)
		return r;
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	mbed = mbedtls_x509_crl_parse_file(crl, path);
	if (mbed != 0) {
		seterr(err, errlen, "%s: not a revocation list; fix or remove it", path);
		return -EINVAL;
	}
	if (crl->issuer_raw.len != ca->subject_raw.len ||
	    memcmp(crl->issuer_raw.p, ca->subject_raw.p, ca->subject_raw.len) != 0 ||
	    crl->next != NULL) {
		seterr(err, errlen, "%s: not the revocation list of this CA", path);
		return -EINVAL;
	}
	for (e = &crl->entry; e && e->serial.len > 0; e = e->next)
		n++;
	if (n > PKI_CRL_MAX_ENTRIES) {
		seterr(err, errlen, "%s: more than %d entries", path, PKI_CRL_MAX_ENTRIES);
		return -E2BIG;
	}
	return n;
}

/*
 * Writes dir/ca.crl with the entries already in it, plus add (a certificate's
 * serial, NULL for none). Returns 1 if add was new, 0 if it was listed
 * already (the file is then left alone) or add is NULL.
 */
static int crl_update(const char *dir, const mbedtls_x509_buf *add, char *err, size_t errlen)
{
	mbedtls_x509_crt ca;
	mbedtls_x509_crl crl;
	mbedtls_pk_context ca_key;
	struct crl_entry *entries = NULL;
	const mbedtls_x509_crl_entry *e;
	struct pki_rng rng;
	size_t n = 0;
	int r, count;

	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crl_init(&crl);
	mbedtls_pk_init(&ca_key);
	r = rng_init(&rng, err, errlen);
	if (r == 0)
		r = load_ca(dir, &ca, &ca_key, err, errlen);
	if (r < 0)
		goto out;
	count = read_crl(dir, &ca, &crl, err, errlen);
	if (count < 0) {
		r = count;
		goto out;
	}
	entries = calloc((size_t)count + 1, sizeof(*entries));
	if (!entries) {
		seterr(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	for (e = &crl.entry; count > 0 && e && e->serial.len > 0; e = e->next) {
		if (add && e->serial.len == add->len &&
		    memcmp(e->serial.p, add->p, add->len) == 0) {
			r = 0; /* already revoked: nothing to write */
			goto out;
		}
		entries[n].serial = e->serial.p;
		entries[n].serial_len = e->serial.len;
		x509_time_string(&e->revocation_date, entries[n].when);
		n++;
	}
	if (add) {
		entries[n].serial = add->p;
		entries[n].serial_len = add->len;
		format_time(time(NULL), entries[n].when);
		n++;
	}
	/* Entries are only ever added, so their count numbers the lists in order. */
	r = write_crl(dir, &ca, &ca_key, entries, n, (int)n, &rng, err, errlen);
	if (r == 0 && add)
		r = 1;
out:
	free(entries);
	mbedtls_pk_free(&ca_key);
	mbedtls_x509_crl_free(&crl);
	mbedtls_x509_crt_free(&ca);
	rng_free(&rng);
	return r;
}

int pki_write_crl(const char *dir, char *err, size_t errlen)
{
	seterr(err, errlen, "%s", "");
	if (!dir || !*dir) {
		seterr(err, errlen, "no PKI directory given");
		return -EINVAL;
	}
	return crl_update(dir, NULL, err, errlen);
}

int pki_revoke(const char *dir, const char *name, char *err, size_t errlen)
{
	char crt[96], key[96], path[PATH_MAX], to[PATH_MAX], moved[PKI_GATEWAY_NAME_MAX + 96];
	const char *subdir;
	mbedtls_x509_crt cert;
	char hex[2 * 20 + 1];
	int r, mbed;

	seterr(err, errlen, "%s", "");
	mbedtls_x509_crt_init(&cert);
	if (!dir || !*dir) {
		seterr(err, errlen, "no PKI directory given");
		return -EINVAL;
	}
	r = cert_files(name, crt, key, &subdir, err, errlen);
	if (r == 0)
		r = join(path, dir, crt, err, errlen);
	if (r < 0)
		goto out;
	errno = 0;
	mbed = mbedtls_x509_crt_parse_file(&cert, path);
	if (mbed == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
		r = errno > 0 ? -errno : -EIO;
		seterr(err, errlen, "no certificate for %s: %s: %s", name, path, strerror(-r));
		goto out;
	}
	if (mbed != 0 || cert.serial.len == 0 || cert.serial.len > 20) {
		seterr(err, errlen, "%s: not a certificate of this PKI", path);
		r = -EINVAL;
		goto out;
	}
	r = crl_update(dir, &cert.serial, err, errlen);
	if (r < 0)
		goto out;
	/* Out of the way, so the name can get a replacement certificate. */
	for (size_t i = 0; i < cert.serial.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", cert.serial.p[i]);
	r = join(to, dir, "revoked", err, errlen);
	if (r == 0)
		r = ensure_dir(to, err, errlen);
	for (int k = 0; r == 0 && k < 2; k++) {
		snprintf(moved, sizeof(moved), "revoked/%s.%s.%s", name, hex, k ? "key" : "crt");
		r = join(path, dir, k ? key : crt, err, errlen);
		if (r == 0)
			r = join(to, dir, moved, err, errlen);
		if (r == 0 && rename(path, to) < 0 && !(k == 1 && errno == ENOENT)) {
			r = -errno;
			seterr(err, errlen, "revoked in ca.crl, but cannot move %s to %s: %s", path,
			       to, strerror(errno));
		}
	}
out:
	mbedtls_x509_crt_free(&cert);
	return r;
}
