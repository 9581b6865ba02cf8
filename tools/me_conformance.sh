#!/usr/bin/env bash
# Run MinkowskiEngine's own test suite against the installed (patched) engine and print passed / failed /
# skipped / excluded, with the reason for every test that did not run. Thin over `python -m
# pixvox.conformance`; extra arguments go to it (e.g. --report results.json, --run-excluded, -- -k conv).
#
#   PIXVOX_ME_TESTS     the suite (the tests/python folder's parent) (default: ../shared/third_party/minkowskiengine_tests)
#   PIXVOX_SHARED_DATA  real data; the room scan comes from scannet_pointcept/scene0011_00 (default: ../shared/data)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [[ "${PIXVOX_NO_VENV:-0}" != "1" && -z "${VIRTUAL_ENV:-}" ]]; then
    # shellcheck disable=SC1091
    source "${PIXVOX_VENV:-$REPO/.venv}/bin/activate"
fi
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec python -m pixvox.conformance "$@"
