/* SPDX-License-Identifier: BSD-3-Clause
 *
 * onvm_ctl.h - client side of the manager's control socket (JSON lines),
 * shared by libonvm_nf and the tools.  See native/README.md for the
 * protocol.
 */
#ifndef ONVM_CTL_H
#define ONVM_CTL_H

#include <stddef.h>

#include <jansson.h>

#include "onvm/onvm_names.h"

#define ONVM_CTL_MAX_LINE 65536

/* "<runtime_dir>/onvm-<host>/onvm.sock" into buf; -1 if it does not fit. */
int onvm_ctl_path(char *buf, size_t len, const char *runtime_dir, const char *host);

/* Connect to the socket; fd or -1 with errno set. */
int onvm_ctl_connect(const char *path);

/* Send one request and read one reply line; NULL on I/O or parse error. */
json_t *onvm_ctl_call(int fd, json_t *request);

/* Valid host/service name: 1..31 chars of [A-Za-z0-9_.-]. */
int onvm_name_ok(const char *s);

#endif /* ONVM_CTL_H */
