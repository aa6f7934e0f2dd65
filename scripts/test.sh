#!/usr/bin/env bash
# The whole test suite: lint and types, then pytest (real DPDK, Docker,
# hugepages and namespaces).  Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy collections/onvm/plugins/module_utils onvm_lab tests bench
exec .venv/bin/pytest "$@"
