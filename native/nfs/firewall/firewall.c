/* SPDX-License-Identifier: BSD-3-Clause
 *
 * firewall: drops packets by rules on the IPv4 5-tuple, first match wins.
 * Drops are counted by the NF library (the instance's "dropped" counter in
 * the stats area).  Rules file, one rule a line, '#' starts a comment:
 *
 *   default allow|deny
 *   allow|deny [proto udp|tcp|icmp|N] [src CIDR] [dst CIDR]
 *              [sport N[-M]] [dport N[-M]]
 *
 * Packets that are not IPv4 get the default.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onvm/onvm_nflib.h"
#include "onvm/onvm_pkt.h"

#define MAX_RULES 1024

struct rule {
	int allow;
	uint8_t proto;                 /* 0 = any */
	uint32_t src, src_mask, dst, dst_mask;
	uint16_t sport_lo, sport_hi, dport_lo, dport_hi;
};

struct fw {
	struct rule rules[MAX_RULES];
	unsigned int n;
	int default_allow;
};

static int
parse_net(const char *s, uint32_t *ip, uint32_t *mask)
{
	uint8_t len;

	if (onvm_parse_cidr(s, ip, &len) < 0)
		return -1;
	*mask = onvm_prefix_mask(len);
	*ip &= *mask;
	return 0;
}

static int
parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b = a;

	if (*end == '-')
		b = strtol(end + 1, &end, 10);
	if (*end != '\0' || a < 0 || b > 65535 || a > b)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

static int
parse_rule(char *line, struct rule *r, int *is_default, int *default_allow)
{
	char *tok = strtok(line, " \t\r\n"), *val;

	*r = (struct rule){ .sport_hi = 65535, .dport_hi = 65535 };
	*is_default = 0;
	if (tok == NULL)
		return 1;   /* blank */
	if (strcmp(tok, "default") == 0) {
		tok = strtok(NULL, " \t\r\n");
		if (tok == NULL || (strcmp(tok, "allow") != 0 && strcmp(tok, "deny") != 0))
			return -1;
		*is_default = 1;
		*default_allow = strcmp(tok, "allow") == 0;
		return strtok(NULL, " \t\r\n") == NULL ? 0 : -1;
	}
	if (strcmp(tok, "allow") == 0)
		r->allow = 1;
	else if (strcmp(tok, "deny") != 0)
		return -1;
	while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
		val = strtok(NULL, " \t\r\n");
		if (val == NULL)
			return -1;
		if (strcmp(tok, "proto") == 0) {
			if (strcmp(val, "udp") == 0)
				r->proto = IPPROTO_UDP;
			else if (strcmp(val, "tcp") == 0)
				r->proto = IPPROTO_TCP;
			else if (strcmp(val, "icmp") == 0)
				r->proto = IPPROTO_ICMP;
			else if (atoi(val) > 0 && atoi(val) < 256)
				r->proto = (uint8_t)atoi(val);
			else
				return -1;
		} else if (strcmp(tok, "src") == 0) {
			if (parse_net(val, &r->src, &r->src_mask) < 0)
				return -1;
		} else if (strcmp(tok, "dst") == 0) {
			if (parse_net(val, &r->dst, &r->dst_mask) < 0)
				return -1;
		} else if (strcmp(tok, "sport") == 0) {
			if (parse_range(val, &r->sport_lo, &r->sport_hi) < 0)
				return -1;
		} else if (strcmp(tok, "dport") == 0) {
			if (parse_range(val, &r->dport_lo, &r->dport_hi) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

static int
load_rules(struct fw *fw, const char *path)
{
	char line[512];
	unsigned int lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "firewall: cannot open rules file %s: %s\n", path, strerror(errno));
		return -1;
	}
	fw->default_allow = 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		int is_default, rc;
		char *hash = strchr(line, '#');

		lineno++;
		if (hash != NULL)
			*hash = '\0';
		if (fw->n == MAX_RULES) {
			fprintf(stderr, "firewall: %s: more than %d rules\n", path, MAX_RULES);
			fclose(f);
			return -1;
		}
		rc = parse_rule(line, &fw->rules[fw->n], &is_default, &fw->default_allow);
		if (rc < 0) {
			fprintf(stderr, "firewall: %s line %u: bad rule (allow|deny [proto P] [src "
				"CIDR] [dst CIDR] [sport N[-M]] [dport N[-M]], or default allow|deny)\n",
				path, lineno);
			fclose(f);
			return -1;
		}
		if (rc == 0 && !is_default)
			fw->n++;
	}
	fclose(f);
	return 0;
}

static int
allowed(const struct fw *fw, const struct rte_mbuf *m)
{
	struct onvm_5tuple t;
	unsigned int i;

	if (onvm_pkt_5tuple(m, &t) < 0)
		return fw->default_allow;
	for (i = 0; i < fw->n; i++) {
		const struct rule *r = &fw->rules[i];

		if ((r->proto == 0 || r->proto == t.proto) &&
		    (t.src_ip & r->src_mask) == r->src && (t.dst_ip & r->dst_mask) == r->dst &&
		    t.src_port >= r->sport_lo && t.src_port <= r->sport_hi &&
		    t.dst_port >= r->dport_lo && t.dst_port <= r->dport_hi)
			return r->allow;
	}
	return fw->default_allow;
}

static void
handler(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	const struct fw *fw = arg;
	uint16_t i;

	for (i = 0; i < n; i++)
		if (!allowed(fw, pkts[i]))
			onvm_pkt_drop(nf, pkts[i]);
}

int
main(int argc, char **argv)
{
	static struct fw fw;
	const char *rules = "/etc/onvm/fw.rules";
	struct onvm_nf *nf;
	int opt, rc;

	if (onvm_nf_init(&argc, &argv, "firewall", &nf) < 0)
		return 2;
	while ((opt = getopt(argc, argv, "r:h")) != -1) {
		if (opt == 'r') {
			rules = optarg;
			continue;
		}
		fprintf(stderr, "firewall [onvm options] -- [-r RULES_FILE]\n"
				"  -r FILE  rules (default /etc/onvm/fw.rules)\n");
		onvm_nf_fini(nf);
		return opt == 'h' ? 0 : 2;
	}
	if (load_rules(&fw, rules) < 0) {
		onvm_nf_fini(nf);
		return 2;
	}
	printf("firewall: %u rules, default %s\n", fw.n, fw.default_allow ? "allow" : "deny");
	fflush(stdout);
	rc = onvm_nf_run(nf, handler, &fw);
	onvm_nf_fini(nf);
	return rc;
}
