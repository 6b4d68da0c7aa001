#include "zsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"

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

int rdo_zsock_bind(void *sock, const char *what, const char *endpoint, char *bound, size_t cap)
{
	if (strncmp(endpoint, "ipc://", 6) == 0 && ipc_in_use(endpoint + 6)) {
		rdo_err("%s: %s is in use by another running server: stop it, or bind another path",
			what, endpoint);
		return -EADDRINUSE;
	}
	if (zmq_bind(sock, endpoint) != 0) {
		int rc = -errno;
		rdo_err("%s: cannot bind %s: %s%s", what, endpoint, zmq_strerror(errno),
			errno == EADDRINUSE ? " (another readoutd running? choose another port)"
					    : "");
		return rc;
	}
	size_t len = cap;
	if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
		rdo_strlcpy(bound, endpoint, cap);
	return 0;
}

int rdo_zsock_bind_all(void *sock, const char *what, const struct rdo_endpoints *in,
		       struct rdo_endpoints *out)
{
	out->n = 0;
	for (size_t i = 0; i < in->n; i++) {
		int rc = rdo_zsock_bind(sock, what, in->ep[i], out->ep[out->n], RDO_ENDPOINT_MAX);
		if (rc)
			return rc;
		out->n++;
	}
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
