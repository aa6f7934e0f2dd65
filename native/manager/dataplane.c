/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The data lcore: ports in, flows steered to the first NF of their chain;
 * NF tx rings out to ports.  Idle back-off: after IDLE_SPINS empty rounds
 * it sleeps on a futex, waking on a timeout that doubles up to
 * MAX_SLEEP_NS (ports cannot wake it) or when an NF fills its tx ring.
 */
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_pause.h>

#include "onvm/onvm_pkt.h"

#include "mgr.h"

#define IDLE_SPINS 2048
#define MIN_SLEEP_NS 20000ULL
#define MAX_SLEEP_NS 1000000ULL

struct flow_key {
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	uint8_t proto, in_port;
	uint16_t pad;
};

#define TGT_DROP 0xfffe

static void
parse_key(const struct rte_mbuf *pkt, uint8_t in_port, struct flow_key *k)
{
	struct onvm_5tuple t;

	onvm_pkt_5tuple(pkt, &t);
	*k = (struct flow_key){
		.src_ip = t.src_ip, .dst_ip = t.dst_ip, .src_port = t.src_port,
		.dst_port = t.dst_port, .proto = t.proto, .in_port = in_port,
	};
}

static bool
prefix_ok(uint32_t addr, uint32_t net, uint8_t len)
{
	uint32_t mask = onvm_prefix_mask(len);

	return (addr & mask) == (net & mask);
}

static bool
match(const struct onvm_match *mt, const struct flow_key *k)
{
	return (mt->in_port == 0xff || mt->in_port == k->in_port) &&
	       (mt->proto == 0 || mt->proto == k->proto) &&
	       (mt->src_port == 0 || mt->src_port == k->src_port) &&
	       (mt->dst_port == 0 || mt->dst_port == k->dst_port) &&
	       prefix_ok(k->src_ip, mt->src_ip, mt->src_len) &&
	       prefix_ok(k->dst_ip, mt->dst_ip, mt->dst_len);
}

static uint8_t
classify(const struct onvm_shared *sh, const struct onvm_chain_table *t, const struct flow_key *k)
{
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (match(&sh->chains[t->slot[i]].match, k))
			return t->slot[i];
	return ONVM_NO_CHAIN;
}

static void
flow_release(struct onvm_shared *sh, struct onvm_flow *f)
{
	unsigned int i;

	for (i = 0; i < sh->chains[f->chain].len && i < ONVM_MAX_CHAIN_LEN; i++)
		if (f->inst[i] < ONVM_MAX_INSTANCES && sh->inst[f->inst[i]].flows > 0)
			sh->inst[f->inst[i]].flows--;
	f->in_use = 0;
}

/* Pin a new flow to the least loaded instance of each service in its chain. */
static void
flow_assign(struct onvm_shared *sh, struct onvm_flow *f, uint8_t chain)
{
	const struct onvm_chain *c = &sh->chains[chain];
	unsigned int i;

	f->chain = chain;
	f->in_use = 1;
	for (i = 0; i < ONVM_MAX_CHAIN_LEN; i++) {
		f->inst[i] = i < c->len ? onvm_dp_least_loaded(sh, c->svc[i]) : ONVM_NONE;
		if (f->inst[i] != ONVM_NONE)
			sh->inst[f->inst[i]].flows++;
	}
}

/* The flow slot of a packet, creating it if new; ONVM_NO_FLOW if it
 * matches no chain (*chain = ONVM_NO_CHAIN) or the table is full. */
static uint32_t
flow_of(struct mgr *m, const struct onvm_chain_table *t, const struct flow_key *k, uint64_t now,
	uint8_t *chain)
{
	struct onvm_shared *sh = m->sh;
	struct onvm_flow *f;
	int32_t pos = rte_hash_lookup(m->flow_hash, k);

	if (pos >= 0 && pos < ONVM_MAX_FLOWS) {
		f = &sh->flows[pos];
		if (sh->chains[f->chain].state != ONVM_CHAIN_ACTIVE) {
			/* its chain was replaced: steer it anew */
			flow_release(sh, f);
			*chain = classify(sh, t, k);
			if (*chain == ONVM_NO_CHAIN) {
				rte_hash_del_key(m->flow_hash, k);
				return ONVM_NO_FLOW;
			}
			flow_assign(sh, f, *chain);
		}
		f->last_tsc = now;
		*chain = f->chain;
		return (uint32_t)pos;
	}
	*chain = classify(sh, t, k);
	if (*chain == ONVM_NO_CHAIN)
		return ONVM_NO_FLOW;
	pos = rte_hash_add_key(m->flow_hash, k);
	if (pos < 0 || pos >= ONVM_MAX_FLOWS)
		return ONVM_NO_FLOW;   /* table full: steer without pinning */
	f = &sh->flows[pos];
	flow_assign(sh, f, *chain);
	f->last_tsc = now;
	return (uint32_t)pos;
}

static void
flows_expire(struct mgr *m, uint64_t now)
{
	uint64_t idle = (uint64_t)m->flow_idle_s * rte_get_tsc_hz();
	const void *key;
	void *data;
	uint32_t iter = 0;
	int32_t pos;

	while ((pos = rte_hash_iterate(m->flow_hash, &key, &data, &iter)) >= 0) {
		struct onvm_flow *f = &m->sh->flows[pos];

		if (now - f->last_tsc > idle) {
			flow_release(m->sh, f);
			rte_hash_del_key(m->flow_hash, key);
		}
	}
}

static unsigned int
port_rx(struct mgr *m, unsigned int pi, const struct onvm_chain_table *t, uint64_t now)
{
	struct mgr_port *p = &m->ports[pi];
	struct onvm_shared *sh = m->sh;
	struct rte_mbuf *pkts[ONVM_BURST];
	uint16_t tgt[ONVM_BURST];
	uint16_t n, i, j;

	n = rte_eth_rx_burst(p->dpdk_id, 0, pkts, ONVM_BURST);
	if (n == 0)
		return 0;
	p->rx += n;
	for (i = 0; i < n; i++) {
		struct onvm_pkt_meta *meta = onvm_dp_meta(&m->dp, pkts[i]);
		struct flow_key k;
		uint8_t chain;
		uint32_t flow;

		parse_key(pkts[i], (uint8_t)pi, &k);
		flow = flow_of(m, t, &k, now, &chain);
		*meta = (struct onvm_pkt_meta){
			.action = ONVM_A_NEXT, .chain = chain, .pos = 0, .port_in = (uint8_t)pi,
			.src = ONVM_NONE, .flow = flow, .owner = ONVM_OWNER_NONE,
		};
		if (chain == ONVM_NO_CHAIN) {
			p->no_chain++;
			tgt[i] = TGT_DROP;
			continue;
		}
		tgt[i] = onvm_dp_steer(&m->dp, sh->chains[chain].svc[0], flow, 0);
		if (tgt[i] == ONVM_NONE) {
			p->steer_drop++;
			tgt[i] = TGT_DROP;
		}
	}
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && tgt[j] == tgt[i]; j++)
			;
		if (tgt[i] == TGT_DROP)
			onvm_dp_free_bulk(&m->dp, pkts + i, j - i);
		else
			p->steer_drop += (j - i) - onvm_dp_to_inst(&m->dp, tgt[i], pkts + i, j - i);
	}
	return n;
}

static void
port_tx(struct mgr *m, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct mgr_port *p;
	uint16_t sent;

	if (port >= m->n_ports) {
		onvm_dp_free_bulk(&m->dp, pkts, n);
		return;
	}
	p = &m->ports[port];
	sent = rte_eth_tx_burst(p->dpdk_id, 0, pkts, n);
	p->tx += sent;
	if (sent < n) {
		p->tx_drop += n - sent;
		onvm_dp_free_bulk(&m->dp, pkts + sent, n - sent);
	}
}

static unsigned int
nf_tx(struct mgr *m, struct onvm_inst *in)
{
	struct rte_mbuf *pkts[ONVM_BURST];
	uint16_t dest[ONVM_BURST];
	unsigned int n, i, j;

	n = rte_ring_sc_dequeue_burst(in->tx, (void **)pkts, ONVM_BURST, NULL);
	for (i = 0; i < n; i++) {
		struct onvm_pkt_meta *meta = onvm_dp_meta(&m->dp, pkts[i]);

		/* once on the wire the driver frees it: no owner from now on */
		meta->owner = ONVM_OWNER_NONE;
		dest[i] = meta->dest;
	}
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && dest[j] == dest[i]; j++)
			;
		port_tx(m, dest[i], pkts + i, (uint16_t)(j - i));
	}
	return n;
}

static bool
tx_pending(void *arg)
{
	const struct onvm_shared *sh = arg;
	uint64_t mask = __atomic_load_n(&sh->inst_mask, __ATOMIC_ACQUIRE);

	while (mask != 0) {
		unsigned int id = (unsigned int)__builtin_ctzll(mask);

		mask &= mask - 1;
		if (rte_ring_count(sh->inst[id].tx) != 0)
			return true;
	}
	return false;
}

int
dataplane_loop(void *arg)
{
	struct mgr *m = arg;
	struct onvm_shared *sh = m->sh;
	uint64_t hz = rte_get_tsc_hz(), next_expire = rte_rdtsc() + hz, now;
	uint64_t sleep_ns = MIN_SLEEP_NS;
	unsigned int idle = 0;

	while (!mgr_quit) {
		uint32_t gen = __atomic_load_n(&sh->table_gen, __ATOMIC_ACQUIRE);
		const struct onvm_chain_table *t = &sh->tables[__atomic_load_n(&sh->table_active,
										  __ATOMIC_ACQUIRE)];
		uint64_t mask = __atomic_load_n(&sh->inst_mask, __ATOMIC_ACQUIRE);
		unsigned int work = 0, i;

		__atomic_store_n(&sh->lcore_seen_gen, gen, __ATOMIC_RELEASE);
		now = rte_rdtsc();
		for (i = 0; i < m->n_ports; i++)
			work += port_rx(m, i, t, now);
		while (mask != 0) {
			unsigned int id = (unsigned int)__builtin_ctzll(mask);

			mask &= mask - 1;
			work += nf_tx(m, &sh->inst[id]);
		}
		if (now > next_expire) {
			flows_expire(m, now);
			next_expire = now + hz;
		}
		if (work != 0) {
			idle = 0;
			sleep_ns = MIN_SLEEP_NS;
			continue;
		}
		if (++idle < IDLE_SPINS) {
			rte_pause();
			continue;
		}
		if (onvm_dp_sleep(&sh->mgr_sleeping, &sh->mgr_wake_seq, tx_pending, sh, sleep_ns))
			sleep_ns = MIN_SLEEP_NS;   /* woken by an NF: traffic is back */
		else if (sleep_ns < MAX_SLEEP_NS)
			sleep_ns *= 2;
	}
	return 0;
}
