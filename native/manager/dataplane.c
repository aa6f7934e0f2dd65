/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The data lcore: ports in, flows steered to the first NF of their chain;
 * NF tx rings out to ports.  Idle back-off: after IDLE_SPINS empty rounds
 * it yields its core (to an NF that shares it) as long as traffic was seen
 * in the last HOT_NS -- ports cannot wake a sleeping manager, so a batch
 * arriving from a fabric link would otherwise wait out a timeout -- then
 * sleeps on a futex, waking on a timeout that doubles up to MAX_SLEEP_NS or
 * when an NF fills its tx ring.  After DEEP_AFTER_NS with no work at all the
 * timeout may grow to DEEP_SLEEP_NS: a host with no traffic wakes ~250 times
 * a second instead of 1000 (each wake-up polls every port), and the first
 * frames after a quiet spell wait at most that long in the port's ring
 * (af_packet: 8192 frames, 4 ms of 2 Mpps).
 */
#include <sched.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_pause.h>

#include "onvm/onvm_pkt.h"

#include "mgr.h"

#define IDLE_SPINS 2048
#define MIN_SLEEP_NS 20000ULL
#define MAX_SLEEP_NS 1000000ULL
#define DEEP_AFTER_NS 1000000000ULL
#define DEEP_SLEEP_NS 4000000ULL
#define HOT_NS 10000000ULL
#define WAKE_BATCH 256

#define TGT_DROP 0xfffe

static void port_tx(struct mgr *m, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

static void
parse_key(const struct rte_mbuf *pkt, uint8_t in_port, uint32_t spi, struct flow_key *k)
{
	struct onvm_5tuple t;

	onvm_pkt_5tuple(pkt, &t);
	*k = (struct flow_key){
		.src_ip = t.src_ip, .dst_ip = t.dst_ip, .src_port = t.src_port,
		.dst_port = t.dst_port, .proto = t.proto, .in_port = in_port, .spi = spi,
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
		if (sh->chains[t->slot[i]].ingress && match(&sh->chains[t->slot[i]].match, k))
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

/* Pin a new flow to the least loaded instance of each service in its chain;
 * at local_pos (where a packet from another host joins it) to one of this
 * host's own. */
static void
flow_assign(struct onvm_shared *sh, struct onvm_flow *f, uint8_t chain, uint8_t local_pos)
{
	const struct onvm_chain *c = &sh->chains[chain];
	unsigned int i;

	f->chain = chain;
	f->in_use = 1;
	for (i = 0; i < ONVM_MAX_CHAIN_LEN; i++) {
		f->inst[i] = i < c->len ? onvm_dp_least_loaded(sh, c->svc[i], i == local_pos) : ONVM_NONE;
		if (f->inst[i] != ONVM_NONE) {
			sh->inst[f->inst[i]].flows++;
			__atomic_fetch_add(&sh->inst[f->inst[i]].new_flows, 1, __ATOMIC_RELAXED);
		}
	}
}

/* The flow slot of a packet, creating it if new; ONVM_NO_FLOW if it
 * matches no chain (*chain = ONVM_NO_CHAIN) or the table is full.  pos:
 * what the burst's bulk lookup found for k; only a known flow of a live
 * chain is taken from it, anything else is looked up again (a packet
 * earlier in the same burst may have added or removed k). */
static uint32_t
flow_of(struct mgr *m, const struct onvm_chain_table *t, const struct flow_key *k, int32_t pos,
	uint64_t now, uint8_t *chain, uint8_t local_pos)
{
	/* *chain on entry: ONVM_NO_CHAIN to classify, else the chain the
	 * packet is known to follow (NSH from another host). */
	uint8_t forced = *chain;
	struct onvm_shared *sh = m->sh;
	struct onvm_flow *f;

	if (pos >= 0 && pos < ONVM_MAX_FLOWS &&
	    sh->chains[sh->flows[pos].chain].state == ONVM_CHAIN_ACTIVE) {
		f = &sh->flows[pos];
		f->last_tsc = now;
		*chain = f->chain;
		return (uint32_t)pos;
	}
	pos = rte_hash_lookup(m->flow_hash, k);
	if (pos >= 0 && pos < ONVM_MAX_FLOWS) {
		f = &sh->flows[pos];
		if (sh->chains[f->chain].state != ONVM_CHAIN_ACTIVE) {
			/* its chain was replaced: steer it anew */
			flow_release(sh, f);
			*chain = forced != ONVM_NO_CHAIN ? forced : classify(sh, t, k);
			if (*chain == ONVM_NO_CHAIN) {
				rte_hash_del_key(m->flow_hash, k);
				return ONVM_NO_FLOW;
			}
			flow_assign(sh, f, *chain, local_pos);
		}
		f->last_tsc = now;
		*chain = f->chain;
		return (uint32_t)pos;
	}
	*chain = forced != ONVM_NO_CHAIN ? forced : classify(sh, t, k);
	if (*chain == ONVM_NO_CHAIN)
		return ONVM_NO_FLOW;
	pos = rte_hash_add_key(m->flow_hash, k);
	if (pos < 0 || pos >= ONVM_MAX_FLOWS)
		return ONVM_NO_FLOW;   /* table full: steer without pinning */
	f = &sh->flows[pos];
	flow_assign(sh, f, *chain, local_pos);
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

/* Move the flows pinned to instances in sh->evict_mask (draining ones
 * whose time is up) to the least loaded live instance of the same service;
 * then mark those instances evicted, so nothing steers to them any more. */
static void
flows_evict(struct mgr *m, uint64_t mask)
{
	struct onvm_shared *sh = m->sh;
	const void *key;
	void *data;
	uint32_t iter = 0;
	int32_t pos;

	while ((pos = rte_hash_iterate(m->flow_hash, &key, &data, &iter)) >= 0) {
		struct onvm_flow *f = &sh->flows[pos];
		unsigned int i;

		for (i = 0; i < sh->chains[f->chain].len && i < ONVM_MAX_CHAIN_LEN; i++) {
			uint16_t old = f->inst[i];

			if (old >= ONVM_MAX_INSTANCES || !(mask & (1ULL << old)))
				continue;
			if (sh->inst[old].flows > 0)
				sh->inst[old].flows--;
			f->inst[i] = onvm_dp_least_loaded(sh, sh->chains[f->chain].svc[i], false);
			if (f->inst[i] != ONVM_NONE) {
				sh->inst[f->inst[i]].flows++;
				__atomic_fetch_add(&sh->inst[f->inst[i]].new_flows, 1, __ATOMIC_RELAXED);
			}
		}
	}
	while (mask != 0) {
		unsigned int id = (unsigned int)__builtin_ctzll(mask);

		mask &= mask - 1;
		__atomic_fetch_or(&sh->inst[id].flags, ONVM_INST_F_EVICTED, __ATOMIC_RELEASE);
		__atomic_fetch_and(&sh->evict_mask, ~(1ULL << id), __ATOMIC_RELEASE);
	}
}

static uint8_t
chain_by_spi(const struct onvm_shared *sh, uint32_t spi)
{
	unsigned int i;

	for (i = 0; i < ONVM_CHAIN_SLOTS; i++)
		if (sh->chains[i].spi == spi &&
		    __atomic_load_n(&sh->chains[i].state, __ATOMIC_ACQUIRE) == ONVM_CHAIN_ACTIVE)
			return (uint8_t)i;
	return ONVM_NO_CHAIN;
}

/* A packet from another host's manager: NSH over Ethernet.  Strip the outer
 * headers; *chain and *pos say where in which chain it continues.  0 for
 * a plain packet (left alone), 1 for an NSH one, -1 to drop (truncated,
 * unknown version or path, index past the chain). */
struct spi_cache {
	uint32_t spi;   /* UINT32_MAX: empty */
	uint8_t slot;
};

static int
nsh_decap(struct mgr *m, struct rte_mbuf *pkt, struct spi_cache *sc, uint8_t *chain, uint8_t *pos,
	  uint8_t *ttl)
{
	struct onvm_nsh_info ni;
	uint8_t slot;
	int r = onvm_nsh_parse(rte_pktmbuf_mtod(pkt, const uint8_t *), pkt->data_len, &ni);

	if (r <= 0)
		return r;
	/* a burst from one peer is mostly one path: its slot is looked for
	 * once (up to ONVM_CHAIN_SLOTS versions to scan) */
	if (ni.spi != sc->spi) {
		sc->spi = ni.spi;
		sc->slot = chain_by_spi(m->sh, ni.spi);
	}
	slot = sc->slot;
	if (slot == ONVM_NO_CHAIN || 255 - ni.si >= m->sh->chains[slot].len)
		return -1;
	rte_pktmbuf_adj(pkt, ni.outer_len);
	*chain = slot;
	*pos = (uint8_t)(255 - ni.si);
	*ttl = ni.ttl;
	return 1;
}

/* Packets steered to a remote stand-in: encapsulate (SPI = chain's path id,
 * SI = 255 - position of the service that takes it next) and send them on
 * the fabric port towards that host. */
static unsigned int
remote_tx(struct mgr *m, struct onvm_inst *in)
{
	struct rte_mbuf *pkts[ONVM_BURST];
	unsigned int n, i, ok = 0;

	n = rte_ring_sc_dequeue_burst(in->rx, (void **)pkts, ONVM_BURST, NULL);
	for (i = 0; i < n; i++) {
		struct onvm_pkt_meta *meta = onvm_dp_meta(&m->dp, pkts[i]);
		const struct onvm_chain *c = &m->sh->chains[meta->chain];
		struct rte_ether_hdr *eth;
		struct onvm_nsh *nsh;

		meta->owner = ONVM_OWNER_NONE;
		eth = meta->chain == ONVM_NO_CHAIN ? NULL :
		      (struct rte_ether_hdr *)rte_pktmbuf_prepend(pkts[i], ONVM_NSH_ENCAP_LEN);
		if (eth == NULL) {
			in->c.tx_drop++;
			onvm_dp_free(&m->dp, pkts[i]);
			continue;
		}
		memset(eth, 0, sizeof(*eth));
		eth->dst_addr.addr_bytes[0] = 0x02;
		eth->dst_addr.addr_bytes[5] = in->peer_id;
		eth->src_addr.addr_bytes[0] = 0x02;
		eth->ether_type = rte_cpu_to_be_16(ONVM_ETHER_TYPE_NSH);
		nsh = (struct onvm_nsh *)(eth + 1);
		nsh->ver_flags_ttl_len = rte_cpu_to_be_16(
			((meta->nsh_ttl != 0 ? meta->nsh_ttl : ONVM_NSH_TTL) << 6) |
			(sizeof(*nsh) / 4));
		nsh->md_type = 2;
		nsh->next_proto = ONVM_NSH_NP_ETHERNET;
		nsh->spi_si = rte_cpu_to_be_32((c->spi << 8) | (uint8_t)(255 - meta->pos));
		pkts[ok++] = pkts[i];
	}
	in->c.rx += n;
	in->c.tx += ok;
	for (i = 0; i < ok; i++)
		m->sh->chain_tot[m->sh->chains[onvm_dp_meta(&m->dp, pkts[i])->chain].tot].remote++;
	if (ok > 0)
		port_tx(m, in->fabric_port, pkts, (uint16_t)ok);
	return n;
}

static unsigned int
port_rx(struct mgr *m, unsigned int pi, const struct onvm_chain_table *t, uint64_t now,
	uint64_t *wake)
{
	struct mgr_port *p = &m->ports[pi];
	struct onvm_shared *sh = m->sh;
	struct rte_mbuf *pkts[ONVM_BURST];
	struct flow_key keys[ONVM_BURST];
	const void *kp[ONVM_BURST];
	int32_t found[ONVM_BURST];
	uint8_t chains[ONVM_BURST], poss[ONVM_BURST], ttls[ONVM_BURST];
	int8_t nshs[ONVM_BURST];
	uint16_t tgt[ONVM_BURST];
	struct spi_cache sc = { .spi = UINT32_MAX };
	uint16_t n, i, j;

	n = rte_eth_rx_burst(p->dpdk_id, 0, pkts, ONVM_BURST);
	if (n == 0)
		return 0;
	p->rx += n;
	/* Decapsulate and key the whole burst, then look its flows up in
	 * one go (the flow table's bulk lookup hides the memory latency). */
	for (i = 0; i < n; i++) {
		chains[i] = ONVM_NO_CHAIN;
		poss[i] = 0;
		ttls[i] = 0;
		nshs[i] = (int8_t)nsh_decap(m, pkts[i], &sc, &chains[i], &poss[i], &ttls[i]);
		/* a packet from another host is a flow of the path it came on:
		 * the same 5-tuple on two chains is two flows */
		if (nshs[i] >= 0)
			parse_key(pkts[i], (uint8_t)pi, nshs[i] > 0 ? sh->chains[chains[i]].spi : 0,
				  &keys[i]);
		else
			keys[i] = (struct flow_key){ .spi = 0 };
		kp[i] = &keys[i];
	}
	if (rte_hash_lookup_bulk(m->flow_hash, kp, n, found) < 0)
		for (i = 0; i < n; i++)
			found[i] = -ENOENT;
	for (i = 0; i < n; i++) {
		struct onvm_pkt_meta *meta = onvm_dp_meta(&m->dp, pkts[i]);
		uint8_t chain = chains[i], pos = poss[i], ttl = ttls[i];
		int nsh = nshs[i];
		uint32_t flow;

		if (nsh < 0) {
			p->nsh_drop++;
			tgt[i] = TGT_DROP;
			continue;
		}
		flow = flow_of(m, t, &keys[i], found[i], now, &chain, nsh > 0 ? pos : 0xff);
		*meta = (struct onvm_pkt_meta){
			.action = ONVM_A_NEXT, .chain = chain, .pos = pos, .port_in = (uint8_t)pi,
			.src = ONVM_NONE, .flow = flow, .owner = ONVM_OWNER_NONE, .nsh_ttl = ttl,
		};
		if (chain == ONVM_NO_CHAIN) {
			p->no_chain++;
			tgt[i] = TGT_DROP;
			continue;
		}
		sh->chain_tot[sh->chains[chain].tot].rx++;
		/* from another host: served here, never sent on to a third */
		tgt[i] = onvm_dp_steer(&m->dp, sh->chains[chain].svc[pos], flow, pos, nsh > 0);
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
			p->steer_drop += (j - i) - onvm_dp_to_inst(&m->dp, tgt[i], pkts + i, j - i, wake);
	}
	return n;
}

static void
port_tx(struct mgr *m, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct mgr_port *p;
	uint16_t sent;

	if (port >= __atomic_load_n(&m->n_ports, __ATOMIC_RELAXED)) {
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
		if (meta->chain != ONVM_NO_CHAIN)
			m->sh->chain_tot[m->sh->chains[meta->chain].tot].tx++;
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
		if (rte_ring_count(sh->inst[id].tx) != 0 ||
		    ((sh->inst[id].flags & ONVM_INST_F_REMOTE) && rte_ring_count(sh->inst[id].rx) != 0))
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
	uint64_t hot = hz / (1000000000ULL / HOT_NS), last_work = 0;
	uint64_t deep = hz * (DEEP_AFTER_NS / 1000000ULL) / 1000ULL;
	uint64_t sleep_ns = MIN_SLEEP_NS;
	uint64_t wake = 0;
	unsigned int idle = 0, unwoken = 0;

	while (!mgr_quit) {
		uint32_t gen = __atomic_load_n(&sh->table_gen, __ATOMIC_ACQUIRE);
		const struct onvm_chain_table *t = &sh->tables[__atomic_load_n(&sh->table_active,
										  __ATOMIC_ACQUIRE)];
		uint64_t mask = __atomic_load_n(&sh->inst_mask, __ATOMIC_ACQUIRE);
		unsigned int work = 0, i, n_ports;

		__atomic_store_n(&sh->lcore_seen_gen, gen, __ATOMIC_RELEASE);
		now = rte_rdtsc();
		/* (a port hot-added by the control thread counts from its next round) */
		n_ports = __atomic_load_n(&m->n_ports, __ATOMIC_ACQUIRE);
		for (i = 0; i < n_ports; i++)
			work += port_rx(m, i, t, now, &wake);
		/* packets handed to instances since their last wake-up; only
		 * this round's count is work (summing the backlog into it kept
		 * the loop from ever going idle after a burst of < WAKE_BATCH) */
		unwoken += work;
		while (mask != 0) {
			unsigned int id = (unsigned int)__builtin_ctzll(mask);

			mask &= mask - 1;
			work += nf_tx(m, &sh->inst[id]);
		}
		mask = __atomic_load_n(&sh->remote_mask, __ATOMIC_ACQUIRE);
		while (mask != 0) {
			unsigned int id = (unsigned int)__builtin_ctzll(mask);

			mask &= mask - 1;
			work += remote_tx(m, &sh->inst[id]);
		}
		/* A sleeping NF is woken once WAKE_BATCH packets wait for it
		 * or when this loop runs dry, not per burst: an NF that shares
		 * this core then runs once per batch (each wake-up is a system
		 * call and a context switch). */
		if (wake == 0) {
			unwoken = 0;   /* nobody to wake (all dropped, or all sent) */
		} else if (unwoken >= WAKE_BATCH || work == 0) {
			onvm_dp_wake_all(&m->dp, wake);
			wake = 0;
			unwoken = 0;
		}
		mask = __atomic_load_n(&sh->evict_mask, __ATOMIC_ACQUIRE);
		if (mask != 0)
			flows_evict(m, mask);
		if (now > next_expire) {
			flows_expire(m, now);
			next_expire = now + hz;
		}
		if (work != 0) {
			idle = 0;
			sleep_ns = MIN_SLEEP_NS;
			last_work = now;
			continue;
		}
		if (++idle < IDLE_SPINS) {
			rte_pause();
			continue;
		}
		if (now - last_work < hot) {
			sched_yield();
			continue;
		}
		if (onvm_dp_sleep(&sh->mgr_sleeping, &sh->mgr_wake_seq, tx_pending, sh, sleep_ns))
			sleep_ns = MIN_SLEEP_NS;   /* woken by an NF: traffic is back */
		else if (sleep_ns < (now - last_work > deep ? DEEP_SLEEP_NS : MAX_SLEEP_NS))
			sleep_ns *= 2;
	}
	return 0;
}
