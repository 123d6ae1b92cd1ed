#!/usr/bin/env bash
# Run the test suite; exit non-zero on any failure and when no test ran (pytest exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1 YOLO_OFFLINE=1 ULTRALYTICS_SAFE_LOAD=1
export YOLO_CONFIG_DIR="$PWD/.cache/ultralytics" MPLCONFIGDIR="$PWD/.cache/matplotlib"
# --durations: every run ends with its ten slowest tests, to see where the suite's time goes
python -m pytest --durations=10 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_tests: no tests ran" >&2
  exit 1
fi
exit "$rc"
