#!/usr/bin/env bash
# Issue 8's GPU checks as one script, in stages that each fit one device call.
#
#   bash benchmarks/gpu_acceptance.sh 1   # environment, the GPU tests, bench_augment,
#                                         # bench_decode, bench_train_step
#   bash benchmarks/gpu_acceptance.sh 2   # bench_preprocess, a real B7 training run with
#                                         # GPU utilisation sampled, predict timing
#   bash benchmarks/gpu_acceptance.sh 3   # the whole test suite with the GPU present
#   bash benchmarks/gpu_acceptance.sh 4   # issue 4 on the host's CPU cores: bench_loader
#                                         # against the recipe's way (no GPU used)
#
# Every step has its own time limit, so one slow step cannot eat the others' time.
# Logs and JSON lines go to $OUT (or ./gpu_out): stageN.log and stageN.jsonl.
#
# Inputs that cost CPU time to build are made beforehand on any machine (2 min on two
# cores) and carried to the GPU machine:
#   .gpu/bbb_1080p_4s.mp4            bench_decode's video
#   .gpu/pre/dfdc_bench_10s/         bench_preprocess's 10-s 1080p group
#     (cd benchmarks && python -c "import bench_decode as d, bench_preprocess as p;
#      d.make_1080p('../.gpu/bbb_1080p_4s.mp4', 4, 30, 'medium');
#      p.build_group('../.gpu/pre/dfdc_bench_10s', 10)")
# Python packages a GPU image lacks can travel as wheels in .whl/ (pip download
# --python-version of that machine: av, zstandard, facenet-pytorch, webdataset,
# braceexpand, scikit-video); they are installed into /tmp/site.
# Stage 4 needs the ffmpeg command line for the recipe's way, which the GPU image lacks.
# It travels alone, in .cpu4/, with the three wheels stage 4 needs (av, zstandard,
# scikit-video: all of .whl/ with it would pass the 64 MiB a call can carry):
#   mkdir .cpu4 && cp .whl/{av,zstandard,scikit_video}-*.whl .cpu4/
#   pip download --no-deps imageio-ffmpeg==0.7.0 (manylinux2014_x86_64), unzip it, and
#   xz -9 its imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2 > .cpu4/ffmpeg.xz
#   (a static FFmpeg 7.0.2 with libx264: 80 MB, 20.8 MB compressed)
# and the call carries [".cpu4"] only.
set -u
stage=${1:?usage: gpu_acceptance.sh 1|2|3|4}
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
LOG=$OUT/stage$stage.log
JSON=$OUT/stage$stage.jsonl
export PYTHONUNBUFFERED=1
cores=$(nproc)

step() {  # step SECONDS NAME CMD...: run with a limit, log its output and exit status
  # The command runs in its own process group, and the whole group is killed at the
  # limit and after the step: a killed pytest leaves its xdist workers (and their
  # loader workers) running otherwise, and they would load the next steps' figures.
  local limit=$1 name=$2; shift 2
  echo "=== $name (limit ${limit}s) $(date +%T)" | tee -a "$LOG"
  local t0=$SECONDS
  setsid "$@" > >(tee -a "$LOG" | grep '^{' >> "$JSON") 2>>"$LOG" &
  local pid=$!
  ( sleep "$limit"; kill -TERM -- "-$pid" 2>/dev/null; sleep 5; kill -KILL -- "-$pid" 2>/dev/null ) &
  local watchdog=$!
  wait "$pid"
  local rc=$?
  kill "$watchdog" 2>/dev/null
  kill -KILL -- "-$pid" 2>/dev/null
  echo "=== $name: rc $rc in $((SECONDS - t0)) s, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$LOG"
}

wheels=$(ls .whl/*.whl .cpu4/*.whl 2>/dev/null)
if [ ! -e /tmp/site/av ] && [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site $wheels >>"$LOG" 2>&1 || echo "wheel install failed" | tee -a "$LOG"
fi
export PYTHONPATH=/tmp/site:$PWD

if [ "$stage" = 1 ]; then
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    nvidia-smi | head -5
    echo "cores $cores"; grep -m1 'model name' /proc/cpuinfo; free -g | head -2
    df -h /dev/shm | tail -1  # DataLoader workers hand batches over through /dev/shm
    ldconfig -p | grep -E 'nvcuvid|libcuda.so' || echo "no libnvcuvid in ldconfig"
    python3 -c "import sys, torch, timm, numpy, numba, av, zstandard; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'timm', timm.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__, 'av', av.__version__, 'ffmpeg', av.ffmpeg_version_info, av.codec.hwaccel.hwdevices_available())"
    python3 -c "import dfaug; print('backends', dfaug.available_backends()); from dfaug import video; [print(n, b.why_unavailable()) for n, b in video._BACKENDS.items()]"
  } 2>&1 | tee -a "$LOG"
  # the GPU tests first, in one process: CUDA, NVDEC, the CUDA device stage and training
  step 150 pytest_gpu python3 -m pytest -v -rfE --tb=short -p no:cacheprovider \
    tests/test_nvdec.py tests/test_augment.py tests/test_loader.py tests/test_train.py \
    tests/test_video.py -k "cuda or nvdec or pyav_cuda or gpu"
  step 50 bench_augment python3 benchmarks/bench_augment.py --repeats 3
  step 70 bench_decode python3 benchmarks/bench_decode.py --video .gpu/bbb_1080p_4s.mp4 \
    --backends pyav,pyav-cuda,dali --streams 1,2,4,8,16 --repeats 1
  step 200 bench_train_step python3 benchmarks/bench_train_step.py --size b7 --pairs 8 \
    --steps 10 --warmup 3
fi

if [ "$stage" = 2 ]; then
  step 70 bench_preprocess python3 benchmarks/bench_preprocess.py --cache .gpu/pre \
    --runs cpu,cuda --seconds 10
  rm -rf /tmp/run_lc /tmp/run_seq
  step 130 gpu_train_large_crop python3 benchmarks/bench_gpu_train.py --recipe large_crop \
    --iters 120 --keep /tmp/run_lc --workers $((cores - 2))
  if [ -e /tmp/run_lc/last.pt ]; then
    step 70 predict python3 benchmarks/bench_predict.py --source .gpu/pre/dfdc_bench_10s \
      --models large_crop=/tmp/run_lc/last.pt --device cuda --videos 8
  fi
  step 90 gpu_train_sequence python3 benchmarks/bench_gpu_train.py --recipe sequence \
    --iters 60 --keep /tmp/run_seq --workers $((cores - 2))
fi
if [ "$stage" = 3 ]; then
  # the whole suite with the GPU present (every "auto" device is then cuda). Few xdist
  # workers and 2 threads each: 15 workers x 16 torch threads on 16 cores timed tests out.
  # pytest-xdist and pytest-timeout come with the lent machines' image, not the dev extra.
  OMP_NUM_THREADS=2 step 550 pytest python3 -m pytest -q -rfE --tb=short -n 6 \
    -p no:cacheprovider --timeout 300 --junitxml="$OUT/junit.xml" tests
fi
if [ "$stage" = 4 ]; then
  # Issue 4's goals on a many-core host, CPU only (the device stage excluded): workers
  # = cores, 32 pairs per worker so that start-up is a small part of each run.
  if ! command -v ffmpeg >/dev/null && [ -e .cpu4/ffmpeg.xz ]; then
    mkdir -p /tmp/ffbin && xz -dc .cpu4/ffmpeg.xz > /tmp/ffbin/ffmpeg && chmod +x /tmp/ffbin/ffmpeg
    export PATH=/tmp/ffbin:$PATH
  fi
  { command -v ffmpeg && ffmpeg -version | head -1; } 2>&1 | tee -a "$LOG"
  step 420 bench_loader python3 benchmarks/bench_loader.py --pairs $((${PAIRS_PER_WORKER:-32} * cores)) \
    --workers "$cores" --repeats "${REPEATS:-3}"
fi
cat "$JSON"
echo "stage $stage done $(date +%T)" | tee -a "$LOG"
