#!/usr/bin/env bash
# GPU check: everything the CPU machines cannot exercise, in one script that
# finishes in under 8 minutes on one modern GPU. On a CUDA machine it
#   1. runs the gpu-marked tests (timer synchronisation, allocator/NVML memory, nccl, bf16 on CUDA);
#   2. runs `pytest benchmarks --benchmark-only --paper-scale` -> leaderboards/benchmarks/gpu-paper.json;
#   3. runs one DDP smoke run per method: 2 processes if there are 2 GPUs, else 1 process, nccl;
#   4. regenerates leaderboards/speed.md (and the other leaderboards) from the benchmark JSON.
#
#   benchmarks/gpu_check.sh             on a GPU machine (exits 2 without one)
#   benchmarks/gpu_check.sh --dry-run   on the CPU: the same four steps, each reduced to what proves
#                                       the command lines are right (test selection, benchmark
#                                       collection at paper scale, the composed config of every
#                                       DDP run, speed.md rendered into a scratch folder); CI runs it.
#                                       Dry means no work: the two collections run beside the rest,
#                                       the six DDP configs are composed by the runner's own main()
#                                       in one interpreter (not six start-ups), and the time limits
#                                       only guard against a hang (a loaded machine must not fail it).
#                                       The collections pass --assert=plain: collecting runs no
#                                       assert, so pytest's rewriting of them (a quarter of a
#                                       collection's CPU) would be work nothing reads.
# Logs and per-step times go to runs/gpu_check/ (MOTIONREPRO_GPU_CHECK_OUT overrides).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT="${MOTIONREPRO_GPU_CHECK_OUT:-$ROOT/runs/gpu_check}"
mkdir -p "$OUT"
PY="${MOTIONREPRO_VENV:-$ROOT/.venv}/bin/python"
[ -x "$PY" ] || { ./reproduce.sh bootstrap; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
METHODS=(mld momask hgm3 macdiff diffusionpose heatmap_baseline)

log() { printf '[gpu_check] %s\n' "$*" | tee -a "$OUT/summary.txt" >&2; }
timed() {  # timed NAME LIMIT_S CMD...: run with a time limit, log seconds and exit status
    local name="$1" limit="$2"; shift 2
    local t0=$SECONDS rc=0
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    log "$name: exit $rc in $((SECONDS - t0)) s (log: $OUT/$name.log)"
    return $rc
}

: >"$OUT/summary.txt"
if [ $DRY = 0 ]; then
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" \
        || { log "no CUDA device visible: run on a GPU machine, or use --dry-run"; exit 2; }
    NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
else
    NGPU=0
fi
NPROC=$(( NGPU >= 2 ? 2 : 1 ))
log "mode: $([ $DRY = 1 ] && echo dry-run || echo gpu), GPUs: $NGPU, DDP processes: $NPROC"
failed=()

# 1. gpu-marked tests
if [ $DRY = 0 ]; then
    timed gpu_tests 300 "$PY" -m pytest -m gpu tests -q -p no:cacheprovider || failed+=(gpu_tests)
else  # in the background: it only reads files, like the rest of the dry run
    timed gpu_tests 900 "$PY" -m pytest -m gpu tests -q -p no:cacheprovider --collect-only --assert=plain & pid_tests=$!
fi

# 2. paper-scale benchmarks
if [ $DRY = 0 ]; then
    timed benchmarks 240 "$PY" -m pytest benchmarks --benchmark-only --paper-scale -q -p no:cacheprovider \
        --benchmark-json=leaderboards/benchmarks/gpu-paper.json || failed+=(benchmarks)
else
    timed benchmarks 900 "$PY" -m pytest benchmarks --benchmark-only --paper-scale -q -p no:cacheprovider \
        --collect-only --assert=plain & pid_bench=$!
fi

# 3. one DDP smoke run per method (nccl on GPUs, one record per protocol under $OUT/ddp)
if [ $DRY = 0 ]; then
    for m in "${METHODS[@]}"; do
        # every chain the demo runs for the method (a method config may list several, e.g. text and action)
        exps=$("$PY" -c "from evaluators.runner.demo import demo_experiments as d; e = d('$m'); assert all(e), 'configs/method/$m.yaml has no demo_experiment'; print(' '.join(e))") \
            || { failed+=("ddp_$m"); continue; }
        for exp in $exps; do
            args=(-m evaluators.run "+experiment=$exp" scale=smoke device=auto "runs_dir=$OUT/ddp")
            timed "ddp_$exp" 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node=$NPROC "${args[@]}" \
                || failed+=("ddp_$exp")
        done
    done
else
    # each method's command line as `python -m evaluators.run ARGS --cfg job` runs it (the same
    # main(), the same arguments), all six in one interpreter; one "ddp_<method>: exit N" line each
    while read -r m rc secs; do
        log "ddp_$m: exit $rc in $secs s (log: $OUT/ddp_$m.log)"
        [ "$rc" = 0 ] || failed+=("ddp_$m")
    done < <(timeout 900 "$PY" - "$OUT" "$NPROC" "${METHODS[@]}" <<'PY' 2>"$OUT/ddp_compose.log" || echo "compose 1 0"
import contextlib, logging, sys, time
from evaluators.runner.cli import main
from evaluators.runner.demo import demo_experiments
out, nproc, methods = sys.argv[1], sys.argv[2], sys.argv[3:]
# main() would bind its log handler to the first redirected log file: bind it to this stderr now
logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
for m in methods:
    t0, rc = time.monotonic(), 0
    with open(f"{out}/ddp_{m}.log", "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            exps = demo_experiments(m)  # every chain the demo runs for the method (text and action for some)
        except Exception as e:  # noqa: BLE001 - reported as this method's failure, the others still run
            print(f"{type(e).__name__}: {e}")
            exps, rc = [], 1
        for exp in exps:
            if exp is None:
                print(f"configs/method/{m}.yaml has no demo_experiment")
                rc = 1
                continue
            try:
                args = [f"+experiment={exp}", "scale=smoke", "device=auto", f"runs_dir={out}/ddp"]
                print("on a GPU: python -m torch.distributed.run --standalone --nproc_per_node=" + nproc,
                      "-m evaluators.run", *args)
                main([*args, "--cfg", "job"])
            except SystemExit as e:
                rc = max(rc, e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
            except Exception as e:  # noqa: BLE001 - reported as this method's failure, the others still run
                print(f"{type(e).__name__}: {e}")
                rc = 1
    print(m, rc, round(time.monotonic() - t0), flush=True)
PY
    )
fi

# 4. speed.md and the other leaderboards from the benchmark JSON
if [ $DRY = 0 ]; then
    timed leaderboards 120 "$PY" -m leaderboards || failed+=(leaderboards)
else
    timed leaderboards 900 "$PY" -m leaderboards --out "$OUT/leaderboards" || failed+=(leaderboards)
    [ -s "$OUT/leaderboards/speed.md" ] || { log "speed.md not rendered"; failed+=(leaderboards); }
    wait "$pid_tests" || failed+=(gpu_tests)
    grep -q "test_nccl_one_process_all_reduce" "$OUT/gpu_tests.log" || { log "gpu tests not collected"; failed+=(gpu_tests); }
    wait "$pid_bench" || failed+=(benchmarks)
fi

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all steps passed$([ $DRY = 1 ] && echo ' (dry run: nothing ran on a GPU)')"
