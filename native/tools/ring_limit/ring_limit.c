/* SPDX-License-Identifier: BSD-3-Clause
 *
 * ring_limit: the ceiling for a generator -> NF -> back loop on this
 * machine: two bare SP/SC rte_rings between two lcores of one process, the
 * generator reusing a fixed set of mbufs and both sides writing a 16-byte
 * per-packet field as the NFs do, with no manager, no steering and no
 * tables.  Prints one JSON line.
 *
 *   ring_limit [EAL options] -- [-n INFLIGHT] [-t SECONDS] [-w WARMUP_SECONDS]
 * Needs two lcores (e.g. -l 0,1) for the loop; with one it measures the
 * same-core loopback (one ring, one thread).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

#define BURST 32

struct meta {
	uint8_t action;
	uint8_t pad[7];
	uint16_t src;
	uint16_t owner;
	uint32_t flow;
};

static struct rte_ring *to_nf, *to_gen;
static int meta_off;
static volatile int stop;
static uint64_t nf_count;

static inline struct meta *
meta(struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, meta_off, struct meta *);
}

static int
nf_loop(void *arg)
{
	struct rte_mbuf *p[BURST];
	unsigned int n, i, sent;

	(void)arg;
	while (!stop) {
		n = rte_ring_sc_dequeue_burst(to_nf, (void **)p, BURST, NULL);
		for (i = 0; i < n; i++) {
			meta(p[i])->owner = 2;
			meta(p[i])->action = 5;
			meta(p[i])->src = 2;
		}
		for (sent = 0; sent < n;)
			sent += rte_ring_sp_enqueue_burst(to_gen, (void **)p + sent, n - sent, NULL);
		nf_count += n;
	}
	return 0;
}

/* One round of the generator: take back what returned, send it out again. */
static unsigned int
gen_round(struct rte_ring *back)
{
	struct rte_mbuf *p[BURST];
	unsigned int n, i, sent;

	n = rte_ring_sc_dequeue_burst(back, (void **)p, BURST, NULL);
	for (i = 0; i < n; i++) {
		meta(p[i])->owner = 1;
		meta(p[i])->action = 3;
		meta(p[i])->src = 1;
	}
	for (sent = 0; sent < n;)
		sent += rte_ring_sp_enqueue_burst(to_nf, (void **)p + sent, n - sent, NULL);
	return n;
}

int
main(int argc, char **argv)
{
	static const struct rte_mbuf_dynfield desc = {
		.name = "ring_limit_meta", .size = sizeof(struct meta), .align = 4,
	};
	unsigned int inflight = 1024, i, n, sent, nf_lcore;
	double seconds = 5, warmup = 1, mpps;
	struct rte_mempool *mp;
	struct rte_mbuf **all;
	uint64_t count = 0, t0, t1, hz;
	struct rte_ring *back;
	int rc, opt, two;

	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		fprintf(stderr, "ring_limit: EAL init failed\n");
		return 2;
	}
	argc -= rc;
	argv += rc;
	while ((opt = getopt(argc, argv, "n:t:w:")) != -1) {
		if (opt == 'n')
			inflight = (unsigned int)atoi(optarg);
		else if (opt == 't')
			seconds = atof(optarg);
		else if (opt == 'w')
			warmup = atof(optarg);
	}
	meta_off = rte_mbuf_dynfield_register(&desc);
	mp = rte_pktmbuf_pool_create("rl_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				     (int)rte_socket_id());
	to_nf = rte_ring_create("rl_to_nf", 2048, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	to_gen = rte_ring_create("rl_to_gen", 2048, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	all = calloc(inflight, sizeof(*all));
	if (meta_off < 0 || mp == NULL || to_nf == NULL || to_gen == NULL || all == NULL ||
	    rte_pktmbuf_alloc_bulk(mp, all, inflight) != 0) {
		fprintf(stderr, "ring_limit: setup failed\n");
		return 2;
	}
	two = rte_lcore_count() >= 2;
	back = two ? to_gen : to_nf;
	for (i = 0; i < inflight; i += n) {
		n = RTE_MIN(inflight - i, (unsigned int)BURST);
		for (sent = 0; sent < n;)
			sent += rte_ring_sp_enqueue_burst(to_nf, (void **)all + i + sent, n - sent, NULL);
	}
	nf_lcore = rte_get_next_lcore(-1, 1, 0);
	if (two)
		rte_eal_remote_launch(nf_loop, NULL, nf_lcore);
	hz = rte_get_tsc_hz();
	t0 = rte_rdtsc() + (uint64_t)(warmup * (double)hz);   /* same warm-up as speed_tester */
	t1 = t0 + (uint64_t)(seconds * (double)hz);
	while (rte_rdtsc() < t0)
		gen_round(back);
	t0 = rte_rdtsc();
	while (rte_rdtsc() < t1)
		count += gen_round(back);
	mpps = (double)count * hz / (double)(rte_rdtsc() - t0) / 1e6;
	stop = 1;
	rte_eal_mp_wait_lcore();
	printf("{\"bench\": \"ring_limit\", \"lcores\": %u, \"inflight\": %u, \"mpps\": %.3f, "
	       "\"packets\": %" PRIu64 "}\n", two ? 2 : 1, inflight, mpps, count);
	rte_eal_cleanup();
	return 0;
}
