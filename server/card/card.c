#include "card/card.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static const struct rdo_card_ops *const backends[] = {&rdo_card_sim_ops, &rdo_card_shim_ops};

void rdo_card_opts_init(struct rdo_card_opts *o)
{
	memset(o, 0, sizeof(*o));
	rdo_strlcpy(o->name, "sim0", sizeof(o->name));
	rdo_strlcpy(o->backend, "sim", sizeof(o->backend));
	rdo_strlcpy(o->address, "sim", sizeof(o->address));
	o->links = 12;
	o->serial = 0x5244000000000001ull;
	o->fw_version = 0x01020003;
	o->identity = 0x52444f31; /* "RDO1" */
	o->sim_rate = 100000000;
	o->sim_pulse_hz = 60;
	o->sim_pulse_bytes = 256 * 1024;
}

struct rdo_card *rdo_card_open(const struct rdo_card_opts *o)
{
	for (size_t i = 0; i < RDO_ARRAY_SIZE(backends); i++) {
		if (strcmp(backends[i]->name, o->backend) != 0)
			continue;
		struct rdo_card *card = backends[i]->open(o);
		if (card) {
			card->ops = backends[i];
			card->lock_fd = -1;
			rdo_strlcpy(card->name, o->name, sizeof(card->name));
			rdo_strlcpy(card->address, o->address, sizeof(card->address));
		}
		return card;
	}
	rdo_err("card %s: unknown backend \"%s\" (this build has: sim, shim)", o->name, o->backend);
	return NULL;
}

void rdo_card_close(struct rdo_card **card)
{
	if (!*card)
		return;
	if ((*card)->lock_fd >= 0)
		close((*card)->lock_fd);
	(*card)->ops->close(*card);
	*card = NULL;
}

int rdo_card_check(const struct rdo_card *card, unsigned bar, uint64_t off, unsigned width)
{
	if (width != 8 && width != 16 && width != 32 && width != 64)
		return -EINVAL;
	if (bar >= RDO_CARD_MAX_BARS || card->bar_size[bar] == 0)
		return -ENODEV;
	uint64_t bytes = width / 8;
	if (off % bytes)
		return -EINVAL;
	if (!rdo_range_fits(card->bar_size[bar], off, bytes))
		return -ERANGE;
	return 0;
}

int rdo_card_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width, uint64_t *val)
{
	int rc = rdo_card_check(card, bar, off, width);
	if (rc == 0)
		*val = card->ops->read(card, bar, off, width);
	return rc;
}

int rdo_card_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width, uint64_t val)
{
	int rc = rdo_card_check(card, bar, off, width);
	if (rc == 0)
		card->ops->write(card, bar, off, width, val & rdo_mask(width));
	return rc;
}

/* The abstract socket address that stands for the card: readoutd/BACKEND/ADDRESS. */
static socklen_t lock_address(const struct rdo_card *card, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "readoutd/%s/%s",
			 card->ops->name, card->address);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path) - 1)
		n = (int)sizeof(sa->sun_path) - 2;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/*
 * The pid listening on the lock, to name the owner in the message; 0 if
 * unknown. The owner never accepts, so the connect must not wait for it: with
 * its backlog full, we go without the pid.
 */
static pid_t lock_owner(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	struct ucred cred = {0};
	socklen_t clen = sizeof(cred);
	if (connect(fd, (const struct sockaddr *)sa, len) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
		cred.pid = 0;
	close(fd);
	return cred.pid;
}

int rdo_card_lock(struct rdo_card *card)
{
	if (card->lock_fd >= 0)
		return 0;
	struct sockaddr_un sa;
	socklen_t len = lock_address(card, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int rc = -errno;
		rdo_err("card %s: cannot create the owner lock socket: %s", card->name,
			strerror(errno));
		return rc;
	}
	if (bind(fd, (const struct sockaddr *)&sa, len) != 0 || listen(fd, 8) != 0) {
		int rc = -errno;
		close(fd);
		if (rc != -EADDRINUSE) {
			rdo_err("card %s: cannot take the owner lock @%s: %s", card->name,
				sa.sun_path + 1, strerror(-rc));
			return rc;
		}
		pid_t pid = lock_owner(&sa, len);
		char who[48] = "another process";
		if (pid > 0)
			snprintf(who, sizeof(who), "readoutd pid %d", (int)pid);
		rdo_err("card %s (%s %s) is owned by %s (lock @%s): one readoutd per card. Stop "
			"that one first, or give this server another card",
			card->name, card->ops->name, card->address, who, sa.sun_path + 1);
		return -EBUSY;
	}
	card->lock_fd = fd;
	return 0;
}

int rdo_card_dma_alloc(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
		       struct rdo_dma_buf *buf)
{
	memset(buf, 0, sizeof(*buf));
	if (!card->ops->dma_alloc) {
		rdo_err("card %s: backend %s has no DMA", card->name, card->ops->name);
		return -ENOTSUP;
	}
	if (granule == 0 || len == 0 || len % granule) {
		rdo_err("card %s: DMA memory of %zu bytes is not whole granules of %zu", card->name,
			len, granule);
		return -EINVAL;
	}
	return card->ops->dma_alloc(card, len, granule, address_bits, buf);
}

int rdo_dma_buf_bus(const struct rdo_dma_buf *buf, size_t off, size_t len, uint64_t *bus)
{
	for (unsigned i = 0; i < buf->nsegs; i++) {
		const struct rdo_dma_seg *s = &buf->seg[i];
		if (off >= s->off && rdo_range_fits(s->len, off - s->off, len)) {
			*bus = s->bus + (off - s->off);
			return 0;
		}
	}
	return -ERANGE;
}

void rdo_card_dma_free(struct rdo_card *card, struct rdo_dma_buf *buf)
{
	if (buf->va && card->ops->dma_free)
		card->ops->dma_free(card, buf);
	memset(buf, 0, sizeof(*buf));
}
