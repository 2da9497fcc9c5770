#!/usr/bin/env bash
# The GPU check: on one GPU, within GPU_CHECK_SECONDS (default 480, 8 minutes) in all,
#   1. trains a descendant of the shipped ancestry on each installed backend (TensorFlow,
#      JAX, PyTorch) on the GPU and then on the CPU, each leg a fresh process under a
#      timeout (benchmarks/gpu_check.py), and checks that the GPU's results agree with the
#      CPU's (logits before training, loss and accuracy after 24 deterministic steps);
#   2. runs a slice of `klg bench` (the pilot profile, or quick with under 150 s left, on
#      the glyphs if their fonts are installed, else on the Fashion-MNIST subset shipped in
#      the package) on the fastest GPU backend, stopped when the time is up, and writes its
#      report from the runs done;
#   3. prints a table (backend, device, img/s, compile s, loss, acc, agreement, GPU speedup)
#      and writes every figure to $OUT/gpu_check.json, the log to $OUT/gpu_check.log.
# Exit code: 0 all agree; 1 a GPU disagrees with its CPU; 2 a leg or the slice failed;
# 3 no GPU (nvidia-smi missing or failing). A backend that is not installed is skipped.
#
# Environment: OUT (default /tmp/gpu_check_out), GPU_CHECK_SECONDS (480),
# GPU_CHECK_BACKENDS ("torch jax tensorflow"), GPU_CHECK_BENCH_PROFILE (pilot / quick),
# GPU_CHECK_BENCH_DATA=embedded (the slice on the shipped Fashion-MNIST subset even with
# fonts), GPU_CHECK_LOGITS_RTOL / _LOSS_RTOL / _ACC_ATOL (1e-3, 0.05, 0.05),
# GPU_CHECK_ALLOW_CPU=1 (a dry run: the "gpu" legs run on whatever the backend finds, the
# CPU here), PYTHON (python3). If a folder .whl/ of wheels sits in the repository
# (GPU_CHECK_WHEELS names another), they are installed into /tmp/site (offline, without
# dependencies) and put on PYTHONPATH first, then this checkout (keras_learngene need not
# be pip-installed); GPU_CHECK_WHEELS=none skips them.
set -uo pipefail
cd "$(dirname "$0")/.."

TOTAL="${GPU_CHECK_SECONDS:-480}"
OUT="${OUT:-/tmp/gpu_check_out}"
PYTHON="${PYTHON:-python3}"
BACKENDS="${GPU_CHECK_BACKENDS:-torch jax tensorflow}"  # the quickest to start first
DRIVER=benchmarks/gpu_check.py
mkdir -p "$OUT"
rm -rf "$OUT/legs" "$OUT/bench" "$OUT/gpu_check.json"
mkdir -p "$OUT/legs"
exec > >(tee "$OUT/gpu_check.log") 2>&1
START=$SECONDS
left() { echo $((TOTAL - (SECONDS - START))); }
say() { echo "== [$((SECONDS - START)) s] $*"; }

WHEELS="${GPU_CHECK_WHEELS:-.whl}"
if [ -d "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
    say "installing $WHEELS/*.whl into /tmp/site"
    if "$PYTHON" -m pip --version > /dev/null 2>&1; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target /tmp/site "$WHEELS"/*.whl || {
            echo "Error: pip could not install $WHEELS/*.whl (wheels for another Python?)"
            exit 2; }
    else  # no pip: a wheel is a zip file of what goes into site-packages
        for w in "$WHEELS"/*.whl; do "$PYTHON" -m zipfile -e "$w" /tmp/site || exit 2; done
    fi
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

if nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
    :
elif [ "${GPU_CHECK_ALLOW_CPU:-}" = 1 ]; then
    say "no GPU (nvidia-smi missing or failing); GPU_CHECK_ALLOW_CPU=1: a dry run on the CPU"
else
    echo "Error: nvidia-smi is missing or sees no GPU. Install the NVIDIA driver, or set" \
         "GPU_CHECK_ALLOW_CPU=1 for a dry run on the CPU."
    exit 3
fi
"$PYTHON" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('keras') and
u.find_spec('keras_learngene')))" || {
    echo "Error: keras or keras_learngene is not found by $PYTHON (pip install -e ." \
         "from the repository, or put keras' wheels in .whl/)."; exit 2; }

hint() {
    case $1 in
        tensorflow) echo "pip install 'tensorflow[and-cuda]'" ;;
        jax) echo "pip install 'jax[cuda12]'" ;;
        torch) echo "pip install torch --index-url https://download.pytorch.org/whl/cu128" ;;
    esac
}
stub() {  # backend device status message: a leg's JSON when the leg wrote none
    "$PYTHON" -c 'import json, sys; b, d, s, m, f = sys.argv[1:]
json.dump({"backend": b, "device": d, "status": s, "error": m}, open(f, "w"))' \
        "$1" "$2" "$3" "$4" "$OUT/legs/$1_$2.json"
}

LEGS=()
for b in $BACKENDS; do
    if "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$b') is None)"
    then
        LEGS+=("$b gpu" "$b cpu")
    else
        say "$b: skipped: $b not installed ($(hint "$b"))"
        stub "$b" gpu skipped "skipped: $b not installed ($(hint "$b"))"
    fi
done

# Budget: the legs first (each its fair share of what the slice leaves, and at most twice
# that before it is stopped, keeping 25 s for each leg after it); the slice gets the rest.
BENCH_RESERVE=$((TOTAL / 4))
n=${#LEGS[@]}
for leg in "${LEGS[@]}"; do
    read -r b d <<< "$leg"
    remaining=$(left)
    fair=$(( (remaining - BENCH_RESERVE) / n ))
    [ "$fair" -lt 20 ] && fair=20
    limit=$(( 2 * fair ))
    cap=$(( remaining - 10 - 25 * (n - 1) ))
    [ "$limit" -gt "$cap" ] && limit=$cap
    n=$((n - 1))
    if [ "$limit" -lt 20 ]; then
        say "$b/$d: no time left"
        stub "$b" "$d" error "no time left in the ${TOTAL} s budget"
        continue
    fi
    tp=15; [ "$d" = cpu ] && tp=8
    say "$b/$d: up to $limit s"
    timeout -k 10 "$limit" "$PYTHON" "$DRIVER" --backend "$b" --device "$d" \
        --seconds "$fair" --throughput-seconds "$tp" --out "$OUT/legs/${b}_$d.json"
    rc=$?
    if [ ! -f "$OUT/legs/${b}_$d.json" ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            stub "$b" "$d" error "timed out after $limit s"
        else
            stub "$b" "$d" error "exit code $rc (see the log)"
        fi
    fi
done

fastest=$("$PYTHON" "$DRIVER" --fastest "$OUT")
remaining=$(( $(left) - 15 ))
if [ -z "$fastest" ]; then
    say "benchmark slice: skipped (no GPU leg succeeded)"
elif [ "$remaining" -lt 45 ]; then
    say "benchmark slice: skipped (only $remaining s left)"
else
    bench_s=$((remaining - 40))  # then SIGINT, 10 s to stop, and the report
    say "benchmark slice on $fastest for $bench_s s"
    timeout -k 5 "$remaining" "$PYTHON" "$DRIVER" --bench "$OUT/bench" --backend "$fastest" \
        --seconds "$bench_s"
fi

say "summary"
"$PYTHON" "$DRIVER" --summary "$OUT"
code=$?
say "done in $((SECONDS - START)) s (budget $TOTAL s); exit code $code"
exit $code
