/* SPDX-License-Identifier: BSD-3-Clause
 *
 * core_rtt: how long one cache line takes to go from one cpu to another
 * and back -- what every cross-core hand-off (a ring, a memif link) pays.
 * Two threads, pinned to two cpus, take turns incrementing one counter.
 *
 *   core_rtt [-a CPU] [-b CPU] [-t SECONDS]
 *
 * Prints {"cpus": [a, b], "rtt_ns": ..., "round_trips": ...}.  On a VM the
 * figure says where the host put the two vCPUs: a few tens of ns for two
 * hyperthreads of one core, around 100 and more for two cores or sockets.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct shared {
	_Alignas(64) volatile uint64_t turn;
	_Alignas(64) volatile int stop;
};

struct side {
	struct shared *sh;
	int cpu;
	uint64_t parity;    /* 0: ping, 1: pong */
	uint64_t trips;
};

static void *
run(void *arg)
{
	struct side *s = arg;
	cpu_set_t set;
	uint64_t t;

	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
		fprintf(stderr, "core_rtt: cannot pin to cpu %d\n", s->cpu);
		exit(2);
	}
	while (!s->sh->stop) {
		t = __atomic_load_n(&s->sh->turn, __ATOMIC_ACQUIRE);
		if ((t & 1) != s->parity)
			continue;
		__atomic_store_n(&s->sh->turn, t + 1, __ATOMIC_RELEASE);
		s->trips++;
	}
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static struct shared sh;
	struct side ping = { .sh = &sh, .cpu = 0, .parity = 0 };
	struct side pong = { .sh = &sh, .cpu = 1, .parity = 1 };
	struct timespec nap;
	pthread_t ta, tb;
	double seconds = 1.0, t0, t1;
	uint64_t turn0, turn1;
	int opt;

	while ((opt = getopt(argc, argv, "a:b:t:h")) != -1) {
		switch (opt) {
		case 'a':
			ping.cpu = atoi(optarg);
			break;
		case 'b':
			pong.cpu = atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: core_rtt [-a CPU] [-b CPU] [-t SECONDS]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || seconds > 60 || ping.cpu == pong.cpu) {
		fprintf(stderr, "core_rtt: two different cpus and 0 < SECONDS <= 60\n");
		return 2;
	}
	if (pthread_create(&ta, NULL, run, &ping) != 0 || pthread_create(&tb, NULL, run, &pong) != 0) {
		fprintf(stderr, "core_rtt: cannot start threads\n");
		return 2;
	}
	nap.tv_sec = 0;
	nap.tv_nsec = 100000000;   /* let both settle on their cpus */
	nanosleep(&nap, NULL);
	turn0 = __atomic_load_n(&sh.turn, __ATOMIC_ACQUIRE);
	t0 = now_s();
	nap.tv_sec = (time_t)seconds;
	nap.tv_nsec = (long)((seconds - (double)nap.tv_sec) * 1e9);
	nanosleep(&nap, NULL);
	turn1 = __atomic_load_n(&sh.turn, __ATOMIC_ACQUIRE);
	t1 = now_s();
	sh.stop = 1;
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	/* a round trip is two turns: there and back */
	printf("{\"cpus\": [%d, %d], \"rtt_ns\": %.1f, \"round_trips\": %" PRIu64 "}\n", ping.cpu,
	       pong.cpu, (t1 - t0) * 1e9 / ((double)(turn1 - turn0) / 2.0), (turn1 - turn0) / 2);
	return 0;
}
