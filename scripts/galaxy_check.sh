#!/usr/bin/env bash
# The collection as users get it: `ansible-galaxy collection build`, installed
# into a clean venv (ansible-core and the collection's requirements.txt, nothing
# of this project's venv), then its playbooks onvm.nfv.deploy and
# onvm.nfv.undeploy (roles, defaults and all from the install) run against
# inventory/local with that install as the only onvm.nfv there is.
# Under names of its own (host gal, its own Redis, metrics port and manager
# cpu): a deployment of inventory/local (README command 1) may be running.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/onvm-galaxy.XXXXXX)
deployed=0
finish() {
	# whatever happened, leave this machine as it was
	[ "$deployed" = 0 ] || run onvm.nfv.undeploy >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap finish EXIT
log() { printf '[galaxy] %s\n' "$*"; }

log "build"
"$top/.venv/bin/ansible-galaxy" collection build "$top/collections/onvm" --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/onvm-nfv-*.tar.gz)
log "  $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

log "execution environment: ansible-builder create (the build context; no registry here to build it)"
cp -r "$top/ee" "$work/ee"
cp "$tarball" "$work/ee/"
"$top/.venv/bin/ansible-builder" create -f "$work/ee/execution-environment.yml" -c "$work/ee-context" >/dev/null
[ -f "$work/ee-context/_build/collections/$(basename "$tarball")" ] ||
	{ echo "galaxy_check: the EE context lacks the collection" >&2; exit 1; }
# what the EE build will install for the collection (meta/execution-environment.yml)
"$top/.venv/bin/ansible-galaxy" collection install --force -p "$work/ee-colls" "$tarball" >/dev/null 2>&1
"$top/.venv/bin/python" "$work/ee-context/_build/scripts/introspect.py" introspect "$work/ee-colls" 2>/dev/null \
	> "$work/ee-deps"
grep -q "from collection onvm.nfv" "$work/ee-deps" ||
	{ cat "$work/ee-deps"; echo "galaxy_check: ansible-builder finds no requirements in onvm.nfv" >&2; exit 1; }
log "  $(grep -c 'from collection onvm.nfv' "$work/ee-deps") requirements from meta/execution-environment.yml"

log "clean venv: ansible-core, then the collection's requirements"
cd "$work"   # away from the project's ansible.cfg (its collections_path has onvm.nfv already)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q 'ansible-core>=2.19,<2.20' 2>&1 | grep -v '^WARNING: Location' || true
"$work/venv/bin/ansible-galaxy" collection install -p "$work/collections" "$tarball" >/dev/null
"$work/venv/bin/pip" install -q -r "$work/collections/ansible_collections/onvm/nfv/requirements.txt" 2>&1 |
	grep -v '^WARNING: Location' || true

# The plays run from $work: no ansible.cfg and no collections/ there but the
# install.  From the checkout: the artifacts scripts/build-artifacts.sh built
# (onvm_artifacts_dir: the data plane package, the NF images) and the
# services' files (onvm_files_dir).  The scaling agent comes from the wheels
# the collection carries.
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_NOCOLOR=1
found=$("$work/venv/bin/ansible-galaxy" collection list onvm.nfv 2>/dev/null | grep -c '^onvm\.nfv ' || true)
[ "$found" = 1 ] || { echo "galaxy_check: onvm.nfv is not (only) the installed one" >&2; exit 1; }
"$work/venv/bin/ansible-doc" onvm.nfv.nf >/dev/null
"$work/venv/bin/ansible-doc" -t role onvm.nfv.onvm_manager >/dev/null

beside='{"onvm_host": "gal", "onvm_manager": {"core": 1, "mem_mb": 64}, "onvm_state_port": 6391,
 "onvm_state_dir": "/var/lib/onvm-redis-gal", "onvm_scaler_redis": "redis://127.0.0.1:6391/0",
 "onvm_scaler_metrics": "127.0.0.1:9472"}'
run() {
	"$work/venv/bin/ansible-playbook" -i "$top/inventory/local" -e "onvm_artifacts_dir=$top/dist" -e "onvm_files_dir=$top/files" -e "$beside" "$@"
}
log "onvm.nfv.deploy from the installed collection"
deployed=1
run onvm.nfv.deploy | tee "$work/deploy.log" | grep -E '^(PLAY RECAP|localhost )' || true
grep -qE '^localhost .* failed=0' "$work/deploy.log" || { cat "$work/deploy.log"; exit 1; }
log "the manager answers and the NFs run"
"$top/.venv/bin/onvm" status --host gal > "$work/status"
head -1 "$work/status"
grep -qE '^[0-9]+ +[a-z]+ +running' "$work/status" || { cat "$work/status"; exit 1; }
log "the scaling agent runs from the wheels the collection carries"
tar -tzf "$tarball" > "$work/contents"
grep -q '^roles/onvm_scaler/files/onvm-.*\.whl$' "$work/contents" ||
	{ echo "galaxy_check: no onvm wheel in $(basename "$tarball")" >&2; exit 1; }
argv=$(tr '\0' ' ' < "/proc/$(cat /run/onvm/onvm-scaler-gal.pid)/cmdline")
case "$argv" in
"/opt/onvm/gal/venv/bin/python /opt/onvm/gal/venv/bin/onvm-scaler "*) echo "[galaxy]   $argv" ;;
*) echo "galaxy_check: the agent is not the installed one: $argv" >&2; exit 1 ;;
esac
log "onvm.nfv.undeploy"
run onvm.nfv.undeploy | grep -E '^localhost ' || true
deployed=0
[ ! -e /opt/onvm/gal ] || { echo "galaxy_check: undeploy left /opt/onvm/gal" >&2; exit 1; }
log "ok"
