/* SPDX-License-Identifier: BSD-3-Clause
 *
 * speed_tester: puts a fixed number of packets in flight towards a service
 * (default: itself) and sends each one out again as soon as it comes back.
 * Reports what comes back, in Mpps, every second and as one JSON line at
 * the end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "onvm/onvm_nflib.h"

struct st {
	const char *dest_name;
	const char *chain_name;
	int dest;                 /* service id, -1 = this instance */
	int chain;                /* chain slot, -1 = none */
	unsigned int size;
	unsigned int inflight;
	double seconds;
	double warmup;
	uint64_t count;
	uint64_t t_start, c_start, t_report, c_report, t_end;
	uint64_t hz;
	double mpps;
};

static void
usage(void)
{
	fprintf(stderr,
		"speed_tester [onvm options] -- [-d SERVICE | -c CHAIN] [-s SIZE] [-n INFLIGHT] [-t SECONDS]\n"
		"  -d SERVICE   where to send packets (default: back to itself)\n"
		"  -c CHAIN     send packets into this chain (it may cross hosts and come back)\n"
		"  -s SIZE      frame size in bytes, 64-1518 (default 64)\n"
		"  -n INFLIGHT  packets in flight (default 1024)\n"
		"  -t SECONDS   stop after this long and print a JSON summary (default: run)\n"
		"  -w SECONDS   warm-up excluded from the summary (default 1)\n");
}

static void
fill(struct rte_mbuf *m, unsigned int size, unsigned int i)
{
	unsigned int len = size - RTE_ETHER_CRC_LEN;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)len);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	memset(eth, 0, len);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	eth->src_addr.addr_bytes[0] = 0x02;
	eth->dst_addr.addr_bytes[0] = 0x02;
	eth->dst_addr.addr_bytes[5] = 0x01;
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - sizeof(*eth)));
	ip->src_addr = rte_cpu_to_be_32(0xc6130001);          /* 198.19.0.1 */
	ip->dst_addr = rte_cpu_to_be_32(0xc6130002);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + i % 1024));
	udp->dst_port = rte_cpu_to_be_16(9);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(len - sizeof(*eth) - sizeof(*ip)));
}

static inline void
aim(struct onvm_nf *nf, struct st *st, struct rte_mbuf *m)
{
	if (st->chain >= 0)
		onvm_pkt_to_chain(nf, m, (uint16_t)st->chain);
	else if (st->dest < 0)
		onvm_pkt_verdict(nf, m, ONVM_A_TO_INSTANCE, nf->id);
	else
		onvm_pkt_to_service(nf, m, (uint16_t)st->dest);
}

static void
start(struct onvm_nf *nf, void *arg)
{
	struct st *st = arg;
	struct rte_mbuf *pkts[ONVM_BURST];
	unsigned int left = st->inflight;

	st->hz = rte_get_tsc_hz();
	st->t_report = rte_rdtsc();
	st->t_start = st->t_report + (uint64_t)(st->warmup * (double)st->hz);
	st->t_end = st->seconds > 0 ? st->t_start + (uint64_t)(st->seconds * (double)st->hz) : 0;
	while (left > 0) {
		unsigned int n = RTE_MIN(left, (unsigned int)ONVM_BURST), i;

		if (onvm_nf_alloc(nf, pkts, n) != n) {
			fprintf(stderr, "speed_tester: pool exhausted after %u packets\n",
				st->inflight - left);
			break;
		}
		for (i = 0; i < n; i++) {
			fill(pkts[i], st->size, st->inflight - left + i);
			aim(nf, st, pkts[i]);
		}
		onvm_nf_send(nf, pkts, (uint16_t)n);
		left -= n;
	}
}

static void
handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	struct st *st = arg;
	uint64_t now;
	uint16_t i;

	for (i = 0; i < n; i++)
		aim(nf, st, pkts[i]);
	st->count += n;
	if ((st->count & 0xffff) >= n && st->count > 0xffff)
		return;   /* check the clock about every 64k packets */
	now = rte_rdtsc();
	if (st->c_start == 0 && now >= st->t_start)
		st->c_start = st->count, st->t_start = now;
	if (now - st->t_report >= st->hz) {
		printf("speed_tester: %.2f Mpps\n",
		       (double)(st->count - st->c_report) * st->hz / (double)(now - st->t_report) / 1e6);
		fflush(stdout);
		st->t_report = now;
		st->c_report = st->count;
	}
	if (st->t_end != 0 && now >= st->t_end && st->c_start != 0) {
		st->mpps = (double)(st->count - st->c_start) * st->hz / (double)(now - st->t_start) / 1e6;
		onvm_nf_stop(nf);
	}
}

int
main(int argc, char **argv)
{
	struct st st = { .size = 64, .inflight = 1024, .warmup = 1.0 };
	struct onvm_nf *nf;
	int opt;

	if (onvm_nf_init(&argc, &argv, "speed_tester", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "c:d:s:n:t:w:h")) != -1) {
		switch (opt) {
		case 'c':
			st.chain_name = optarg;
			break;
		case 'd':
			st.dest_name = optarg;
			break;
		case 's':
			st.size = (unsigned int)atoi(optarg);
			break;
		case 'n':
			st.inflight = (unsigned int)atoi(optarg);
			break;
		case 't':
			st.seconds = atof(optarg);
			break;
		case 'w':
			st.warmup = atof(optarg);
			break;
		default:
			usage();
			onvm_nf_fini(nf);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (st.size < 64 || st.size > 1518 || st.inflight == 0) {
		fprintf(stderr, "speed_tester: size must be 64-1518 and inflight > 0\n");
		onvm_nf_fini(nf);
		return 2;
	}
	st.dest = -1;
	st.chain = -1;
	if (st.chain_name != NULL && (st.chain = onvm_nf_chain_id(nf, st.chain_name)) < 0) {
		fprintf(stderr, "speed_tester: unknown chain '%s'\n", st.chain_name);
		onvm_nf_fini(nf);
		return 2;
	}
	if (st.dest_name != NULL && strcmp(st.dest_name, nf->service) != 0) {
		st.dest = onvm_nf_service_id(nf, st.dest_name);
		if (st.dest < 0) {
			fprintf(stderr, "speed_tester: unknown service '%s'\n", st.dest_name);
			onvm_nf_fini(nf);
			return 2;
		}
	}
	nf->on_start = start;
	if (onvm_nf_run(nf, handler, &st) != 0) {
		onvm_nf_fini(nf);
		return 1;
	}
	printf("{\"nf\": \"speed_tester\", \"mpps\": %.3f, \"packets\": %" PRIu64
	       ", \"size\": %u, \"inflight\": %u}\n", st.mpps, st.count, st.size, st.inflight);
	fflush(stdout);
	onvm_nf_fini(nf);
	return 0;
}
