/* SPDX-License-Identifier: BSD-3-Clause
 *
 * kgen: kernel-only traffic generator for the veth baseline.  Sends 64-byte
 * UDP/IPv4 frames (60 bytes + the FCS a wire would add) through an AF_PACKET
 * socket with PACKET_QDISC_BYPASS on --tx, with sendmmsg (--mode mmsg, the
 * faster here) or a PACKET_TX_RING (--mode ring), and counts on --rx, through
 * a TPACKET_V3 ring, the frames carrying its own marker (magic + per-run
 * nonce).  Frames sent during the --warmup seconds carry phase 0, those sent
 * during the next --seconds phase 1; "received" counts the phase-1 frames that
 * came back (within 200 ms of the end), so sent - received is the exact loss.
 * Prints one JSON line.
 *
 *   kgen --tx IF --rx IF --dst-mac MAC --src-ip A --dst-ip B
 *        [--seconds S] [--warmup W] [--mode mmsg|ring] [--batch N]
 *        [--tx-cpu C] [--rx-cpu C]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 60		/* 64 on the wire with the FCS */
#define MARK_OFF 42		/* payload right after Eth + IPv4 + UDP */
#define PHASE_OFF (MARK_OFF + 8)	/* 0: warm-up, 1: measured window */
#define TX_DATA_OFF TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
#define MAGIC 0x6b67656eu	/* "kgen" */
#define MAX_BATCH 1024
#define TX_FRAMES 4096		/* PACKET_TX_RING slots */
#define TX_FRAME_SZ 128
#define RX_BLOCK_SZ (1u << 18)
#define RX_BLOCKS 64

static atomic_uint_fast64_t rx_count;
static atomic_int stop;
static uint32_t nonce;
static int rx_cpu = -1, rx_fd;

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "kgen: cannot pin to cpu %d\n", cpu);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
packet_socket(const char *ifname, int proto, struct sockaddr_ll *sll)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));

	if (fd < 0)
		die("socket(AF_PACKET)");
	memset(sll, 0, sizeof(*sll));
	sll->sll_family = AF_PACKET;
	sll->sll_protocol = htons(proto);
	sll->sll_ifindex = (int)if_nametoindex(ifname);
	if (sll->sll_ifindex == 0)
		die(ifname);
	if (bind(fd, (struct sockaddr *)sll, sizeof(*sll)) < 0)
		die("bind");
	return fd;
}

static void
build_frame(uint8_t *f, int fd, const char *ifname, const uint8_t *dmac,
	    struct in_addr src, struct in_addr dst)
{
	struct ip *ip = (struct ip *)(f + 14);
	struct udphdr *udp = (struct udphdr *)(f + 34);
	uint32_t sum = 0, mark[2] = { htonl(MAGIC), nonce };
	uint16_t *w = (uint16_t *)ip;
	struct ifreq ifr;
	int i;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memset(f, 0, FRAME_LEN);
	memcpy(f, dmac, 6);
	memcpy(f + 6, ifr.ifr_hwaddr.sa_data, 6);
	f[12] = 0x08;
	ip->ip_v = 4;
	ip->ip_hl = 5;
	ip->ip_len = htons(FRAME_LEN - 14);
	ip->ip_ttl = 64;
	ip->ip_p = IPPROTO_UDP;
	ip->ip_src = src;
	ip->ip_dst = dst;
	for (i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	ip->ip_sum = (uint16_t)~(sum + (sum >> 16));
	udp->uh_sport = htons(9);
	udp->uh_dport = htons(9);
	udp->uh_ulen = htons(FRAME_LEN - 34);
	memcpy(f + MARK_OFF, mark, sizeof(mark));
}

static uint8_t *
rx_ring_setup(int fd)
{
	struct tpacket_req3 req = {
		.tp_block_size = RX_BLOCK_SZ, .tp_block_nr = RX_BLOCKS,
		.tp_frame_size = 2048, .tp_frame_nr = RX_BLOCK_SZ / 2048 * RX_BLOCKS,
		.tp_retire_blk_tov = 5,
	};
	int v = TPACKET_V3, one = 1;
	uint8_t *ring;

	setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		die("PACKET_RX_RING");
	ring = mmap(NULL, (size_t)RX_BLOCK_SZ * RX_BLOCKS, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, fd, 0);
	if (ring == MAP_FAILED)
		die("mmap rx ring");
	return ring;
}

/* Counts own frames sent in the window, from a TPACKET_V3 ring, until told to stop. */
static void *
rx_loop(void *arg)
{
	uint32_t mark[2] = { htonl(MAGIC), nonce };
	struct pollfd pfd = { .fd = rx_fd, .events = POLLIN };
	uint8_t *ring = arg;
	unsigned int blk = 0, i;

	pin(rx_cpu);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct tpacket_block_desc *bd = (void *)(ring + (size_t)blk * RX_BLOCK_SZ);
		struct tpacket3_hdr *h;
		uint64_t n = 0;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
			poll(&pfd, 1, 50);
			continue;
		}
		h = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (i = 0; i < bd->hdr.bh1.num_pkts; i++) {
			uint8_t *f = (uint8_t *)h + h->tp_mac;

			if (h->tp_snaplen >= FRAME_LEN && f[PHASE_OFF] == 1 &&
			    memcmp(f + MARK_OFF, mark, sizeof(mark)) == 0)
				n++;
			h = (void *)((uint8_t *)h + h->tp_next_offset);
		}
		atomic_fetch_add_explicit(&rx_count, n, memory_order_relaxed);
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		blk = (blk + 1) % RX_BLOCKS;
	}
	return NULL;
}

static void
usage(int rc)
{
	fprintf(rc ? stderr : stdout, "usage: kgen --tx IF --rx IF --dst-mac MAC --src-ip A --dst-ip B\n"
	       "            [--seconds S] [--warmup W] [--mode mmsg|ring] [--batch N]\n"
	       "            [--tx-cpu C] [--rx-cpu C]\n"
	       "Sends 64-byte UDP frames on --tx (AF_PACKET, qdisc bypass), counts its own\n"
	       "frames coming back on --rx, prints one JSON line.\n");
	exit(rc);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tx", 1, NULL, 't' }, { "rx", 1, NULL, 'r' }, { "dst-mac", 1, NULL, 'm' },
		{ "src-ip", 1, NULL, 's' }, { "dst-ip", 1, NULL, 'd' },
		{ "seconds", 1, NULL, 'S' }, { "warmup", 1, NULL, 'W' },
		{ "mode", 1, NULL, 'M' }, { "batch", 1, NULL, 'b' },
		{ "tx-cpu", 1, NULL, 'c' }, { "rx-cpu", 1, NULL, 'C' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *txif = NULL, *rxif = NULL, *mode = "mmsg";
	double seconds = 3, warmup = 0.5, t0 = 0, t1, t;
	uint64_t sent = 0, received;
	uint8_t phase = 0;
	int opt, txfd, one = 1, tx_cpu = -1, v = TPACKET_V2, batch = 64, i;
	struct in_addr src = { 0 }, dst = { 0 };
	static struct mmsghdr msgs[MAX_BATCH];
	unsigned int dm[6] = { 256 }, slot = 0;
	struct sockaddr_ll txa, rxa;
	uint8_t dmac[6], frame[FRAME_LEN], *ring = NULL, *rxring;
	struct tpacket_stats_v3 st;
	socklen_t stlen = sizeof(st);
	struct iovec iov;
	pthread_t rx;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't': txif = optarg; break;
		case 'r': rxif = optarg; break;
		case 'm':
			if (sscanf(optarg, "%x:%x:%x:%x:%x:%x", &dm[0], &dm[1], &dm[2],
				   &dm[3], &dm[4], &dm[5]) != 6)
				usage(1);
			for (i = 0; i < 6; i++) {
				if (dm[i] > 0xff)
					usage(1);
				dmac[i] = (uint8_t)dm[i];
			}
			break;
		case 's': if (inet_pton(AF_INET, optarg, &src) != 1) usage(1); break;
		case 'd': if (inet_pton(AF_INET, optarg, &dst) != 1) usage(1); break;
		case 'S': seconds = atof(optarg); break;
		case 'W': warmup = atof(optarg); break;
		case 'M': mode = optarg; break;
		case 'b': batch = atoi(optarg); break;
		case 'c': tx_cpu = atoi(optarg); break;
		case 'C': rx_cpu = atoi(optarg); break;
		case 'h': usage(0); break;
		default: usage(1);
		}
	}
	if (!txif || !rxif || dm[0] > 0xff || !src.s_addr || !dst.s_addr || optind != argc ||
	    seconds <= 0 || batch < 1 || batch > MAX_BATCH ||
	    (strcmp(mode, "mmsg") && strcmp(mode, "ring")))
		usage(1);
	nonce = (uint32_t)getpid() ^ (uint32_t)time(NULL) << 16;

	rx_fd = packet_socket(rxif, ETH_P_IP, &rxa);
	rxring = rx_ring_setup(rx_fd);
	/* protocol 0: the TX socket receives nothing. */
	txfd = packet_socket(txif, 0, &txa);
	txa.sll_protocol = htons(ETH_P_IP);
	txa.sll_halen = 6;
	memcpy(txa.sll_addr, dmac, 6);
	if (setsockopt(txfd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		die("PACKET_QDISC_BYPASS");
	build_frame(frame, txfd, txif, dmac, src, dst);
	if (pthread_create(&rx, NULL, rx_loop, rxring) != 0)
		die("pthread_create");
	pin(tx_cpu);

	if (!strcmp(mode, "ring")) {
		struct tpacket_req req = {
			.tp_block_size = TX_FRAMES * TX_FRAME_SZ, .tp_block_nr = 1,
			.tp_frame_size = TX_FRAME_SZ, .tp_frame_nr = TX_FRAMES,
		};

		if (setsockopt(txfd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
		    setsockopt(txfd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
			die("PACKET_TX_RING");
		ring = mmap(NULL, TX_FRAMES * TX_FRAME_SZ, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_POPULATE, txfd, 0);
		if (ring == MAP_FAILED)
			die("mmap tx ring");
		for (i = 0; i < TX_FRAMES; i++)
			memcpy(ring + i * TX_FRAME_SZ + TX_DATA_OFF, frame, FRAME_LEN);
	} else {
		iov.iov_base = frame;
		iov.iov_len = FRAME_LEN;
		for (i = 0; i < batch; i++) {
			msgs[i].msg_hdr.msg_iov = &iov;
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
	}

	t1 = now() + warmup;
	for (;;) {
		int n = 0;

		if (ring) {
			for (; n < batch; n++) {
				struct tpacket2_hdr *h = (void *)(ring + slot * TX_FRAME_SZ);

				if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
					break;
				((uint8_t *)h)[TX_DATA_OFF + PHASE_OFF] = phase;
				h->tp_len = FRAME_LEN;
				__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
				slot = (slot + 1) % TX_FRAMES;
			}
			if (sendto(txfd, NULL, 0, MSG_DONTWAIT, (struct sockaddr *)&txa, sizeof(txa)) < 0 &&
			    errno != EAGAIN && errno != ENOBUFS)
				die("sendto");
		} else {
			n = sendmmsg(txfd, msgs, (unsigned int)batch, 0);
			if (n < 0)
				die("sendmmsg");
		}
		if (phase)
			sent += (uint64_t)n;
		t = now();
		if (t < t1)
			continue;
		if (phase)
			break;
		/* Warm-up over: frames from now on carry phase 1 and are counted. */
		phase = frame[PHASE_OFF] = 1;
		t0 = t;
		t1 = t0 + seconds;
	}
	if (ring)	/* flush what is still queued, and wait for it */
		sendto(txfd, NULL, 0, 0, (struct sockaddr *)&txa, sizeof(txa));
	usleep(200000);	/* let the last frames come back */
	atomic_store(&stop, 1);
	pthread_join(rx, NULL);
	received = atomic_load(&rx_count);
	if (getsockopt(rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &stlen) < 0)
		st.tp_drops = 0;
	printf("{\"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"seconds\": %.6f, "
	       "\"mpps\": %.4f, \"mode\": \"%s\", \"batch\": %d, \"rx_ring_drops\": %u}\n",
	       sent, received, t - t0, (double)received / (t - t0) / 1e6,
	       ring ? "tx_ring" : "sendmmsg", batch, st.tp_drops);
	return 0;
}
