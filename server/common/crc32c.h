/*
 * CRC32C (Castagnoli, the iSCSI and ext4 CRC): what the .rdo file format
 * (rdofile.h) checks its structures and payloads with. The SSE4.2 crc32
 * instruction where the CPU has it, chosen once at the first call, else a
 * slicing-by-8 table.
 *
 * The CRC is chainable: start with 0 and pass the previous result on, so
 * rdo_crc32c(rdo_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * rdo_crc32c(0, "123456789", 9) is 0xE3069283.
 *
 * Thread-safe; buffers may have any alignment.
 */
#ifndef RDO_CRC32C_H
#define RDO_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CRC of `len` bytes at `buf`, continuing from `crc`. */
uint32_t rdo_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Copy `len` bytes from `src` to `dst` (which must not overlap) and return
 * their CRC, continuing from `crc`: one pass over the memory instead of two.
 */
uint32_t rdo_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/*
 * The two implementations rdo_crc32c chooses between, for tests and
 * benchmarks. `dst` NULL: CRC only, else also copy as rdo_crc32c_copy.
 * Call rdo_crc32c_hw only where rdo_crc32c_hw_available().
 */
uint32_t rdo_crc32c_sw(uint32_t crc, void *dst, const void *src, size_t len);
uint32_t rdo_crc32c_hw(uint32_t crc, void *dst, const void *src, size_t len);
bool rdo_crc32c_hw_available(void);

#endif
