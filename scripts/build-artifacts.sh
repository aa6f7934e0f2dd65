#!/usr/bin/env bash
# Build once, install everywhere: the one build step of a deployment, run on
# the control node (or a CI job).  Hosts get what it makes and need no
# checkout, no compiler and no venv of the controller's.
#
#   scripts/build-artifacts.sh [DIST]        (default: dist/ of the checkout)
#
# DIST/onvm-dataplane_<version>_<arch>.deb   onvm-mgr, onvm-own, onvm-pause,
#     the NF binaries, libonvm_nf and the headers (onvm_stats.h, which the
#     modules parse the stats area with), from `meson install`.  The binaries
#     link DPDK statically (native/meson.build), so the package depends on
#     nothing beyond libc.  Version <meson version>+<commit time>.<payload
#     digest>: a later commit to native/ sorts later, and the same payload is the same
#     version (a re-deploy installs nothing).
# DIST/images/<nf>_<version>.tar            `docker save` of each NF image
#     (native/docker/build-images.sh builds them), loaded by the role
#     onvm_host where the host's image id differs.
# DIST/manifest.json                        what the roles read: the package,
#     its version, and each image's name (and its :latest alias, in the same
#     archive), id and file.
# The agent's wheels go to the role onvm_scaler's files/ (build-wheel.sh):
# the collection carries its daemon.
# Safe to run again: what did not change is not rewritten.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:-$top/dist}
build=${ONVM_BUILD_DIR:-$top/build}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 315532800)}
mkdir -p "$dist/images"

bash "$top/scripts/build-wheel.sh"
ONVM_BUILD_DIR=$build bash "$top/native/docker/build-images.sh"

# --- the Debian package ---------------------------------------------------
[ "$(meson introspect --buildoptions "$build" |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')" = /usr ] ||
	meson configure "$build" -Dprefix=/usr >/dev/null
ninja -C "$build" >/dev/null   # the new prefix takes effect
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
DESTDIR=$root meson install -C "$build" --no-rebuild --quiet >/dev/null
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# the last commit that touched the data plane: a docs-only commit is no new version
native_epoch=$(git -C "$top" log -1 --format=%ct -- native 2>/dev/null || true)
upstream=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
payload=$( (cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-10)
version=$upstream+${native_epoch:-$SOURCE_DATE_EPOCH}.$payload
arch=$(dpkg --print-architecture)
deb=onvm-dataplane_${version}_$arch.deb
if [ ! -f "$dist/$deb" ]; then
	mkdir -p "$root/DEBIAN" "$root/usr/share/doc/onvm-dataplane"
	cp "$top/collections/onvm/LICENSES/BSD-3-Clause.txt" "$root/usr/share/doc/onvm-dataplane/copyright"
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	# what the shared libonvm_nf_burst.so (Python NFs) links; the executables are static
	mkdir -p "$stage/debian"
	printf 'Source: onvm\n\nPackage: onvm-dataplane\nArchitecture: any\n' > "$stage/debian/control"
	depends=$(cd "$stage" && find root -name '*.so' -printf '-e%p\n' |
		xargs dpkg-shlibdeps -O 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
	cat > "$root/DEBIAN/control" <<EOF
Package: onvm-dataplane
Version: $version
Architecture: $arch
Depends: $depends
Maintainer: onvm developers <onvm@localhost>
Installed-Size: $size
Section: net
Priority: optional
Description: onvm data plane: the DPDK manager, its NFs and libonvm_nf
 onvm-mgr owns the host's DPDK ports and passes packets to network
 functions through rings in shared hugepage memory; onvm-own tells whether
 a port is the machine's own; onvm-pause holds the NF containers' PID
 namespace.  DPDK $(pkg-config --modversion libdpdk) is linked in statically.
 Built from onvm's native/ by scripts/build-artifacts.sh.
EOF
	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group -Zxz -z6 --build "$root" "$stage/$deb" >/dev/null
	mv "$stage/$deb" "$dist/$deb"
	echo "built $deb"
fi
for old in "$dist"/onvm-dataplane_*.deb; do
	[ "$(basename "$old")" = "$deb" ] || rm -f "$old"
done

# --- the NF images ----------------------------------------------------------
images=()
for nf in speed_tester bounce forward firewall slow pause pyfilter; do
	image=onvm/$nf:$upstream
	id=$(docker image inspect -f '{{.Id}}' "$image")
	file=images/${nf}_$upstream.tar
	saved=$(python3 -c 'import json,sys
try: print(next(i["id"] for i in json.load(open(sys.argv[1]))["images"] if i["file"] == sys.argv[2] and "latest" in i))
except Exception: print("")' "$dist/manifest.json" "$file")
	if [ "$saved" != "$id" ] || [ ! -f "$dist/$file" ]; then
		# with its :latest tag too (the PID-namespace holder runs onvm/pause:latest)
		docker save -o "$dist/$file.tmp" "$image" "onvm/$nf:latest"
		mv "$dist/$file.tmp" "$dist/$file"
		echo "saved $image"
	fi
	images+=("$image" "$id" "$file")
done

python3 - "$dist/manifest.json" "$deb" "$version" "${images[@]}" <<'EOF'
import json, sys
out, deb, version, *rest = sys.argv[1:]
images = [
    {"image": rest[i], "latest": rest[i].rsplit(":", 1)[0] + ":latest", "id": rest[i + 1], "file": rest[i + 2]}
    for i in range(0, len(rest), 3)
]
doc = {"package": "onvm-dataplane", "version": version, "deb": deb, "images": images}
text = json.dumps(doc, indent=2) + "\n"
try:
    same = open(out).read() == text
except OSError:
    same = False
if not same:
    open(out, "w").write(text)
EOF
