/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm-mgr internals.  Two threads:
 *  - the data lcore (dataplane.c): port rx -> flow table -> first NF of the
 *    flow's chain; NF tx rings -> ports; idle back-off;
 *  - the control thread (ctl.c, tables.c, stats.c): control socket, NF
 *    registration and exit, chains, stats area, reclaim of dead NFs.
 */
#ifndef ONVM_MGR_H
#define ONVM_MGR_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_hash.h>

#include "onvm/onvm_common.h"
#include "onvm/onvm_dp.h"

#define MGR_MAX_RECLAIM 4096

/* What a flow is keyed by: its 5-tuple, the port it came in on and, for a
 * packet from another host's manager, the NSH service path it follows. */
/* 32 bytes: rte_hash compares keys of that size with vector instructions
 * (20 would be a memcmp call per lookup); pad is always zero. */
struct flow_key {
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	uint8_t proto, in_port;
	uint16_t pad;
	uint32_t spi;   /* 0: classified here */
	uint32_t pad2[3];
};

enum port_kind { PORT_PCI, PORT_VDEV };

struct mgr_port {
	enum port_kind kind;
	char spec[256];           /* as given: PCI address or vdev string */
	char devname[ONVM_NAME_LEN];
	uint16_t dpdk_id;
	/* Counters, written by the data lcore only. */
	uint64_t rx, tx, rx_nombuf, tx_drop, no_chain, steer_drop, nsh_drop;
};

/* Control-thread bookkeeping of one instance slot. */
struct mgr_inst {
	int fd;                   /* registration connection, -1 if none */
	int reclaim_phase;        /* 0 none, 1 dead, 2 scanned */
	uint64_t phase_tsc;
	unsigned int n_cand;
	struct rte_mbuf **cand;   /* mbufs tagged with it, rechecked later */
	uint64_t prev_busy, prev_idle;
	char remote_host[ONVM_NAME_LEN];   /* ONVM_INST_F_REMOTE: the host it stands for */
	uint32_t remote_load;     /* ONVM_INST_F_REMOTE: load its host reported */
};

/* What a service's instances that are gone had counted (stats.c adds the
 * live ones'): its totals never go back when instances come and go. */
struct svc_totals {
	uint64_t rx, tx, dropped, rx_drop, tx_drop, processed;
};

struct mgr {
	char host[ONVM_NAME_LEN];
	char runtime_dir[192];
	char ctl_path[256];
	char stats_path[256];
	char huge_dir[192];
	char pid_file[256];
	bool check_only;                      /* --check: validate and exit */
	unsigned int lcore;
	unsigned int mem_mb;
	unsigned int n_mbufs;
	unsigned int flow_idle_s;
	unsigned int n_ports;
	struct mgr_port ports[ONVM_MAX_PORTS];
	bool socket_used[ONVM_MAX_SOCKETS];   /* NUMA sockets with cpus we may use */
	unsigned int n_sockets;

	struct onvm_dp dp;
	struct onvm_shared *sh;
	struct rte_hash *flow_hash;
	struct onvm_stats_area *stats;
	int ctl_listen_fd;
	uint32_t next_chain_slot;
	uint32_t chain_version;
	uint64_t reclaimed;
	struct mgr_inst inst[ONVM_MAX_INSTANCES];
	struct svc_totals retired[ONVM_MAX_SERVICES];
};

extern volatile bool mgr_quit;

/* ports.c */
int ports_check_spec(struct mgr_port *p, char *err, size_t errlen);
int ports_start(struct mgr *m, char *err, size_t errlen);
/* Add a vdev port while running (control thread): its index, or -1 with err
 * and nothing changed. */
int ports_add(struct mgr *m, const char *spec, char *err, size_t errlen);
void ports_stop(struct mgr *m);

/* dataplane.c */
int dataplane_loop(void *arg);

/* tables.c: instances, services, chains (control thread only). */
int tables_register(struct mgr *m, int fd, const char *service, int pid, bool shared_core,
		    char *err, size_t errlen);
int tables_add_instance(struct mgr *m, int fd, const char *service, int pid, uint32_t flags,
			uint16_t port, uint8_t peer_id, char *err, size_t errlen);
/* A stand-in for `service`'s instances on `host`, reached through `port`. */
int tables_remote_set(struct mgr *m, const char *service, const char *host, uint16_t port,
		      uint8_t peer_id, uint32_t load, char *err, size_t errlen);
int tables_remote_find(const struct mgr *m, const char *service, const char *host);
void tables_inst_exited(struct mgr *m, uint16_t id);

/* Where the pool's mbufs are (best read with no traffic): free (in the
 * pool's ring or an lcore cache), in an instance's rx or tx ring, or
 * loose (in nobody's ring: in a process's hands, or lost), by owner tag. */
struct pool_audit {
	unsigned int total, free, in_rx, in_tx, loose;
	unsigned int loose_owner[ONVM_MAX_INSTANCES + 1];   /* last: no owner */
};
int tables_pool_audit(struct mgr *m, struct pool_audit *a);
/* Drain instance id: no new flows (its pinned ones stay); with evict, its
 * flows also move to the other instances.  -1 with err if not running. */
int tables_drain(struct mgr *m, uint16_t id, bool evict, char *err, size_t errlen);
int tables_service_add(struct mgr *m, const char *name, char *err, size_t errlen);
int tables_service_find(const struct mgr *m, const char *name);
int tables_chain_set(struct mgr *m, const char *name, const uint16_t *svc, unsigned int len,
		     const struct onvm_match *match, uint8_t egress, uint32_t spi, bool ingress);
int tables_chain_del(struct mgr *m, const char *name);
int tables_chain_find(const struct mgr *m, const char *name);
void tables_tick(struct mgr *m);   /* reclaim, retire old chain slots */

/* stats.c */
/* Add a local instance's counters to what its service has counted (before
 * its slot is freed). */
void stats_retire(struct mgr *m, const struct onvm_inst *in);
int stats_open(struct mgr *m, char *err, size_t errlen);
void stats_update(struct mgr *m);
void stats_close(struct mgr *m);
uint64_t mgr_pool_size(const struct mgr *m);    /* all sockets' pools */
uint64_t mgr_pool_avail(const struct mgr *m);

/* ctl.c */
int ctl_open(struct mgr *m, char *err, size_t errlen);
int ctl_thread(void *arg);
void ctl_close(struct mgr *m);

/* Wake the data lcore (e.g. so it sees a new chain table). */
void mgr_wake_lcore(struct mgr *m);

#endif /* ONVM_MGR_H */
