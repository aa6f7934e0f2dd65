/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The burst API of libonvm_nf for bindings (include/onvm/onvm_burst.h).
 */
#include "onvm/onvm_burst.h"

struct burst_args {
	onvm_burst_fn fn;
	void *arg;
	struct onvm_burst b;
};

static void
burst_handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *varg)
{
	struct burst_args *a = varg;
	struct onvm_burst *b = &a->b;
	uint16_t i;

	b->n = n;
	for (i = 0; i < n; i++) {
		b->data[i] = rte_pktmbuf_mtod(pkts[i], uint8_t *);
		b->len[i] = rte_pktmbuf_data_len(pkts[i]);
		b->verdict[i] = ONVM_V_NEXT;
	}
	a->fn(b, a->arg);
	for (i = 0; i < n; i++) {
		int32_t v = b->verdict[i];

		if (v == ONVM_V_DROP)
			onvm_pkt_drop(nf, pkts[i]);
		else if (v >= 0 && v <= UINT16_MAX)
			onvm_pkt_to_port(nf, pkts[i], (uint16_t)v);
	}
}

int
onvm_nf_run_bursts(struct onvm_nf *nf, onvm_burst_fn fn, void *arg)
{
	static struct burst_args a;   /* one NF a process */

	a.fn = fn;
	a.arg = arg;
	return onvm_nf_run(nf, burst_handler, &a);
}
