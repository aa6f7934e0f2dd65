/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_common.h - what onvm-mgr and libonvm_nf share in hugepage memory.
 *
 * The manager (DPDK primary) creates one memzone, ONVM_MZ_SHARED, holding
 * the instance table, the service table, the chain slots and the flow
 * slots.  NFs (DPDK secondaries) look it up and see it at the same virtual
 * address, so it may hold pointers to rings and the mbuf pool.
 *
 * Who writes what:
 *  - the manager's control thread: instance/service/chain control fields;
 *  - the manager's data lcore: flow slots, port counters;
 *  - each NF: only its own onvm_inst.c counters, sleeping flag and hold[];
 *  - any producer: a consumer's wake_seq and rx_drop (atomics).
 */
#ifndef ONVM_COMMON_H
#define ONVM_COMMON_H

#include <stdalign.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

#include "onvm_stats.h"

#define ONVM_MZ_SHARED "onvm_shared"
#define ONVM_POOL_NAME "onvm_pool_s%u"   /* one per NUMA socket in use */
#define ONVM_META_DYNFIELD "onvm_pkt_meta"
#define ONVM_CTL_SOCK_NAME "onvm.sock"

#define ONVM_MAX_SOCKETS 8
#define ONVM_CHAIN_SLOTS 64      /* versions kept so in-flight packets finish */
#define ONVM_MAX_CHAIN_LEN 8
#define ONVM_MAX_PER_SERVICE 16
#define ONVM_MAX_FLOWS 65536
#define ONVM_BURST 32
#define ONVM_RING_SIZE 2048

#define ONVM_NONE 0xffff         /* no instance / service / port */
#define ONVM_NO_FLOW UINT32_MAX
#define ONVM_NO_CHAIN 0xff
#define ONVM_OWNER_NONE 0xffff

/* Per-packet actions (the verdict an NF gives). */
enum onvm_action {
	ONVM_A_NEXT = 0,     /* next service of the packet's chain, or its egress */
	ONVM_A_DROP,         /* free it */
	ONVM_A_TO_PORT,      /* dest = port id */
	ONVM_A_TO_SERVICE,   /* dest = service id; instance chosen by steering */
	ONVM_A_TO_INSTANCE,  /* dest = instance id */
	ONVM_A_BACK,         /* back to the instance (or port) it came from */
	ONVM_A_TO_CHAIN,     /* dest = chain slot: enter that chain at its first service */
};

/* Per-packet metadata, an mbuf dynamic field registered by the manager. */
struct onvm_pkt_meta {
	uint8_t action;     /* enum onvm_action */
	uint8_t chain;      /* chain slot, ONVM_NO_CHAIN if none */
	uint8_t pos;        /* index in the chain of the service now holding it */
	uint8_t port_in;    /* port it arrived on, 0xff if generated */
	uint16_t dest;      /* see enum onvm_action */
	uint16_t src;       /* instance that sent it last, ONVM_NONE = a port */
	uint32_t flow;      /* flow slot, ONVM_NO_FLOW if none */
	uint16_t owner;     /* instance that dequeued it last (crash reclaim) */
	uint8_t nsh_ttl;    /* NSH TTL left when it came off a fabric link, 0 if not */
	uint8_t pad;
};

/* Counters an NF keeps about itself; single writer (the NF). */
struct onvm_nf_counters {
	uint64_t rx;
	uint64_t tx;
	uint64_t dropped;
	uint64_t tx_drop;
	uint64_t processed;
	uint64_t busy_cycles;
	uint64_t idle_cycles;
	uint64_t wakeups;
};

struct onvm_inst {
	/* Control, written by the manager's control thread. */
	uint32_t state;          /* ONVM_INST_* */
	uint32_t flags;          /* ONVM_INST_F_* */
	uint16_t id;
	uint16_t service;
	int32_t pid;
	struct rte_ring *rx;     /* MP/SC: manager and upstream NFs produce */
	struct rte_ring *tx;     /* SP/SC: this NF to the manager (to ports) */
	uint32_t load_pct;       /* busy share, last stats period */
	uint32_t flows;          /* flows steered to it */
	uint32_t new_flows;      /* flows steered to it lately (halved every stats period) */
	uint64_t dead_tsc;       /* when the manager saw it exit */
	uint16_t fabric_port;    /* ONVM_INST_F_REMOTE: port towards its host */
	uint8_t peer_id;         /* ONVM_INST_F_REMOTE: low byte of the peer's fabric MAC */

	/* Sleep/wake (futex on wake_seq); see onvm_wake.h. */
	alignas(RTE_CACHE_LINE_SIZE) uint32_t sleeping; /* written by the NF */
	uint32_t wake_seq;       /* bumped by producers that wake it */

	/* Written by producers when its rx ring is full. */
	alignas(RTE_CACHE_LINE_SIZE) uint64_t rx_drop;

	/* Written by the NF only. */
	alignas(RTE_CACHE_LINE_SIZE) struct onvm_nf_counters c;
};

struct onvm_service {
	char name[ONVM_NAME_LEN];
	uint16_t n_inst;                      /* live (RUNNING) instances */
	uint16_t inst[ONVM_MAX_PER_SERVICE];  /* their ids */
	uint16_t preferred;                   /* most spare capacity */
	uint32_t gen;                         /* bumped on each change */
};

#define ONVM_CHAIN_FREE 0
#define ONVM_CHAIN_ACTIVE 1
#define ONVM_CHAIN_RETIRED 2

/* Match fields of a chain; a zero/0xff field matches anything. */
struct onvm_match {
	uint8_t in_port;         /* 0xff = any */
	uint8_t proto;           /* 0 = any, 6 tcp, 17 udp, ... */
	uint16_t src_port;       /* host order, 0 = any */
	uint16_t dst_port;
	uint8_t src_len, dst_len; /* prefix lengths, 0 = any */
	uint32_t src_ip, dst_ip; /* host order */
};

/* A chain version.  Immutable while ACTIVE or RETIRED: a swap writes a new
 * slot and retires the old one, so packets already in the old chain finish
 * it and none is lost or mis-routed. */
struct onvm_chain {
	uint32_t state;          /* ONVM_CHAIN_* */
	uint32_t version;
	uint32_t spi;            /* NSH service path id: the chain on every host */
	uint32_t ingress;        /* in the classifier (else reached by NSH only) */
	uint64_t retired_tsc;
	char name[ONVM_NAME_LEN];
	struct onvm_match match;
	uint8_t len;
	uint8_t egress;          /* port id, 0xff = none (drop at the end) */
	uint16_t svc[ONVM_MAX_CHAIN_LEN];
	uint8_t tot;             /* its entry in onvm_shared.chain_tot (by name) */
};

/* Counters of a chain by name, kept across its versions; written by the
 * data lcore only. */
struct onvm_chain_totals {
	char name[ONVM_NAME_LEN];   /* control thread; empty: free */
	uint64_t rx, tx, remote;
};

/* One flow: its chain and the instance chosen for each position. */
struct onvm_flow {
	uint8_t chain;
	uint8_t in_use;
	uint16_t inst[ONVM_MAX_CHAIN_LEN];
	uint64_t last_tsc;
};

/* The classifier: which chain slots are active, in match order.  Double
 * buffered: the control thread fills the idle table and flips `active`. */
struct onvm_chain_table {
	uint32_t n;
	uint8_t slot[ONVM_MAX_CHAINS];
};

struct onvm_shared {
	uint64_t magic;
	uint32_t version;
	int32_t mgr_pid;
	char host[ONVM_NAME_LEN];
	uint64_t tsc_hz;
	struct rte_mempool *pool[ONVM_MAX_SOCKETS]; /* per NUMA socket, NULL where none */
	uint32_t main_socket;    /* the manager's */
	int meta_offset;         /* dynfield offset of struct onvm_pkt_meta */
	uint32_t n_ports;
	char port_name[ONVM_MAX_PORTS][ONVM_NAME_LEN];
	uint32_t table_active;   /* index into tables[] */
	uint32_t table_gen;      /* bumped on each flip */
	uint32_t lcore_seen_gen; /* last gen the data lcore used */
	uint64_t inst_mask;      /* instance slots the data lcore polls */
	uint64_t remote_mask;    /* remote stand-ins whose rx rings it sends on */
	uint64_t evict_mask;     /* draining instances whose flows it moves */
	struct onvm_chain_table tables[2];
	/* The manager's own wake word: NFs that fill their tx ring wake it. */
	alignas(RTE_CACHE_LINE_SIZE) uint32_t mgr_sleeping;
	uint32_t mgr_wake_seq;
	alignas(RTE_CACHE_LINE_SIZE) struct onvm_inst inst[ONVM_MAX_INSTANCES];
	struct onvm_service svc[ONVM_MAX_SERVICES];
	struct onvm_chain chains[ONVM_CHAIN_SLOTS];
	struct onvm_chain_totals chain_tot[ONVM_MAX_CHAINS];
	struct onvm_flow flows[ONVM_MAX_FLOWS];
};

#define ONVM_SHARED_MAGIC 0x4f4e564d53484d31ULL /* "ONVMSHM1" */
#define ONVM_SHARED_VERSION 6

/* The pool of NUMA socket `socket`, or the manager's if it has none. */
static inline struct rte_mempool *
onvm_pool(const struct onvm_shared *sh, int socket)
{
	if (socket >= 0 && socket < ONVM_MAX_SOCKETS && sh->pool[socket] != NULL)
		return sh->pool[socket];
	return sh->pool[sh->main_socket];
}

static inline struct onvm_pkt_meta *
onvm_meta(struct rte_mbuf *m, int offset)
{
	return RTE_MBUF_DYNFIELD(m, offset, struct onvm_pkt_meta *);
}

#endif /* ONVM_COMMON_H */
