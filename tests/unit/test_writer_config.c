#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "tools/writer_config.h"
#include "unit/yaml_files.h"

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(writer_config, .init = quiet);

#define WRITER_CONFIG_FILE RDO_SOURCE_DIR "/config/readout-writer.yaml"

/* The shipped example is the defaults, but for the directory it names. */
Test(writer_config, shipped_remote_writer_config_is_the_defaults)
{
	struct rdo_remote_writer_opts d, o;
	rdo_remote_writer_opts_init(&d);
	rdo_remote_writer_opts_init(&o);
	char err[512] = "";
	cr_assert_eq(rdo_config_load_remote_writer(WRITER_CONFIG_FILE, &o, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(o.config_file, WRITER_CONFIG_FILE);
	cr_assert_str_eq(o.writer.directory, "/tmp");
	memcpy(o.writer.directory, d.writer.directory, sizeof(o.writer.directory));
	memcpy(o.config_file, d.config_file, sizeof(o.config_file));
	cr_assert_eq(memcmp(&o, &d, sizeof(o)), 0, "a value differs from its default");
}

Test(writer_config, load_remote_writer_config)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("source:\n  control: ipc:///run/readoutd/ctl\n  lossless: tcp://node7:5572\n"
		   "  name: disk-server-3\n  buffers: 256\n"
		   "writer: { directory: /data, rotate_size: 1GiB, depth: 16 }\n"
		   "status_interval_s: 0\nlog_level: debug\n",
		   path);
	struct rdo_remote_writer_opts o;
	rdo_remote_writer_opts_init(&o);
	int rc = rdo_config_load_remote_writer(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.control, "ipc:///run/readoutd/ctl");
	cr_assert_str_eq(o.lossless, "tcp://node7:5572");
	cr_assert_str_eq(o.name, "disk-server-3");
	cr_assert_eq(o.buffers, 256);
	cr_assert_str_eq(o.writer.directory, "/data");
	cr_assert_eq(o.writer.rotate_bytes, 1ull << 30);
	cr_assert_eq(o.writer.depth, 16);
	cr_assert_eq(o.writer.block_size, 4u << 20, "untouched keys keep their default");
	cr_assert_eq(o.status_s, 0);
	cr_assert_eq(o.log_level, LOG_DEBUG);
}

/* Load `yaml` as readout-writer's config; it must fail at line:col with `needle`. */
static void expect_remote_writer_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	struct rdo_remote_writer_opts o;
	rdo_remote_writer_opts_init(&o);
	int rc = rdo_config_load_remote_writer(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, -EINVAL, "config load gave %d: %s", rc, err);
	expect_message(err, path, line, col, needle);
}

Test(writer_config, remote_writer_errors)
{
	expect_remote_writer_error("source: { buffers: 5000 }\n", 1, 20, "at most 4096");
	expect_remote_writer_error("source:\n  lossless: node7:5572\n", 2, 13,
				   "expected tcp://HOST:PORT or ipc://PATH");
	expect_remote_writer_error("writer: { enabled: true }\n", 1, 11,
				   "writer.enabled: unknown key");
	expect_remote_writer_error("card: {}\n", 1, 1, "unknown key (expected one of: source");
	expect_remote_writer_error("status_interval_s: -1\n", 1, 20, "expected an integer");
	expect_remote_writer_error("log_level: loud\n", 1, 12, "expected err, warning");
}

/* The writer section is readoutd's own table: the same keys, limits and messages. */
Test(writer_config, writer_section_is_readoutds)
{
	expect_remote_writer_error("writer: { depth: 65 }\n", 1, 18,
				   "writer.depth: 65 is too large (at most 64)");
	expect_remote_writer_error("writer: { block_size: 1000 }\n", 1, 23,
				   "writer.block_size: 1000 is too small (at least 4KiB)");
	expect_remote_writer_error("writer: { rotate_size: 1KiB }\n", 1, 24,
				   "writer.rotate_size: 1KiB is too small (at least 1MiB)");
	expect_remote_writer_error("writer: { direct: sometimes }\n", 1, 19,
				   "writer.direct: expected true or false, got \"sometimes\"");
	expect_remote_writer_error("writer: { colour: red }\n", 1, 11,
				   "writer.colour: unknown key (expected one of: directory, name, "
				   "block_size, depth, prealloc, rotate_size, rotate_s, direct)");
}
