/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_burst.h - libonvm_nf for bindings: a burst as plain arrays, one call
 * per burst, no DPDK structure crossing the boundary.  What the Python
 * binding (onvm_nf/) loads through cffi, from libonvm_nf_burst.so (the NF
 * library and DPDK, linked statically into one shared object with the same
 * driver set as onvm-mgr).
 *
 *   struct onvm_nf *nf;
 *   onvm_nf_init(&argc, &argv, "myservice", &nf);
 *   onvm_nf_run_bursts(nf, fn, arg);     // fn(burst, arg) per burst
 *   onvm_nf_fini(nf);
 *
 * fn reads burst->data[i] (burst->len[i] bytes: the packet's first
 * segment, writable) and may set burst->verdict[i]; it runs in the packet
 * loop's thread.
 */
#ifndef ONVM_BURST_H
#define ONVM_BURST_H

#include <stdint.h>

#include "onvm_nflib.h"

#define ONVM_V_NEXT (-1)   /* on along the chain (the default) */
#define ONVM_V_DROP (-2)
/* a verdict >= 0 sends the packet out of that port */

struct onvm_burst {
	uint16_t n;
	uint8_t *data[ONVM_BURST];
	uint16_t len[ONVM_BURST];
	int32_t verdict[ONVM_BURST];
};

typedef void (*onvm_burst_fn)(struct onvm_burst *burst, void *arg);

/* onvm_nf_run() with a burst handler; returns what it returns. */
int onvm_nf_run_bursts(struct onvm_nf *nf, onvm_burst_fn fn, void *arg);

#endif
