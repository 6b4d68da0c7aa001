#include "core/zsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "common/log.h"

/* A libzmq draft option, so zmq.h hides it; setsockopt says EINVAL where it is missing. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

static const struct rdo_zsock_policy plain_policy = {.ipc_mode = 0660};

void rdo_zsock_policy_init(struct rdo_zsock_policy *p)
{
	*p = plain_policy;
}

static bool loopback_host(const char *host, size_t len)
{
	char h[INET6_ADDRSTRLEN + 2];
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(h))
		return false;
	memcpy(h, host, len);
	h[len] = '\0';
	if (strcasecmp(h, "localhost") == 0)
		return true;
	struct in_addr v4;
	if (inet_pton(AF_INET, h, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	struct in6_addr v6;
	if (inet_pton(AF_INET6, h, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return false;
}

bool rdo_zsock_needs_curve(const struct rdo_zsock_policy *p, const char *endpoint)
{
	if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
		return false;
	if (strncmp(endpoint, "tcp://", 6) != 0)
		return true; /* a transport that may leave the host */
	const char *host = endpoint + 6, *colon = strrchr(host, ':');
	size_t len = colon ? (size_t)(colon - host) : strlen(host);
	return !loopback_host(host, len) || (p && p->curve_loopback);
}

/* The ZAP domain of surface `what`: its first word ("live stream" -> "live"). */
static size_t domain_of(const char *what)
{
	size_t n = strcspn(what, " ");
	return n ? n : strlen(what);
}

static int prepare_plain(void *sock, const char *what, const char *endpoint)
{
	char domain[256];
	size_t len = sizeof(domain);
	if (zmq_getsockopt(sock, ZMQ_ZAP_DOMAIN, domain, &len) == 0 && len > 1) {
		rdo_err(
		    "%s: cannot bind %s plain after a CURVE endpoint of the same socket (libzmq "
		    "cannot clear its ZAP domain): bind the local endpoints first",
		    what, endpoint);
		return -EINVAL;
	}
	int mech = ZMQ_NULL, zero = 0;
	len = sizeof(mech);
	zmq_getsockopt(sock, ZMQ_MECHANISM, &mech, &len);
	if (mech != ZMQ_NULL && zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &zero, sizeof(zero)) != 0) {
		int rc = -errno;
		rdo_err("%s: cannot bind %s plain: %s", what, endpoint, zmq_strerror(errno));
		return rc;
	}
	zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &zero, sizeof(zero));
	return 0;
}

static int prepare_bind(const struct rdo_zsock_policy *p, void *sock, const char *what,
			const char *endpoint)
{
	if (!rdo_zsock_needs_curve(p, endpoint))
		return prepare_plain(sock, what, endpoint);
	if (!p->curve) {
		rdo_err("%s: binding %s needs CURVE: set security.server_key and "
			"security.authorized_keys in the config (readoutctl keygen makes keys)",
			what, endpoint);
		return -EPERM;
	}
	int one = 1;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, p->secret, sizeof(p->secret)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, what, domain_of(what)) != 0) {
		int rc = -errno;
		rdo_err("%s: cannot set up CURVE for %s: %s", what, endpoint, zmq_strerror(errno));
		return rc;
	}
	/* Refuse rather than admit unchecked should the ZAP handler ever be gone. */
	zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one));
	return 0;
}

static bool ipc_in_use(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path) || path[0] == '@')
		return false;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

/*
 * libzmq leaves an ipc socket file as the umask made it; the service's group
 * (readoutctl run by its members) needs it writable to connect.
 */
static int ipc_chmod(void *sock, unsigned mode, const char *what, const char *bound)
{
	const char *path = bound + 6;
	if (path[0] == '@' || chmod(path, mode) == 0)
		return 0;
	int rc = -errno;
	rdo_err("%s: cannot make %s mode %04o: %s", what, path, mode, strerror(errno));
	zmq_unbind(sock, bound);
	return rc;
}

int rdo_zsock_bind(void *sock, const struct rdo_zsock_policy *p, const char *what,
		   const char *endpoint, char *bound, size_t cap)
{
	if (!p)
		p = &plain_policy;
	if (strncmp(endpoint, "ipc://", 6) == 0 && ipc_in_use(endpoint + 6)) {
		rdo_err("%s: %s is in use by another running server: stop it, or bind another path",
			what, endpoint);
		return -EADDRINUSE;
	}
	int rc = prepare_bind(p, sock, what, endpoint);
	if (rc)
		return rc;
	if (zmq_bind(sock, endpoint) != 0) {
		rc = -errno;
		rdo_err("%s: cannot bind %s: %s%s", what, endpoint, zmq_strerror(errno),
			errno == EADDRINUSE ? " (another readoutd running? choose another port)"
					    : "");
		return rc;
	}
	size_t len = cap;
	if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
		rdo_strlcpy(bound, endpoint, cap);
	return strncmp(bound, "ipc://", 6) == 0 ? ipc_chmod(sock, p->ipc_mode, what, bound) : 0;
}

int rdo_zsock_bind_all(void *sock, const struct rdo_zsock_policy *p, const char *what,
		       const struct rdo_endpoints *in, struct rdo_endpoints *out)
{
	/* Local endpoints first: libzmq cannot take a CURVE endpoint's ZAP domain back. */
	out->n = 0;
	for (int curve = 0; curve <= 1; curve++) {
		for (size_t i = 0; i < in->n; i++) {
			if (rdo_zsock_needs_curve(p, in->ep[i]) != curve)
				continue;
			int rc =
			    rdo_zsock_bind(sock, p, what, in->ep[i], out->ep[i], RDO_ENDPOINT_MAX);
			if (rc)
				return rc;
		}
	}
	out->n = in->n;
	return 0;
}

const char *rdo_endpoints_join(const struct rdo_endpoints *e, char *buf, size_t cap)
{
	buf[0] = '\0';
	size_t len = 0;
	for (size_t i = 0; i < e->n && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", e->ep[i]);
	return buf;
}

size_t rdo_zsock_recv_frames(void *sock, zmq_msg_t *frames, size_t max, bool *oversized)
{
	size_t n = 0;
	*oversized = false;
	for (;;) {
		zmq_msg_t scratch, *m = n < max ? &frames[n] : &scratch;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			return n;
		}
		bool more = zmq_msg_more(m);
		if (m == &scratch) {
			zmq_msg_close(m);
			*oversized = true;
		} else {
			n++;
		}
		if (!more)
			return n;
	}
}
