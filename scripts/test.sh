#!/usr/bin/env bash
# The README's test command: install, then run every notebook (nbdev-test) and the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # 2 notebook workers x 1 thread: more threads oversubscribe 2 cores
# the notebooks' and tests' temporary folders (models, images, long synthetic files) go in one folder, removed at the end
export TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/voicegender-test.XXXXXX")"
trap 'rm -rf "$TMPDIR"' EXIT
echo "== nbdev-export: the library must match the notebooks"
.venv/bin/nbdev-export
if ! git diff --quiet -- voicegender 2>/dev/null; then
  echo "voicegender/ differs from what the notebooks export:"; git --no-pager diff --stat -- voicegender; exit 1
fi
echo "== librosa's numba kernels, compiled and cached once before two notebooks run at a time"
# (two processes writing librosa's numba cache at once left a cache that crashed pyin with a segfault)
.venv/bin/python scripts/warm_numba.py
echo "== nbdev-test (every notebook)"
.venv/bin/nbdev-test --n-workers 2
echo "== pytest"
set +e
.venv/bin/python -m pytest -q tests
rc=$?
set -e
[ $rc -eq 5 ] && { echo "pytest: no tests collected"; rc=0; }
exit $rc
