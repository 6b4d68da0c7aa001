#include "tools/writer_config.h"

#include <string.h>

#include "common/log.h"
#include "common/writer_keys.h"
#include "common/yaml.h"

void rdo_remote_writer_opts_init(struct rdo_remote_writer_opts *o)
{
	memset(o, 0, sizeof(*o));
	rdo_strlcpy(o->control, RDO_DEFAULT_CONTROL_TCP, sizeof(o->control));
	rdo_strlcpy(o->lossless, RDO_DEFAULT_LOSSLESS_TCP, sizeof(o->lossless));
	o->buffers = 64;
	o->status_s = 10;
	rdo_writer_opts_init(&o->writer);
	o->log_level = LOG_INFO;
}

enum { SOURCE_CONTROL, SOURCE_LOSSLESS };

static const struct rdo_yopt source_opts[] = {
    [SOURCE_CONTROL] = RDO_YOPT(struct rdo_remote_writer_opts, "control", control, RDO_YOPT_STRING),
    [SOURCE_LOSSLESS] =
	RDO_YOPT(struct rdo_remote_writer_opts, "lossless", lossless, RDO_YOPT_STRING),
    RDO_YOPT(struct rdo_remote_writer_opts, "name", name, RDO_YOPT_STRING),
    RDO_YOPT(struct rdo_remote_writer_opts, "buffers", buffers, RDO_YOPT_UINT, .min = 2,
	     .max = 4096), /* the most credits a lossless consumer may ask for */
    {NULL},
};

/* An endpoint to connect to: tcp://HOST:PORT or ipc://PATH. */
static int check_connect(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
			 const char *ep)
{
	if (!n || rdo_endpoint_valid(ep))
		return 0;
	return rdo_yaml_fail(y, n, "%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"", path,
			     ep);
}

static const char *const remote_writer_keys[] = {"source", "writer", "status_interval_s",
						 "log_level", NULL};

static int visit_remote_writer(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
			       const char *path)
{
	struct rdo_remote_writer_opts *o = ctx;
	const struct rdo_ynode *nodes[RDO_YOPT_MAX] = {NULL};
	int rc;
	switch (key) {
	case 0:
		rc = rdo_yaml_walk_opts(y, v, path, source_opts, o, nodes);
		if (rc == 0)
			rc = check_connect(y, nodes[SOURCE_CONTROL], "source.control", o->control);
		if (rc == 0)
			rc = check_connect(y, nodes[SOURCE_LOSSLESS], "source.lossless",
					   o->lossless);
		return rc;
	case 1:
		return rdo_yaml_walk_opts(y, v, path, RDO_WRITER_FILE_KEYS, &o->writer, NULL);
	case 2:
		return rdo_yaml_get_uint(y, v, path, 0, 86400, &o->status_s);
	default:
		return rdo_yaml_get_log_level(y, v, path, &o->log_level);
	}
}

int rdo_config_load_remote_writer(const char *file, struct rdo_remote_writer_opts *o, char *err,
				  size_t errlen)
{
	struct rdo_ydoc *y;
	int rc = rdo_yaml_load(file, &y, err, errlen);
	if (rc)
		return rc;
	rdo_strlcpy(o->config_file, file, sizeof(o->config_file));
	rc = rdo_yaml_walk_map(y, rdo_yaml_root(y), "", remote_writer_keys, visit_remote_writer, o);
	rdo_yaml_destroy(&y);
	return rc;
}
