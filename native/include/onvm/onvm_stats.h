/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_stats.h - THE layout of a host's stats area.
 *
 * onvm-mgr keeps one stats area per host in a file (default
 * /dev/shm/onvm-<host>.stats).  It copies the counters that the data
 * plane keeps in hugepage memory into this file every stats period,
 * under a sequence lock: readers retry while `seq` is odd or changed.
 *
 * Python reads this file through cffi and parses the text between the
 * ONVM-CDEF-BEGIN and ONVM-CDEF-END markers with ffi.cdef(): keep that
 * part plain C (fixed-width types, #define integer constants, explicit
 * padding, no attributes) so both sides see the same layout.  Bump
 * ONVM_STATS_VERSION on any change of layout.
 */
#ifndef ONVM_STATS_H
#define ONVM_STATS_H

#include <stdint.h>

/* ONVM-CDEF-BEGIN */
#define ONVM_STATS_MAGIC 0x54415453564d4e4f
#define ONVM_STATS_VERSION 3
#define ONVM_NAME_LEN 32
#define ONVM_MAX_PORTS 8
#define ONVM_MAX_INSTANCES 64
#define ONVM_MAX_SERVICES 32
#define ONVM_MAX_CHAINS 16       /* named chains at one time */

/* Instance states (also used in the hugepage instance table). */
#define ONVM_INST_FREE 0
#define ONVM_INST_STARTING 1
#define ONVM_INST_RUNNING 2
#define ONVM_INST_DRAINING 3
#define ONVM_INST_DEAD 4

/* Instance flags. */
#define ONVM_INST_F_SHARED_CORE 1
#define ONVM_INST_F_REMOTE 2        /* stands for instances on another host */
#define ONVM_INST_F_EVICTED 4       /* draining, and its flows were moved away */

struct onvm_stats_port {
	char name[32];          /* DPDK device name, e.g. net_af_packet0 */
	uint64_t rx;            /* packets received by the manager */
	uint64_t tx;            /* packets the port accepted for transmit */
	uint64_t rx_nombuf;     /* rx failed: mbuf pool empty */
	uint64_t tx_drop;       /* port refused the packet (tx queue full) */
	uint64_t no_chain;      /* received, matched no chain, dropped */
	uint64_t steer_drop;    /* first hop ring full or no live instance */
	uint64_t nsh_drop;      /* NSH frames dropped: truncated, unknown path or index */
};

struct onvm_stats_nf {
	uint32_t state;         /* ONVM_INST_* */
	uint32_t flags;         /* ONVM_INST_F_* */
	uint16_t instance;      /* instance id, unique on the host */
	uint16_t service_id;
	int32_t pid;            /* pid as seen by the manager */
	char service[32];
	uint64_t rx;            /* packets dequeued from its rx ring */
	uint64_t tx;            /* packets it passed on (to NF or port) */
	uint64_t dropped;       /* packets its handler dropped (verdict) */
	uint64_t rx_drop;       /* packets lost because its rx ring was full */
	uint64_t tx_drop;       /* packets it could not pass on (next ring full) */
	uint64_t processed;     /* packets its handler saw */
	uint64_t busy_cycles;   /* TSC cycles spent on non-empty bursts */
	uint64_t idle_cycles;   /* TSC cycles spent polling empty or asleep */
	uint64_t wakeups;       /* times it was woken from sleep */
	uint32_t rx_ring_count; /* rx ring occupancy at the last snapshot */
	uint32_t rx_ring_size;
	uint32_t flows;         /* flows currently steered to it */
	uint32_t load_pct;      /* busy share of the last stats period, % */
};

/* A service on this host over the manager's life: its instances' counters
 * summed, those gone (drained, killed, restarted) included, so a total
 * never goes back while instances come and go.  Stand-ins for other hosts'
 * instances are not counted (their hosts count what they do). */
struct onvm_stats_service {
	char name[32];
	uint32_t instances;     /* live local instances (running or draining) */
	uint32_t pad;
	uint64_t rx;
	uint64_t tx;
	uint64_t dropped;
	uint64_t rx_drop;
	uint64_t tx_drop;
	uint64_t processed;
};

/* A chain (by name, across its versions) on this host. */
struct onvm_stats_chain {
	char name[32];
	uint64_t rx;            /* packets that entered it here (from a port or by NSH) */
	uint64_t tx;            /* packets it handed to a port of this host (port tx_drop: refused) */
	uint64_t remote;        /* packets sent on to an instance on another host */
};

struct onvm_stats_area {
	uint64_t magic;         /* ONVM_STATS_MAGIC */
	uint32_t version;       /* ONVM_STATS_VERSION */
	uint32_t size;          /* sizeof(struct onvm_stats_area) */
	uint32_t seq;           /* seqlock: odd while being written */
	int32_t mgr_pid;
	char host[32];
	uint64_t tsc_hz;
	uint64_t updated_ns;    /* CLOCK_REALTIME of the last update */
	uint64_t updates;       /* number of completed updates */
	uint64_t pool_size;     /* mbufs in the host's pool(s) */
	uint64_t pool_avail;    /* mbufs free in the pool(s) right now */
	uint64_t flows_active;
	uint64_t reclaimed;     /* mbufs taken back from dead NFs */
	uint32_t n_ports;
	uint32_t n_instances;   /* entries of nfs[] in use (by index) */
	struct onvm_stats_port ports[ONVM_MAX_PORTS];
	struct onvm_stats_nf nfs[ONVM_MAX_INSTANCES];
	uint32_t n_services;    /* entries of services[] in use (by index) */
	uint32_t n_chains;      /* entries of chains[] in use (by index) */
	struct onvm_stats_service services[ONVM_MAX_SERVICES];
	struct onvm_stats_chain chains[ONVM_MAX_CHAINS];
};
/* ONVM-CDEF-END */

#ifdef __cplusplus
#define ONVM_STATIC_ASSERT static_assert
#else
#define ONVM_STATIC_ASSERT _Static_assert
#endif
ONVM_STATIC_ASSERT(sizeof(struct onvm_stats_port) == 88, "port stats layout");
ONVM_STATIC_ASSERT(sizeof(struct onvm_stats_nf) == 136, "nf stats layout");
ONVM_STATIC_ASSERT(sizeof(struct onvm_stats_service) == 88, "service stats layout");
ONVM_STATIC_ASSERT(sizeof(struct onvm_stats_chain) == 56, "chain stats layout");

#endif /* ONVM_STATS_H */
