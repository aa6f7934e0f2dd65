/* SPDX-License-Identifier: BSD-3-Clause
 *
 * libFuzzer harness of the NSH decoder (onvm_nsh_parse, include/onvm/onvm_pkt.h):
 * any bytes as a frame off a fabric link.  Built and run for a bounded time
 * by tests/test_fuzz.py:
 *   clang -fsanitize=fuzzer,address,undefined $(pkg-config --cflags libdpdk) \
 *         -Inative/include native/fuzz/fuzz_nsh.c -o fuzz_nsh
 */
#include <stdint.h>
#include <stdlib.h>

#include "onvm/onvm_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct onvm_nsh_info ni;
	int r;

	if (size > UINT16_MAX)
		return 0;
	r = onvm_nsh_parse(data, (uint32_t)size, &ni);
	if (r < -1 || r > 1)
		abort();
	/* an accepted frame holds its outer headers and an inner Ethernet
	 * header, and its TTL went down by one from at most 63 */
	if (r == 1 && (ni.outer_len + sizeof(struct rte_ether_hdr) > size || ni.ttl >= 63 ||
		       ni.outer_len < ONVM_NSH_ENCAP_LEN))
		abort();
	return 0;
}
