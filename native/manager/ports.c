/* SPDX-License-Identifier: BSD-3-Clause
 *
 * Ports: check what we are asked to take before the EAL sees it, then
 * configure and start them; add a vdev to a running manager.
 *
 * Safety rule, as dpdk-devbind has it: never take a device or interface
 * the machine itself uses.  A PCI device whose net interface is up, or an
 * interface (for af_packet/pcap/tap vdevs) that carries a route or an
 * address outside the lab ranges (198.18.0.0/15, link-local), is refused.
 */
#define _GNU_SOURCE            /* memmem */
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <rte_build_config.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "mgr.h"

#define RX_DESC 1024
#define TX_DESC 1024
#define MEMIF_CONNECT_TRIES 50     /* x 100 ms: how long a memif client waits for its server */

static bool
lab_v4(uint32_t host_order)
{
	return (host_order & 0xfffe0000u) == 0xc6120000u; /* 198.18.0.0/15 */
}

/* Does `iface` carry an IPv4 route outside the lab ranges (the default
 * route included), or an IPv6 route other than link-local/multicast? */
static bool
iface_has_route(const char *iface)
{
	char line[512], name[IF_NAMESIZE + 1], dst6[40];
	unsigned int dst, gw, flags, plen;
	bool found = false;
	FILE *f;

	f = fopen("/proc/net/route", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, "%16s %x %x %x", name, &dst, &gw, &flags) != 4)
				continue;
			if (strcmp(name, iface) == 0 && !(dst != 0 && lab_v4(ntohl(dst))))
				found = true;
		}
		fclose(f);
	}
	f = fopen("/proc/net/ipv6_route", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			char *dev = strrchr(line, ' ');

			if (sscanf(line, "%32s %x", dst6, &plen) != 2 || dev == NULL)
				continue;
			dev++;
			dev[strcspn(dev, "\n")] = '\0';
			if (strcmp(dev, iface) != 0)
				continue;
			if (strncmp(dst6, "fe80", 4) == 0 || strncmp(dst6, "ff", 2) == 0)
				continue;
			found = true;
		}
		fclose(f);
	}
	return found;
}

static bool
iface_has_foreign_addr(const char *iface)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || strcmp(i->ifa_name, iface) != 0)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);

			if (!lab_v4(a) && (a >> 24) != 127)
				found = true;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct in6_addr *a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			if (!IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_LOOPBACK(a))
				found = true;
		}
	}
	freeifaddrs(ifa);
	return found;
}

static int
check_iface(const char *iface, bool must_exist, char *err, size_t errlen)
{
	if (if_nametoindex(iface) == 0) {
		if (!must_exist)
			return 0;
		snprintf(err, errlen, "interface '%s' does not exist", iface);
		return -1;
	}
	if (strcmp(iface, "lo") == 0 || iface_has_route(iface) || iface_has_foreign_addr(iface)) {
		snprintf(err, errlen,
			 "refusing interface '%s': it carries routes or addresses of this machine "
			 "(only interfaces with no address outside 198.18.0.0/15 may be taken)",
			 iface);
		return -1;
	}
	return 0;
}

static bool
is_pci_addr(const char *s)
{
	unsigned int d, b, dev, fn;
	char tail;

	return sscanf(s, "%x:%x:%x.%x%c", &d, &b, &dev, &fn, &tail) == 4 ||
	       sscanf(s, "%x:%x.%x%c", &b, &dev, &fn, &tail) == 3;
}

/* Is `iface` backed by the PCI device whose sysfs path is `devpath`
 * (directly, or through a child device such as virtioN)? */
static bool
iface_on_device(const char *iface, const char *devpath)
{
	char link[512], real[PATH_MAX];
	size_t n = strlen(devpath);

	snprintf(link, sizeof(link), "/sys/class/net/%s/device", iface);
	if (realpath(link, real) == NULL)
		return false;
	return strncmp(real, devpath, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int
check_pci(const char *addr, char *err, size_t errlen)
{
	char path[512], devpath[PATH_MAX], full[32];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (strlen(addr) < 12)
		snprintf(full, sizeof(full), "0000:%s", addr);
	else
		snprintf(full, sizeof(full), "%s", addr);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", full);
	if (realpath(path, devpath) == NULL) {
		snprintf(err, errlen, "unknown PCI device '%s' (no %s)", addr, path);
		return -1;
	}
	d = opendir("/sys/class/net");
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && rc == 0) {
		char state[32] = "";
		FILE *f;

		if (de->d_name[0] == '.' || !iface_on_device(de->d_name, devpath))
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/operstate", de->d_name);
		f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(state, sizeof(state), f) == NULL)
				state[0] = '\0';
			fclose(f);
		}
		if (strncmp(state, "up", 2) == 0 || iface_has_route(de->d_name) ||
		    iface_has_foreign_addr(de->d_name)) {
			snprintf(err, errlen,
				 "refusing PCI device %s: it backs interface '%s' which is up or "
				 "carries routes (the machine's own NIC)", full, de->d_name);
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* Value of key `k` in a "drv,k1=v1,k2=v2" vdev string into out. */
static bool
kv_get(const char *spec, const char *k, char *out, size_t outlen)
{
	const char *p = strchr(spec, ',');
	size_t kl = strlen(k);

	while (p != NULL) {
		p++;
		if (strncmp(p, k, kl) == 0 && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, ",");

			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p + kl + 1, n);
			out[n] = '\0';
			return true;
		}
		p = strchr(p, ',');
	}
	return false;
}

/* Does the PMD shared object at `path` name the driver (its embedded
 * PMD_INFO_STRING, which dpdk-pmdinfo reads too)? */
static bool
pmd_file_names(const char *path, const char *needle)
{
	struct stat st;
	bool found = false;
	void *map;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			found = memmem(map, (size_t)st.st_size, needle, strlen(needle)) != NULL;
			munmap(map, (size_t)st.st_size);
		}
	}
	close(fd);
	return found;
}

/* 1: this binary has a vdev driver `drv` (net_af_packet, net_memif, ...);
 * 0: it has none by that name; -1: cannot tell.  A static build carries
 * its drivers' PMD_INFO_STRINGs itself; a shared one loads them from the
 * PMD directory. */
static int
vdev_driver_known(const char *drv)
{
	char needle[96], path[PATH_MAX];
	const char *dir = RTE_EAL_PMD_PATH;
	struct dirent *de;
	int known = 0;
	DIR *d;

	snprintf(needle, sizeof(needle), "PMD_INFO_STRING= {\"name\": \"%s\"", drv);
	if (pmd_file_names("/proc/self/exe", needle))
		return 1;
	if (pmd_file_names("/proc/self/exe", "PMD_INFO_STRING= {\"name\": \"net_"))
		return 0;
	if (dir[0] == '\0' || (d = opendir(dir)) == NULL)
		return -1;
	while (known == 0 && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "librte_net_", 11) != 0 || de->d_type == DT_LNK)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (pmd_file_names(path, needle))
			known = 1;
	}
	closedir(d);
	return known;
}

/* The driver of a vdev is its device name without the instance number
 * (net_af_packet0 -> net_af_packet). */
static int
check_vdev_driver(const struct mgr_port *p, char *err, size_t errlen)
{
	char drv[sizeof(p->devname)];
	size_t n = strlen(p->devname);

	memcpy(drv, p->devname, n + 1);
	while (n > 4 && drv[n - 1] >= '0' && drv[n - 1] <= '9')
		drv[--n] = '\0';
	if (vdev_driver_known(drv) != 0)
		return 0;
	snprintf(err, errlen, "unknown port '%s': this onvm-mgr has no DPDK vdev driver '%s'",
		 p->spec, drv);
	return -1;
}

int
ports_check_spec(struct mgr_port *p, char *err, size_t errlen)
{
	static const char *iface_keys[] = { "iface", "rx_iface", "tx_iface", "rx_iface_in" };
	char iface[IF_NAMESIZE + 8];
	size_t n;
	unsigned int i;

	if (is_pci_addr(p->spec)) {
		p->kind = PORT_PCI;
		if (strlen(p->spec) >= sizeof(p->devname)) {
			snprintf(err, errlen, "bad PCI address '%s'", p->spec);
			return -1;
		}
		memcpy(p->devname, p->spec, strlen(p->spec) + 1);
		return check_pci(p->spec, err, errlen);
	}
	p->kind = PORT_VDEV;
	n = strcspn(p->spec, ",");
	if (strncmp(p->spec, "net_", 4) != 0 || n < 5 || n >= sizeof(p->devname)) {
		snprintf(err, errlen,
			 "unknown port '%s': give a PCI address (0000:03:00.0) or a DPDK vdev "
			 "(net_af_packet0,iface=veth0 / net_memif0,... / net_null0)", p->spec);
		return -1;
	}
	memcpy(p->devname, p->spec, n);
	p->devname[n] = '\0';
	if (check_vdev_driver(p, err, errlen) < 0)
		return -1;
	for (i = 0; i < RTE_DIM(iface_keys); i++) {
		if (!kv_get(p->spec, iface_keys[i], iface, sizeof(iface)))
			continue;
		/* af_packet and pcap open an existing interface; tap makes one. */
		if (check_iface(iface, strncmp(p->spec, "net_tap", 7) != 0, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* A memif client's start connects to its server, which may be starting
 * too (the peer manager started at the same time, or restarting): it is
 * given a bounded time to appear. */
static int
start_port(uint16_t id, const char *spec)
{
	int tries = strstr(spec, "net_memif") != NULL && strstr(spec, "role=client") != NULL ?
		    MEMIF_CONNECT_TRIES : 1;
	int rc;

	while ((rc = rte_eth_dev_start(id)) != 0 && --tries > 0)
		rte_delay_us_sleep(100 * 1000);
	return rc;
}

/* Configure and start port i (created by the EAL or by ports_add). */
static int
port_setup(struct mgr *m, unsigned int i, char *err, size_t errlen)
{
	struct rte_eth_conf conf = { 0 };
	struct mgr_port *p = &m->ports[i];
	uint16_t id;
	int rc, sock;

	if (rte_eth_dev_get_port_by_name(p->devname, &id) != 0) {
		snprintf(err, errlen, "port '%s' was not created by DPDK (unknown driver or "
			 "bad arguments; see the EAL messages above)", p->spec);
		return -1;
	}
	p->dpdk_id = id;
	sock = rte_eth_dev_socket_id(id);
	if (sock < 0)
		sock = (int)rte_socket_id();
	rc = rte_eth_dev_configure(id, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(id, 0, RX_DESC, (unsigned int)sock, NULL,
					    onvm_pool(m->sh, sock));
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(id, 0, TX_DESC, (unsigned int)sock, NULL);
	if (rc == 0)
		rc = start_port(id, p->spec);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start port '%s': %s", p->spec, rte_strerror(-rc));
		return -1;
	}
	rte_eth_promiscuous_enable(id);
	snprintf(m->sh->port_name[i], ONVM_NAME_LEN, "%s", p->devname);
	return 0;
}

int
ports_start(struct mgr *m, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < m->n_ports; i++)
		if (port_setup(m, i, err, errlen) < 0)
			return -1;
	m->sh->n_ports = m->n_ports;
	return 0;
}

/* Hot-add: the vdev is created (rte_dev_probe: the NFs, secondaries, attach
 * it too, or it is undone), started, and only then counted in n_ports, which
 * the data lcore reads once per round: it never sees a half-made port. */
int
ports_add(struct mgr *m, const char *spec, char *err, size_t errlen)
{
	unsigned int i = m->n_ports, j;
	struct mgr_port *p = &m->ports[i];
	int rc;

	if (i == ONVM_MAX_PORTS) {
		snprintf(err, errlen, "at most %d ports", ONVM_MAX_PORTS);
		return -1;
	}
	if (strlen(spec) >= sizeof(p->spec)) {
		snprintf(err, errlen, "port spec too long");
		return -1;
	}
	if (is_pci_addr(spec)) {
		snprintf(err, errlen, "'%s': a PCI device is added with a manager restart "
			 "(only vdevs are hot-added)", spec);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	memcpy(p->spec, spec, strlen(spec) + 1);
	if (ports_check_spec(p, err, errlen) < 0)
		return -1;
	for (j = 0; j < i; j++) {
		if (strcmp(m->ports[j].devname, p->devname) == 0) {
			snprintf(err, errlen, "'%s': port%u is already %s", spec, j, p->devname);
			return -1;
		}
	}
	rc = rte_dev_probe(spec);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create port '%s': %s", spec, rte_strerror(-rc));
		return -1;
	}
	if (port_setup(m, i, err, errlen) < 0) {
		uint16_t id;

		if (rte_eth_dev_get_port_by_name(p->devname, &id) == 0)
			rte_eth_dev_close(id);
		rte_eal_hotplug_remove("vdev", p->devname);
		m->sh->port_name[i][0] = '\0';
		return -1;
	}
	__atomic_store_n(&m->sh->n_ports, i + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&m->n_ports, i + 1, __ATOMIC_RELEASE);
	mgr_wake_lcore(m);
	return (int)i;
}

void
ports_stop(struct mgr *m)
{
	unsigned int i;

	for (i = 0; i < m->n_ports; i++) {
		rte_eth_dev_stop(m->ports[i].dpdk_id);
		rte_eth_dev_close(m->ports[i].dpdk_id);
	}
}
