#!/usr/bin/env bash
# The README's two commands, taken from README.md as written there (the
# fenced blocks under "## The two commands"), run in the order a user runs
# them on one machine, with what must hold between them checked:
#   1. set up, deploy inventory/local, send, status   (the deployment stays up)
#   2. set up, the whole test suite                   (beside that deployment)
#   1. again                                           (still works: 0 changed)
# After each step the deployment of command 1 is looked at: its manager is
# the same process all along and idle (under 5% of a core over 5 s), and the
# chain's totals count every frame sent (10,000 a send; 7,000 out).
# Leaves nothing deployed.  .ci/run runs this.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
log() { printf '\n== [readme] %s\n' "$*"; }

cmd() {   # README command $1
	python3 - "$1" <<'PY'
import re, sys
text = open("README.md", encoding="utf-8").read()
part = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```\n\s*(.+?)\n\s*```", part, re.S)
print(blocks[int(sys.argv[1]) - 1].strip())
PY
}

deployed=0
finish() {
	rc=$?
	if [ "$deployed" = 1 ]; then
		.venv/bin/ansible-playbook undeploy.yml -i inventory/local >/dev/null 2>&1 || true
	fi
	exit $rc
}
trap finish EXIT

mgr_pid() { .venv/bin/onvm status --host local | sed -n 's/.* manager pid \([0-9]*\) .*/\1/p'; }

look() {   # the deployment of command 1: $1 = frames sent so far; prints its manager's pid
	local pid share out
	pid=$(mgr_pid)
	[ -n "$pid" ] || { echo "readme: no manager of host local" >&2; exit 1; }
	share=$(.venv/bin/python -c "from onvm.lab.cpu import core_share; print(round(100 * core_share([$pid], 5.0), 1))")
	out=$(.venv/bin/onvm status --host local)
	printf '%s\n' "$out" | grep '^chain web' >&2
	echo "manager pid $pid, ${share}% of a core over 5 s" >&2
	python3 - "$share" "$1" "$out" <<'PY'
import re, sys
share, sent, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
m = re.search(r"^chain web: .*  in (\d+)  out (\d+)", out, re.M)
assert m, "no totals for chain web in onvm status"
assert (int(m.group(1)), int(m.group(2))) == (sent, sent * 7 // 10), "chain web: want in %d out %d, got %s" % (sent, sent * 7 // 10, m.groups())
assert share < 5.0, "the idle manager of host local used %.1f%% of a core" % share
PY
	echo "$pid"
}

log "command 1: $(cmd 1)"
deployed=1
bash -c "$(cmd 1)"
sleep 2   # the burst is over; the scaler may judge it
first=$(look 10000 | tail -1)

log "command 2 (beside command 1's deployment): $(cmd 2)"
bash -c "$(cmd 2)"
now=$(look 10000 | tail -1)
[ "$now" = "$first" ] || { echo "readme: command 2 replaced command 1's manager ($first -> $now)" >&2; exit 1; }

log "command 1 again"
bash -c "$(cmd 1)" | tee /tmp/onvm-readme-cmd1.log
grep -qE '^localhost .* changed=0 .* failed=0' /tmp/onvm-readme-cmd1.log ||
	{ echo "readme: command 1 again changed something on the deployed host" >&2; exit 1; }
sleep 2
now=$(look 20000 | tail -1)
[ "$now" = "$first" ] || { echo "readme: command 1 again replaced the manager ($first -> $now)" >&2; exit 1; }
log "ok"
