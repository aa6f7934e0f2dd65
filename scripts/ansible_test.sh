#!/usr/bin/env bash
# ansible-test on the collection, offline, on this machine (--local):
#   scripts/ansible_test.sh sanity         every sanity test
#   scripts/ansible_test.sh integration    the targets in tests/integration (as root;
#       they are destructive and need the onvm-dataplane package and the onvm
#       images, which deploy.yml or the pytest suite installed: scripts/test.sh
#       runs this after them)
# From a copy at <tmp>/ansible_collections/onvm/nfv (a git work tree,
# symlinks resolved), with a stand-in for the get-pip bootstrap script
# ansible-test would download from a host these machines cannot reach
# (shared/MACHINE-FACTS.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.venv
pipver=$("$venv/bin/python" - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
cache=~/.ansible/test/cache/get_pip_${pipver//./_}.py
if [ ! -f "$cache" ]; then
	mkdir -p "$(dirname "$cache")"
	cat > "$cache" <<'PY'
# Stand-in for pip's get-pip.py: ensurepip, then pip install the same arguments.
import subprocess, sys
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, capture_output=True)
subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)
PY
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/onvm/nfv
mkdir -p "$dest"
cp -aL "$top/collections/onvm/." "$dest/"
rm -rf "$dest/tests/output" "$dest"/**/__pycache__
cd "$dest"
printf 'tests/output/\n__pycache__/\n' > .gitignore
git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm sanity
command=${1:?usage: scripts/ansible_test.sh sanity|integration [ansible-test options]}
shift
case $command in
sanity) ;;
integration)
	[ -x /usr/bin/onvm-mgr ] || {
		echo "integration: no /usr/bin/onvm-mgr: install the onvm-dataplane package first (deploy.yml does)" >&2
		exit 1
	}
	set -- --allow-destructive --allow-root "$@"
	;;
*) echo "scripts/ansible_test.sh: sanity or integration, not '$command'" >&2; exit 64 ;;
esac
PATH=$venv/bin:$PATH ansible-test "$command" --local --python 3.11 "$@"
