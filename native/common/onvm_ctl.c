/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "onvm/onvm_ctl.h"

int
onvm_ctl_path(char *buf, size_t len, const char *runtime_dir, const char *host)
{
	if (ONVM_NAME(buf, len, ONVM_CTL_SOCKET_FMT, runtime_dir, host) < 0)
		return -1;
	return strlen(buf) >= sizeof(((struct sockaddr_un *)0)->sun_path) ? -1 : 0;
}

int
onvm_ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

json_t *
onvm_ctl_call(int fd, json_t *request)
{
	static char line[ONVM_CTL_MAX_LINE];
	char *text = json_dumps(request, JSON_COMPACT);
	size_t used = 0;
	int rc;

	if (text == NULL)
		return NULL;
	rc = write_all(fd, text, strlen(text));
	free(text);
	if (rc < 0 || write_all(fd, "\n", 1) < 0)
		return NULL;
	while (used < sizeof(line) - 1) {
		ssize_t r = recv(fd, line + used, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		if (line[used] == '\n') {
			line[used] = '\0';
			return json_loads(line, 0, NULL);
		}
		used++;
	}
	return NULL;
}

int
onvm_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= 32)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}
