#include "card/numa.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_DIR "/sys/devices/system/node"

int rdo_numa_nodes(void)
{
	DIR *d = opendir(NODE_DIR);
	if (!d)
		return 1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strncmp(e->d_name, "node", 4) == 0 && isdigit((unsigned char)e->d_name[4]))
			n++;
	closedir(d);
	return n ? n : 1;
}

int rdo_numa_parse_cpulist(const char *list, cpu_set_t *set)
{
	CPU_ZERO(set);
	const char *p = list;
	while (*p && *p != '\n') {
		char *end;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (hi < lo || hi >= CPU_SETSIZE)
			return -EINVAL;
		for (unsigned long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		p = end;
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

int rdo_numa_cpus(int node, cpu_set_t *set)
{
	char path[64], list[4096];
	snprintf(path, sizeof(path), NODE_DIR "/node%d/cpulist", node);
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	int rc = fgets(list, sizeof(list), f) ? rdo_numa_parse_cpulist(list, set) : -EIO;
	fclose(f);
	return rc;
}

int rdo_numa_enter(int node, cpu_set_t *saved)
{
	cpu_set_t cpus;
	int rc = rdo_numa_cpus(node, &cpus);
	if (rc)
		return rc;
	rc = pthread_getaffinity_np(pthread_self(), sizeof(*saved), saved);
	if (rc == 0)
		rc = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	return -rc;
}

void rdo_numa_leave(const cpu_set_t *saved)
{
	pthread_setaffinity_np(pthread_self(), sizeof(*saved), saved);
}
