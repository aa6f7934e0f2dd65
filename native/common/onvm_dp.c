/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rte_atomic.h>
#include <rte_mbuf_dyn.h>
#include <rte_memzone.h>

#include "onvm/onvm_dp.h"

int
onvm_dp_attach(struct onvm_dp *dp)
{
	const struct rte_memzone *mz = rte_memzone_lookup(ONVM_MZ_SHARED);

	if (mz == NULL)
		return -ENOENT;
	dp->sh = mz->addr;
	if (dp->sh->magic != ONVM_SHARED_MAGIC || dp->sh->version != ONVM_SHARED_VERSION)
		return -EPROTO;
	dp->meta_off = rte_mbuf_dynfield_lookup(ONVM_META_DYNFIELD, NULL);
	if (dp->meta_off < 0)
		return -ENOENT;
	return 0;
}

void
onvm_dp_free(const struct onvm_dp *dp, struct rte_mbuf *m)
{
	onvm_dp_meta(dp, m)->owner = ONVM_OWNER_NONE;
	rte_pktmbuf_free(m);
}

void
onvm_dp_free_bulk(const struct onvm_dp *dp, struct rte_mbuf **m, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		onvm_dp_meta(dp, m[i])->owner = ONVM_OWNER_NONE;
	rte_pktmbuf_free_bulk(m, n);
}

static long
futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

bool
onvm_dp_ring_pending(void *ring)
{
	return rte_ring_count(ring) != 0;
}

bool
onvm_dp_sleep(uint32_t *sleeping, uint32_t *seq, onvm_dp_pending_t pending, void *arg,
	      uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = timeout_ns / 1000000000ULL,
		.tv_nsec = timeout_ns % 1000000000ULL,
	};
	uint32_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
	long rc = 0;

	__atomic_store_n(sleeping, 1, __ATOMIC_RELAXED);
	/* Pairs with the fence in onvm_dp_wake(): either the producer sees
	 * sleeping == 1, or we see its packets in the ring. */
	rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (pending == NULL || !pending(arg))
		rc = futex(seq, FUTEX_WAIT, s, &ts);
	__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
	return !(rc < 0 && errno == ETIMEDOUT);
}

void
onvm_dp_wake(uint32_t *sleeping, uint32_t *seq)
{
	rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(sleeping, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(sleeping, 0, __ATOMIC_ACQ_REL)) {
		__atomic_fetch_add(seq, 1, __ATOMIC_RELEASE);
		futex(seq, FUTEX_WAKE, 1, NULL);
	}
}

static inline bool
inst_live(const struct onvm_shared *sh, uint16_t id, uint16_t svc)
{
	return id < ONVM_MAX_INSTANCES &&
	       __atomic_load_n(&sh->inst[id].state, __ATOMIC_ACQUIRE) == ONVM_INST_RUNNING &&
	       sh->inst[id].service == svc;
}

/* A flow pinned to a draining instance stays there until it is evicted:
 * draining means no new flows, not dropping the ones it has. */
static inline bool
inst_keeps_flow(const struct onvm_shared *sh, uint16_t id, uint16_t svc)
{
	uint32_t state;

	if (id >= ONVM_MAX_INSTANCES || sh->inst[id].service != svc)
		return false;
	state = __atomic_load_n(&sh->inst[id].state, __ATOMIC_ACQUIRE);
	return state == ONVM_INST_RUNNING ||
	       (state == ONVM_INST_DRAINING &&
		!(__atomic_load_n(&sh->inst[id].flags, __ATOMIC_ACQUIRE) & ONVM_INST_F_EVICTED));
}

uint16_t
onvm_dp_least_loaded(const struct onvm_shared *sh, uint16_t svc, bool local_only)
{
	const struct onvm_service *s = &sh->svc[svc];
	uint16_t best = ONVM_NONE;
	int64_t best_spare = 0;
	uint32_t best_flows = 0;
	unsigned int i, n = s->n_inst;

	for (i = 0; i < n && i < ONVM_MAX_PER_SERVICE; i++) {
		uint16_t id = s->inst[i];
		const struct onvm_inst *in;
		int64_t spare;

		if (!inst_live(sh, id, svc))
			continue;
		in = &sh->inst[id];
		if (local_only && (in->flags & ONVM_INST_F_REMOTE))
			continue;
		/* The most spare capacity (100 - load), less a point for each
		 * flow given it lately: loads are a 100 ms snapshot (a remote
		 * one, what its host last said) while the recent-flow count
		 * moves at once, so a burst of new flows does not all land on
		 * the instance that looked idlest -- a just-started one above
		 * all.  Ties: fewest flows. */
		spare = (int64_t)(in->load_pct < 100 ? 100 - in->load_pct : 0) -
			(int64_t)__atomic_load_n(&in->new_flows, __ATOMIC_RELAXED);
		if (best == ONVM_NONE || spare > best_spare ||
		    (spare == best_spare && in->flows < best_flows)) {
			best = id;
			best_spare = spare;
			best_flows = in->flows;
		}
	}
	return best;
}

static inline bool
inst_usable(const struct onvm_shared *sh, uint16_t id, uint16_t svc, bool local_only)
{
	return inst_live(sh, id, svc) && !(local_only && (sh->inst[id].flags & ONVM_INST_F_REMOTE));
}

/* Last resort: an instance of svc that drains but still keeps flows. */
static uint16_t
draining_one(const struct onvm_shared *sh, uint16_t svc, bool local_only)
{
	uint16_t id;

	for (id = 0; id < ONVM_MAX_INSTANCES; id++)
		if (inst_keeps_flow(sh, id, svc) &&
		    !(local_only && (sh->inst[id].flags & ONVM_INST_F_REMOTE)))
			return id;
	return ONVM_NONE;
}

uint16_t
onvm_dp_steer(const struct onvm_dp *dp, uint16_t svc, uint32_t flow, uint8_t pos, bool local_only)
{
	const struct onvm_shared *sh = dp->sh;
	uint16_t id;

	if (svc >= ONVM_MAX_SERVICES)
		return ONVM_NONE;
	if (flow < ONVM_MAX_FLOWS && pos < ONVM_MAX_CHAIN_LEN) {
		id = sh->flows[flow].inst[pos];
		if (inst_keeps_flow(sh, id, svc) &&
		    !(local_only && (sh->inst[id].flags & ONVM_INST_F_REMOTE)))
			return id;
	}
	id = sh->svc[svc].preferred;
	if (inst_usable(sh, id, svc, local_only))
		return id;
	id = onvm_dp_least_loaded(sh, svc, local_only);
	return id != ONVM_NONE ? id : draining_one(sh, svc, local_only);
}

static void
wake_inst(const struct onvm_dp *dp, struct onvm_inst *in)
{
	if (in->flags & ONVM_INST_F_REMOTE)   /* the manager sends it on */
		onvm_dp_wake(&dp->sh->mgr_sleeping, &dp->sh->mgr_wake_seq);
	else
		onvm_dp_wake(&in->sleeping, &in->wake_seq);
}

void
onvm_dp_wake_all(const struct onvm_dp *dp, uint64_t wake)
{
	while (wake != 0) {
		unsigned int id = (unsigned int)__builtin_ctzll(wake);

		wake &= wake - 1;
		wake_inst(dp, &dp->sh->inst[id]);
	}
}

unsigned int
onvm_dp_to_inst(const struct onvm_dp *dp, uint16_t id, struct rte_mbuf **pkts, unsigned int n,
		uint64_t *wake)
{
	struct onvm_inst *in;
	unsigned int sent;

	if (id >= ONVM_MAX_INSTANCES) {
		onvm_dp_free_bulk(dp, pkts, n);
		return 0;
	}
	in = &dp->sh->inst[id];
	sent = rte_ring_enqueue_burst(in->rx, (void **)pkts, n, NULL);
	if (sent < n) {
		__atomic_fetch_add(&in->rx_drop, n - sent, __ATOMIC_RELAXED);
		onvm_dp_free_bulk(dp, pkts + sent, n - sent);
	}
	if (sent > 0) {
		if (wake != NULL)
			*wake |= 1ULL << id;
		else
			wake_inst(dp, in);
	}
	return sent;
}
