/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_pkt.h - reading a packet's 5-tuple (manager's flow table, NFs).
 */
#ifndef ONVM_PKT_H
#define ONVM_PKT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

/* Host byte order; all zero but `proto` for what is not IPv4. */
struct onvm_5tuple {
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	uint8_t proto;
};

/* Fill t from an Ethernet/IPv4 packet; returns 0, or -1 if not IPv4. */
static inline int
onvm_pkt_5tuple(const struct rte_mbuf *pkt, struct onvm_5tuple *t)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(pkt, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip;
	uint32_t l3 = sizeof(*eth), ihl;

	*t = (struct onvm_5tuple){ 0 };
	if (pkt->data_len < l3 + sizeof(*ip) ||
	    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return -1;
	ip = (const struct rte_ipv4_hdr *)((const uint8_t *)eth + l3);
	t->src_ip = rte_be_to_cpu_32(ip->src_addr);
	t->dst_ip = rte_be_to_cpu_32(ip->dst_addr);
	t->proto = ip->next_proto_id;
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	if ((t->proto == IPPROTO_UDP || t->proto == IPPROTO_TCP) &&
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)) == 0 &&
	    pkt->data_len >= l3 + ihl + 4) {
		const uint16_t *ports = (const uint16_t *)((const uint8_t *)ip + ihl);

		t->src_port = rte_be_to_cpu_16(ports[0]);
		t->dst_port = rte_be_to_cpu_16(ports[1]);
	}
	return 0;
}

/* NSH (RFC 8300) over Ethernet: base header and service path header, MD
 * type 2 with no metadata, next protocol Ethernet. */
#define ONVM_ETHER_TYPE_NSH 0x894F
#define ONVM_NSH_NP_ETHERNET 3
#define ONVM_NSH_TTL 63

struct onvm_nsh {
	rte_be16_t ver_flags_ttl_len; /* ver 2 | O 1 | U 1 | TTL 6 | length 6 (4-byte words) */
	uint8_t md_type;              /* U 4 | MD type 4 */
	uint8_t next_proto;
	rte_be32_t spi_si;            /* SPI 24 | SI 8 */
} __rte_packed;

#define ONVM_NSH_ENCAP_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct onvm_nsh))

/* What the outer headers of a frame from a fabric link say. */
struct onvm_nsh_info {
	uint32_t spi;        /* service path: a chain */
	uint8_t si;          /* service index: 255 - position in it */
	uint8_t ttl;         /* TTL left after this hop */
	uint16_t outer_len;  /* Ethernet + NSH bytes before the inner frame */
};

/* Parse Ethernet + NSH at the start of `frame` (`len` bytes, the first
 * segment).  1: an NSH frame, *out filled, the TTL already decremented
 * (RFC 8300 2.2); 0: not NSH (another EtherType); -1: to drop (truncated,
 * version not 0, header shorter than its base or longer than the frame,
 * inner protocol not Ethernet, TTL spent).  Pure: reads nothing past len. */
static inline int
onvm_nsh_parse(const uint8_t *frame, uint32_t len, struct onvm_nsh_info *out)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	const struct onvm_nsh *nsh;
	uint32_t hdr_len, spi_si;
	uint16_t vftl;
	uint8_t ttl;

	if (len < sizeof(*eth) || eth->ether_type != rte_cpu_to_be_16(ONVM_ETHER_TYPE_NSH))
		return 0;
	if (len < ONVM_NSH_ENCAP_LEN)
		return -1;
	nsh = (const struct onvm_nsh *)(eth + 1);
	vftl = rte_be_to_cpu_16(nsh->ver_flags_ttl_len);
	hdr_len = (uint32_t)(vftl & 0x3f) * 4;
	if ((vftl >> 14) != 0 || hdr_len < sizeof(*nsh) ||
	    len < sizeof(*eth) + hdr_len + sizeof(struct rte_ether_hdr) ||
	    nsh->next_proto != ONVM_NSH_NP_ETHERNET)
		return -1;
	ttl = (uint8_t)((vftl >> 6) & 0x3f);
	if (ttl <= 1)
		return -1;
	spi_si = rte_be_to_cpu_32(nsh->spi_si);
	out->spi = spi_si >> 8;
	out->si = (uint8_t)(spi_si & 0xff);
	out->ttl = (uint8_t)(ttl - 1);
	out->outer_len = (uint16_t)(sizeof(*eth) + hdr_len);
	return 1;
}

/* Parse "a.b.c.d" or "a.b.c.d/len" into a host-order address and prefix
 * length; 0, or -1 if malformed. */
static inline int
onvm_parse_cidr(const char *s, uint32_t *ip, uint8_t *len)
{
	char buf[32], *slash, *end;
	struct in_addr a;
	long l = 32;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		*slash = '\0';
		l = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || l < 0 || l > 32)
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	*len = (uint8_t)l;
	return 0;
}

/* Netmask of a prefix length, host order. */
static inline uint32_t
onvm_prefix_mask(uint8_t len)
{
	return len == 0 ? 0 : ~0u << (32 - len);
}

#endif /* ONVM_PKT_H */
