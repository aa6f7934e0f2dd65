/* SPDX-License-Identifier: BSD-3-Clause
 *
 * Ports: check what we are asked to take before the EAL sees it, then
 * configure and start them; add a vdev to a running manager.
 *
 * Safety rule, as dpdk-devbind has it: never take a device or interface
 * the machine itself uses (onvm_own.h, shared with the onvm-own tool).
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

#include "onvm/onvm_own.h"

#include "mgr.h"

#define RX_DESC 1024
#define TX_DESC 1024
#define MEMIF_CONNECT_TRIES 50     /* x 100 ms: how long a memif client waits for its server */

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
	size_t n;

	if (onvm_own_is_pci(p->spec)) {
		p->kind = PORT_PCI;
		if (strlen(p->spec) >= sizeof(p->devname)) {
			snprintf(err, errlen, "bad PCI address '%s'", p->spec);
			return -1;
		}
		memcpy(p->devname, p->spec, strlen(p->spec) + 1);
	} else {
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
	}
	return onvm_own_port(&onvm_own_system, p->spec, err, errlen) == ONVM_OWN_FREE ? 0 : -1;
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
	if (onvm_own_is_pci(spec)) {
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
