#!/usr/bin/env bash
# The GPU checks of a lent machine, run by hand from the repo root. Tables go to stdout, everything
# else under $OUT (default ./gpu-out).
#
#   bash benchmarks/gpu_session.sh anchor         # Pong envs sync against async, 30 s of Pong training, the JAX
#                                                 # anchor beside dqn-train device=cuda (run.py section 7) and
#                                                 # dqn-train defaults on this machine's CPU
#   bash benchmarks/gpu_session.sh graph          # the CUDA-graph learner's GPU tests, then where a Pong run's time
#                                                 # goes, eager updates against CUDA-graph ones (cuda_graph.py)
#   bash benchmarks/gpu_session.sh pong SECONDS   # experiment=pong_fast on the GPU, stopped (SIGTERM, so it
#                                                 # checkpoints) SECONDS after the script starts; more
#                                                 # dqn-train overrides in PONG_OVERRIDES
#
# A machine without network access installs what it lacks from wheels in .whl/ (dqn-cli's own wheel,
# gymnasium 1.3, hydra-core, omegaconf, antlr4, hydra-joblib-launcher, ale-py, gymnax), fetched beforehand
# with `pip download --only-binary=:all: --python-version 3.12 ...` and `pip wheel --no-deps .`.
set -uo pipefail
START=$(date +%s)
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
PY=${PYTHON:-python3} WHEELS=${WHEELS:-.whl} DEVICE=${DEVICE:-cuda}  # DEVICE=cpu WHEELS=none: a dry run
if [ -d "$WHEELS" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$WHEELS"/*.whl 2>&1 | tail -3
fi
BIN=$(dirname "$($PY -c 'import sys; print(sys.executable)')")
WORK=$(mktemp -d)
elapsed() { echo $(( $(date +%s) - START )); }

case "${1:-}" in
anchor)
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    $PY -c 'import torch, jax, platform, os; print("torch", torch.__version__, "| jax", jax.__version__,
      jax.devices(), "| python", platform.python_version(), "|", os.cpu_count(), "cores")'; } 2>&1 | tee "$OUT/machine.txt"
  echo "## Pong env stepping, sync against async ($(elapsed) s)"
  timeout 120 $PY benchmarks/atari_envs.py --widths 1 8 16 --steps 300 2>&1 | grep -v -e Stella -e A.L.E | tee "$OUT/atari_envs.md"
  echo "## 30 s of experiment=pong_fast device=$DEVICE ($(elapsed) s)"
  (cd "$WORK" && timeout --foreground -s TERM 40 "$BIN/dqn-train" experiment=pong_fast device=$DEVICE \
    learning_starts=2000 checkpoint.save_replay=false log.console_interval_s=5 log.progress=lines \
    > "$OUT/pong_smoke.log" 2>&1)
  grep -e "x8 |" -e "steps/s" -e "error" "$OUT/pong_smoke.log" | tail -4
  echo "## Section 7 with device=$DEVICE ($(elapsed) s)"
  timeout 360 $PY benchmarks/run.py ${QUICK:+--quick} --sections 7 --overrides device=$DEVICE --json "$OUT/results_cuda.json" 2>&1 \
    | grep -v -e Warning -e warn | tee "$OUT/section7_cuda.md"
  echo "## dqn-train defaults on this machine's CPU, seeds 0-2 ($(elapsed) s)"
  timeout 90 $PY benchmarks/seeds.py --seeds 0 1 2 --json "$OUT/cpu_defaults.json" 2>&1 | tee "$OUT/cpu_defaults.md"
  ;;
graph)
  echo "## The CUDA-graph learner's tests ($(elapsed) s)"
  timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_learners.py -k cuda_graph 2>&1 | tee "$OUT/graph_tests.txt"
  echo "## Where a Pong run's time goes, eager against CUDA-graph updates ($(elapsed) s)"
  timeout 240 $PY benchmarks/cuda_graph.py --device $DEVICE ${QUICK:+--fill 200 --repeats 5 --compare 3} 2>&1 | grep -v -e Stella -e A.L.E | tee "$OUT/cuda_graph.md"
  ;;
pong)
  budget=${2:?pong needs SECONDS}
  left=$(( budget - $(elapsed) - 35 ))  # room to pack the results after the stop
  echo "## experiment=pong_fast device=$DEVICE for $left s"
  (cd "$WORK" && timeout --foreground -s TERM "$left" "$BIN/dqn-train" experiment=pong_fast device=$DEVICE \
    checkpoint.save_replay=false log.console_interval_s=15 log.progress=lines ${PONG_OVERRIDES:-} 2>&1 | tee "$OUT/pong.log" | grep -v -e Stella -e A.L.E)
  run=$(ls -d "$WORK"/outputs/runs/* | tail -1)
  tar -C "$run" -czf "$OUT/pong_run.tgz" --exclude=checkpoints .  # weights: over the 16 MiB a file may take back
  ls -la "$OUT"
  ;;
*)
  echo "usage: bash benchmarks/gpu_session.sh anchor | graph | pong SECONDS" >&2; exit 2 ;;
esac
echo "done in $(elapsed) s"
