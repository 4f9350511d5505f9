#!/usr/bin/env bash
# motionrepro entry point. Bootstraps .venv on first use, then:
#   ./reproduce.sh demo [--only METHOD ...] [overrides]   every method, smoke scale, bundled synthetic data
#   ./reproduce.sh test [--fast] [pytest args]            the test suite (benchmarks skipped); --fast skips slow tests
#   ./reproduce.sh METHOD DATASET [hydra overrides]       one paper's runs (python -m evaluators.run)
#   ./reproduce.sh manifest PROTOCOL DATASET --out m.json what a submission must generate (README: Score your own model)
#   ./reproduce.sh score PROTOCOL DATASET SUBMISSION      evaluate motions generated elsewhere; writes run records
#   ./reproduce.sh export METHOD DATASET --manifest m.json --out DIR checkpoint=PATH   a submission from a method
#   ./reproduce.sh --help                                 this text + methods, datasets, protocols
#   ./reproduce.sh bootstrap                              only create/update .venv (from requirements/*.lock)
#   ./reproduce.sh lock [--upgrade]                       recompile requirements/cpu.lock and cuda.lock
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${MOTIONREPRO_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
TORCH_VERSION="2.13.0"
STAMP="$VENV/.motionrepro-stamp"

log() { printf '[reproduce.sh] %s\n' "$*" >&2; }

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# A CPU build of torch lying on disk (pip's find-links folders or $MOTIONREPRO_TORCH_WHEEL).
local_cpu_wheel() {
    if [ -n "${MOTIONREPRO_TORCH_WHEEL:-}" ] && [ -f "$MOTIONREPRO_TORCH_WHEEL" ]; then
        echo "$MOTIONREPRO_TORCH_WHEEL"; return 0
    fi
    local dirs d f
    dirs="${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true)"
    for d in $dirs; do
        d="${d#file://}"
        for f in "$d"/torch-"$TORCH_VERSION"+cpu-*.whl; do
            [ -f "$f" ] && { echo "$f"; return 0; }
        done
    done
    return 1
}

install_torch() {
    if has_gpu; then
        log "GPU found: pip install torch==$TORCH_VERSION"
        "$PY" -m pip install "torch==$TORCH_VERSION"
        return
    fi
    # No GPU: never let pip pick a multi-GB CUDA build.
    local wheel
    if wheel="$(local_cpu_wheel)"; then
        log "no GPU: installing the CPU build on disk ($wheel)"
        "$PY" -m pip install "$wheel"
    else
        log "no GPU: installing torch==$TORCH_VERSION from the PyTorch CPU index"
        "$PY" -m pip install "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
}

# Which lock this machine installs: the CUDA one when a GPU is visible, else the CPU one.
lock_kind() {
    if [ -n "${MOTIONREPRO_LOCK:-}" ]; then echo "$MOTIONREPRO_LOCK"; elif has_gpu; then echo cuda; else echo cpu; fi
}

# Install from requirements/<kind>.lock (every package pinned, with hashes), then the project
# itself without dependencies. MOTIONREPRO_UNLOCKED=1 installs the newest versions pyproject's
# ranges admit instead (what `.ci/run --latest` tests), with torch still installed first.
bootstrap() {
    local want kind lock
    kind="$(lock_kind)"
    lock="requirements/$kind.lock"
    if [ -n "${MOTIONREPRO_UNLOCKED:-}" ]; then
        want="unlocked $(sha256sum pyproject.toml | cut -d' ' -f1)"
    else
        [ -f "$lock" ] || { log "missing $lock (run ./reproduce.sh lock)"; exit 1; }
        want="$kind $(cat pyproject.toml "$lock" | sha256sum | cut -d' ' -f1)"
    fi
    if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return 0
    fi
    if [ ! -x "$PY" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if [ -n "${MOTIONREPRO_UNLOCKED:-}" ]; then
        if ! "$PY" -c "import torch" >/dev/null 2>&1; then
            install_torch  # FIRST, so that the project's torch range is already satisfied
        fi
        log "pip install --upgrade -e '.[dev]' (UNLOCKED: newest versions the ranges admit)"
        "$PY" -m pip install --quiet --upgrade -e '.[dev]'
    else
        local extra=()
        if [ "$kind" = cpu ] && ! local_cpu_wheel >/dev/null; then
            extra=(--extra-index-url https://download.pytorch.org/whl/cpu)  # where torch's +cpu wheels live
        fi
        log "pip install -r $lock (pinned, hashes checked; a few minutes the first time)"
        "$PY" -m pip install --quiet --require-hashes --no-deps "${extra[@]}" -r "$lock"
        "$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
    fi
    echo "$want" >"$STAMP"
    if [ -n "${MOTIONREPRO_UNLOCKED:-}" ]; then echo unlocked; else echo "$kind"; fi >"$VENV/.motionrepro-lock"
}

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Hydra overrides (after METHOD DATASET): scale=smoke|paper  seed=1  device=cuda  checkpoint=PATH
  dataset=NAME (one configs/dataset config)  dataset.root=/path/to/data
  method_cfg.KEY=V  protocol_cfg.PROTOCOL.KEY=V  --cfg job  -m seed=0,1,2
  -m hydra/launcher=slurm ...   (see README.md)
EOF
}

cmd="${1:-}"
case "$cmd" in
    "" )
        usage; exit 2 ;;
    -h|--help|help )
        usage; echo
        bootstrap
        exec "$PY" -m evaluators.run --list ;;
    bootstrap )
        bootstrap; log "ready: $PY" ;;
    lock )
        shift
        bootstrap
        exec "$PY" requirements/lock.py compile "$@" ;;
    demo )
        shift; bootstrap
        start=$(date +%s)
        set +e
        "$PY" -m evaluators.run --demo "$@"
        rc=$?
        set -e
        log "demo finished in $(( $(date +%s) - start )) s (exit $rc)"
        exit $rc ;;
    test )
        shift; bootstrap
        # --fast: the lane to run on every change, without the tests marked slow (CI runs them all)
        fast=()
        if [ "${1:-}" = "--fast" ]; then shift; fast=(-m "not slow"); fi
        # one pytest worker per core (pytest-xdist), at most 8 (ours: each holds its own models in
        # memory). loadscope: a module's tests run on one worker, so a module-scoped fixture is
        # built once; tests/conftest.py puts the slow modules first (hence no reorder by size) and
        # gives each worker its share of the cores. A later -n wins: `test -n 0` is one process.
        par=(-n auto --maxprocesses 8 --dist loadscope --no-loadscope-reorder)
        # The suite starts ~150 Python interpreters (CLI runs, torchrun, the CI simulations) besides its
        # workers. Where PYTHONDONTWRITEBYTECODE is set (container images often set it) each of them
        # compiled the project's modules and pytest rewrote every test module again: 6-12 % of the CPU
        # time of the runner tests on the 2-core machine. Bytecode goes to __pycache__/ (git-ignored).
        unset PYTHONDONTWRITEBYTECODE
        set +e
        "$PY" -m pytest "${par[@]}" "${fast[@]}" "$@"
        rc=$?
        set -e
        if [ $rc -eq 5 ]; then log "no tests ran: failing"; exit 1; fi
        exit $rc ;;
    manifest|score|export )
        shift; bootstrap
        exec "$PY" -m evaluators.run "--$cmd" "$@" ;;
    -* )
        log "unknown option $cmd"; usage; exit 2 ;;
    * )
        if [ $# -lt 2 ] || [[ "$2" == *=* ]] || [[ "$2" == -* ]]; then
            log "usage: ./reproduce.sh METHOD DATASET [hydra overrides]  (see ./reproduce.sh --help)"; exit 2
        fi
        bootstrap
        exec "$PY" -m evaluators.run --experiment "$@" ;;
esac
