#!/usr/bin/env bash
# make test's notebooks (01 and 02, through pytest, each from a cold cache) under three threads rules, one run after
# another as a suite runs them, in two rounds of opposite order:
#   every   - the rule before issue 20: every core (OLD_REF with WORKBENCH_LOCAL_THREADS=<cores>)
#   loadavg - OLD_REF's own rule: the cores less the rounded 1-minute load average
#   busy    - this tree: the cores less those busy over the half second before the server starts (busy_cores)
# Usage: bash bench/notebook_threads.sh [OLD_REF]   (default 3c9d8ee; run from the repository, after make test)
set -u
cd "$(dirname "$0")/.."
here=$(pwd)
old_ref=${1:-3c9d8ee}
old_tree=$(mktemp -d)/old
git worktree add --detach "$old_tree" "$old_ref" > /dev/null 2>&1 || { echo "cannot check out $old_ref"; exit 1; }
trap 'git worktree remove --force "$old_tree"' EXIT
cores=$(nproc)
echo "$cores cores; old tree $old_ref; load $(cut -d' ' -f1-3 /proc/loadavg)"
for order in "busy every loadavg" "loadavg every busy"; do
  for rule in $order; do
    data=$(mktemp -d)
    case $rule in
      every) tree=$old_tree; fixed=$cores;;
      loadavg) tree=$old_tree; fixed=;;
      busy) tree=$here; fixed=;;
    esac
    start=$(date +%s.%N)
    (cd "$tree" && PYTHONPATH="$tree" WORKBENCH_DATA_DIR="$data" WORKBENCH_LOCAL_THREADS=$fixed \
      "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider \
      notebooks/01_quickstart.ipynb notebooks/02_prompt_lab.ipynb > "$data.log" 2>&1)
    rc=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    threads=$(grep -ho "n_threads = [0-9]*" "$data"/logs/*.log 2>/dev/null | tail -1)
    printf "%-8s exit %s  %4.0f s  (last server: %s; load after %s)\n" $rule $rc "$wall" "$threads" \
      "$(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$data" "$data.log"
  done
done
