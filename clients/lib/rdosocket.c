#include "lib/rdosocket.h"

#include <errno.h>
#include <stdio.h>
#include <zmq.h>

#include "common/keys.h"

int rdo_socket_connect(void *sock, const char *endpoint, const struct rdo_client_keys *keys,
		       char *err, size_t errlen)
{
	int rc = rdo_client_keys_apply(keys, sock);
	if (rc) {
		snprintf(err, errlen, "cannot set the CURVE keys on the socket: %s",
			 zmq_strerror(-rc));
		return rc;
	}
	if (zmq_connect(sock, endpoint) != 0) {
		rc = -errno;
		snprintf(err, errlen,
			 "cannot connect to \"%s\": %s (expected tcp://HOST:PORT or ipc://PATH)",
			 endpoint, zmq_strerror(-rc));
		return rc;
	}
	return 0;
}
