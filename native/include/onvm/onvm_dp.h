/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_dp.h - data-path pieces shared by onvm-mgr and libonvm_nf:
 * sleeping and waking through a futex in shared memory, steering a packet
 * to an instance of a service, handing a burst to an instance, freeing.
 * One implementation, used by the manager (port rx) and by NFs (NF to NF).
 */
#ifndef ONVM_DP_H
#define ONVM_DP_H

#include <stdbool.h>
#include <stdint.h>

#include "onvm_common.h"

/* Process-local view of the shared state; filled by onvm_dp_attach(). */
struct onvm_dp {
	struct onvm_shared *sh;
	int meta_off;
};

/* Find the shared memzone and the meta dynfield; 0 or -errno. */
int onvm_dp_attach(struct onvm_dp *dp);

static inline struct onvm_pkt_meta *
onvm_dp_meta(const struct onvm_dp *dp, struct rte_mbuf *m)
{
	return onvm_meta(m, dp->meta_off);
}

/* Free a packet (clears its owner tag so crash reclaim never sees it). */
void onvm_dp_free(const struct onvm_dp *dp, struct rte_mbuf *m);
void onvm_dp_free_bulk(const struct onvm_dp *dp, struct rte_mbuf **m, unsigned int n);

/* Work check run after announcing sleep: true if work came in meanwhile. */
typedef bool (*onvm_dp_pending_t)(void *arg);

/* Announce sleep in *sleeping, then wait on *seq unless pending(arg) says
 * work came in between; returns true when woken (false on timeout). */
bool onvm_dp_sleep(uint32_t *sleeping, uint32_t *seq, onvm_dp_pending_t pending, void *arg,
		   uint64_t timeout_ns);

/* onvm_dp_pending_t for "this ring is not empty". */
bool onvm_dp_ring_pending(void *ring);
/* Wake a sleeper after work was handed to it.  Only the first of several
 * wakers pays for the system call: it takes the sleeping flag. */
void onvm_dp_wake(uint32_t *sleeping, uint32_t *seq);

/* The instance of service `svc` that a new packet should go to; `flow` and
 * `pos` give the flow's pinned choice.  With local_only, never a stand-in
 * for another host (a packet another host sent here for this service must
 * be served here, or it could bounce between hosts).  When no instance is
 * live, one that drains but still keeps flows takes it rather than losing
 * it.  ONVM_NONE when there is none of either. */
uint16_t onvm_dp_steer(const struct onvm_dp *dp, uint16_t svc, uint32_t flow, uint8_t pos,
		       bool local_only);

/* Instance of `svc` with the most spare capacity (ties: fewest flows),
 * with local_only among this host's own instances. */
uint16_t onvm_dp_least_loaded(const struct onvm_shared *sh, uint16_t svc, bool local_only);

/* Hand n packets to instance `id`'s rx ring.  What does not fit is freed
 * and counted in its rx_drop.  With wake == NULL the instance (the manager,
 * for a remote stand-in) is woken now if asleep; otherwise the wake-up is
 * left for onvm_dp_wake_all(*wake) at the end of the caller's batch, so a
 * sleeper sharing the caller's core wakes once per batch, not per burst.
 * Returns packets enqueued. */
unsigned int onvm_dp_to_inst(const struct onvm_dp *dp, uint16_t id, struct rte_mbuf **pkts,
			     unsigned int n, uint64_t *wake);

/* Wake the instances whose bits are set (see onvm_dp_to_inst). */
void onvm_dp_wake_all(const struct onvm_dp *dp, uint64_t wake);

#endif /* ONVM_DP_H */
