/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The stats area (layout: include/onvm/onvm_stats.h): a file mapped shared,
 * rewritten every stats period under a sequence lock.  Also where each
 * instance's load (busy share) is computed for steering.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_mempool.h>

#include "mgr.h"

int
stats_open(struct mgr *m, char *err, size_t errlen)
{
	size_t sz = sizeof(struct onvm_stats_area);
	void *p;
	int fd;

	fd = open(m->stats_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)sz) < 0) {
		snprintf(err, errlen, "cannot create stats file %s: %s", m->stats_path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %s: %s", m->stats_path, strerror(errno));
		unlink(m->stats_path);
		return -1;
	}
	m->stats = p;
	memset(m->stats, 0, sz);
	m->stats->magic = ONVM_STATS_MAGIC;
	m->stats->version = ONVM_STATS_VERSION;
	m->stats->size = (uint32_t)sz;
	m->stats->mgr_pid = getpid();
	m->stats->tsc_hz = rte_get_tsc_hz();
	snprintf(m->stats->host, sizeof(m->stats->host), "%s", m->host);
	return 0;
}

static void
update_load(struct mgr *m)
{
	unsigned int id;

	for (id = 0; id < ONVM_MAX_INSTANCES; id++) {
		struct onvm_inst *in = &m->sh->inst[id];
		struct mgr_inst *mi = &m->inst[id];
		uint64_t busy = in->c.busy_cycles, idle = in->c.idle_cycles;
		uint64_t db = busy - mi->prev_busy, di = idle - mi->prev_idle;
		uint32_t load, occ;

		if (in->state != ONVM_INST_RUNNING && in->state != ONVM_INST_DRAINING)
			continue;
		/* new flows of the last few periods weigh in steering, old
		 * ones fade (the data lcore adds meanwhile: subtract, not set) */
		__atomic_fetch_sub(&in->new_flows, __atomic_load_n(&in->new_flows, __ATOMIC_RELAXED) / 2,
				   __ATOMIC_RELAXED);
		mi->prev_busy = busy;
		mi->prev_idle = idle;
		if (in->flags & ONVM_INST_F_REMOTE)
			load = mi->remote_load;   /* what its host says (remote_set) */
		else
			load = db + di > 0 ? (uint32_t)(db * 100 / (db + di)) : in->load_pct;
		/* a backed-up rx ring means at its limit, whatever the cycles say */
		occ = rte_ring_count(in->rx) * 100 / rte_ring_get_capacity(in->rx);
		in->load_pct = RTE_MAX(load, occ);
	}
	for (id = 0; id < ONVM_MAX_SERVICES; id++)
		if (m->sh->svc[id].name[0] != '\0')
			m->sh->svc[id].preferred = onvm_dp_least_loaded(m->sh, (uint16_t)id, false);
}

uint64_t
mgr_pool_size(const struct mgr *m)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < ONVM_MAX_SOCKETS; i++)
		if (m->sh->pool[i] != NULL)
			n += m->sh->pool[i]->size;
	return n;
}

uint64_t
mgr_pool_avail(const struct mgr *m)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < ONVM_MAX_SOCKETS; i++)
		if (m->sh->pool[i] != NULL)
			n += rte_mempool_avail_count(m->sh->pool[i]);
	return n;
}

/* What an instance has counted, added to a service's totals. */
static void
totals_add(struct svc_totals *t, const struct onvm_inst *in)
{
	t->rx += in->c.rx;
	t->tx += in->c.tx;
	t->dropped += in->c.dropped;
	t->rx_drop += in->rx_drop;
	t->tx_drop += in->c.tx_drop;
	t->processed += in->c.processed;
}

void
stats_retire(struct mgr *m, const struct onvm_inst *in)
{
	if ((in->flags & ONVM_INST_F_REMOTE) || in->service >= ONVM_MAX_SERVICES)
		return;
	totals_add(&m->retired[in->service], in);
}

/* Each service's totals: what its gone instances counted and what its
 * instances still in the table count now. */
static void
update_services(struct mgr *m, struct onvm_stats_area *s)
{
	const struct onvm_shared *sh = m->sh;
	unsigned int i, n = 0;

	for (i = 0; i < ONVM_MAX_SERVICES; i++) {
		struct svc_totals t = m->retired[i];
		struct onvm_stats_service *ss = &s->services[i];
		unsigned int id;

		if (sh->svc[i].name[0] == '\0') {
			memset(ss, 0, sizeof(*ss));
			continue;
		}
		n = i + 1;
		snprintf(ss->name, sizeof(ss->name), "%s", sh->svc[i].name);
		ss->instances = 0;
		for (id = 0; id < ONVM_MAX_INSTANCES; id++) {
			const struct onvm_inst *in = &sh->inst[id];

			if (in->state == ONVM_INST_FREE || in->service != i ||
			    (in->flags & ONVM_INST_F_REMOTE))
				continue;
			if (in->state == ONVM_INST_RUNNING || in->state == ONVM_INST_DRAINING)
				ss->instances++;
			totals_add(&t, in);
		}
		ss->rx = t.rx;
		ss->tx = t.tx;
		ss->dropped = t.dropped;
		ss->rx_drop = t.rx_drop;
		ss->tx_drop = t.tx_drop;
		ss->processed = t.processed;
	}
	s->n_services = n;
	for (i = 0, n = 0; i < ONVM_MAX_CHAINS; i++) {
		const struct onvm_chain_totals *ct = &sh->chain_tot[i];
		struct onvm_stats_chain *sc = &s->chains[i];

		if (ct->name[0] == '\0') {
			memset(sc, 0, sizeof(*sc));
			continue;
		}
		n = i + 1;
		snprintf(sc->name, sizeof(sc->name), "%s", ct->name);
		sc->rx = ct->rx;
		sc->tx = ct->tx;
		sc->remote = ct->remote;
	}
	s->n_chains = n;
}

void
stats_update(struct mgr *m)
{
	struct onvm_stats_area *s = m->stats;
	struct onvm_shared *sh = m->sh;
	struct timespec ts;
	unsigned int i, n = 0;

	update_load(m);
	clock_gettime(CLOCK_REALTIME, &ts);

	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);   /* odd: writing */
	rte_atomic_thread_fence(__ATOMIC_RELEASE);
	s->updated_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	s->pool_size = mgr_pool_size(m);
	s->pool_avail = mgr_pool_avail(m);
	s->flows_active = rte_hash_count(m->flow_hash);
	s->reclaimed = m->reclaimed;
	s->n_ports = m->n_ports;
	for (i = 0; i < m->n_ports; i++) {
		const struct mgr_port *p = &m->ports[i];
		struct onvm_stats_port *sp = &s->ports[i];

		snprintf(sp->name, sizeof(sp->name), "%s", p->devname);
		sp->rx = p->rx;
		sp->tx = p->tx;
		sp->rx_nombuf = p->rx_nombuf;
		sp->tx_drop = p->tx_drop;
		sp->no_chain = p->no_chain;
		sp->steer_drop = p->steer_drop;
		sp->nsh_drop = p->nsh_drop;
	}
	for (i = 0; i < ONVM_MAX_INSTANCES; i++) {
		const struct onvm_inst *in = &sh->inst[i];
		struct onvm_stats_nf *sn = &s->nfs[i];

		sn->state = in->state;
		if (in->state == ONVM_INST_FREE) {
			memset(sn, 0, sizeof(*sn));
			continue;
		}
		n = i + 1;
		sn->flags = in->flags;
		sn->instance = in->id;
		sn->service_id = in->service;
		sn->pid = in->pid;
		snprintf(sn->service, sizeof(sn->service), "%s", sh->svc[in->service].name);
		sn->rx = in->c.rx;
		sn->tx = in->c.tx;
		sn->dropped = in->c.dropped;
		sn->rx_drop = in->rx_drop;
		sn->tx_drop = in->c.tx_drop;
		sn->processed = in->c.processed;
		sn->busy_cycles = in->c.busy_cycles;
		sn->idle_cycles = in->c.idle_cycles;
		sn->wakeups = in->c.wakeups;
		sn->rx_ring_count = rte_ring_count(in->rx);
		sn->rx_ring_size = rte_ring_get_capacity(in->rx);
		sn->flows = in->flows;
		sn->load_pct = in->load_pct;
	}
	s->n_instances = n;
	update_services(m, s);
	s->updates++;
	rte_atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);   /* even: stable */
}

void
stats_close(struct mgr *m)
{
	if (m->stats == NULL)
		return;
	munmap(m->stats, sizeof(*m->stats));
	m->stats = NULL;
	unlink(m->stats_path);
}
