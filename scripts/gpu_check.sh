#!/usr/bin/env bash
# The GPU check in one call, for a machine with a CUDA GPU (about 5 minutes on an H100 once torch is there):
#
#   bash scripts/gpu_check.sh                 # outputs under ${OUT:-./gpu-out}
#   MNISTBENCH_DATA=/path/to/data OUT=/tmp/gpu bash scripts/gpu_check.sh
#
# 1. a virtual environment (.gpu-venv): a torch that already sees the GPU is reused (--system-site-packages,
#    the project on PYTHONPATH, missing pure-Python packages from pip), otherwise pip installs the project
#    and torch from PyPI (a few minutes, needs the network);
# 2. the tests that need CUDA (pytest -m cuda);
# 3. a short run of every family and implementation on CUDA (3 epochs), then a profile on CUDA;
# 4. the training and step benchmarks on CUDA (pytest-benchmark JSON, with accuracy);
# 5. the throughput table (samples/s against batch size, CUDA and CPU) and the benchmark table.
# Every step runs even if one before it failed; the summary at the end names the failures (exit 1).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
exec > >(tee "$OUT/gpu_check.log") 2>&1
VENV="${GPU_VENV:-.gpu-venv}"
export MPLBACKEND=Agg
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record a failure, carry on
  local name="$1" limit="$2"
  shift 2
  echo
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@"
  local code=$?
  if [ "$name" = "cuda tests" ] && [ "$code" -eq 5 ]; then
    code=0  # pytest's "no test selected": no test is marked cuda
  fi
  [ "$code" -eq 0 ] || { echo "--- $name FAILED (exit $code)"; failed+=("$name"); }
}

nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || echo "nvidia-smi not found"

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "reusing the installed torch: $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))')"
  [ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
  # the project from this checkout through PYTHONPATH: no build step (which may need the network), and
  # pip never gets to replace the working torch (installing torchvision would pull its pinned torch);
  # torchvision is only needed to download MNIST, which this check does not do when data is given
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  for module in sklearn:scikit-learn pandas:pandas matplotlib:matplotlib pytest:pytest \
                pytest_benchmark:pytest-benchmark; do
    "$VENV/bin/python" -c "import ${module%%:*}" 2>/dev/null || "$VENV/bin/pip" install -q "${module#*:}"
  done
else
  echo "no CUDA-enabled torch importable: installing the project with torch from PyPI"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -e '.[test]'
fi
PY="$VENV/bin/python"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch does not see a CUDA device'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" \
  || { echo "no usable CUDA device: stopping"; exit 1; }

step "cuda tests" 300 "$PY" -m pytest -q -m cuda tests
step "run on cuda" 300 "$PY" -m mnistbench run --device cuda --epochs 3 --quiet --out "$OUT/gpu"
step "profile on cuda" 120 "$PY" -m mnistbench profile --device cuda --family mlp --impl manual,builtin \
  --out "$OUT/gpu"
step "benchmarks on cuda" 300 "$PY" -m pytest -q bench/ --benchmark-only -m cuda \
  --benchmark-json "$OUT/bench-cuda.json"
step "throughput" 300 "$PY" -m mnistbench throughput --device cuda,cpu --repeats 3 --out "$OUT/gpu"
step "benchmark table" 60 "$PY" -c "import sys; from mnistbench.reporting.benchtables import render_benchmarks; \
print(render_benchmarks(sys.argv[1]))" "$OUT/bench-cuda.json"
step "report" 120 "$PY" -m mnistbench report "$OUT/gpu"

echo
echo "outputs in $OUT: gpu_check.log, gpu/ (runs, profiles, throughput.csv, report.md), bench-cuda.json"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "GPU check: FAILED steps: ${failed[*]}"
  exit 1
fi
echo "GPU check: all steps passed"
