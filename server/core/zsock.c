#include "core/zsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "net/auth.h"
#include "common/log.h"

static struct rdo_auth *zsock_auth; /* set before any bind, in the binding thread */

void rdo_zsock_set_auth(struct rdo_auth *a)
{
	zsock_auth = a;
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
static int ipc_chmod(void *sock, const char *what, const char *bound)
{
	const char *path = bound + 6;
	unsigned mode = rdo_auth_ipc_mode(zsock_auth);
	if (path[0] == '@' || chmod(path, mode) == 0)
		return 0;
	int rc = -errno;
	rdo_err("%s: cannot make %s mode %04o: %s", what, path, mode, strerror(errno));
	zmq_unbind(sock, bound);
	return rc;
}

int rdo_zsock_bind(void *sock, const char *what, const char *endpoint, char *bound, size_t cap)
{
	if (strncmp(endpoint, "ipc://", 6) == 0 && ipc_in_use(endpoint + 6)) {
		rdo_err("%s: %s is in use by another running server: stop it, or bind another path",
			what, endpoint);
		return -EADDRINUSE;
	}
	int rc = rdo_auth_prepare_bind(zsock_auth, sock, what, endpoint);
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
	return strncmp(bound, "ipc://", 6) == 0 ? ipc_chmod(sock, what, bound) : 0;
}

int rdo_zsock_bind_all(void *sock, const char *what, const struct rdo_endpoints *in,
		       struct rdo_endpoints *out)
{
	/* Local endpoints first: libzmq cannot take a CURVE endpoint's ZAP domain back. */
	out->n = 0;
	for (int curve = 0; curve <= 1; curve++) {
		for (size_t i = 0; i < in->n; i++) {
			if (rdo_auth_needs_curve(zsock_auth, in->ep[i]) != curve)
				continue;
			int rc =
			    rdo_zsock_bind(sock, what, in->ep[i], out->ep[i], RDO_ENDPOINT_MAX);
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
