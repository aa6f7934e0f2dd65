#!/usr/bin/env bash
# The whole test suite (run scripts/setup.sh first):
#   lint and types (ruff, mypy, ansible-lint production profile),
#   pytest: the collection's unit tests and the data-plane tests (real DPDK,
#   Docker, hugepages, namespaces),
#   molecule default: deploy.yml on this machine, idempotence, verify,
#   molecule lab: the three-host lab over SSH, deploy, idempotence, verify,
#   ansible-test sanity and integration on the collection,
#   the collection as users get it: galaxy build, ansible-builder create,
#   install in a clean venv,
#   deploy.yml / undeploy.yml on this machine with that install.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH
step() { printf '\n== %s\n' "$*"; }

step "ruff, mypy"
ruff check .
ruff format --check .
mypy collections/onvm/plugins src native/nfs/pyfilter tests bench molecule/default/tests molecule/lab/tests
step "ansible-lint (production profile)"
ansible-lint -q
step "pytest"
pytest "$@"
step "molecule default (deploy on this machine)"
molecule test -s default
step "molecule lab (three hosts over SSH)"
molecule test -s lab
step "ansible-test sanity"
bash scripts/ansible_test.sh sanity
step "ansible-test integration (every module through Ansible, on the host's Python)"
bash scripts/ansible_test.sh integration
step "galaxy build, install in a clean venv, deploy with it"
bash scripts/galaxy_check.sh
