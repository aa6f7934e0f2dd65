/* SPDX-License-Identifier: BSD-3-Clause
 *
 * slow: spends a fixed number of TSC cycles on every packet (-c), or takes
 * at most RATE packets a second, sleeping in between (-r: a capacity that
 * does not depend on how busy the machine's cores are, and does not burn
 * them), then passes it on (next in chain, or back with -b).  The NF that
 * runs out of capacity on purpose, for auto-scaling.  Either way its busy
 * share reaches 100% at its limit.
 */
#include <time.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_cycles.h>
#include <rte_pause.h>

#include "onvm/onvm_nflib.h"

struct slow {
	uint64_t cycles;
	uint64_t rate;      /* packets a second, 0: no cap */
	uint64_t next;      /* tsc before which the next packets may not go */
	int back;
};

/* Hold the packets until the rate allows them: sleep the long waits. */
static void
pace(struct slow *s, uint16_t n)
{
	uint64_t hz = rte_get_tsc_hz(), now = rte_rdtsc();

	if (s->next < now)
		s->next = now;   /* idle meanwhile: no credit saved up */
	s->next += n * hz / s->rate;
	while ((now = rte_rdtsc()) < s->next) {
		uint64_t ns = (s->next - now) * 1000000000ULL / hz;

		if (ns > 50000) {
			struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)RTE_MIN(ns - 20000, 100000000ULL) };

			nanosleep(&ts, NULL);
		} else {
			rte_pause();
		}
	}
}

static void
handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	struct slow *s = arg;
	uint64_t until = rte_rdtsc() + s->cycles * n;
	uint16_t i;

	if (s->rate != 0)
		pace(s, n);
	else
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
	int opt, rc;

	if (onvm_nf_init(&argc, &argv, "slow", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "c:r:bh")) != -1) {
		if (opt == 'c') {
			s.cycles = strtoull(optarg, NULL, 10);
			continue;
		}
		if (opt == 'r') {
			s.rate = strtoull(optarg, NULL, 10);
			if (s.rate == 0 || s.rate > 100000000ULL) {
				fprintf(stderr, "slow: -r must be 1-100000000 packets a second\n");
				onvm_nf_fini(nf);
				return 2;
			}
			continue;
		}
		if (opt == 'b') {
			s.back = 1;
			continue;
		}
		fprintf(stderr, "slow [onvm options] -- [-c CYCLES | -r RATE] [-b]\n"
				"  -c CYCLES  cycles spent per packet (default 1000)\n"
				"  -r RATE    at most RATE packets a second, sleeping in between\n"
				"  -b         send packets back instead of on along the chain\n");
		onvm_nf_fini(nf);
		return opt == 'h' ? 0 : 2;
	}
	rc = onvm_nf_run(nf, handler, &s);
	onvm_nf_fini(nf);
	return rc;
}
