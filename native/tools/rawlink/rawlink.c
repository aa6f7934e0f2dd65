/* SPDX-License-Identifier: BSD-3-Clause
 *
 * rawlink: one bare DPDK primary on one port, no onvm at all -- the
 * reference that bench/fabric.py puts next to the cross-host chain.
 *
 *   rawlink [EAL options] -- -m MODE [-t SECONDS] [-n INFLIGHT]
 *
 *   tx    send 64-byte frames as fast as the port takes them
 *   rx    count and free what arrives
 *   echo  send back everything that arrives
 *   loop  put INFLIGHT frames on the link, send again whatever comes
 *         back (with an echo on the other end: the shape of
 *         speed_tester -> bounce -> back)
 *
 * tx / rx / loop print {"mpps": ...} after SECONDS: frames received per
 * second (tx: frames sent).  Every mode stops on SIGINT / SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define BURST 32
#define RING_SIZE 1024
#define FRAME_LEN 64

enum mode { M_TX, M_RX, M_ECHO, M_LOOP };

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
usage(void)
{
	fprintf(stderr, "rawlink [EAL options] -- -m tx|rx|echo|loop [-t SECONDS] [-n INFLIGHT]\n");
}

static int
port_up(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;

	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(port, 1, 1, &conf) < 0 ||
	    rte_eth_rx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL, pool) < 0 ||
	    rte_eth_tx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL) < 0)
		return -1;
	return rte_eth_dev_start(port);
}

static unsigned int
fill(struct rte_mempool *pool, struct rte_mbuf **pkts, unsigned int n)
{
	unsigned int i;

	if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		uint8_t *d = (uint8_t *)rte_pktmbuf_append(pkts[i], FRAME_LEN);

		memset(d, 0, FRAME_LEN);
		d[0] = 0x02;          /* locally administered destination */
		d[6] = 0x02;
		d[12] = 0x88;         /* a local experimental ethertype */
		d[13] = 0xb5;
	}
	return n;
}

/* Send all n, retrying while the link is full; returns how many went. */
static unsigned int
send_all(uint16_t port, struct rte_mbuf **pkts, unsigned int n)
{
	unsigned int sent = 0;

	while (sent < n && !quit)
		sent += rte_eth_tx_burst(port, 0, pkts + sent, (uint16_t)(n - sent));
	if (sent < n)
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	return sent;
}

int
main(int argc, char **argv)
{
	struct rte_mbuf *pkts[BURST];
	struct rte_mempool *pool;
	enum mode mode = M_RX;
	unsigned int inflight = 1024;
	double seconds = 5.0;
	uint64_t count = 0, start, stop;
	const uint16_t port = 0;
	int ret, opt;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "rawlink: EAL init failed\n");
	argc -= ret;
	argv += ret;
	while ((opt = getopt(argc, argv, "m:t:n:")) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "tx") == 0)
				mode = M_TX;
			else if (strcmp(optarg, "rx") == 0)
				mode = M_RX;
			else if (strcmp(optarg, "echo") == 0)
				mode = M_ECHO;
			else if (strcmp(optarg, "loop") == 0)
				mode = M_LOOP;
			else {
				usage();
				return 2;
			}
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			inflight = (unsigned int)atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (rte_eth_dev_count_avail() != 1 || seconds <= 0 || inflight == 0 || inflight > 8192) {
		fprintf(stderr, "rawlink: needs exactly one port, SECONDS > 0 and 1-8192 in flight\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	pool = rte_pktmbuf_pool_create("rawlink", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (pool == NULL || port_up(port, pool) < 0)
		rte_exit(EXIT_FAILURE, "rawlink: port 0 did not start\n");

	if (mode == M_LOOP) {
		unsigned int left = inflight;

		while (left > 0 && !quit) {
			unsigned int n = RTE_MIN(left, (unsigned int)BURST);

			if (fill(pool, pkts, n) != n)
				rte_exit(EXIT_FAILURE, "rawlink: pool exhausted\n");
			send_all(port, pkts, n);
			left -= n;
		}
	}
	start = rte_rdtsc();
	stop = mode == M_ECHO ? UINT64_MAX : start + (uint64_t)(seconds * (double)rte_get_tsc_hz());
	while (!quit && rte_rdtsc() < stop) {
		uint16_t n;

		if (mode == M_TX) {
			if (fill(pool, pkts, BURST) == BURST) {
				n = rte_eth_tx_burst(port, 0, pkts, BURST);
				count += n;
				if (n < BURST)
					rte_pktmbuf_free_bulk(pkts + n, BURST - n);
			}
			continue;
		}
		n = rte_eth_rx_burst(port, 0, pkts, BURST);
		if (n == 0)
			continue;
		count += n;
		if (mode == M_RX)
			rte_pktmbuf_free_bulk(pkts, n);
		else
			send_all(port, pkts, n);
	}
	if (mode != M_ECHO)
		printf("{\"mode\": \"%s\", \"mpps\": %.3f, \"frames\": %" PRIu64 "}\n",
		       mode == M_TX ? "tx" : mode == M_RX ? "rx" : "loop",
		       (double)count / ((double)(rte_rdtsc() - start) / (double)rte_get_tsc_hz()) / 1e6,
		       count);
	rte_eth_dev_stop(port);
	rte_eth_dev_close(port);
	rte_eal_cleanup();
	return 0;
}
