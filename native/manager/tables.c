/* SPDX-License-Identifier: BSD-3-Clause
 *
 * Instance, service and chain tables; control thread only.
 *
 * An NF's exit (its registration connection closes: exit, signal, crash,
 * container killed) is handled in three steps so that no mbuf is lost and
 * none is freed twice:
 *   1. at once: state DEAD, no longer steered to;
 *   2. after GRACE_MS (producers that looked it up just before are done):
 *      free what is in its rx ring, then list the mbufs still tagged as
 *      owned by it that sit in no ring: candidates;
 *   3. after RECHECK_MS: free the candidates whose tag did not change (a
 *      live NF that had just dequeued one would have retagged it), drain
 *      again, and once the data lcore has emptied its tx ring, free the slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include "onvm/onvm_ctl.h"

#include "mgr.h"

#define GRACE_MS 20
#define RECHECK_MS 150
#define CHAIN_RETIRE_S 10

static uint64_t
ms_to_tsc(uint64_t ms)
{
	return ms * rte_get_tsc_hz() / 1000;
}

void
mgr_wake_lcore(struct mgr *m)
{
	m->sh->mgr_sleeping = 1;   /* force the wake path */
	onvm_dp_wake(&m->sh->mgr_sleeping, &m->sh->mgr_wake_seq);
}

int
tables_service_find(const struct mgr *m, const char *name)
{
	int i;

	for (i = 0; i < ONVM_MAX_SERVICES; i++)
		if (m->sh->svc[i].name[0] != '\0' && strcmp(m->sh->svc[i].name, name) == 0)
			return i;
	return -1;
}

int
tables_service_add(struct mgr *m, const char *name, char *err, size_t errlen)
{
	int i = tables_service_find(m, name);

	if (i >= 0)
		return i;
	for (i = 0; i < ONVM_MAX_SERVICES; i++) {
		struct onvm_service *s = &m->sh->svc[i];

		if (s->name[0] == '\0') {
			memset(s, 0, sizeof(*s));
			s->preferred = ONVM_NONE;
			snprintf(s->name, sizeof(s->name), "%s", name);
			return i;
		}
	}
	snprintf(err, errlen, "service table full (%d services)", ONVM_MAX_SERVICES);
	return -1;
}

static void
service_refresh(struct mgr *m, uint16_t sid)
{
	struct onvm_service *s = &m->sh->svc[sid];
	uint16_t ids[ONVM_MAX_PER_SERVICE];
	unsigned int n = 0, i;

	for (i = 0; i < ONVM_MAX_INSTANCES && n < ONVM_MAX_PER_SERVICE; i++)
		if (m->sh->inst[i].state == ONVM_INST_RUNNING && m->sh->inst[i].service == sid)
			ids[n++] = (uint16_t)i;
	/* Readers check each id's state, so a torn read only costs a retry. */
	memcpy(s->inst, ids, n * sizeof(ids[0]));
	__atomic_store_n(&s->n_inst, (uint16_t)n, __ATOMIC_RELEASE);
	s->preferred = onvm_dp_least_loaded(m->sh, sid, false);
	s->gen++;
}

static struct rte_ring *
ring_get(const char *fmt, unsigned int id, unsigned int flags)
{
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *r;

	snprintf(name, sizeof(name), fmt, id);
	r = rte_ring_lookup(name);
	if (r == NULL)
		r = rte_ring_create(name, ONVM_RING_SIZE, (int)rte_socket_id(), flags);
	return r;
}

int
tables_register(struct mgr *m, int fd, const char *service, int pid, bool shared_core, char *err,
		size_t errlen)
{
	return tables_add_instance(m, fd, service, pid, shared_core ? ONVM_INST_F_SHARED_CORE : 0,
				   0, 0, err, errlen);
}

int
tables_remote_set(struct mgr *m, const char *service, const char *host, uint16_t port,
		  uint8_t peer_id, uint32_t load, char *err, size_t errlen)
{
	int id = tables_remote_find(m, service, host);

	if (id < 0) {
		id = tables_add_instance(m, -1, service, 0, ONVM_INST_F_REMOTE, port, peer_id, err,
					 errlen);
		if (id < 0)
			return -1;
		snprintf(m->inst[id].remote_host, sizeof(m->inst[id].remote_host), "%s", host);
	}
	m->sh->inst[id].fabric_port = port;
	m->sh->inst[id].peer_id = peer_id;
	m->inst[id].remote_load = load;
	m->sh->inst[id].load_pct = load;
	if (m->sh->inst[id].state == ONVM_INST_DRAINING) {
		/* its host runs instances again: new flows may go there */
		__atomic_fetch_and(&m->sh->inst[id].flags, ~ONVM_INST_F_EVICTED, __ATOMIC_RELEASE);
		__atomic_store_n(&m->sh->inst[id].state, ONVM_INST_RUNNING, __ATOMIC_RELEASE);
		service_refresh(m, m->sh->inst[id].service);
	}
	return id;
}

int
tables_remote_find(const struct mgr *m, const char *service, const char *host)
{
	int svc = tables_service_find(m, service), id;

	for (id = 0; svc >= 0 && id < ONVM_MAX_INSTANCES; id++) {
		const struct onvm_inst *in = &m->sh->inst[id];

		if ((in->flags & ONVM_INST_F_REMOTE) &&
		    (in->state == ONVM_INST_RUNNING || in->state == ONVM_INST_DRAINING) &&
		    in->service == svc && strcmp(m->inst[id].remote_host, host) == 0)
			return id;
	}
	return -1;
}

int
tables_add_instance(struct mgr *m, int fd, const char *service, int pid, uint32_t flags,
		    uint16_t port, uint8_t peer_id, char *err, size_t errlen)
{
	struct onvm_shared *sh = m->sh;
	struct onvm_inst *in = NULL;
	int sid, id;

	if (!onvm_name_ok(service)) {
		snprintf(err, errlen, "bad service name '%s': 1-31 characters of [A-Za-z0-9_.-]",
			 service);
		return -1;
	}
	for (id = 0; id < ONVM_MAX_INSTANCES; id++)
		if (sh->inst[id].state == ONVM_INST_FREE && m->inst[id].reclaim_phase == 0)
			break;
	if (id == ONVM_MAX_INSTANCES) {
		snprintf(err, errlen, "instance table full (%d instances)", ONVM_MAX_INSTANCES);
		return -1;
	}
	sid = tables_service_add(m, service, err, errlen);
	if (sid < 0)
		return -1;
	in = &sh->inst[id];
	in->rx = ring_get("onvm_rx_%u", (unsigned int)id, RING_F_SC_DEQ);
	in->tx = ring_get("onvm_tx_%u", (unsigned int)id, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (in->rx == NULL || in->tx == NULL) {
		snprintf(err, errlen, "cannot create rings for instance %d: %s", id,
			 rte_strerror(rte_errno));
		return -1;
	}
	in->id = (uint16_t)id;
	in->service = (uint16_t)sid;
	in->pid = pid;
	in->flags = flags;
	in->fabric_port = port;
	in->peer_id = peer_id;
	in->load_pct = 0;
	in->flows = 0;
	in->new_flows = 0;
	in->sleeping = 0;
	in->rx_drop = 0;
	memset(&in->c, 0, sizeof(in->c));
	m->inst[id].fd = fd;
	m->inst[id].prev_busy = m->inst[id].prev_idle = 0;
	__atomic_store_n(&in->state, ONVM_INST_RUNNING, __ATOMIC_RELEASE);
	__atomic_fetch_or(&sh->inst_mask, 1ULL << id, __ATOMIC_RELEASE);
	if (flags & ONVM_INST_F_REMOTE)
		__atomic_fetch_or(&sh->remote_mask, 1ULL << id, __ATOMIC_RELEASE);
	service_refresh(m, (uint16_t)sid);
	return id;
}

int
tables_drain(struct mgr *m, uint16_t id, bool evict, char *err, size_t errlen)
{
	struct onvm_inst *in = &m->sh->inst[id];

	if (id >= ONVM_MAX_INSTANCES ||
	    (in->state != ONVM_INST_RUNNING && in->state != ONVM_INST_DRAINING)) {
		snprintf(err, errlen, "no running instance %u", id);
		return -1;
	}
	if (in->state == ONVM_INST_RUNNING) {
		__atomic_store_n(&in->state, ONVM_INST_DRAINING, __ATOMIC_RELEASE);
		service_refresh(m, in->service);   /* no new flows from now on */
	}
	if (evict && !(in->flags & ONVM_INST_F_EVICTED)) {
		__atomic_fetch_or(&m->sh->evict_mask, 1ULL << id, __ATOMIC_RELEASE);
		onvm_dp_wake(&m->sh->mgr_sleeping, &m->sh->mgr_wake_seq);
	}
	return 0;
}

void
tables_inst_exited(struct mgr *m, uint16_t id)
{
	struct onvm_inst *in = &m->sh->inst[id];

	if (in->state != ONVM_INST_RUNNING && in->state != ONVM_INST_DRAINING)
		return;
	__atomic_store_n(&in->state, ONVM_INST_DEAD, __ATOMIC_RELEASE);
	/* the data lcore stops sending for it; reclaim (one consumer) drains */
	__atomic_fetch_and(&m->sh->remote_mask, ~(1ULL << id), __ATOMIC_RELEASE);
	in->dead_tsc = rte_rdtsc();
	m->inst[id].fd = -1;
	m->inst[id].reclaim_phase = 1;
	m->inst[id].phase_tsc = in->dead_tsc;
	service_refresh(m, in->service);
	fprintf(stderr, "onvm-mgr: instance %u (%s, pid %d) exited; reclaiming its packets\n", id,
		m->sh->svc[in->service].name, in->pid);
}

/* ---- reclaim ------------------------------------------------------------ */

struct ptr_set {
	uintptr_t *v;
	size_t n, cap;
};

static void
set_add_ring(struct ptr_set *s, const struct rte_ring *r)
{
	void *const *objs = (void *const *)&r[1];
	uint32_t tail = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
	uint32_t head = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE);
	uint32_t i;

	for (i = tail; i != head && s->n < s->cap; i++)
		s->v[s->n++] = (uintptr_t)objs[i & r->mask];
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

struct scan_arg {
	struct mgr *m;
	uint16_t owner;
	const struct ptr_set *in_rings;
	struct mgr_inst *mi;
};

static void
scan_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned int idx)
{
	struct scan_arg *a = arg;
	uintptr_t key = (uintptr_t)obj;

	(void)mp;
	(void)idx;
	if (onvm_dp_meta(&a->m->dp, obj)->owner != a->owner)
		return;
	if (bsearch(&key, a->in_rings->v, a->in_rings->n, sizeof(key), cmp_ptr) != NULL)
		return;   /* sits in a live NF's ring: that NF will retag it */
	if (a->mi->n_cand < MGR_MAX_RECLAIM)
		a->mi->cand[a->mi->n_cand++] = obj;
}

static unsigned int
drain_ring(struct mgr *m, struct rte_ring *r)
{
	struct rte_mbuf *pkts[ONVM_BURST];
	unsigned int n, total = 0;

	while ((n = rte_ring_sc_dequeue_burst(r, (void **)pkts, ONVM_BURST, NULL)) > 0) {
		onvm_dp_free_bulk(&m->dp, pkts, n);
		total += n;
	}
	return total;
}

/* The dead NF was the only consumer of its rx ring and the only producer
 * of its tx ring.  Killed inside a burst, it may have moved a head without
 * the matching tail: the entries between them are then in neither state
 * (a drain from the head skips them, the next producer publishes them).
 * Nothing else moves those two heads: put them back on their tails. */
static void
rings_heal(struct onvm_inst *in)
{
	__atomic_store_n(&in->rx->cons.head, __atomic_load_n(&in->rx->cons.tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&in->tx->prod.head, __atomic_load_n(&in->tx->prod.tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

static void
reclaim_scan(struct mgr *m, uint16_t id)
{
	struct mgr_inst *mi = &m->inst[id];
	struct ptr_set rings = { 0 };
	struct scan_arg a = { .m = m, .owner = id, .in_rings = &rings, .mi = mi };
	unsigned int i;

	if (!(m->sh->inst[id].flags & ONVM_INST_F_REMOTE))
		rings_heal(&m->sh->inst[id]);
	m->reclaimed += drain_ring(m, m->sh->inst[id].rx);
	rings.cap = (size_t)ONVM_MAX_INSTANCES * 2 * ONVM_RING_SIZE;
	rings.v = malloc(rings.cap * sizeof(*rings.v));
	if (mi->cand == NULL)
		mi->cand = malloc(MGR_MAX_RECLAIM * sizeof(*mi->cand));
	mi->n_cand = 0;
	if (rings.v == NULL || mi->cand == NULL) {
		free(rings.v);
		return;
	}
	for (i = 0; i < ONVM_MAX_INSTANCES; i++) {
		const struct onvm_inst *in = &m->sh->inst[i];

		if (in->rx != NULL && in->state != ONVM_INST_FREE) {
			set_add_ring(&rings, in->rx);
			set_add_ring(&rings, in->tx);
		}
	}
	qsort(rings.v, rings.n, sizeof(*rings.v), cmp_ptr);
	for (i = 0; i < ONVM_MAX_SOCKETS; i++)
		if (m->sh->pool[i] != NULL)
			rte_mempool_obj_iter(m->sh->pool[i], scan_obj, &a);
	free(rings.v);
}

static void
reclaim_finish(struct mgr *m, uint16_t id)
{
	struct mgr_inst *mi = &m->inst[id];
	unsigned int i;

	for (i = 0; i < mi->n_cand; i++) {
		struct rte_mbuf *pkt = mi->cand[i];

		if (onvm_dp_meta(&m->dp, pkt)->owner == id) {
			onvm_dp_free(&m->dp, pkt);
			m->reclaimed++;
		}
	}
	mi->n_cand = 0;
	m->reclaimed += drain_ring(m, m->sh->inst[id].rx);
}

static void
reclaim_tick(struct mgr *m, uint64_t now)
{
	struct onvm_shared *sh = m->sh;
	unsigned int id;

	for (id = 0; id < ONVM_MAX_INSTANCES; id++) {
		struct mgr_inst *mi = &m->inst[id];
		struct onvm_inst *in = &sh->inst[id];

		if (mi->reclaim_phase == 1 && now - mi->phase_tsc > ms_to_tsc(GRACE_MS)) {
			reclaim_scan(m, (uint16_t)id);
			mi->reclaim_phase = 2;
			mi->phase_tsc = now;
		} else if (mi->reclaim_phase == 2 && now - mi->phase_tsc > ms_to_tsc(RECHECK_MS)) {
			if (mi->n_cand > 0 || rte_ring_count(in->rx) > 0)
				reclaim_finish(m, (uint16_t)id);
			if (rte_ring_count(in->tx) != 0) {
				mgr_wake_lcore(m);   /* let it send what the NF left */
				continue;
			}
			__atomic_fetch_and(&sh->inst_mask, ~(1ULL << id), __ATOMIC_RELEASE);
			__atomic_fetch_and(&sh->remote_mask, ~(1ULL << id), __ATOMIC_RELEASE);
			mi->reclaim_phase = 0;
			stats_retire(m, in);
			memset(&in->c, 0, sizeof(in->c));
			in->rx_drop = 0;
			__atomic_store_n(&in->state, ONVM_INST_FREE, __ATOMIC_RELEASE);
		}
	}
}

/* ---- pool audit ---------------------------------------------------------- */

struct audit_arg {
	struct mgr *m;
	struct ptr_set free_set, rx_set, tx_set;
	struct pool_audit *a;
};

static bool
in_set(const struct ptr_set *s, uintptr_t key)
{
	return bsearch(&key, s->v, s->n, sizeof(key), cmp_ptr) != NULL;
}

static void
audit_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned int idx)
{
	struct audit_arg *x = arg;
	uintptr_t key = (uintptr_t)obj;
	uint16_t owner;

	(void)mp;
	(void)idx;
	x->a->total++;
	if (in_set(&x->free_set, key)) {
		x->a->free++;
		return;
	}
	if (in_set(&x->rx_set, key)) {
		x->a->in_rx++;
		return;
	}
	if (in_set(&x->tx_set, key)) {
		x->a->in_tx++;
		return;
	}
	x->a->loose++;
	owner = onvm_dp_meta(&x->m->dp, obj)->owner;
	x->a->loose_owner[owner < ONVM_MAX_INSTANCES ? owner : ONVM_MAX_INSTANCES]++;
}

int
tables_pool_audit(struct mgr *m, struct pool_audit *a)
{
	struct audit_arg x = { .m = m, .a = a };
	size_t cap = (size_t)ONVM_MAX_INSTANCES * ONVM_RING_SIZE + 1;
	unsigned int s, i;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	x.rx_set.cap = x.tx_set.cap = cap;
	x.rx_set.v = malloc(cap * sizeof(uintptr_t));
	x.tx_set.v = malloc(cap * sizeof(uintptr_t));
	for (i = 0; i < ONVM_MAX_INSTANCES; i++) {
		const struct onvm_inst *in = &m->sh->inst[i];

		if (in->rx != NULL && x.rx_set.v != NULL && x.tx_set.v != NULL) {
			set_add_ring(&x.rx_set, in->rx);
			set_add_ring(&x.tx_set, in->tx);
		}
	}
	qsort(x.rx_set.v, x.rx_set.n, sizeof(uintptr_t), cmp_ptr);
	qsort(x.tx_set.v, x.tx_set.n, sizeof(uintptr_t), cmp_ptr);
	for (s = 0; s < ONVM_MAX_SOCKETS && rc == 0; s++) {
		struct rte_mempool *mp = m->sh->pool[s];
		const struct rte_ring *r;
		unsigned int lc;

		if (mp == NULL)
			continue;
		r = mp->pool_data;   /* ring mempool ops: the free mbufs */
		x.free_set.cap = r->size + (size_t)RTE_MAX_LCORE * RTE_MEMPOOL_CACHE_MAX_SIZE * 3;
		x.free_set.n = 0;
		x.free_set.v = malloc(x.free_set.cap * sizeof(uintptr_t));
		if (x.free_set.v == NULL || x.rx_set.v == NULL || x.tx_set.v == NULL) {
			rc = -1;
			break;
		}
		set_add_ring(&x.free_set, r);
		for (lc = 0; mp->local_cache != NULL && lc < RTE_MAX_LCORE; lc++) {
			const struct rte_mempool_cache *c = &mp->local_cache[lc];
			unsigned int k;

			for (k = 0; k < c->len && x.free_set.n < x.free_set.cap; k++)
				x.free_set.v[x.free_set.n++] = (uintptr_t)c->objs[k];
		}
		qsort(x.free_set.v, x.free_set.n, sizeof(uintptr_t), cmp_ptr);
		rte_mempool_obj_iter(mp, audit_obj, &x);
		free(x.free_set.v);
		x.free_set.v = NULL;
	}
	free(x.rx_set.v);
	free(x.tx_set.v);
	return rc;
}

/* ---- chains ------------------------------------------------------------- */

int
tables_chain_find(const struct mgr *m, const char *name)
{
	const struct onvm_chain_table *t = &m->sh->tables[m->sh->table_active];
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(m->sh->chains[t->slot[i]].name, name) == 0)
			return t->slot[i];
	return -1;
}

/* Publish table `next` (a copy of the active one, edited) and wait until
 * the data lcore has moved to it, so the old one is free to edit next. */
static void
table_flip(struct mgr *m)
{
	struct onvm_shared *sh = m->sh;
	uint32_t gen = sh->table_gen + 1;
	unsigned int tries;

	__atomic_store_n(&sh->table_active, sh->table_active ^ 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sh->table_gen, gen, __ATOMIC_RELEASE);
	for (tries = 0; tries < 2000; tries++) {
		if (__atomic_load_n(&sh->lcore_seen_gen, __ATOMIC_ACQUIRE) == gen)
			return;
		mgr_wake_lcore(m);
		usleep(100);
	}
	fprintf(stderr, "onvm-mgr: data lcore did not acknowledge a chain update\n");
}

static void
chain_retire(struct mgr *m, int slot)
{
	if (slot < 0)
		return;
	m->sh->chains[slot].retired_tsc = rte_rdtsc();
	__atomic_store_n(&m->sh->chains[slot].state, ONVM_CHAIN_RETIRED, __ATOMIC_RELEASE);
}

/* The totals entry of chain `name`: its own, else a free one, else one
 * whose chain no slot uses any more (ONVM_MAX_CHAINS names at one time, so
 * there is one). */
static uint8_t
chain_totals(struct mgr *m, const char *name)
{
	struct onvm_shared *sh = m->sh;
	unsigned int i, s;
	int spare = -1;

	for (i = 0; i < ONVM_MAX_CHAINS; i++) {
		if (strcmp(sh->chain_tot[i].name, name) == 0)
			return (uint8_t)i;
		if (spare < 0 && sh->chain_tot[i].name[0] == '\0')
			spare = (int)i;
	}
	for (i = 0; spare < 0 && i < ONVM_MAX_CHAINS; i++) {
		for (s = 0; s < ONVM_CHAIN_SLOTS; s++)
			if (sh->chains[s].state == ONVM_CHAIN_ACTIVE && sh->chains[s].tot == i)
				break;
		if (s == ONVM_CHAIN_SLOTS)
			spare = (int)i;
	}
	if (spare < 0)
		spare = 0;
	memset(&sh->chain_tot[spare], 0, sizeof(sh->chain_tot[spare]));
	snprintf(sh->chain_tot[spare].name, sizeof(sh->chain_tot[spare].name), "%s", name);
	return (uint8_t)spare;
}

int
tables_chain_set(struct mgr *m, const char *name, const uint16_t *svc, unsigned int len,
		 const struct onvm_match *match, uint8_t egress, uint32_t spi, bool ingress)
{
	struct onvm_shared *sh = m->sh;
	const struct onvm_chain_table *cur = &sh->tables[sh->table_active];
	struct onvm_chain_table *next = &sh->tables[sh->table_active ^ 1];
	int old = tables_chain_find(m, name), slot = -1;
	unsigned int i, tries;
	struct onvm_chain *c;

	if (old < 0 && cur->n >= ONVM_MAX_CHAINS)
		return -1;
	for (tries = 0; tries < ONVM_CHAIN_SLOTS; tries++) {
		unsigned int s = (m->next_chain_slot + tries) % ONVM_CHAIN_SLOTS;

		if (sh->chains[s].state == ONVM_CHAIN_FREE) {
			slot = (int)s;
			break;
		}
	}
	if (slot < 0)
		return -1;
	m->next_chain_slot = (uint32_t)(slot + 1) % ONVM_CHAIN_SLOTS;
	c = &sh->chains[slot];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->match = *match;
	c->len = (uint8_t)len;
	c->egress = egress;
	c->spi = spi;
	c->ingress = ingress;
	c->version = ++m->chain_version;
	c->tot = chain_totals(m, name);
	memcpy(c->svc, svc, len * sizeof(*svc));
	__atomic_store_n(&c->state, ONVM_CHAIN_ACTIVE, __ATOMIC_RELEASE);

	*next = *cur;
	for (i = 0; i < next->n; i++)
		if ((int)next->slot[i] == old)
			break;
	if (i >= ONVM_MAX_CHAINS) {
		c->state = ONVM_CHAIN_FREE;
		return -1;
	}
	next->slot[i] = (uint8_t)slot;
	if (i == next->n)
		next->n++;
	table_flip(m);
	chain_retire(m, old);
	return slot;
}

int
tables_chain_del(struct mgr *m, const char *name)
{
	struct onvm_shared *sh = m->sh;
	const struct onvm_chain_table *cur = &sh->tables[sh->table_active];
	struct onvm_chain_table *next = &sh->tables[sh->table_active ^ 1];
	int old = tables_chain_find(m, name);
	uint32_t i;

	if (old < 0)
		return -1;
	next->n = 0;
	for (i = 0; i < cur->n; i++)
		if ((int)cur->slot[i] != old)
			next->slot[next->n++] = cur->slot[i];
	table_flip(m);
	chain_retire(m, old);
	return 0;
}

void
tables_tick(struct mgr *m)
{
	uint64_t now = rte_rdtsc();
	unsigned int i;

	reclaim_tick(m, now);
	for (i = 0; i < ONVM_CHAIN_SLOTS; i++) {
		struct onvm_chain *c = &m->sh->chains[i];

		if (c->state == ONVM_CHAIN_RETIRED &&
		    now - c->retired_tsc > ms_to_tsc(CHAIN_RETIRE_S * 1000ULL))
			c->state = ONVM_CHAIN_FREE;
	}
}
