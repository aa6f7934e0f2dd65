/* SPDX-License-Identifier: BSD-3-Clause
 *
 * forward: sends every packet to a port (-p) or a service (-s); with
 * neither, on along its chain (to the chain's egress port at the end).
 */
#include <getopt.h>
#include <stdio.h>

#include "onvm/onvm_nflib.h"

struct fwd {
	int port;
	int service;
};

static void
handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	const struct fwd *f = arg;
	uint16_t i;

	for (i = 0; i < n; i++) {
		if (f->port >= 0)
			onvm_pkt_to_port(nf, pkts[i], (uint16_t)f->port);
		else if (f->service >= 0)
			onvm_pkt_to_service(nf, pkts[i], (uint16_t)f->service);
	}
}

int
main(int argc, char **argv)
{
	struct fwd f = { .port = -1, .service = -1 };
	struct onvm_nf *nf;
	int opt, rc;

	if (onvm_nf_init(&argc, &argv, "forward", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "p:s:h")) != -1) {
		if (opt == 'p' && (f.port = onvm_nf_port_id(nf, optarg)) >= 0)
			continue;
		if (opt == 's' && (f.service = onvm_nf_service_id(nf, optarg)) >= 0)
			continue;
		if (opt == 'p' || opt == 's')
			fprintf(stderr, "forward: unknown %s '%s'\n", opt == 'p' ? "port" : "service",
				optarg);
		else
			fprintf(stderr, "forward [onvm options] -- [-p PORT | -s SERVICE]\n");
		onvm_nf_fini(nf);
		return opt == 'h' ? 0 : 2;
	}
	rc = onvm_nf_run(nf, handler, &f);
	onvm_nf_fini(nf);
	return rc;
}
