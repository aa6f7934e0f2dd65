#!/usr/bin/env bash
# The image of a Python NF: onvm/<nf>:<version>, FROM scratch like the C NFs,
# holding this machine's python3 (interpreter, standard library, the shared
# libraries they load), cffi, the binding (onvm_nf/), libonvm_nf_burst.so and
# the NF's script.  No registry, no base image: assembled from the host.
#   native/docker/build-python-image.sh NF     (native/nfs/NF/NF.py)
# Prints "onvm/NF:VERSION built" or "... unchanged" (as build-images.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${ONVM_BUILD_DIR:-$top/build}
# shellcheck source=native/docker/image-build.sh
. "$here/image-build.sh"
nf=${1:?usage: build-python-image.sh NF}
script=$top/native/nfs/$nf/$nf.py
[ -f "$script" ] || { echo "build-python-image: no $script" >&2; exit 2; }
lib=$build/libonvm_nf_burst.so
[ -f "$lib" ] || { echo "build-python-image: no $lib (build the data plane first)" >&2; exit 2; }
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
# the interpreter the project's venv runs on (cffi's extension is built for it)
read -r py stdlib dynload libdir < <("$top/.venv/bin/python" -c 'import sys, sysconfig
print(sys._base_executable, sysconfig.get_paths()["stdlib"], sysconfig.get_config_var("DESTSHARED"),
      sysconfig.get_config_var("LIBDIR"))')
py=$(readlink -f "$py")
site=$("$top/.venv/bin/python" -c 'import cffi, os; print(os.path.dirname(os.path.dirname(cffi.__file__)))')

# what the image is made of: an image labelled with the same digest is left
# as it is, without assembling its root (4 s of copying on every deploy)
inputs=$( (sha256sum "$script" "$lib" "$top"/src/onvm/nf/*.py "$top"/src/onvm/__init__.py "$py" "$site"/_cffi_backend*.so "$0" \
	"$here/image-build.sh"; echo "$py $stdlib $version") | sha256sum | cut -c1-64)
have=$(docker image inspect -f '{{.Id}} {{index .Config.Labels "org.onvm.inputs"}}' "onvm/$nf:$version" \
	2>/dev/null || true)
if [ "${have#* }" = "$inputs" ] &&
	[ "$(docker image inspect -f '{{.Id}}' "onvm/$nf:latest" 2>/dev/null)" = "${have%% *}" ]; then
	echo "onvm/$nf:$version unchanged"
	exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root$(dirname "$py")" "$root/usr/lib/onvm" "$root/opt/onvm/py" "$root/tmp"
cp "$py" "$root$py"
# the standard library at the same path (the interpreter finds it from its own),
# without what an NF never imports
tar -C / --exclude=test --exclude=idlelib --exclude=tkinter --exclude=turtledemo --exclude=ensurepip \
	--exclude=lib2to3 --exclude=pydoc_data --exclude=site-packages --exclude=dist-packages \
	-cf - "${stdlib#/}" | tar -C "$root" -xf -
cp -r "$site/cffi" "$site/pycparser" "$site"/_cffi_backend*.so "$root/opt/onvm/py/"
mkdir -p "$root/opt/onvm/py/onvm" && cp -r "$top/src/onvm/nf" "$top/src/onvm/__init__.py" "$root/opt/onvm/py/onvm/"
find "$root/opt/onvm/py" -name __pycache__ -prune -exec rm -rf {} +
cp "$lib" "$root/usr/lib/onvm/"
cp "$script" "$root/opt/onvm/nf.py"
# every shared library the interpreter, the extension modules and the NF library load
for f in "$py" "$lib" "$site"/_cffi_backend*.so "$dynload"/*.so; do
	ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' || true
done | sort -u | while read -r so; do
	mkdir -p "$root$(dirname "$so")"
	cp -L "$so" "$root$so"
done
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
LABEL org.onvm.nf="$nf" org.onvm.version="$version" org.onvm.language="python"
COPY rootfs/ /
ENV PYTHONPATH=/opt/onvm/py PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=$libdir
ENTRYPOINT ["$py", "/opt/onvm/nf.py"]
DOCKERFILE
onvm_image_build "$nf" "$version" "$ctx" --label "org.onvm.inputs=$inputs"
