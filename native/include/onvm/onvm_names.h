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

#endif /* ONVM_NAMES_H */
