/* SPDX-License-Identifier: BSD-3-Clause
 *
 * bounce: sends every packet back where it came from (the NF that sent
 * it, or the port it arrived on); with -n, on to the next in its chain.
 */
#include <getopt.h>
#include <stdio.h>

#include "onvm/onvm_nflib.h"

static void
back(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	uint16_t i;

	(void)arg;
	for (i = 0; i < n; i++)
		onvm_pkt_back(nf, pkts[i]);
}

static void
next(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	(void)nf;
	(void)pkts;
	(void)n;
	(void)arg;   /* the default verdict is "next in chain" */
}

int
main(int argc, char **argv)
{
	onvm_nf_handler_t h = back;
	struct onvm_nf *nf;
	int opt, rc;

	if (onvm_nf_init(&argc, &argv, "bounce", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "nh")) != -1) {
		if (opt == 'n') {
			h = next;
			continue;
		}
		fprintf(stderr, "bounce [onvm options] -- [-n]\n"
				"  -n  pass packets on to the next service of their chain\n");
		onvm_nf_fini(nf);
		return opt == 'h' ? 0 : 2;
	}
	rc = onvm_nf_run(nf, h, NULL);
	onvm_nf_fini(nf);
	return rc;
}
