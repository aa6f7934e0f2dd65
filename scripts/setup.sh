#!/usr/bin/env bash
# Set up this machine for onvm, from nothing (Debian 12, root):
# apt packages, the Python venv from pyproject.toml, hugepages, the Docker
# engine (no default bridge, no iptables: NF containers have no network),
# the artifacts hosts are given (scripts/build-artifacts.sh: the data plane
# package, the NF images, the agent's wheels).  Safe to run again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
log() { printf '[setup] %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
	echo "setup.sh: run as root (hugepages, namespaces, Docker)" >&2
	exit 2
fi

pkgs=(libdpdk-dev dpdk dpdk-dev meson ninja-build pkg-config gcc make libjansson-dev
      libnuma-dev libbsd-dev libelf-dev zlib1g-dev docker.io iproute2 procps
      python3 python3-venv python3-installer python3-cffi python3-docker dpkg-dev
      python3-dev python3-apt git redis-server openssh-server tmux clang libclang-rt-14-dev
      tshark)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "apt: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

log "python venv (.venv) from pyproject.toml"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

log "hugepages"
mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
want=${ONVM_HUGEPAGES:-512}
have=$(cat /proc/sys/vm/nr_hugepages)
[ "$have" -ge "$want" ] || echo "$want" > /proc/sys/vm/nr_hugepages
log "  $(cat /proc/sys/vm/nr_hugepages) x 2 MiB pages, $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) free"

if ! docker info >/dev/null 2>&1; then
	log "starting dockerd (--bridge=none --iptables=false)"
	mkdir -p /var/log/onvm
	# A machine handed over after its processes were ended keeps dockerd's pid
	# file, and dockerd refuses to start beside it: drop it when nobody has it.
	pid=$(cat /var/run/docker.pid 2>/dev/null || true)
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
		log "  removing stale /var/run/docker.pid (pid $pid is not dockerd)"
		rm -f /var/run/docker.pid
	fi
	nohup dockerd --bridge=none --iptables=false >/var/log/onvm/dockerd.log 2>&1 &
	for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
	docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/onvm/dockerd.log" >&2; exit 1; }
fi

log "the artifacts deploy.yml installs on each host (dist/: data plane package, NF images; the agent's wheels)"
bash scripts/build-artifacts.sh | sed 's/^/[setup]   /'
log "ready"
