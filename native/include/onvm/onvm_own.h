/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The one rule for "is this NIC or interface the machine's own?", used by
 * onvm-mgr (every --port and every port_add) and, through the onvm-own
 * tool, by the onvm.nfv.dpdk_bind module.  DPDK-free.
 *
 * An interface belongs to the machine when it is the loopback interface,
 * carries a route (IPv4: any, the default route included; IPv6: any but
 * link-local and multicast) or has an address (IPv4: any but 127/8; IPv6:
 * any but link-local and ::1).  A PCI device belongs to it when an
 * interface it backs (directly or through a child such as virtioN) is up
 * or belongs to it.  No address range is exempt: the lab's ports carry no
 * address at all, and so does any NIC given to DPDK on a real host.
 *
 * Routes are read from <procfs>/net/route and <procfs>/net/ipv6_route,
 * devices and interfaces from <sysfs>; addresses come from getifaddrs()
 * in the caller's network namespace.
 */
#ifndef ONVM_OWN_H
#define ONVM_OWN_H

#include <stdbool.h>
#include <stddef.h>

struct onvm_own_roots {
	const char *sysfs;      /* "/sys" */
	const char *procfs;     /* "/proc" */
};

extern const struct onvm_own_roots onvm_own_system;

/* Return values of the checks below; `msg` says why for the last two. */
enum onvm_own {
	ONVM_OWN_FREE = 0,      /* may be taken */
	ONVM_OWN_MACHINE = 1,   /* the machine's own: refused */
	ONVM_OWN_INVALID = 2,   /* no such device or interface, or a bad spec */
};

/* Why `iface` belongs to the machine ("it is up; it carries routes
 * (default)"), written to why; false (and why empty) when it does not.
 * The up state counts only with check_up. */
bool onvm_own_iface_reasons(const struct onvm_own_roots *r, const char *iface, bool check_up,
			    char *why, size_t len);

/* An interface a vdev opens (af_packet, pcap): it must exist unless
 * may_create (tap makes its own). */
enum onvm_own onvm_own_iface(const struct onvm_own_roots *r, const char *iface, bool may_create,
			     char *msg, size_t len);

/* A PCI device, full (0000:03:00.0) or short (03:00.0) address. */
enum onvm_own onvm_own_pci(const struct onvm_own_roots *r, const char *addr, char *msg,
			   size_t len);

/* A port as onvm-mgr's --port takes it: a PCI address, or a vdev whose
 * iface=, rx_iface=, tx_iface= and rx_iface_in= name the interfaces it
 * opens.  Only ownership is checked here, not whether DPDK has the driver. */
enum onvm_own onvm_own_port(const struct onvm_own_roots *r, const char *spec, char *msg,
			    size_t len);

/* Is s a PCI address (full or short form)? */
bool onvm_own_is_pci(const char *s);

#endif
