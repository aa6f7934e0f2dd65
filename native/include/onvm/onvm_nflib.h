/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_nflib.h - the API a network function links against (libonvm_nf).
 *
 * An NF is a DPDK secondary process attached to its host's onvm-mgr.  It
 * registers a service name, gets an instance id, and receives bursts of
 * packets through a handler that gives each packet a verdict:
 *
 *   static void handler(struct onvm_nf *nf, struct rte_mbuf **p, uint16_t n, void *arg)
 *   {
 *           for (uint16_t i = 0; i < n; i++)
 *                   if (bad(p[i]))
 *                           onvm_pkt_drop(nf, p[i]);   // default: next in chain
 *   }
 *   int main(int argc, char **argv)
 *   {
 *           struct onvm_nf *nf;
 *           if (onvm_nf_init(&argc, &argv, "myservice", &nf) < 0)
 *                   return 2;
 *           // argc/argv: the NF's own options (after "--"), for getopt
 *           return onvm_nf_run(nf, handler, NULL);
 *   }
 *
 * Command line: <nf> --host H [--service S] [--core C] [--shared-core]
 *                    [--runtime-dir D] [-- <NF options>]
 * The library builds the EAL arguments itself (secondary, file prefix
 * onvm-H, no PCI scan, no telemetry).
 */
#ifndef ONVM_NFLIB_H
#define ONVM_NFLIB_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "onvm_dp.h"

struct onvm_nf {
	struct onvm_dp dp;          /* shared state and meta offset */
	struct onvm_inst *inst;     /* this instance's table entry */
	uint16_t id;                /* instance id */
	uint16_t service_id;
	bool shared_core;
	int core;                   /* cpu the packet loop is pinned to, -1 none */
	volatile bool stop;
	char host[ONVM_NAME_LEN];
	char service[ONVM_NAME_LEN];
	int ctl_fd;                 /* registration connection; closes on exit */
	bool check_only;            /* --check: options parsed, nothing attached */
	/* Wake-ups owed by onvm_nf_send(), paid by the packet loop once a
	 * batch is out or it runs dry (see onvm_dp_to_inst). */
	uint64_t wake;              /* instances to wake */
	bool wake_mgr;              /* the manager has packets for a port */
	unsigned int unwoken;       /* packets sent since the last wake-ups */
	/* Optional: called once in the packet loop's thread before the first
	 * burst; generators allocate and send their first packets here. */
	void (*on_start)(struct onvm_nf *nf, void *arg);
};

typedef void (*onvm_nf_handler_t)(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n,
				  void *arg);

/* Parse the library's options and attach to the manager's memory (the
 * NF is not an instance yet: see onvm_nf_run).  On success, argc and argv
 * are left holding the NF's own options (after "--", with argv[0] kept and
 * getopt reset), ready for getopt; returns 0.  Returns -1 after printing
 * why to stderr (no manager, bad option, ...). */
int onvm_nf_init(int *argc, char ***argv, const char *default_service, struct onvm_nf **nf);

/* Register with the manager (from here on the NF is an instance that
 * traffic is steered to: an NF sets itself up -- options, rules -- before
 * this call, so that one that fails never shows as running), then run the
 * packet loop until onvm_nf_stop() or SIGINT/SIGTERM.  Returns 0, or 1
 * after printing why if the manager refused the registration.  nf->id and
 * nf->inst are valid from the loop's start (on_start, the handler). */
int onvm_nf_run(struct onvm_nf *nf, onvm_nf_handler_t handler, void *arg);

/* Ask the loop to end (async-signal-safe). */
void onvm_nf_stop(struct onvm_nf *nf);

/* Release the EAL; call after onvm_nf_run(). */
void onvm_nf_fini(struct onvm_nf *nf);

/* Hand packets on according to their verdicts; for NFs that create
 * packets (generators), from the packet loop's thread (on_start or the
 * handler): the loop wakes the receivers once the batch is out.  Returns
 * packets passed on. */
unsigned int onvm_nf_send(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n);

/* Allocate packets from the host's pool, owned by this NF. */
unsigned int onvm_nf_alloc(struct onvm_nf *nf, struct rte_mbuf **pkts, unsigned int n);

/* Service id by name, -1 if the manager does not know it. */
int onvm_nf_service_id(const struct onvm_nf *nf, const char *name);

/* Slot of the active chain `name` (for onvm_pkt_to_chain), -1 if none. */
int onvm_nf_chain_id(const struct onvm_nf *nf, const char *name);

/* Port id by name ("port1", "1" or the DPDK device name), -1 if none. */
int onvm_nf_port_id(const struct onvm_nf *nf, const char *name);

/* ---- verdicts ---------------------------------------------------------- */

static inline struct onvm_pkt_meta *
onvm_pkt_meta(const struct onvm_nf *nf, struct rte_mbuf *m)
{
	return onvm_dp_meta(&nf->dp, m);
}

static inline void
onvm_pkt_verdict(const struct onvm_nf *nf, struct rte_mbuf *m, enum onvm_action a, uint16_t dest)
{
	struct onvm_pkt_meta *meta = onvm_pkt_meta(nf, m);

	meta->action = a;
	meta->dest = dest;
}

/* Continue the packet's chain (the default verdict). */
static inline void
onvm_pkt_next(const struct onvm_nf *nf, struct rte_mbuf *m)
{
	onvm_pkt_verdict(nf, m, ONVM_A_NEXT, 0);
}

static inline void
onvm_pkt_drop(const struct onvm_nf *nf, struct rte_mbuf *m)
{
	onvm_pkt_verdict(nf, m, ONVM_A_DROP, 0);
}

static inline void
onvm_pkt_to_port(const struct onvm_nf *nf, struct rte_mbuf *m, uint16_t port)
{
	onvm_pkt_verdict(nf, m, ONVM_A_TO_PORT, port);
}

static inline void
onvm_pkt_to_service(const struct onvm_nf *nf, struct rte_mbuf *m, uint16_t service)
{
	onvm_pkt_verdict(nf, m, ONVM_A_TO_SERVICE, service);
}

/* Into chain `chain` (onvm_nf_chain_id) at its first service: how a
 * generator's packets take a chain, wherever its services run. */
static inline void
onvm_pkt_to_chain(const struct onvm_nf *nf, struct rte_mbuf *m, uint16_t chain)
{
	onvm_pkt_verdict(nf, m, ONVM_A_TO_CHAIN, chain);
}

/* Back to the instance (or port) the packet came from. */
static inline void
onvm_pkt_back(const struct onvm_nf *nf, struct rte_mbuf *m)
{
	onvm_pkt_verdict(nf, m, ONVM_A_BACK, 0);
}

#endif /* ONVM_NFLIB_H */
