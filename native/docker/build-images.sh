#!/usr/bin/env bash
# Build the data plane and one local image per NF: onvm/<nf>:<version>, plus
# onvm/pause (holds the PID namespace a host's NF containers share); NFs
# written in Python (native/nfs/<nf>/<nf>.py) through build-python-image.sh.
#   native/docker/build-images.sh [NF ...]     (default: every NF and pause)
# Idempotent: an image whose binary did not change is rebuilt from cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${ONVM_BUILD_DIR:-$top/build}
# shellcheck source=native/docker/image-build.sh
. "$here/image-build.sh"

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top/native" >/dev/null
fi
ninja -C "$build" >/dev/null
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
nfs=("$@")
[ ${#nfs[@]} -gt 0 ] || nfs=(speed_tester bounce forward firewall slow pause pyfilter)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$ctx/"
for nf in "${nfs[@]}"; do
	if [ -f "$top/native/nfs/$nf/$nf.py" ]; then   # an NF in Python
		ONVM_BUILD_DIR=$build bash "$here/build-python-image.sh" "$nf"
		continue
	fi
	bin=$nf
	[ "$nf" != pause ] || bin=onvm-pause
	if [ ! -x "$build/$bin" ]; then
		echo "build-images: no NF binary '$bin' in $build" >&2
		exit 2
	fi
	cp "$build/$bin" "$ctx/nf"
	onvm_image_build "$nf" "$version" "$ctx" --build-arg NF="$nf" --build-arg VERSION="$version"
done
