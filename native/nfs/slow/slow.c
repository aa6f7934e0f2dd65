/* SPDX-License-Identifier: BSD-3-Clause
 *
 * slow: spends a fixed number of TSC cycles on every packet, then passes it
 * on (next in chain, or back with -b).  The NF that runs out of capacity
 * on purpose, for auto-scaling.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_cycles.h>
#include <rte_pause.h>

#include "onvm/onvm_nflib.h"

struct slow {
	uint64_t cycles;
	int back;
};

static void
handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	const struct slow *s = arg;
	uint64_t until = rte_rdtsc() + s->cycles * n;
	uint16_t i;

	while (rte_rdtsc() < until)
		rte_pause();
	if (s->back)
		for (i = 0; i < n; i++)
			onvm_pkt_back(nf, pkts[i]);
}

int
main(int argc, char **argv)
{
	struct slow s = { .cycles = 1000 };
	struct onvm_nf *nf;
	int opt;

	if (onvm_nf_init(&argc, &argv, "slow", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "c:bh")) != -1) {
		if (opt == 'c') {
			s.cycles = strtoull(optarg, NULL, 10);
			continue;
		}
		if (opt == 'b') {
			s.back = 1;
			continue;
		}
		fprintf(stderr, "slow [onvm options] -- [-c CYCLES] [-b]\n"
				"  -c CYCLES  cycles spent per packet (default 1000)\n"
				"  -b         send packets back instead of on along the chain\n");
		onvm_nf_fini(nf);
		return opt == 'h' ? 0 : 2;
	}
	onvm_nf_run(nf, handler, &s);
	onvm_nf_fini(nf);
	return 0;
}
