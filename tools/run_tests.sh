#!/usr/bin/env bash
# Set up the environment if needed (idempotent; seconds when ready) and run the test suite.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh tests/ops -x`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/tools/setup_env.sh"
if [[ "${PIXVOX_NO_VENV:-0}" != "1" ]]; then
    # shellcheck disable=SC1091
    source "${PIXVOX_VENV:-$REPO/.venv}/bin/activate"
fi
cd "$REPO"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
set +e
python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    # pytest exits 5 when a selection collects nothing; that is not a failure of the code.
    echo "[run_tests] pytest collected no tests for: ${*:-<all>}"
    exit 0
fi
exit $rc
