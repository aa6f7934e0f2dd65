#!/usr/bin/env bash
# ansible-test integration on the collection, offline, on this machine
# (--local: as root, the targets are destructive and need the onvm-dataplane
# package and the onvm images, which deploy.yml or the pytest suite installed:
# scripts/test.sh runs this after them).  The same copy as sanity.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/onvm-mgr ] || {
	echo "integration: no /usr/bin/onvm-mgr: install the onvm-dataplane package first (deploy.yml does)" >&2
	exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/onvm/nfv
mkdir -p "$dest"
cp -aL "$top/collections/onvm/." "$dest/"
rm -rf "$dest/tests/output" "$dest"/**/__pycache__
cd "$dest"
PATH=$top/.venv/bin:$PATH ansible-test integration --local --python 3.11 --allow-destructive --allow-root "$@"
