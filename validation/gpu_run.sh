#!/usr/bin/env bash
# One-command GPU validation of smile_ref: everything in <= 8 minutes, all results under OUTDIR.
#
#   bash validation/gpu_run.sh OUTDIR              # on the GPU machine (CuPy + a CUDA device)
#   bash validation/gpu_run.sh OUTDIR --standin    # CPU stand-in (array_api_strict device1), tiny sizes
#   bash validation/gpu_run.sh --print-budget      # the stage table (name and timeout in seconds)
#   bash validation/gpu_run.sh --fetch-wheels      # HERE (network): the wheels below into ./.whl
#
# SMILE_REF_GPU_STANDIN=1 is the same as --standin; PYTHON picks the interpreter (default python3);
# SMILE_REF_GPU_STAGES="tests timing_cupy summary" runs only the listed stages (a short rerun).
# Pure-Python wheels missing on the device machine (array-api-compat, array-api-extra,
# array-api-strict, blackjax: see docs/results/gpu-validation.md) are unpacked from ./.whl (or
# $SMILE_REF_WHEELS) into a temporary folder put on PYTHONPATH: no network, no pip.
#
# Stages (each under its own `timeout`; a failing or timed-out stage never stops the later ones):
#   env           env.json: GPU, CUDA, CuPy, JAX, BlackJAX versions, device copy bandwidth
#   tests         tests.xml + tests.log: the CuPy test matrix (pytest -k "gpu or cupy", not slow)
#   agreement     validate.json: NumPy vs CuPy for every registered sampler; fused vs unfused on CuPy
#   analytical    validate.json: the analytical-bias quick run
#   uci           validate.json: the quick UCI ensemble
#   timing_cupy   timing.json: time per step on CuPy (fused, unfused, host RNG), bandwidth floor
#   timing_jax    timing.json: BlackJAX jit MCLMC on JAX's default device
#   timing_numpy  timing.json: smile_ref on NumPy
#   summary       summary.md: all of the above as tables, and the output-folder check
# Files in OUTDIR: env.json tests.xml tests.log validate.json timing.json summary.md run.log (7 <= 8).
set -u

TOTAL_BUDGET=480   # seconds for the whole script (the device call gets ~540 s: start-up and copies)
KILL_GRACE=2       # timeout -k: seconds between TERM and KILL
# name:timeout_s   (sum of timeouts + one KILL_GRACE per stage must stay <= TOTAL_BUDGET - 10)
STAGES=(env:30 tests:115 agreement:30 analytical:45 uci:60 timing_cupy:85 timing_jax:50 timing_numpy:25 summary:10)

# the pure-Python wheels the device machine lacks (no network there): run this HERE, with network
WHEEL_PINS="array-api-compat==1.16.0 array-api-extra==0.11.5 array-api-strict==2.6.1 blackjax==1.7.1"
if [ "${1:-}" = "--fetch-wheels" ]; then
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    # shellcheck disable=SC2086
    ${PYTHON:-python3} -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$ROOT/.whl" $WHEEL_PINS && ls -l "$ROOT/.whl"
    exit $?
fi
if [ "${1:-}" = "--print-budget" ]; then
    for s in "${STAGES[@]}"; do echo "${s%%:*} ${s##*:}"; done
    echo "TOTAL_BUDGET $TOTAL_BUDGET"
    echo "KILL_GRACE $KILL_GRACE"
    exit 0
fi

OUT=${1:?usage: bash validation/gpu_run.sh OUTDIR [--standin] | --print-budget}
shift
STANDIN=${SMILE_REF_GPU_STANDIN:-0}
for a in "$@"; do
    case $a in
        --standin) STANDIN=1 ;;
        *) echo "unknown argument: $a" >&2; exit 2 ;;
    esac
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/run.log
PY=${PYTHON:-python3}
T0=$(date +%s)
: >"$LOG"
log() { echo "$*" | tee -a "$LOG"; }

# ---------------------------------------------------------------- environment
SITE=$(mktemp -d "${TMPDIR:-/tmp}/smile_ref_site.XXXXXX")
WHEELS=${SMILE_REF_WHEELS:-$ROOT/.whl}
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    for w in "$WHEELS"/*.whl; do
        "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$SITE" \
            && log "unpacked $(basename "$w")"
    done
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # JAX must not take 75 % of the GPU from CuPy
export MPLBACKEND=Agg
SI=""
[ "$STANDIN" = "1" ] && SI="--standin"
log "smile_ref gpu_run: standin=$STANDIN python=$("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])') root=$ROOT"
log "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l | tr -d ' ') changed files"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv >>"$LOG" 2>&1

# ---------------------------------------------------------------- stage commands
stage_cmd() {
    local name=$1 t=$2
    local b=$((t - 5))  # a stage's own budget: its timeout less a margin for start-up and writing
    case $name in
        env) echo "$PY -m validation.gpu_bench env $OUT/env.json $SI" ;;
        tests)
            if [ "$STANDIN" = "1" ]; then
                # the stand-in runs the quick CPU tests of the fused kernels (the g++ check runs in CI)
                echo "$PY -m pytest -q -p no:cacheprovider -rfE tests/test_gpu_fused.py -k 'position or switch or cupy' --junitxml=$OUT/tests.xml"
            else
                local pt=""
                "$PY" -c "import pytest_timeout" >/dev/null 2>&1 && pt="--timeout=60"
                echo "$PY -m pytest tests -v -p no:cacheprovider -rfE -m 'not slow' -k 'gpu or cupy' --continue-on-collection-errors $pt --ignore=tests/test_gpu_run.py --ignore=tests/test_gpu_validate.py --junitxml=$OUT/tests.xml"
            fi ;;
        agreement|analytical|uci)
            local extra=""
            [ "$STANDIN" = "1" ] && extra="--allow-cpu-standin --tiny"
            echo "$PY -m validation.gpu_validate --parts $name --json $OUT/validate.json --budget $b $extra" ;;
        timing_cupy) echo "$PY -m validation.gpu_bench timing $OUT/timing.json --side cupy --budget $b --env $OUT/env.json $SI" ;;
        timing_jax)
            local cells=""
            [ "$STANDIN" = "1" ] && cells="--chains 1 --dims 10"  # JAX compiles per cell: one cell on CPU
            echo "$PY -m validation.gpu_bench timing $OUT/timing.json --side jax --budget $b --env $OUT/env.json $SI $cells" ;;
        timing_numpy) echo "env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY -m validation.gpu_bench timing $OUT/timing.json --side numpy --budget $b --cell-budget 0.15 --env $OUT/env.json $SI" ;;
        summary) echo "$PY -m validation.gpu_bench summary $OUT --total-budget $TOTAL_BUDGET" ;;
    esac
}

# ---------------------------------------------------------------- run the stages
for s in "${STAGES[@]}"; do
    name=${s%%:*}
    t=${s##*:}
    now=$(date +%s)
    left=$((TOTAL_BUDGET - (now - T0) - KILL_GRACE))
    [ "$t" -gt "$left" ] && t=$left
    if [ "$t" -lt 5 ]; then
        log "== $name: skipped, ${left}s of the budget left"
        printf 'STAGE\t%s\t%s\t%s\t%s\t%s\n' "$name" "skipped" "-" "0" "$t" >>"$LOG"
        continue
    fi
    if [ -n "${SMILE_REF_GPU_STAGES:-}" ] && [[ " $SMILE_REF_GPU_STAGES " != *" $name "* ]]; then
        log "== $name: not selected (SMILE_REF_GPU_STAGES)"
        printf 'STAGE\t%s\t%s\t%s\t%s\t%s\n' "$name" "not-selected" "-" "0" "$t" >>"$LOG"
        continue
    fi
    cmd=$(stage_cmd "$name" "$t")
    log "== $name (timeout ${t}s): $cmd"
    ts=$(date +%s)
    if [ "$name" = "tests" ]; then
        timeout -k "$KILL_GRACE" "$t" bash -c "$cmd" >"$OUT/tests.log" 2>&1
        rc=$?
        tail -n 15 "$OUT/tests.log" >>"$LOG"
    else
        timeout -k "$KILL_GRACE" "$t" bash -c "$cmd" >>"$LOG" 2>&1
        rc=$?
    fi
    wall=$(($(date +%s) - ts))
    case $rc in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status=failed ;;
    esac
    log "== $name: $status (rc $rc, ${wall}s)"
    if [ "$name" = "env" ] && [ "$STANDIN" != "1" ] && [ -z "${SMILE_REF_CUPY_FUSED:-}" ] \
        && "$PY" -c "import json, sys; p = json.load(open(sys.argv[1])).get('fused_probe'); sys.exit(0 if p and not p.get('ok') else 1)" "$OUT/env.json" 2>/dev/null; then
        export SMILE_REF_CUPY_FUSED=0   # the fused kernels failed to compile or run: Array-API path from here on
        log "== fused CuPy kernels failed their probe (env.json fused_probe): SMILE_REF_CUPY_FUSED=0 for the later stages"
    fi
    printf 'STAGE\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$wall" "$t" >>"$LOG"
done

# summary.md was written before the last lines of run.log: append the final stage line to it
[ -f "$OUT/summary.md" ] && awk -F'\t' '$1 == "STAGE" && $2 == "summary" {print "\nsummary stage: " $3 ", rc " $4 ", " $5 " s"}' "$LOG" >>"$OUT/summary.md"
rm -f "$OUT"/*.tmp*   # half-written JSON of a stage killed while writing (the previous version is kept)
# the device tool returns files of at most 16 MiB: cut the logs if they ever grow past 15 MiB
for f in "$OUT"/*.log; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 15728640 ] && { tail -c 15000000 "$f" >"$f.cut" && mv "$f.cut" "$f"; }
done
rm -rf "$SITE"
log "total $(($(date +%s) - T0)) s"
exit 0
