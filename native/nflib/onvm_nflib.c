/* SPDX-License-Identifier: BSD-3-Clause
 *
 * libonvm_nf: attach to the host's manager as a DPDK secondary; then, when
 * the NF is set up and starts its packet loop, register and run the loop.
 * An NF is an instance the manager steers to only once it is ready: one
 * that fails its own set-up (bad rules, bad options) never appears.
 *
 * The packet loop runs in a thread of its own that is not an EAL lcore:
 * many NFs on one host share lcore numbers, and the mempool's per-lcore
 * caches must never be used by two processes at once.  Packets to another
 * NF go straight into that NF's rx ring (no manager hop); packets to a
 * port go through this NF's tx ring to the manager.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <numa.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_pause.h>

#include "onvm/onvm_ctl.h"
#include "onvm/onvm_nflib.h"

#define SPIN_BEFORE_SLEEP 20000   /* empty polls before a dedicated NF sleeps */
#define SLEEP_TIMEOUT_NS 100000000ULL
#define WAKE_BATCH 256

#define TGT_DROP 0xfffe           /* dispatch targets besides instance ids */
#define TGT_PORT 0xfffd

static struct onvm_nf *the_nf;    /* for the signal handler */

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --host HOST [--service NAME] [--core CPU] [--shared-core]\n"
		"          [--runtime-dir DIR] [--check] [-- NF options]\n"
		"  --host HOST      the host whose onvm-mgr to attach to (file prefix onvm-HOST)\n"
		"  --service NAME   service to register as\n"
		"  --core CPU       pin the packet loop to this cpu\n"
		"  --shared-core    sleep as soon as idle (many NFs on one core)\n"
		"  --runtime-dir D  DPDK runtime directory (default " ONVM_DEFAULT_RUNTIME_DIR ")\n"
		"  --check          only check the NF options (and the files they name) and\n"
		"                   exit: 0 if it would start with them, 2 with the reason\n"
		"                   if not; no manager is needed, nothing is attached\n",
		prog);
}

static void
on_signal(int sig)
{
	(void)sig;
	if (the_nf != NULL)
		onvm_nf_stop(the_nf);
}

/* "--lcores=0@(cpus this process may use)" so the EAL main thread never
 * asks for a cpu a container's cpuset forbids. */
static void
lcores_arg(char *buf, size_t len)
{
	cpu_set_t set;
	size_t used;
	int cpu, first = 1;

	used = (size_t)snprintf(buf, len, "--lcores=0@(");
	if (sched_getaffinity(0, sizeof(set), &set) < 0) {
		CPU_ZERO(&set);
		CPU_SET(0, &set);
	}
	for (cpu = 0; cpu < CPU_SETSIZE && used + 8 < len; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%d", first ? "" : ",", cpu);
		first = 0;
	}
	snprintf(buf + used, len - used, ")");
}

static int
do_register(struct onvm_nf *nf)
{
	json_t *req, *rep;
	int id, svc;

	req = json_pack("{s:s, s:s, s:i, s:b}", "cmd", "register", "service", nf->service,
			"pid", (int)getpid(), "shared_core", nf->shared_core);
	rep = onvm_ctl_call(nf->ctl_fd, req);
	json_decref(req);
	if (rep == NULL) {
		fprintf(stderr, "onvm: no reply from the manager to register\n");
		return -1;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		fprintf(stderr, "onvm: manager refused registration: %s\n",
			json_string_value(json_object_get(rep, "error")) ?: "?");
		json_decref(rep);
		return -1;
	}
	id = (int)json_integer_value(json_object_get(rep, "instance"));
	svc = (int)json_integer_value(json_object_get(rep, "service_id"));
	json_decref(rep);
	if (id < 0 || id >= ONVM_MAX_INSTANCES || svc < 0 || svc >= ONVM_MAX_SERVICES)
		return -1;
	nf->id = (uint16_t)id;
	nf->service_id = (uint16_t)svc;
	nf->inst = &nf->dp.sh->inst[id];
	return 0;
}

int
onvm_nf_init(int *argcp, char ***argvp, const char *default_service, struct onvm_nf **out)
{
	int argc = *argcp;
	char **argv = *argvp;
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "service", required_argument, NULL, 's' },
		{ "core", required_argument, NULL, 'c' },
		{ "shared-core", no_argument, NULL, 'S' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *runtime_dir = ONVM_DEFAULT_RUNTIME_DIR;
	char path[256], prefix[64], lcores[512];
	char *eal_argv[16];
	int eal_argc = 0, opt, rc, nf_args;
	struct onvm_nf *nf;

	nf = calloc(1, sizeof(*nf));
	if (nf == NULL)
		return -1;
	nf->core = -1;
	nf->ctl_fd = -1;
	snprintf(nf->service, sizeof(nf->service), "%s", default_service);
	if (getenv("ONVM_HOST") != NULL)
		snprintf(nf->host, sizeof(nf->host), "%s", getenv("ONVM_HOST"));

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			snprintf(nf->host, sizeof(nf->host), "%s", optarg);
			break;
		case 's':
			snprintf(nf->service, sizeof(nf->service), "%s", optarg);
			break;
		case 'c':
			nf->core = atoi(optarg);
			break;
		case 'S':
			nf->shared_core = true;
			break;
		case 'r':
			runtime_dir = optarg;
			break;
		case 'C':
			nf->check_only = true;
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		default:
			usage(argv[0]);
			goto fail;
		}
	}
	nf_args = optind;
	if (nf->check_only)
		goto hand_over;
	if (nf->host[0] == '\0' || !onvm_name_ok(nf->host)) {
		fprintf(stderr, "onvm: --host is required: a name of 1-31 [A-Za-z0-9_.-]\n");
		goto fail;
	}
	if (!onvm_name_ok(nf->service)) {
		fprintf(stderr, "onvm: bad service name '%s': 1-31 [A-Za-z0-9_.-]\n", nf->service);
		goto fail;
	}
	/* Talk to the manager before touching the EAL, so that "no manager"
	 * is a clear message and leaves nothing behind. */
	if (onvm_ctl_path(path, sizeof(path), runtime_dir, nf->host) < 0) {
		fprintf(stderr, "onvm: runtime dir path too long\n");
		goto fail;
	}
	nf->ctl_fd = onvm_ctl_connect(path);
	if (nf->ctl_fd < 0) {
		fprintf(stderr, "onvm: no onvm-mgr running for host '%s' (cannot connect to %s: %s)\n",
			nf->host, path, strerror(errno));
		goto fail;
	}

	ONVM_NAME(prefix, sizeof(prefix), "--file-prefix=" ONVM_FILE_PREFIX_FMT, nf->host);
	lcores_arg(lcores, sizeof(lcores));
	eal_argv[eal_argc++] = argv[0];
	eal_argv[eal_argc++] = (char *)"--proc-type=secondary";
	eal_argv[eal_argc++] = prefix;
	eal_argv[eal_argc++] = lcores;
	eal_argv[eal_argc++] = (char *)"--no-pci";
	eal_argv[eal_argc++] = (char *)"--no-telemetry";
	eal_argv[eal_argc++] = (char *)"--iova-mode=va";
	eal_argv[eal_argc++] = (char *)"--log-level=lib.eal:error";
	eal_argv[eal_argc] = NULL;
	rc = rte_eal_init(eal_argc, eal_argv);
	if (rc < 0) {
		fprintf(stderr, "onvm: cannot attach to the manager of '%s': %s\n", nf->host,
			rte_strerror(rte_errno));
		goto fail;
	}
	rc = onvm_dp_attach(&nf->dp);
	if (rc < 0) {
		fprintf(stderr, "onvm: manager's shared state not found: %s\n", strerror(-rc));
		goto fail_eal;
	}

	the_nf = nf;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
hand_over:
	*out = nf;
	/* Hand the NF its own options, program name first, getopt reset. */
	argv[nf_args - 1] = argv[0];
	*argcp = argc - (nf_args - 1);
	*argvp = argv + (nf_args - 1);
	optind = 1;
	return 0;

fail_eal:
	rte_eal_cleanup();
fail:
	if (nf->ctl_fd >= 0)
		close(nf->ctl_fd);
	free(nf);
	return -1;
}

void
onvm_nf_stop(struct onvm_nf *nf)
{
	nf->stop = true;
	if (nf->inst != NULL) {
		nf->inst->sleeping = 1;
		onvm_dp_wake(&nf->inst->sleeping, &nf->inst->wake_seq);
	}
}

int
onvm_nf_service_id(const struct onvm_nf *nf, const char *name)
{
	int i;

	if (nf->check_only)
		return 0;   /* names are the manager's: resolved when it runs */
	for (i = 0; i < ONVM_MAX_SERVICES; i++)
		if (strncmp(nf->dp.sh->svc[i].name, name, ONVM_NAME_LEN) == 0 &&
		    nf->dp.sh->svc[i].name[0] != '\0')
			return i;
	return -1;
}

int
onvm_nf_chain_id(const struct onvm_nf *nf, const char *name)
{
	const struct onvm_shared *sh = nf->dp.sh;
	const struct onvm_chain_table *t;
	uint32_t i;

	if (nf->check_only)
		return 0;
	t = &sh->tables[__atomic_load_n(&sh->table_active, __ATOMIC_ACQUIRE)];
	for (i = 0; i < t->n; i++)
		if (strncmp(sh->chains[t->slot[i]].name, name, ONVM_NAME_LEN) == 0)
			return t->slot[i];
	return -1;
}

int
onvm_nf_port_id(const struct onvm_nf *nf, const char *name)
{
	const struct onvm_shared *sh = nf->dp.sh;
	int v = onvm_port_index(name);
	uint32_t i;

	if (nf->check_only)
		return 0;
	if (v >= 0)
		return (uint32_t)v < sh->n_ports ? v : -1;
	for (i = 0; i < sh->n_ports; i++)
		if (strncmp(sh->port_name[i], name, ONVM_NAME_LEN) == 0)
			return (int)i;
	return -1;
}

unsigned int
onvm_nf_alloc(struct onvm_nf *nf, struct rte_mbuf **pkts, unsigned int n)
{
	unsigned int i;

	/* No per-lcore cache: the calling thread may share an lcore id with
	 * another process. */
	if (rte_mempool_generic_get(onvm_pool(nf->dp.sh, numa_node_of_cpu(sched_getcpu())),
				    (void **)pkts, n, NULL) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		rte_pktmbuf_reset(pkts[i]);
		struct onvm_pkt_meta *m = onvm_pkt_meta(nf, pkts[i]);

		*m = (struct onvm_pkt_meta){
			.action = ONVM_A_NEXT, .chain = ONVM_NO_CHAIN, .port_in = 0xff,
			.src = ONVM_NONE, .flow = ONVM_NO_FLOW, .owner = nf->id,
		};
	}
	return n;
}

/* Where a packet goes after its verdict: an instance id, TGT_PORT (this
 * NF's tx ring, meta->dest = port) or TGT_DROP. */
static inline uint16_t
resolve(struct onvm_nf *nf, struct onvm_pkt_meta *m)
{
	const struct onvm_shared *sh = nf->dp.sh;
	const struct onvm_chain *c;

	switch (m->action) {
	case ONVM_A_NEXT:
		if (m->chain == ONVM_NO_CHAIN)
			return TGT_DROP;
		c = &sh->chains[m->chain];
		if (m->pos + 1 < c->len) {
			m->pos++;
			return onvm_dp_steer(&nf->dp, c->svc[m->pos], m->flow, m->pos, false);
		}
		if (c->egress == 0xff)
			return TGT_DROP;
		m->dest = c->egress;
		return TGT_PORT;
	case ONVM_A_TO_PORT:
		return TGT_PORT;
	case ONVM_A_TO_SERVICE:
		return onvm_dp_steer(&nf->dp, m->dest, ONVM_NO_FLOW, 0, false);
	case ONVM_A_TO_INSTANCE:
		return m->dest;
	case ONVM_A_TO_CHAIN:
		if (m->dest >= ONVM_CHAIN_SLOTS ||
		    __atomic_load_n(&sh->chains[m->dest].state, __ATOMIC_ACQUIRE) != ONVM_CHAIN_ACTIVE)
			return TGT_DROP;
		m->chain = (uint8_t)m->dest;
		m->pos = 0;
		/* a new trip along the path: a fresh NSH TTL, not what is
		 * left of the last trip's (a sender that recycles what comes
		 * back would otherwise see its packets die after 63 hops) */
		m->nsh_ttl = 0;
		return onvm_dp_steer(&nf->dp, sh->chains[m->chain].svc[0], m->flow, 0, false);
	case ONVM_A_BACK:
		if (m->src != ONVM_NONE)
			return m->src;
		if (m->port_in != 0xff) {
			m->dest = m->port_in;
			return TGT_PORT;
		}
		return TGT_DROP;
	default:
		return TGT_DROP;
	}
}

/* Key under which a verdict's target may be reused, UINT32_MAX if not. */
static inline uint32_t
cache_key(const struct onvm_pkt_meta *m)
{
	switch (m->action) {
	case ONVM_A_TO_SERVICE:
	case ONVM_A_TO_INSTANCE:
		return ((uint32_t)m->action << 16) | m->dest;
	case ONVM_A_BACK:
		return m->src != ONVM_NONE ? ((uint32_t)m->action << 16) | m->src : UINT32_MAX;
	default:
		return UINT32_MAX;
	}
}

static void
send_run(struct onvm_nf *nf, uint16_t tgt, struct rte_mbuf **p, unsigned int n)
{
	struct onvm_nf_counters *c = &nf->inst->c;
	unsigned int sent;

	if (tgt == TGT_DROP) {
		c->dropped += n;
		onvm_dp_free_bulk(&nf->dp, p, n);
		return;
	}
	if (tgt == TGT_PORT) {
		sent = rte_ring_sp_enqueue_burst(nf->inst->tx, (void **)p, n, NULL);
		if (sent > 0)
			nf->wake_mgr = true;
		if (sent < n) {
			c->tx_drop += n - sent;
			onvm_dp_free_bulk(&nf->dp, p + sent, n - sent);
		}
		c->tx += sent;
		return;
	}
	if (tgt == ONVM_NONE) {  /* no live instance of the next service */
		c->tx_drop += n;
		onvm_dp_free_bulk(&nf->dp, p, n);
		return;
	}
	c->tx += onvm_dp_to_inst(&nf->dp, tgt, p, n, &nf->wake);
}

/* Pay the wake-ups owed by onvm_nf_send(). */
static void
wake_owed(struct onvm_nf *nf)
{
	onvm_dp_wake_all(&nf->dp, nf->wake);
	if (nf->wake_mgr)
		onvm_dp_wake(&nf->dp.sh->mgr_sleeping, &nf->dp.sh->mgr_wake_seq);
	nf->wake = 0;
	nf->wake_mgr = false;
	nf->unwoken = 0;
}

unsigned int
onvm_nf_send(struct onvm_nf *nf, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t tgt[ONVM_BURST];
	uint64_t before = nf->inst->c.tx;
	uint16_t i, j, done = 0;

	while (done < n) {
		uint16_t b = RTE_MIN((uint16_t)(n - done), (uint16_t)ONVM_BURST);
		struct rte_mbuf **p = pkts + done;
		uint32_t last_key = UINT32_MAX;
		uint16_t last_tgt = TGT_DROP;

		for (i = 0; i < b; i++) {
			struct onvm_pkt_meta *m = onvm_pkt_meta(nf, p[i]);
			uint32_t key = cache_key(m);

			/* Verdicts that name their target (a service, an
			 * instance, the sending instance) resolve the same way
			 * for a run of packets: look it up once.  Chain hops
			 * depend on the flow: resolved each time. */
			if (key == UINT32_MAX || key != last_key) {
				last_tgt = resolve(nf, m);
				last_key = key;
			}
			tgt[i] = last_tgt;
			m->src = nf->id;
			m->action = ONVM_A_NEXT;
		}
		for (i = 0; i < b; i = j) {
			for (j = i + 1; j < b && tgt[j] == tgt[i]; j++)
				;
			send_run(nf, tgt[i], p + i, j - i);
		}
		done += b;
	}
	nf->unwoken += n;
	return (unsigned int)(nf->inst->c.tx - before);
}

struct loop_args {
	struct onvm_nf *nf;
	onvm_nf_handler_t handler;
	void *arg;
};

static void *
packet_loop(void *varg)
{
	struct loop_args *la = varg;
	struct onvm_nf *nf = la->nf;
	struct onvm_inst *in = nf->inst;
	struct onvm_nf_counters *c = &in->c;
	struct rte_mbuf *pkts[ONVM_BURST];
	uint64_t last = rte_rdtsc(), now;
	unsigned int empty = 0, spin = nf->shared_core ? 16 : SPIN_BEFORE_SLEEP;
	bool was_busy = false;
	uint16_t n, i;

	if (nf->core >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(nf->core, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			fprintf(stderr, "onvm: cannot pin to cpu %d, running unpinned\n", nf->core);
	}
	if (nf->on_start != NULL)
		nf->on_start(nf, la->arg);
	while (!nf->stop) {
		n = (uint16_t)rte_ring_sc_dequeue_burst(in->rx, (void **)pkts, ONVM_BURST, NULL);
		/* One clock read a round: the time since the last read was
		 * busy if the last round had packets, idle if not. */
		now = rte_rdtsc();
		if (was_busy)
			c->busy_cycles += now - last;
		else
			c->idle_cycles += now - last;
		last = now;
		was_busy = n != 0;
		/* Receivers are woken once WAKE_BATCH packets went their way
		 * or this loop runs dry, not per burst: each wake-up is a
		 * system call, and for a receiver on this core a switch. */
		if ((n == 0 && (nf->wake != 0 || nf->wake_mgr)) || nf->unwoken >= WAKE_BATCH)
			wake_owed(nf);
		if (n == 0) {
			if (++empty < spin) {
				rte_pause();
				continue;
			}
			/* woken: packets are there, poll (and spin) again; timed
			 * out: straight back to sleep on the next empty poll
			 * (spinning again after every timeout cost an idle NF
			 * ~1% of a core) */
			if (onvm_dp_sleep(&in->sleeping, &in->wake_seq, onvm_dp_ring_pending, in->rx,
					  SLEEP_TIMEOUT_NS)) {
				c->wakeups++;
				empty = 0;
			} else {
				empty = spin - 1;
			}
			continue;
		}
		empty = 0;
		for (i = 0; i < n; i++)
			onvm_pkt_meta(nf, pkts[i])->owner = nf->id;
		c->rx += n;
		la->handler(nf, pkts, n, la->arg);
		onvm_nf_send(nf, pkts, n);
		/* after the hand-off: once `processed` counts a packet, its
		 * dropped / tx / tx_drop are counted too */
		c->processed += n;
	}
	return NULL;
}

int
onvm_nf_run(struct onvm_nf *nf, onvm_nf_handler_t handler, void *arg)
{
	struct loop_args la = { .nf = nf, .handler = handler, .arg = arg };
	pthread_t t;

	if (nf->check_only) {
		printf("%s: options ok\n", nf->service);
		fflush(stdout);
		return 0;
	}
	if (do_register(nf) < 0)
		return 1;
	if (pthread_create(&t, NULL, packet_loop, &la) != 0) {
		fprintf(stderr, "onvm: cannot start the packet loop\n");
		return 1;
	}
	/* Watch the registration connection: if the manager goes away, so
	 * does its memory; stop rather than run on a dead host. */
	while (!nf->stop) {
		struct pollfd pfd = { .fd = nf->ctl_fd, .events = POLLIN };
		char b;

		ssize_t r;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = recv(nf->ctl_fd, &b, 1, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			fprintf(stderr, "onvm: manager of '%s' went away, stopping\n", nf->host);
			onvm_nf_stop(nf);
		}
	}
	pthread_join(t, NULL);
	return 0;
}

void
onvm_nf_fini(struct onvm_nf *nf)
{
	/* Closing the registration connection tells the manager we left; it
	 * then takes back whatever is still in our rings. */
	if (nf->ctl_fd >= 0)
		close(nf->ctl_fd);
	the_nf = NULL;
	if (!nf->check_only)
		rte_eal_cleanup();
	free(nf);
}
