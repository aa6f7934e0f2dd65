/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm-mgr: the per-host manager, a DPDK primary process.
 *
 * Everything that can be checked before the EAL starts is checked first
 * (names, ports, hugepages, another manager), so a bad invocation fails
 * with a clear message and leaves nothing behind.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <numa.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_memzone.h>

#include "onvm/onvm_ctl.h"

#include "mgr.h"

#define EXIT_USAGE 2

volatile bool mgr_quit;

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: onvm-mgr --host NAME [options] [-- extra EAL options]\n"
		"\n"
		"The onvm manager of one host: a DPDK primary (file prefix onvm-NAME) that\n"
		"owns the ports and the mbuf pool, and steers flows through chains of NFs.\n"
		"\n"
		"  --host NAME        host name, 1-31 of [A-Za-z0-9_.-] (required)\n"
		"  --port SPEC        a port: PCI address (0000:03:00.0) or vdev\n"
		"                     (net_af_packet0,iface=veth0,framecnt=8192); repeatable\n"
		"  --core N           cpu of the data lcore (default 0)\n"
		"  --mem MB           hugepage memory per NUMA socket in use, MiB (default 64)\n"
		"  --mbufs N          mbufs in each socket's pool (default 8191)\n"
		"  --flow-idle SEC    forget a flow idle this long (default 10)\n"
		"  --runtime-dir DIR  DPDK runtime dir (default " ONVM_DEFAULT_RUNTIME_DIR ")\n"
		"  --stats-file PATH  stats area (default /dev/shm/onvm-NAME.stats)\n"
		"  --huge-dir DIR     hugetlbfs mount to use (default: the system's)\n"
		"  --pid-file PATH    write the pid there once ready\n"
		"  --check            check everything that can be known before starting\n"
		"                     (arguments, ports, core, hugepages) and exit: 0 when\n"
		"                     this configuration would start, 2 with the reason if\n"
		"                     not; a running manager of the same host is left alone\n"
		"                     and its hugepages count as free\n"
		"  --help             this text\n"
		"\n"
		"Control socket: <runtime-dir>/onvm-NAME/onvm.sock (JSON lines, mode 0600).\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	mgr_quit = true;
}

static int
parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

static int
parse_args(struct mgr *m, int argc, char **argv, int *extra)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "core", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "mbufs", required_argument, NULL, 'n' },
		{ "flow-idle", required_argument, NULL, 'f' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "stats-file", required_argument, NULL, 's' },
		{ "huge-dir", required_argument, NULL, 'g' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	m->mem_mb = 64;
	m->n_mbufs = 8191;
	m->flow_idle_s = 10;
	snprintf(m->runtime_dir, sizeof(m->runtime_dir), "%s", ONVM_DEFAULT_RUNTIME_DIR);
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			snprintf(m->host, sizeof(m->host), "%s", optarg);
			if (!onvm_name_ok(optarg)) {
				fprintf(stderr, "onvm-mgr: bad --host '%s': 1-31 of [A-Za-z0-9_.-]\n", optarg);
				return -1;
			}
			break;
		case 'p':
			if (m->n_ports == ONVM_MAX_PORTS) {
				fprintf(stderr, "onvm-mgr: at most %d ports\n", ONVM_MAX_PORTS);
				return -1;
			}
			if (strlen(optarg) >= sizeof(m->ports[0].spec)) {
				fprintf(stderr, "onvm-mgr: --port too long\n");
				return -1;
			}
			snprintf(m->ports[m->n_ports++].spec, sizeof(m->ports[0].spec), "%s", optarg);
			break;
		case 'c':
			if (parse_uint(optarg, 0, RTE_MAX_LCORE - 1, &m->lcore) < 0) {
				fprintf(stderr, "onvm-mgr: bad --core '%s'\n", optarg);
				return -1;
			}
			break;
		case 'm':
			if (parse_uint(optarg, 16, 1 << 20, &m->mem_mb) < 0) {
				fprintf(stderr, "onvm-mgr: bad --mem '%s' (MiB, at least 16)\n", optarg);
				return -1;
			}
			break;
		case 'n':
			if (parse_uint(optarg, 1023, 1 << 24, &m->n_mbufs) < 0) {
				fprintf(stderr, "onvm-mgr: bad --mbufs '%s' (1023 or more)\n", optarg);
				return -1;
			}
			break;
		case 'f':
			if (parse_uint(optarg, 1, 86400, &m->flow_idle_s) < 0) {
				fprintf(stderr, "onvm-mgr: bad --flow-idle '%s'\n", optarg);
				return -1;
			}
			break;
		case 'r':
			snprintf(m->runtime_dir, sizeof(m->runtime_dir), "%s", optarg);
			break;
		case 's':
			snprintf(m->stats_path, sizeof(m->stats_path), "%s", optarg);
			break;
		case 'g':
			snprintf(m->huge_dir, sizeof(m->huge_dir), "%s", optarg);
			break;
		case 'P':
			snprintf(m->pid_file, sizeof(m->pid_file), "%s", optarg);
			break;
		case 'C':
			m->check_only = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (m->host[0] == '\0') {
		fprintf(stderr, "onvm-mgr: --host is required\n");
		usage(stderr);
		return -1;
	}
	if (m->stats_path[0] == '\0')
		ONVM_NAME(m->stats_path, sizeof(m->stats_path), ONVM_STATS_PATH_FMT, m->host);
	if (onvm_ctl_path(m->ctl_path, sizeof(m->ctl_path), m->runtime_dir, m->host) < 0) {
		fprintf(stderr, "onvm-mgr: runtime dir path too long\n");
		return -1;
	}
	*extra = optind;
	return 0;
}

static long
read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* NUMA sockets that have cpus this process may run on: a pool on each,
 * so NFs pinned there get local mbufs. */
static void
find_sockets(struct mgr *m)
{
	cpu_set_t set;
	int cpu;

	if (numa_available() < 0 || sched_getaffinity(0, sizeof(set), &set) < 0) {
		m->socket_used[0] = true;
		m->n_sockets = 1;
		return;
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		int node;

		if (!CPU_ISSET(cpu, &set))
			continue;
		node = numa_node_of_cpu(cpu);
		if (node >= 0 && node < ONVM_MAX_SOCKETS && !m->socket_used[node]) {
			m->socket_used[node] = true;
			m->n_sockets++;
		}
	}
	if (m->n_sockets == 0) {
		m->socket_used[0] = true;
		m->n_sockets = 1;
	}
}

/* "64,0,64": --mem MiB on each socket in use. */
static void
socket_list(const struct mgr *m, char *buf, size_t len)
{
	unsigned int i, last = 0;
	size_t used = 0;

	for (i = 0; i < ONVM_MAX_SOCKETS; i++)
		if (m->socket_used[i])
			last = i;
	buf[0] = '\0';
	for (i = 0; i <= last && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%u", i ? "," : "",
					 m->socket_used[i] ? m->mem_mb : 0);
}

/* Enough free hugepages for --mem?  Checked before the EAL so that the
 * message says what to do, and nothing is half-allocated. */
static int
check_hugepages(const struct mgr *m, long credit_mb)
{
	long free2m = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
	long free1g = read_long("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages");
	long have_mb = (free2m > 0 ? free2m * 2 : 0) + (free1g > 0 ? free1g * 1024 : 0) + credit_mb;

	long need_mb = (long)m->mem_mb * m->n_sockets;

	if (have_mb >= need_mb)
		return 0;
	fprintf(stderr,
		"onvm-mgr: not enough hugepages: --mem %u MiB on %u NUMA socket(s) needs %ld free "
		"2 MiB pages, only %ld MiB free (raise /proc/sys/vm/nr_hugepages, or lower --mem)\n",
		m->mem_mb, m->n_sockets, need_mb / 2, have_mb);
	return -1;
}

/* The data lcore must be a cpu this process may run on (an offline or
 * absent cpu, or one outside our affinity, fails in the EAL otherwise). */
static int
check_core(const struct mgr *m)
{
	cpu_set_t set;
	char usable[256] = "";
	size_t used = 0;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	if (m->lcore < CPU_SETSIZE && CPU_ISSET(m->lcore, &set))
		return 0;
	for (cpu = 0; cpu < CPU_SETSIZE && used < sizeof(usable) - 8; cpu++)
		if (CPU_ISSET(cpu, &set))
			used += (size_t)snprintf(usable + used, sizeof(usable) - used, "%s%d",
						 used ? "," : "", cpu);
	fprintf(stderr, "onvm-mgr: --core %u: no such cpu on this machine (usable: %s)\n", m->lcore,
		usable);
	return -1;
}

/* MiB of hugepages held by a manager of this host (its hugepage files):
 * a check for its replacement counts them as free. */
static long
held_hugepages_mb(const struct mgr *m)
{
	char prefix[64];
	struct dirent *de;
	long mb = 0;
	DIR *d;

	ONVM_NAME(prefix, sizeof(prefix), ONVM_HUGEPAGE_PREFIX_FMT, m->host);
	d = opendir(m->huge_dir[0] != '\0' ? m->huge_dir : ONVM_DEFAULT_HUGE_DIR);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    fstatat(dirfd(d), de->d_name, &st, 0) == 0)
			mb += (long)(st.st_size >> 20);
	}
	closedir(d);
	return mb;
}

static int
check_not_running(const struct mgr *m)
{
	int fd = onvm_ctl_connect(m->ctl_path);

	if (fd >= 0) {
		close(fd);
		fprintf(stderr, "onvm-mgr: a manager for host '%s' is already running (%s)\n",
			m->host, m->ctl_path);
		return -1;
	}
	return 0;
}

static int
eal_start(struct mgr *m, int argc, char **argv, int extra)
{
	char *eal[64 + ONVM_MAX_PORTS * 2];
	char lcore[32], prefix[64], mem[128], limit[128], huge[224], per_socket[96];
	int n = 0, i, rc;
	unsigned int p;
	bool pci = false;

	snprintf(lcore, sizeof(lcore), "-l%u", m->lcore);
	ONVM_NAME(prefix, sizeof(prefix), "--file-prefix=" ONVM_FILE_PREFIX_FMT, m->host);
	socket_list(m, per_socket, sizeof(per_socket));
	snprintf(mem, sizeof(mem), "--socket-mem=%s", per_socket);
	snprintf(limit, sizeof(limit), "--socket-limit=%s", per_socket);
	eal[n++] = argv[0];
	eal[n++] = lcore;
	eal[n++] = prefix;
	eal[n++] = (char *)"--proc-type=primary";
	eal[n++] = (char *)"--iova-mode=va";
	eal[n++] = mem;
	eal[n++] = limit;
	if (m->huge_dir[0] != '\0') {
		snprintf(huge, sizeof(huge), "--huge-dir=%s", m->huge_dir);
		eal[n++] = huge;
	}
	for (p = 0; p < m->n_ports; p++) {
		if (m->ports[p].kind == PORT_PCI) {
			eal[n++] = (char *)"-a";
			pci = true;
		} else {
			eal[n++] = (char *)"--vdev";
		}
		eal[n++] = m->ports[p].spec;
	}
	if (!pci)
		eal[n++] = (char *)"--no-pci";
	for (i = extra; i < argc && n < (int)RTE_DIM(eal) - 1; i++)
		eal[n++] = argv[i];
	eal[n] = NULL;
	rc = rte_eal_init(n, eal);
	if (rc < 0)
		fprintf(stderr, "onvm-mgr: EAL init failed: %s%s\n", rte_strerror(rte_errno),
			rte_errno == ENODEV ? " (a --port names a driver or device DPDK does not know)" :
			"");
	return rc;
}

static void
owner_none(struct rte_mempool *mp, void *arg, void *obj, unsigned int idx)
{
	(void)mp;
	(void)idx;
	onvm_dp_meta(arg, obj)->owner = ONVM_OWNER_NONE;
}

static int
shared_setup(struct mgr *m, char *err, size_t errlen)
{
	static const struct rte_mbuf_dynfield meta_desc = {
		.name = ONVM_META_DYNFIELD,
		.size = sizeof(struct onvm_pkt_meta),
		.align = __alignof__(struct onvm_pkt_meta),
	};
	const struct rte_memzone *mz;
	struct rte_hash_parameters hp = {
		.name = "onvm_flows",
		.entries = ONVM_MAX_FLOWS,
		.key_len = sizeof(struct flow_key),
		.hash_func = rte_hash_crc,   /* CRC32 instructions where the CPU has them */
		.socket_id = (int)rte_socket_id(),
	};
	unsigned int s;
	int off;

	off = rte_mbuf_dynfield_register(&meta_desc);
	if (off < 0) {
		snprintf(err, errlen, "cannot register the packet metadata field: %s",
			 rte_strerror(rte_errno));
		return -1;
	}
	mz = rte_memzone_reserve(ONVM_MZ_SHARED, sizeof(struct onvm_shared), (int)rte_socket_id(),
				 0);
	if (mz == NULL) {
		snprintf(err, errlen, "cannot reserve shared state (%zu bytes): %s",
			 sizeof(struct onvm_shared), rte_strerror(rte_errno));
		return -1;
	}
	m->sh = mz->addr;
	memset(m->sh, 0, sizeof(*m->sh));
	m->sh->main_socket = rte_socket_id() < ONVM_MAX_SOCKETS ? rte_socket_id() : 0;
	m->socket_used[m->sh->main_socket] = true;
	for (s = 0; s < ONVM_MAX_SOCKETS; s++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		if (!m->socket_used[s])
			continue;
		snprintf(name, sizeof(name), ONVM_POOL_NAME, s);
		m->sh->pool[s] = rte_pktmbuf_pool_create(name, m->n_mbufs, 256, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE, (int)s);
		if (m->sh->pool[s] == NULL) {
			snprintf(err, errlen, "cannot create a pool of %u mbufs on socket %u in %u MiB: "
				 "%s (raise --mem or lower --mbufs)", m->n_mbufs, s, m->mem_mb,
				 rte_strerror(rte_errno));
			return -1;
		}
	}
	m->sh->meta_offset = off;
	m->sh->mgr_pid = getpid();
	m->sh->tsc_hz = rte_get_tsc_hz();
	snprintf(m->sh->host, sizeof(m->sh->host), "%s", m->host);
	for (unsigned int i = 0; i < ONVM_MAX_INSTANCES; i++)
		m->inst[i].fd = -1;
	m->flow_hash = rte_hash_create(&hp);
	if (m->flow_hash == NULL) {
		snprintf(err, errlen, "cannot create the flow table: %s", rte_strerror(rte_errno));
		return -1;
	}
	m->sh->version = ONVM_SHARED_VERSION;
	__atomic_store_n(&m->sh->magic, ONVM_SHARED_MAGIC, __ATOMIC_RELEASE);
	m->dp.sh = m->sh;
	m->dp.meta_off = off;
	/* Every mbuf starts owned by nobody: a fresh one's metadata is zeros,
	 * and owner 0 is instance 0 -- whose crash reclaim would then take
	 * every never-used free mbuf for its own and free it again. */
	for (s = 0; s < ONVM_MAX_SOCKETS; s++)
		if (m->sh->pool[s] != NULL)
			rte_mempool_obj_iter(m->sh->pool[s], owner_none, &m->dp);
	return 0;
}

/* Remove the hugepage files and runtime files of our prefix: a dead
 * primary's files keep its pages pinned. */
static void
remove_leftovers(const struct mgr *m)
{
	char prefix[64], path[512];
	const char *dirs[2];
	struct dirent *de;
	unsigned int i;
	DIR *d;

	ONVM_NAME(prefix, sizeof(prefix), ONVM_HUGEPAGE_PREFIX_FMT, m->host);
	dirs[0] = m->huge_dir[0] != '\0' ? m->huge_dir : ONVM_DEFAULT_HUGE_DIR;
	ONVM_NAME(path, sizeof(path), ONVM_RUNTIME_DIR_FMT, m->runtime_dir, m->host);
	dirs[1] = path;
	for (i = 0; i < 2; i++) {
		char dir[512];

		snprintf(dir, sizeof(dir), "%s", dirs[i]);
		d = opendir(dir);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char f[1024];

			if (de->d_name[0] == '.' || (i == 0 && strncmp(de->d_name, prefix,
								       strlen(prefix)) != 0))
				continue;
			snprintf(f, sizeof(f), "%s/%s", dir, de->d_name);
			unlink(f);
		}
		closedir(d);
		if (i == 1)
			rmdir(dir);
	}
}

static void *
ctl_main(void *arg)
{
	ctl_thread(arg);
	return NULL;
}

int
main(int argc, char **argv)
{
	static struct mgr m;
	char err[512];
	pthread_t ctl;
	unsigned int i;
	int extra, rc = 1;

	m.ctl_listen_fd = -1;
	if (parse_args(&m, argc, argv, &extra) < 0)
		return EXIT_USAGE;
	for (i = 0; i < m.n_ports; i++) {
		if (ports_check_spec(&m.ports[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "onvm-mgr: %s\n", err);
			return EXIT_USAGE;
		}
	}
	find_sockets(&m);
	if (check_core(&m) < 0)
		return EXIT_USAGE;
	if (m.check_only) {
		if (check_hugepages(&m, held_hugepages_mb(&m)) < 0)
			return EXIT_USAGE;
		printf("onvm-mgr: host %s: configuration ok (%u port(s), core %u, %u MiB)\n", m.host,
		       m.n_ports, m.lcore, m.mem_mb);
		return 0;
	}
	if (check_not_running(&m) < 0 || check_hugepages(&m, 0) < 0)
		return EXIT_USAGE;

	if (eal_start(&m, argc, argv, extra) < 0) {
		remove_leftovers(&m);
		return EXIT_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (shared_setup(&m, err, sizeof(err)) < 0 || ports_start(&m, err, sizeof(err)) < 0 ||
	    stats_open(&m, err, sizeof(err)) < 0 || ctl_open(&m, err, sizeof(err)) < 0) {
		fprintf(stderr, "onvm-mgr: %s\n", err);
		rc = EXIT_USAGE;
		goto out;
	}
	stats_update(&m);
	if (pthread_create(&ctl, NULL, ctl_main, &m) != 0) {
		fprintf(stderr, "onvm-mgr: cannot start the control thread\n");
		goto out;
	}
	if (m.pid_file[0] != '\0') {
		FILE *f = fopen(m.pid_file, "w");

		if (f != NULL) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	fprintf(stderr, "onvm-mgr: host %s ready: %u port(s), %u mbufs, control %s, stats %s\n",
		m.host, m.n_ports, m.n_mbufs, m.ctl_path, m.stats_path);
	dataplane_loop(&m);
	pthread_join(ctl, NULL);
	rc = 0;
	fprintf(stderr, "onvm-mgr: host %s stopping\n", m.host);
out:
	ctl_close(&m);
	stats_close(&m);
	ports_stop(&m);
	if (m.pid_file[0] != '\0')
		unlink(m.pid_file);
	rte_eal_cleanup();
	remove_leftovers(&m);
	return rc;
}
