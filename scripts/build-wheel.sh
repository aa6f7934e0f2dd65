#!/usr/bin/env bash
# The onvm wheel (the scaling daemon onvm-scaler, the onvm CLI, and the
# collection's module_utils they share), and the pure-Python wheels of what
# it imports (Redis, Prometheus, the Docker SDK it starts instances with,
# rich for the onvm CLI),
# into the onvm_scaler role's files/,
# where the role installs it from on every host and where
# `ansible-galaxy collection build` packs it: installing the collection is
# enough to deploy the daemon.  Built from a copy of the sources (setuptools
# writes a build/ of its own, and build/ here is meson's); timestamps from
# the last commit, so the same sources give the same file.  Safe to run again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/collections/onvm/roles/onvm_scaler/files
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/collections" "$out"
# the product only: not the lab package and its onvm-lab entry point
grep -v -e '^    "onvm.lab",$' -e '^onvm-lab = ' "$top/pyproject.toml" > "$work/src/pyproject.toml"
cp -a "$top/src" "$work/src/src"
rm -rf "$work/src/src/onvm/lab"
# the collection's Python (module_utils and the stats header), not its roles
mkdir -p "$work/src/collections/onvm/plugins"
cp -a "$top/collections/onvm/__init__.py" "$work/src/collections/onvm/" 2>/dev/null || true
cp -a "$top/collections/onvm/plugins/__init__.py" "$top/collections/onvm/plugins/module_utils" \
	"$work/src/collections/onvm/plugins/" 2>/dev/null || cp -a "$top/collections/onvm/plugins/module_utils" \
	"$work/src/collections/onvm/plugins/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 315532800)}
"$top/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src" >"$work/log" 2>&1 ||
	{ cat "$work/log" >&2; exit 1; }
# What the agent imports beside cffi (Debian's python3-cffi on the host):
# the pure-Python wheels of the versions this venv runs and tests with, and
# of what they import (async-timeout: redis needs it on Python < 3.11.3,
# Debian 12 has 3.11.2).
deps=$("$top/.venv/bin/python" -c '
import importlib.metadata as m
names = ("redis", "prometheus-client", "docker", "requests", "urllib3", "certifi", "idna", "charset-normalizer",
         "rich", "markdown-it-py", "mdurl", "pygments")
print(" ".join("%s==%s" % (d, m.version(d)) for d in names))')
deps="$deps async-timeout==5.0.1"
"$top/.venv/bin/python" -m pip download -q --no-deps --only-binary=:all: --platform any --abi none \
	--implementation py --python-version 3.11 -d "$work/dist" $deps >"$work/log" 2>&1 ||
	{ cat "$work/log" >&2; exit 1; }
for w in "$work"/dist/*.whl; do
	cmp -s "$w" "$out/$(basename "$w")" || { cp "$w" "$out/"; echo "built $(basename "$w")"; }
done
for w in "$out"/*.whl; do
	[ -e "$work/dist/$(basename "$w")" ] || rm -f "$w"
done
# the build id the role compares with a host's (and restarts the agent on)
id=$( (cd "$out" && sha256sum ./*.whl) | sha256sum | cut -c1-16)
[ "$(cat "$out/build-id" 2>/dev/null)" = "$id" ] || echo "$id" > "$out/build-id"
