/* SPDX-License-Identifier: BSD-3-Clause
 *
 * Is a NIC or interface the machine's own?  The rule is in onvm_own.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onvm/onvm_own.h"

#define MAX_LISTED 4    /* routes or addresses named in a reason */

const struct onvm_own_roots onvm_own_system = { .sysfs = "/sys", .procfs = "/proc" };

/* A bounded string being appended to. */
struct text {
	char *buf;
	size_t len;
	size_t used;
};

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len == 0 || t->used >= t->len - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

/* A list of up to MAX_LISTED items, "a, b, c, d, ..." */
struct list {
	char items[512];
	size_t used;
	unsigned int n;
};

static void
list_add(struct list *l, const char *item)
{
	int w;

	if (l->n++ >= MAX_LISTED) {
		if (l->n == MAX_LISTED + 1 && l->used + 6 < sizeof(l->items))
			l->used += (size_t)snprintf(l->items + l->used, sizeof(l->items) - l->used, ", ...");
		return;
	}
	w = snprintf(l->items + l->used, sizeof(l->items) - l->used, "%s%s", l->n > 1 ? ", " : "",
		     item);
	if (w > 0 && l->used + (size_t)w < sizeof(l->items))
		l->used += (size_t)w;
}

static void
routes_v4(const struct onvm_own_roots *r, const char *iface, struct list *out)
{
	char path[PATH_MAX], line[512], name[IF_NAMESIZE + 1], item[64], a[INET_ADDRSTRLEN];
	unsigned int dst, gw, flags, refcnt, use, metric, mask;
	FILE *f;

	snprintf(path, sizeof(path), "%s/net/route", r->procfs);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		struct in_addr in;

		if (sscanf(line, "%16s %x %x %x %u %u %u %x", name, &dst, &gw, &flags, &refcnt, &use,
			   &metric, &mask) != 8 || strcmp(name, iface) != 0)
			continue;
		/* The kernel prints the network-order word as a host-order number. */
		in.s_addr = dst;
		if (dst == 0) {
			snprintf(item, sizeof(item), "default");
		} else {
			inet_ntop(AF_INET, &in, a, sizeof(a));
			snprintf(item, sizeof(item), "%s/%d", a, __builtin_popcount(mask));
		}
		list_add(out, item);
	}
	fclose(f);
}

static bool
hex_to_in6(const char *hex, struct in6_addr *a)
{
	unsigned int i, byte;

	if (strlen(hex) != 32)
		return false;
	for (i = 0; i < 16; i++) {
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return false;
		a->s6_addr[i] = (uint8_t)byte;
	}
	return true;
}

static void
routes_v6(const struct onvm_own_roots *r, const char *iface, struct list *out)
{
	char path[PATH_MAX], line[512], hex[40], item[64], a[INET6_ADDRSTRLEN];
	unsigned int plen;
	FILE *f;

	snprintf(path, sizeof(path), "%s/net/ipv6_route", r->procfs);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *dev = strrchr(line, ' ');
		struct in6_addr in6;

		if (sscanf(line, "%32s %x", hex, &plen) != 2 || dev == NULL)
			continue;
		dev++;
		dev[strcspn(dev, "\n")] = '\0';
		if (strcmp(dev, iface) != 0 || !hex_to_in6(hex, &in6))
			continue;
		if (IN6_IS_ADDR_LINKLOCAL(&in6) || IN6_IS_ADDR_MULTICAST(&in6))
			continue;
		inet_ntop(AF_INET6, &in6, a, sizeof(a));
		snprintf(item, sizeof(item), "%s/%u", a, plen);
		list_add(out, item);
	}
	fclose(f);
}

static void
addresses(const char *iface, struct list *out)
{
	struct ifaddrs *ifa, *i;
	char a[INET6_ADDRSTRLEN];

	if (getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || strcmp(i->ifa_name, iface) != 0)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct in_addr *in = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;

			if ((ntohl(in->s_addr) >> 24) == 127)
				continue;
			inet_ntop(AF_INET, in, a, sizeof(a));
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct in6_addr *in6 = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			if (IN6_IS_ADDR_LINKLOCAL(in6) || IN6_IS_ADDR_LOOPBACK(in6))
				continue;
			inet_ntop(AF_INET6, in6, a, sizeof(a));
		} else {
			continue;
		}
		list_add(out, a);
	}
	freeifaddrs(ifa);
}

static bool
read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (f == NULL)
		return false;
	ok = fgets(out, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = '\0';
	return ok;
}

static bool
iface_exists(const struct onvm_own_roots *r, const char *iface)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/class/net/%s", r->sysfs, iface);
	return lstat(path, &st) == 0;
}

bool
onvm_own_iface_reasons(const struct onvm_own_roots *r, const char *iface, bool check_up,
		       char *why, size_t len)
{
	struct text t = { .buf = why, .len = len };
	struct list routes = { .n = 0 }, addrs = { .n = 0 };
	char path[PATH_MAX], state[32];

	if (len > 0)
		why[0] = '\0';
	if (strcmp(iface, "lo") == 0)
		text_add(&t, "it is the loopback interface");
	snprintf(path, sizeof(path), "%s/class/net/%s/operstate", r->sysfs, iface);
	if (check_up && read_line(path, state, sizeof(state)) && strcmp(state, "up") == 0)
		text_add(&t, "%sit is up", t.used ? "; " : "");
	routes_v4(r, iface, &routes);
	routes_v6(r, iface, &routes);
	if (routes.n > 0)
		text_add(&t, "%sit carries routes (%s)", t.used ? "; " : "", routes.items);
	addresses(iface, &addrs);
	if (addrs.n > 0)
		text_add(&t, "%sit has addresses (%s)", t.used ? "; " : "", addrs.items);
	return t.used > 0;
}

enum onvm_own
onvm_own_iface(const struct onvm_own_roots *r, const char *iface, bool may_create, char *msg,
	       size_t len)
{
	char why[768];

	if (!iface_exists(r, iface)) {
		if (may_create)
			return ONVM_OWN_FREE;
		snprintf(msg, len, "interface '%s' does not exist", iface);
		return ONVM_OWN_INVALID;
	}
	if (!onvm_own_iface_reasons(r, iface, false, why, sizeof(why)))
		return ONVM_OWN_FREE;
	snprintf(msg, len,
		 "refusing interface '%s': %s (only an interface with no address and no route "
		 "may be taken)", iface, why);
	return ONVM_OWN_MACHINE;
}

bool
onvm_own_is_pci(const char *s)
{
	unsigned int d, b, dev, fn;
	char tail;

	return sscanf(s, "%x:%x:%x.%x%c", &d, &b, &dev, &fn, &tail) == 4 ||
	       sscanf(s, "%x:%x.%x%c", &b, &dev, &fn, &tail) == 3;
}

/* Is the interface's resolved device directory `devpath` or below it? */
static bool
iface_on_device(const struct onvm_own_roots *r, const char *iface, const char *devpath)
{
	char link[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(devpath);

	snprintf(link, sizeof(link), "%s/class/net/%s/device", r->sysfs, iface);
	if (realpath(link, real) == NULL)
		return false;
	return strncmp(real, devpath, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

enum onvm_own
onvm_own_pci(const struct onvm_own_roots *r, const char *addr, char *msg, size_t len)
{
	char path[PATH_MAX], devpath[PATH_MAX], full[32], why[768];
	enum onvm_own rc = ONVM_OWN_FREE;
	struct dirent *de;
	DIR *d;

	if (!onvm_own_is_pci(addr) || strlen(addr) > 13) {
		snprintf(msg, len, "'%s' is not a PCI address", addr);
		return ONVM_OWN_INVALID;
	}
	snprintf(full, sizeof(full), "%s%s", strlen(addr) < 12 ? "0000:" : "", addr);
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", r->sysfs, full);
	if (realpath(path, devpath) == NULL) {
		snprintf(msg, len, "unknown PCI device '%s' (no %s)", addr, path);
		return ONVM_OWN_INVALID;
	}
	snprintf(path, sizeof(path), "%s/class/net", r->sysfs);
	d = opendir(path);
	if (d == NULL)
		return ONVM_OWN_FREE;
	while (rc == ONVM_OWN_FREE && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !iface_on_device(r, de->d_name, devpath))
			continue;
		if (onvm_own_iface_reasons(r, de->d_name, true, why, sizeof(why))) {
			snprintf(msg, len,
				 "refusing PCI device %s: it backs interface '%s' and %s "
				 "(the machine's own NIC)", full, de->d_name, why);
			rc = ONVM_OWN_MACHINE;
		}
	}
	closedir(d);
	return rc;
}

/* Value of key `k` in a "drv,k1=v1,k2=v2" spec. */
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

enum onvm_own
onvm_own_port(const struct onvm_own_roots *r, const char *spec, char *msg, size_t len)
{
	static const char *iface_keys[] = { "iface", "rx_iface", "tx_iface", "rx_iface_in" };
	char iface[IF_NAMESIZE + 8];
	enum onvm_own rc;
	unsigned int i;

	if (onvm_own_is_pci(spec))
		return onvm_own_pci(r, spec, msg, len);
	if (strncmp(spec, "net_", 4) != 0) {
		snprintf(msg, len,
			 "unknown port '%s': give a PCI address (0000:03:00.0) or a DPDK vdev "
			 "(net_af_packet0,iface=veth0 / net_memif0,... / net_null0)", spec);
		return ONVM_OWN_INVALID;
	}
	for (i = 0; i < sizeof(iface_keys) / sizeof(iface_keys[0]); i++) {
		if (!kv_get(spec, iface_keys[i], iface, sizeof(iface)))
			continue;
		/* af_packet and pcap open an existing interface; tap makes one. */
		rc = onvm_own_iface(r, iface, strncmp(spec, "net_tap", 7) == 0, msg, len);
		if (rc != ONVM_OWN_FREE)
			return rc;
	}
	return ONVM_OWN_FREE;
}
