#include "card.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const struct rdo_card_ops *const backends[] = { &rdo_card_sim_ops };

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
}

struct rdo_card *rdo_card_open(const struct rdo_card_opts *o)
{
	for (size_t i = 0; i < RDO_ARRAY_SIZE(backends); i++) {
		if (strcmp(backends[i]->name, o->backend) != 0)
			continue;
		struct rdo_card *card = backends[i]->open(o);
		if (card) {
			card->ops = backends[i];
			rdo_strlcpy(card->name, o->name, sizeof(card->name));
			rdo_strlcpy(card->address, o->address, sizeof(card->address));
		}
		return card;
	}
	rdo_err("card %s: unknown backend \"%s\" (this build has: sim)", o->name, o->backend);
	return NULL;
}

void rdo_card_close(struct rdo_card **card)
{
	if (!*card)
		return;
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

int rdo_card_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		  uint64_t *val)
{
	int rc = rdo_card_check(card, bar, off, width);
	if (rc == 0)
		*val = card->ops->read(card, bar, off, width);
	return rc;
}

int rdo_card_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		   uint64_t val)
{
	int rc = rdo_card_check(card, bar, off, width);
	if (rc == 0)
		card->ops->write(card, bar, off, width, val & rdo_mask(width));
	return rc;
}
