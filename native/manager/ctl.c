/* SPDX-License-Identifier: BSD-3-Clause
 *
 * The control socket: Unix stream socket, mode 0600, one JSON object per
 * line in, one per line out.  Protocol: native/README.md.  Runs in the
 * control thread with the stats period and the reclaim of dead NFs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_mempool.h>

#include "onvm/onvm_ctl.h"
#include "onvm/onvm_pkt.h"

#include "mgr.h"

#define MAX_CLIENTS 256
#define STATS_PERIOD_MS 100

struct client {
	int fd;
	int inst;                 /* instance registered on it, -1 none */
	bool contained;           /* peer in another PID namespace: may only register */
	size_t used;
	char buf[ONVM_CTL_MAX_LINE];
};

static struct client *clients[MAX_CLIENTS];

int
ctl_open(struct mgr *m, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int fd, rc;

	if (strlen(m->ctl_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", m->ctl_path);
		return -1;
	}
	memcpy(sa.sun_path, m->ctl_path, strlen(m->ctl_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	unlink(m->ctl_path);   /* stale: main() checked no manager answers on it */
	/* root's only from its creation on: no window with the umask's mode */
	old_mask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (rc < 0 || chmod(m->ctl_path, 0600) < 0 || listen(fd, 64) < 0)
		goto fail;
	m->ctl_listen_fd = fd;
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", m->ctl_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

void
ctl_close(struct mgr *m)
{
	unsigned int i;

	for (i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i] != NULL) {
			close(clients[i]->fd);
			free(clients[i]);
			clients[i] = NULL;
		}
	}
	if (m->ctl_listen_fd >= 0) {
		close(m->ctl_listen_fd);
		m->ctl_listen_fd = -1;
		unlink(m->ctl_path);
	}
}

static json_t *
error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *
error_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static const char *
state_name(uint32_t s)
{
	static const char *names[] = { "free", "starting", "running", "draining", "dead" };

	return s < RTE_DIM(names) ? names[s] : "?";
}

/* ---- commands ----------------------------------------------------------- */

static json_t *
cmd_status(struct mgr *m)
{
	struct onvm_shared *sh = m->sh;
	json_t *ports = json_array();
	unsigned int i, nfs = 0;

	for (i = 0; i < m->n_ports; i++) {
		const struct mgr_port *p = &m->ports[i];

		json_array_append_new(ports,
			json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", (int)i,
				  "name", p->devname, "spec", p->spec, "rx", (json_int_t)p->rx,
				  "tx", (json_int_t)p->tx, "tx_drop", (json_int_t)p->tx_drop,
				  "no_chain", (json_int_t)p->no_chain,
				  "steer_drop", (json_int_t)p->steer_drop));
	}
	for (i = 0; i < ONVM_MAX_INSTANCES; i++)
		nfs += sh->inst[i].state == ONVM_INST_RUNNING;
	return json_pack("{s:b, s:s, s:i, s:o, s:{s:I, s:I}, s:i, s:i, s:I, s:I, s:s}", "ok", 1,
			 "host", m->host, "pid", (int)getpid(), "ports", ports, "pool", "size",
			 (json_int_t)mgr_pool_size(m), "avail",
			 (json_int_t)mgr_pool_avail(m), "nfs", (int)nfs, "chains",
			 (int)sh->tables[sh->table_active].n, "flows",
			 (json_int_t)rte_hash_count(m->flow_hash), "reclaimed",
			 (json_int_t)m->reclaimed, "stats_file", m->stats_path);
}

static json_t *
cmd_nf_list(struct mgr *m)
{
	json_t *list = json_array();
	unsigned int i;

	for (i = 0; i < ONVM_MAX_INSTANCES; i++) {
		const struct onvm_inst *in = &m->sh->inst[i];

		if (in->state == ONVM_INST_FREE)
			continue;
		json_array_append_new(list,
			json_pack("{s:i, s:s, s:i, s:s, s:b, s:s?, s:I, s:I, s:I, s:I, s:i, s:i, s:I, s:i, s:b}",
				  "instance", (int)i, "service", m->sh->svc[in->service].name,
				  "pid", (int)in->pid, "state", state_name(in->state),
				  "shared_core", (in->flags & ONVM_INST_F_SHARED_CORE) != 0,
				  "remote_host", (in->flags & ONVM_INST_F_REMOTE) ?
				  m->inst[i].remote_host : NULL,
				  "rx", (json_int_t)in->c.rx, "tx", (json_int_t)in->c.tx,
				  "dropped", (json_int_t)in->c.dropped,
				  "rx_drop", (json_int_t)in->rx_drop, "flows", (int)in->flows,
				  "load_pct", (int)in->load_pct, "processed", (json_int_t)in->c.processed,
				  "rx_ring", (int)rte_ring_count(in->rx),
				  "evicted", (in->flags & ONVM_INST_F_EVICTED) != 0));
	}
	return json_pack("{s:b, s:o}", "ok", 1, "nfs", list);
}

static json_t *
cmd_register(struct mgr *m, struct client *c, json_t *req)
{
	const char *service = json_string_value(json_object_get(req, "service"));
	bool shared = json_is_true(json_object_get(req, "shared_core"));
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char err[256];
	int id, pid = -1;

	if (service == NULL)
		return error_reply("register: 'service' (string) is required");
	if (c->inst >= 0)
		return error_reply("register: this connection already holds instance %d", c->inst);
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		pid = cred.pid;
	id = tables_register(m, c->fd, service, pid, shared, err, sizeof(err));
	if (id < 0)
		return error_reply("register: %s", err);
	c->inst = id;
	fprintf(stderr, "onvm-mgr: instance %d registered as '%s' (pid %d)\n", id, service, pid);
	return json_pack("{s:b, s:i, s:i}", "ok", 1, "instance", id, "service_id",
			 (int)m->sh->inst[id].service);
}

static json_t *
cmd_service_add(struct mgr *m, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	char err[256];
	int id;

	if (name == NULL || !onvm_name_ok(name))
		return error_reply("service_add: 'name' must be 1-31 characters of [A-Za-z0-9_.-]");
	id = tables_service_add(m, name, err, sizeof(err));
	if (id < 0)
		return error_reply("service_add: %s", err);
	return json_pack("{s:b, s:i}", "ok", 1, "service_id", id);
}

static int
port_by_name(const struct mgr *m, const char *name)
{
	int v = onvm_port_index(name);
	unsigned int i;

	if (v >= 0)
		return v < (int)m->n_ports ? v : -1;
	for (i = 0; i < m->n_ports; i++)
		if (strcmp(m->ports[i].devname, name) == 0)
			return (int)i;
	return -1;
}

static int
json_port(const struct mgr *m, json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 && json_integer_value(v) < m->n_ports
			       ? (int)json_integer_value(v) : -1;
	if (json_is_string(v))
		return port_by_name(m, json_string_value(v));
	return -1;
}

static json_t *
parse_match(const struct mgr *m, json_t *jm, struct onvm_match *mt)
{
	const char *key;
	json_t *v;

	*mt = (struct onvm_match){ .in_port = 0xff };
	if (jm == NULL || json_is_null(jm))
		return NULL;
	if (!json_is_object(jm))
		return error_reply("chain_set: 'match' must be an object");
	json_object_foreach(jm, key, v) {
		if (strcmp(key, "in_port") == 0) {
			int p = json_port(m, v);

			if (p < 0)
				return error_reply("chain_set: match.in_port: unknown port");
			mt->in_port = (uint8_t)p;
		} else if (strcmp(key, "proto") == 0) {
			const char *s = json_string_value(v);

			if (s != NULL && strcmp(s, "udp") == 0)
				mt->proto = IPPROTO_UDP;
			else if (s != NULL && strcmp(s, "tcp") == 0)
				mt->proto = IPPROTO_TCP;
			else if (s != NULL && strcmp(s, "icmp") == 0)
				mt->proto = IPPROTO_ICMP;
			else if (json_is_integer(v) && json_integer_value(v) > 0 &&
				 json_integer_value(v) < 256)
				mt->proto = (uint8_t)json_integer_value(v);
			else
				return error_reply("chain_set: match.proto: udp, tcp, icmp or 1-255");
		} else if (strcmp(key, "src_port") == 0 || strcmp(key, "dst_port") == 0) {
			json_int_t p = json_integer_value(v);

			if (!json_is_integer(v) || p < 1 || p > 65535)
				return error_reply("chain_set: match.%s: an integer 1-65535", key);
			*(key[0] == 's' ? &mt->src_port : &mt->dst_port) = (uint16_t)p;
		} else if (strcmp(key, "src") == 0 || strcmp(key, "dst") == 0) {
			const char *s = json_string_value(v);
			bool src = key[0] == 's';

			if (s == NULL || onvm_parse_cidr(s, src ? &mt->src_ip : &mt->dst_ip,
						     src ? &mt->src_len : &mt->dst_len) < 0)
				return error_reply("chain_set: match.%s: an IPv4 address or CIDR",
						   key);
		} else {
			return error_reply("chain_set: match: unknown key '%s' (in_port, proto, "
					   "src, dst, src_port, dst_port)", key);
		}
	}
	return NULL;
}

/* The NSH path id of a chain named `name` when none is given: FNV-1a of the
 * name in 24 bits, the same on every host. */
static uint32_t
default_spi(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	h &= 0xffffff;
	return h != 0 ? h : 1;
}

static json_t *
cmd_chain_set(struct mgr *m, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *svcs = json_object_get(req, "services"), *eg = json_object_get(req, "egress");
	uint16_t ids[ONVM_MAX_CHAIN_LEN];
	struct onvm_match mt;
	json_t *bad, *v, *jspi, *jing;
	size_t i;
	int egress = 0xff, slot;
	uint32_t spi;

	if (name == NULL || !onvm_name_ok(name))
		return error_reply("chain_set: 'name' must be 1-31 characters of [A-Za-z0-9_.-]");
	if (!json_is_array(svcs) || json_array_size(svcs) == 0 ||
	    json_array_size(svcs) > ONVM_MAX_CHAIN_LEN)
		return error_reply("chain_set: 'services' must be a list of 1 to %d service names",
				   ONVM_MAX_CHAIN_LEN);
	json_array_foreach(svcs, i, v) {
		const char *s = json_string_value(v);
		int id = s != NULL ? tables_service_find(m, s) : -1;

		if (id < 0)
			return error_reply("chain_set: unknown service '%s' in chain '%s' (start an "
					   "instance or service_add it first)",
					   s != NULL ? s : "(not a string)", name);
		ids[i] = (uint16_t)id;
	}
	if (eg != NULL && !json_is_null(eg)) {
		egress = json_port(m, eg);
		if (egress < 0)
			return error_reply("chain_set: unknown egress port in chain '%s'", name);
	}
	bad = parse_match(m, json_object_get(req, "match"), &mt);
	if (bad != NULL)
		return bad;
	jspi = json_object_get(req, "spi");
	if (jspi != NULL && (!json_is_integer(jspi) || json_integer_value(jspi) < 1 ||
			     json_integer_value(jspi) > 0xffffff))
		return error_reply("chain_set: 'spi' must be an integer 1-16777215");
	spi = jspi != NULL ? (uint32_t)json_integer_value(jspi) : default_spi(name);
	jing = json_object_get(req, "ingress");
	if (jing != NULL && !json_is_boolean(jing))
		return error_reply("chain_set: 'ingress' must be true or false");
	slot = tables_chain_set(m, name, ids, (unsigned int)json_array_size(svcs), &mt,
				(uint8_t)egress, spi, jing == NULL || json_is_true(jing));
	if (slot < 0)
		return error_reply("chain_set: chain table full (%d chains)", ONVM_MAX_CHAINS);
	return json_pack("{s:b, s:i, s:i}", "ok", 1, "slot", slot, "version",
			 (int)m->sh->chains[slot].version);
}

static json_t *
cmd_chain_del(struct mgr *m, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));

	if (name == NULL)
		return error_reply("chain_del: 'name' (string) is required");
	if (tables_chain_del(m, name) < 0)
		return error_reply("chain_del: no chain '%s'", name);
	return json_pack("{s:b}", "ok", 1);
}

static json_t *
match_json(const struct onvm_match *mt)
{
	json_t *o = json_object();
	char buf[32];
	struct in_addr a;

	if (mt->in_port != 0xff)
		json_object_set_new(o, "in_port", json_integer(mt->in_port));
	if (mt->proto != 0)
		json_object_set_new(o, "proto", mt->proto == IPPROTO_UDP ? json_string("udp") :
					mt->proto == IPPROTO_TCP ? json_string("tcp") :
					json_integer(mt->proto));
	if (mt->src_port != 0)
		json_object_set_new(o, "src_port", json_integer(mt->src_port));
	if (mt->dst_port != 0)
		json_object_set_new(o, "dst_port", json_integer(mt->dst_port));
	if (mt->src_len != 0) {
		a.s_addr = htonl(mt->src_ip);
		snprintf(buf, sizeof(buf), "%s/%u", inet_ntoa(a), mt->src_len);
		json_object_set_new(o, "src", json_string(buf));
	}
	if (mt->dst_len != 0) {
		a.s_addr = htonl(mt->dst_ip);
		snprintf(buf, sizeof(buf), "%s/%u", inet_ntoa(a), mt->dst_len);
		json_object_set_new(o, "dst", json_string(buf));
	}
	return o;
}

static json_t *
cmd_chain_list(struct mgr *m)
{
	const struct onvm_chain_table *t = &m->sh->tables[m->sh->table_active];
	json_t *list = json_array();
	uint32_t i, j;

	for (i = 0; i < t->n; i++) {
		const struct onvm_chain *c = &m->sh->chains[t->slot[i]];
		json_t *svcs = json_array();

		for (j = 0; j < c->len; j++)
			json_array_append_new(svcs, json_string(m->sh->svc[c->svc[j]].name));
		json_array_append_new(list,
			json_pack("{s:s, s:o, s:o, s:o, s:i, s:i, s:i, s:b}", "name", c->name,
				  "services", svcs, "egress",
				  c->egress == 0xff ? json_null() :
				  json_sprintf(ONVM_PORT_NAME_FMT, c->egress),
				  "match", match_json(&c->match), "version", (int)c->version,
				  "slot", (int)t->slot[i], "spi", (int)c->spi, "ingress",
				  c->ingress != 0));
	}
	return json_pack("{s:b, s:o}", "ok", 1, "chains", list);
}

static json_t *
cmd_remote_set(struct mgr *m, json_t *req)
{
	const char *service = json_string_value(json_object_get(req, "service"));
	const char *host = json_string_value(json_object_get(req, "host"));
	json_t *jload = json_object_get(req, "load"), *jpeer = json_object_get(req, "peer_id");
	int port = json_port(m, json_object_get(req, "port")), id;
	char err[256];

	if (service == NULL || !onvm_name_ok(service) || host == NULL || !onvm_name_ok(host))
		return error_reply("remote_set: 'service' and 'host' must be names of 1-31 [A-Za-z0-9_.-]");
	if (strcmp(host, m->host) == 0)
		return error_reply("remote_set: '%s' is this host", host);
	if (port < 0)
		return error_reply("remote_set: 'port' must name a port of this host (the fabric port)");
	if (jload != NULL && (!json_is_integer(jload) || json_integer_value(jload) < 0 ||
			      json_integer_value(jload) > 100))
		return error_reply("remote_set: 'load' must be an integer 0-100");
	if (jpeer != NULL && (!json_is_integer(jpeer) || json_integer_value(jpeer) < 0 ||
			      json_integer_value(jpeer) > 255))
		return error_reply("remote_set: 'peer_id' must be an integer 0-255");
	id = tables_remote_set(m, service, host, (uint16_t)port,
			       jpeer != NULL ? (uint8_t)json_integer_value(jpeer) : 0,
			       jload != NULL ? (uint32_t)json_integer_value(jload) : 0, err, sizeof(err));
	if (id < 0)
		return error_reply("remote_set: %s", err);
	return json_pack("{s:b, s:i}", "ok", 1, "instance", id);
}

static json_t *
cmd_remote_del(struct mgr *m, json_t *req)
{
	const char *service = json_string_value(json_object_get(req, "service"));
	const char *host = json_string_value(json_object_get(req, "host"));
	int id = service != NULL && host != NULL ? tables_remote_find(m, service, host) : -1;

	if (id < 0)
		return error_reply("remote_del: no stand-in for service '%s' on host '%s'",
				   service != NULL ? service : "?", host != NULL ? host : "?");
	tables_inst_exited(m, (uint16_t)id);
	return json_pack("{s:b}", "ok", 1);
}

static json_t *
cmd_drain(struct mgr *m, json_t *req)
{
	json_t *jid = json_object_get(req, "instance");
	char err[128];

	if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
	    json_integer_value(jid) >= ONVM_MAX_INSTANCES)
		return error_reply("drain: 'instance' must be an instance id 0-%d", ONVM_MAX_INSTANCES - 1);
	if (tables_drain(m, (uint16_t)json_integer_value(jid), json_is_true(json_object_get(req, "evict")),
			 err, sizeof(err)) < 0)
		return error_reply("drain: %s", err);
	return json_pack("{s:b}", "ok", 1);
}

/* Add a vdev port without a restart; it is the next portN. */
static json_t *
cmd_port_add(struct mgr *m, json_t *req)
{
	const char *spec = json_string_value(json_object_get(req, "port"));
	char err[512], name[16];
	int id;

	if (spec == NULL || spec[0] == '\0')
		return error_reply("port_add: 'port' must be a DPDK vdev (net_af_packet3,iface=veth3 ...)");
	id = ports_add(m, spec, err, sizeof(err));
	if (id < 0)
		return error_reply("port_add: %s", err);
	snprintf(name, sizeof(name), ONVM_PORT_NAME_FMT, (unsigned int)id);
	return json_pack("{s:b, s:i, s:s, s:s}", "ok", 1, "index", id, "port", name, "device",
			 m->ports[id].devname);
}

/* Where every mbuf of the pool is: free, in an instance's ring, or loose by
 * owner (a leak shows as loose mbufs with no traffic left). */
static json_t *
cmd_pool_audit(struct mgr *m)
{
	struct pool_audit a;
	json_t *loose = json_object();
	unsigned int i;
	char key[8];

	if (tables_pool_audit(m, &a) < 0) {
		json_decref(loose);
		return error_reply("pool_audit: out of memory");
	}
	for (i = 0; i <= ONVM_MAX_INSTANCES; i++) {
		if (a.loose_owner[i] == 0)
			continue;
		if (i < ONVM_MAX_INSTANCES)
			snprintf(key, sizeof(key), "%u", i);
		else
			snprintf(key, sizeof(key), "none");
		json_object_set_new(loose, key, json_integer(a.loose_owner[i]));
	}
	return json_pack("{s:b, s:i, s:i, s:i, s:i, s:i, s:o}", "ok", 1, "total", (int)a.total, "free",
			 (int)a.free, "in_rx", (int)a.in_rx, "in_tx", (int)a.in_tx, "loose",
			 (int)a.loose, "loose_by_owner", loose);
}

static json_t *
cmd_service_list(struct mgr *m)
{
	json_t *list = json_array();
	unsigned int i;

	for (i = 0; i < ONVM_MAX_SERVICES; i++)
		if (m->sh->svc[i].name[0] != '\0')
			json_array_append_new(list, json_pack("{s:s, s:i, s:i}", "name", m->sh->svc[i].name,
							      "id", (int)i, "instances",
							      (int)m->sh->svc[i].n_inst));
	return json_pack("{s:b, s:o}", "ok", 1, "services", list);
}

/* Whether the peer of fd runs in another PID namespace than the manager
 * (an NF container: they share the onvm/pause container's).  Such a peer
 * may only register: the socket is root's, and root inside an NF container
 * is not the host's administrator.  Unknown (the peer is gone, /proc not
 * readable) counts as contained. */
static bool
peer_contained(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64], theirs[64], ours[64];
	ssize_t n, k;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)cred.pid);
	n = readlink(path, theirs, sizeof(theirs) - 1);
	k = readlink("/proc/self/ns/pid", ours, sizeof(ours) - 1);
	return n <= 0 || k <= 0 || n != k || memcmp(theirs, ours, (size_t)n) != 0;
}

static json_t *
dispatch(struct mgr *m, struct client *c, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!json_is_object(req) || cmd == NULL)
		return error_reply("a request is a JSON object with a 'cmd' string");
	if (c->contained && strcmp(cmd, "register") != 0)
		return error_reply("%.32s: refused: a peer in another PID namespace (an NF container) "
				   "may only register", cmd);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(m);
	if (strcmp(cmd, "nf_list") == 0)
		return cmd_nf_list(m);
	if (strcmp(cmd, "register") == 0)
		return cmd_register(m, c, req);
	if (strcmp(cmd, "service_add") == 0)
		return cmd_service_add(m, req);
	if (strcmp(cmd, "service_list") == 0)
		return cmd_service_list(m);
	if (strcmp(cmd, "remote_set") == 0)
		return cmd_remote_set(m, req);
	if (strcmp(cmd, "remote_del") == 0)
		return cmd_remote_del(m, req);
	if (strcmp(cmd, "drain") == 0)
		return cmd_drain(m, req);
	if (strcmp(cmd, "port_add") == 0)
		return cmd_port_add(m, req);
	if (strcmp(cmd, "pool_audit") == 0)
		return cmd_pool_audit(m);
	if (strcmp(cmd, "chain_set") == 0)
		return cmd_chain_set(m, req);
	if (strcmp(cmd, "chain_del") == 0)
		return cmd_chain_del(m, req);
	if (strcmp(cmd, "chain_list") == 0)
		return cmd_chain_list(m);
	if (strcmp(cmd, "shutdown") == 0) {
		mgr_quit = true;
		return json_pack("{s:b}", "ok", 1);
	}
	return error_reply("unknown cmd '%s' (status, nf_list, register, service_add, service_list, "
			   "remote_set, remote_del, drain, pool_audit, chain_set, chain_del, chain_list, "
			   "shutdown)", cmd);
}

/* ---- socket plumbing ---------------------------------------------------- */

static void
send_reply(struct client *c, json_t *rep)
{
	char *text = json_dumps(rep, JSON_COMPACT);
	size_t n, off = 0;

	json_decref(rep);
	if (text == NULL)
		return;
	n = strlen(text);
	text[n++] = '\n';   /* json_dumps leaves room: replaced the NUL */
	while (off < n) {
		ssize_t w = send(c->fd, text + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(text);
}

static void
client_close(struct mgr *m, int epfd, unsigned int slot)
{
	struct client *c = clients[slot];

	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->inst >= 0)
		tables_inst_exited(m, (uint16_t)c->inst);
	close(c->fd);
	free(c);
	clients[slot] = NULL;
}

/* Returns false when the client must be closed. */
static bool
client_read(struct mgr *m, struct client *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->used, sizeof(c->buf) - 1 - c->used, 0);
		char *nl;

		if (r < 0)
			return errno == EAGAIN || errno == EINTR;
		if (r == 0)
			return false;
		c->used += (size_t)r;
		while ((nl = memchr(c->buf, '\n', c->used)) != NULL) {
			size_t len = (size_t)(nl - c->buf);
			json_error_t jerr;
			json_t *req;

			req = json_loadb(c->buf, len, JSON_REJECT_DUPLICATES, &jerr);
			if (req == NULL)
				send_reply(c, error_reply("malformed JSON: %s (column %d)", jerr.text,
							  jerr.column));
			else
				send_reply(c, dispatch(m, c, req));
			json_decref(req);
			memmove(c->buf, nl + 1, c->used - len - 1);
			c->used -= len + 1;
		}
		if (c->used >= sizeof(c->buf) - 1) {
			send_reply(c, error_reply("request longer than %d bytes", ONVM_CTL_MAX_LINE - 1));
			/* an NF's connection is its life line: keep it, drop the junk */
			c->used = 0;
			if (c->inst < 0)
				return false;
		}
	}
}

int
ctl_thread(void *arg)
{
	struct mgr *m = arg;
	struct epoll_event ev = { .events = EPOLLIN }, evs[32];
	uint64_t next_stats = 0, period = rte_get_tsc_hz() * STATS_PERIOD_MS / 1000;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	unsigned int i;

	ev.data.u32 = UINT32_MAX;
	epoll_ctl(epfd, EPOLL_CTL_ADD, m->ctl_listen_fd, &ev);
	while (!mgr_quit) {
		int n = epoll_wait(epfd, evs, RTE_DIM(evs), STATS_PERIOD_MS / 2), k;
		uint64_t now = rte_rdtsc();

		for (k = 0; k < n; k++) {
			uint32_t slot = evs[k].data.u32;

			if (slot == UINT32_MAX) {
				int fd = accept4(m->ctl_listen_fd, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				for (i = 0; i < MAX_CLIENTS && clients[i] != NULL; i++)
					;
				if (i == MAX_CLIENTS || (clients[i] = calloc(1, sizeof(struct client))) == NULL) {
					close(fd);
					continue;
				}
				clients[i]->fd = fd;
				clients[i]->inst = -1;
				clients[i]->contained = peer_contained(fd);
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.u32 = i;
				epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			if (clients[slot] == NULL)
				continue;
			if (!client_read(m, clients[slot]) ||
			    (evs[k].events & (EPOLLHUP | EPOLLERR)) != 0)
				client_close(m, epfd, slot);
		}
		if (now >= next_stats) {
			tables_tick(m);
			stats_update(m);
			next_stats = now + period;
		}
	}
	close(epfd);
	return 0;
}
