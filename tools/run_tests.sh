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
# pytest's own exit status, 5 ("no tests collected") included: a selection that runs nothing is a
# failure (a renamed test, a wrong path), not a pass.
exec python -m pytest "$@"
