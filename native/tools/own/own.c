/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm-own: may this port be given to DPDK, or is it the machine's own?
 * The rule onvm-mgr applies to its ports (onvm_own.h), for the
 * onvm.nfv.dpdk_bind module and for operators.
 *
 *   onvm-own [--sysfs DIR] [--procfs DIR] SPEC
 *
 * SPEC is what onvm-mgr's --port takes: a PCI address or a DPDK vdev.
 * Exit 0: free (prints nothing); 1: the machine's own; 2: no such device
 * or interface, or not a port; 64: usage.  The reason is on stdout.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onvm/onvm_own.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: onvm-own [--sysfs DIR] [--procfs DIR] PORT\n"
		"\n"
		"Says whether PORT (a PCI address such as 0000:03:00.0, or a DPDK vdev such as\n"
		"net_af_packet0,iface=veth0) may be given to DPDK, by onvm-mgr's own rule:\n"
		"an interface with an address (other than loopback or IPv6 link-local) or a\n"
		"route (other than IPv6 link-local or multicast), the loopback interface, and a\n"
		"PCI device backing an interface that is up or is one of those, are the\n"
		"machine's own.\n"
		"\n"
		"  --sysfs DIR    sysfs root (default /sys)\n"
		"  --procfs DIR   procfs root, for the routing tables (default /proc)\n"
		"\n"
		"exit status: 0 free, 1 the machine's own, 2 no such device or interface or\n"
		"not a port, 64 usage; the reason is printed on stdout.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sysfs", required_argument, NULL, 's' },
		{ "procfs", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct onvm_own_roots roots = onvm_own_system;
	char msg[1024] = "";
	enum onvm_own rc;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			roots.sysfs = optarg;
			break;
		case 'p':
			roots.procfs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 64;
	}
	rc = onvm_own_port(&roots, argv[optind], msg, sizeof(msg));
	if (msg[0] != '\0')
		printf("%s\n", msg);
	return (int)rc;
}
