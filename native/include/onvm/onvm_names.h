/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_names.h - the per-host names and paths the manager and the NF
 * library use: the C counterpart of the collection's
 * plugins/module_utils/names.py, where every other part of onvm takes them
 * from.  tests/unit/test_names_c.py compiles this header and holds the two
 * to the same values.
 */
#ifndef ONVM_NAMES_H
#define ONVM_NAMES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONVM_DEFAULT_RUNTIME_DIR "/var/run/dpdk"
#define ONVM_DEFAULT_HUGE_DIR "/dev/hugepages"
#define ONVM_STATS_DIR "/dev/shm"

/* DPDK --file-prefix of a host's manager and NFs: "onvm-<host>" */
#define ONVM_FILE_PREFIX_FMT "onvm-%s"
/* name prefix of the host's hugepage files in hugetlbfs */
#define ONVM_HUGEPAGE_PREFIX_FMT ONVM_FILE_PREFIX_FMT "map_"
/* the host's runtime dir under the root runtime dir, and its control socket */
#define ONVM_RUNTIME_DIR_FMT "%s/" ONVM_FILE_PREFIX_FMT
#define ONVM_CTL_SOCKET_FMT ONVM_RUNTIME_DIR_FMT "/onvm.sock"
/* the host's stats area (onvm_stats.h) */
#define ONVM_STATS_PATH_FMT ONVM_STATS_DIR "/" ONVM_FILE_PREFIX_FMT ".stats"

/* snprintf() of one of the above; 0, or -1 if it does not fit in len */
#define ONVM_NAME(buf, len, fmt, ...)                                          \
	({                                                                     \
		int n_ = snprintf((buf), (len), fmt, __VA_ARGS__);             \
		(n_ < 0 || (size_t)n_ >= (size_t)(len)) ? -1 : 0;              \
	})

/* The name of port N (chains, NF options, stand-ins): "port<N>" */
#define ONVM_PORT_NAME_FMT "port%u"

/* A port named by its number: "port<N>", or a bare "<N>" (N decimal); N,
 * or -1 if the name is not of that form.  A port may also be named by its
 * DPDK device name, which the caller looks up (it knows the ports).  The
 * same rule as port_index() in module_utils/names.py. */
static inline int
onvm_port_index(const char *name)
{
	char *end;
	long v;

	if (strncmp(name, "port", 4) == 0)
		name += 4;
	if (*name < '0' || *name > '9')
		return -1;
	v = strtol(name, &end, 10);
	return (*end == '\0' && v <= 0xffff) ? (int)v : -1;
}

#endif /* ONVM_NAMES_H */
