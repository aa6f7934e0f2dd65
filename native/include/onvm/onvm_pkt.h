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
