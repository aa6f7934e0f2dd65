/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm-pause: holds the PID namespace that a host's NF containers share.
 *
 * A DPDK secondary names its private files in the runtime directory after
 * its pid; NF containers that each had a pid namespace of their own would
 * all be pid 1 and collide there.  So they join this container's pid
 * namespace instead (the pod "pause" container idea): unique pids, and
 * still nothing of the host's processes in sight.  It sleeps, reaps
 * orphans, and exits on SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void
on_term(int sig)
{
	(void)sig;
	done = 1;
}

static void
on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int
main(void)
{
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGCHLD, on_child);
	while (!done)
		pause();
	return 0;
}
