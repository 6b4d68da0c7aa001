/*
 * Register map files (config/regmaps/NAME.yaml): a card's banks, registers and
 * fields, bank arrays, the identity, firmware and serial registers that
 * identify it, and what its DMA engine speaks, read into a register model
 * (regmap.h). Every error names the place and the fix:
 *   rdo-sim.yaml:12:9: register ctrl.config is defined twice
 *
 * Ownership: the caller owns the map returned.
 * Thread-safety: loads share nothing; any thread may load a map.
 */
#ifndef RDO_REGMAP_LOAD_H
#define RDO_REGMAP_LOAD_H

#include <stddef.h>

#include "card/regmap.h"

/* Load the register map `file`: the map, or NULL with "file:line:col: ..." in `err`. */
struct rdo_regmap *rdo_regmap_load(const char *file, char *err, size_t errlen);

#endif
