#!/usr/bin/env bash
# The checks and measurements that need a GPU machine (tests on CUDA and NVDEC, GPU
# benchmarks, a real training run) and the loader's figures on a many-core host, as one
# script in stages; several stages can run in one command, in the order given.
#
#   bash benchmarks/gpu_acceptance.sh 1   # environment, the GPU tests, bench_augment,
#                                         # bench_decode, bench_train_step
#   bash benchmarks/gpu_acceptance.sh t   # environment and the GPU tests alone
#   bash benchmarks/gpu_acceptance.sh 2   # bench_preprocess, a real B7 training run with
#                                         # GPU utilisation sampled, predict timing
#   bash benchmarks/gpu_acceptance.sh 3   # the whole test suite with the GPU present
#   bash benchmarks/gpu_acceptance.sh 4   # the loader per CPU core on this host: bench_cores,
#                                         # bench_loader against the recipe's way (no GPU)
#   bash benchmarks/gpu_acceptance.sh r   # CPU only: bench_recompress (one core) against the
#                                         # static ffmpeg of .cpu4/, x264 capped and
#                                         # uncapped (~4 min)
#   bash benchmarks/gpu_acceptance.sh d   # CPU only: the reproducibility tests with x264's
#                                         # default AVX-512 cap alone, and bench_cores' A/B
#                                         # of re-encoding streamed or buffered (~3 minutes)
#   bash benchmarks/gpu_acceptance.sh 4 t # both in one command, when time allows: stage 4
#                                         # takes about 6-8 minutes, t about 4;
#                                         # CORES_LIMIT=0 leaves bench_cores out of stage 4
#
# Every step has its own time limit, so one slow step cannot eat the others' time.
# Logs and JSON lines go to $OUT (or ./gpu_out): stageN.log and stageN.jsonl.
#
# Inputs that cost CPU time to build are made beforehand on any machine (2 min on two
# cores) and copied to the GPU machine:
#   .gpu/bbb_1080p_4s.mp4            bench_decode's video
#   .gpu/pre/dfdc_bench_10s/         bench_preprocess's 10-s 1080p group
#     (cd benchmarks && python -c "import bench_decode as d, bench_preprocess as p;
#      d.make_1080p('../.gpu/bbb_1080p_4s.mp4', 4, 30, 'medium');
#      p.build_group('../.gpu/pre/dfdc_bench_10s', 10)")
# For a GPU machine without network access, the Python packages its image lacks are
# copied as wheels (pip download --python-version of that machine) and installed into
# /tmp/site: .whl/ holds av, zstandard, facenet-pytorch, webdataset, braceexpand and
# scikit-video.
# Stage 4 also needs the ffmpeg command line for the recipe's way, which a GPU image may
# lack. To keep the copy small, .cpu4/ holds everything stages 4 and t need, compressed
# harder than wheels are:
#   mkdir .cpu4 && cp .whl/{zstandard,scikit_video,facenet_pytorch,webdataset,braceexpand}-*.whl .cpu4/
#   (mkdir /tmp/avx && cd /tmp/avx && unzip -q $OLDPWD/.whl/av-18.1.0-*.whl &&
#    tar cf - . | xz -9e > $OLDPWD/.cpu4/av-18.1.0.tar.xz)   # the av wheel: 35.8 -> 24.7 MB
#   pip download --no-deps imageio-ffmpeg==0.7.0 (manylinux2014_x86_64), unzip it, and
#   xz -9 its imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2 > .cpu4/ffmpeg.xz
#   (a static FFmpeg 7.0.2 with libx264: 80 MB, 20.8 MB compressed)
# and .cpu4/ alone (55 MB) is then all there is to copy.
set -u
[ $# -gt 0 ] || { echo "usage: gpu_acceptance.sh STAGE... (1, t, d, r, 2, 3, 4)" >&2; exit 2; }
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
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
  # its output goes nowhere: its sleep outlives the kill below, and held open any pipe
  # the script's output went into (`gpu_acceptance.sh 4 | tail` waited out the limit)
  ( sleep "$limit"; kill -TERM -- "-$pid"; sleep 5; kill -KILL -- "-$pid" ) >/dev/null 2>&1 &
  local watchdog=$!
  wait "$pid"
  local rc=$?
  kill "$watchdog" 2>/dev/null
  kill -KILL -- "-$pid" 2>/dev/null
  echo "=== $name: rc $rc in $((SECONDS - t0)) s, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$LOG"
}

use_carried_ffmpeg() {  # the recipe's way calls the ffmpeg CLI, which a GPU image may lack:
  # the static build of .cpu4/ first, so that every host runs the same one
  if [ -e .cpu4/ffmpeg.xz ] && [ ! -x /tmp/ffbin/ffmpeg ]; then
    mkdir -p /tmp/ffbin && xz -dc .cpu4/ffmpeg.xz > /tmp/ffbin/ffmpeg && chmod +x /tmp/ffbin/ffmpeg
  fi
  [ -x /tmp/ffbin/ffmpeg ] && export PATH=/tmp/ffbin:$PATH
  return 0
}

wheels=$(ls .whl/*.whl .cpu4/*.whl 2>/dev/null)
if [ ! -e /tmp/site/av ] && [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site $wheels >>"$OUT/install.log" 2>&1 || echo "wheel install failed"
fi
if [ ! -e /tmp/site/av ] && ls .cpu4/av-*.tar.xz >/dev/null 2>&1; then
  mkdir -p /tmp/site && tar xJf .cpu4/av-*.tar.xz -C /tmp/site || echo "av unpack failed"
fi
export PYTHONPATH=/tmp/site:$PWD

for stage in "$@"; do
LOG=$OUT/stage$stage.log
JSON=$OUT/stage$stage.jsonl
: >>"$JSON"

if [ "$stage" = 1 ] || [ "$stage" = t ]; then
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    nvidia-smi | head -5
    echo "cores $cores"; grep -m1 'model name' /proc/cpuinfo; free -g | head -2
    df -h /dev/shm | tail -1  # DataLoader workers hand batches over through /dev/shm
    ldconfig -p | grep -E 'nvcuvid|libcuda.so' || echo "no libnvcuvid in ldconfig"
    python3 -c "import sys, torch, timm, numpy, numba, av, zstandard; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'timm', timm.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__, 'av', av.__version__, 'ffmpeg', av.ffmpeg_version_info, av.codec.hwaccel.hwdevices_available())"
    python3 -c "import dfaug; print('backends', dfaug.available_backends()); from dfaug import video; [print(n, b.why_unavailable and b.why_unavailable()) for n, b in video._BACKENDS.items()]"
  } 2>&1 | tee -a "$LOG"
  # the GPU tests first, in one process: CUDA, NVDEC, the CUDA device stage and training;
  # with them the tests whose outcome depends on the host's CPU or GPU (the loader's two
  # determinism tests, the reproducibility and SIMD tests, and the quick demo, which runs
  # on CUDA when there is one)
  step "${TESTS_LIMIT:-150}" pytest_gpu python3 -m pytest -v -rfE --tb=short \
    -p no:cacheprovider tests/test_nvdec.py tests/test_augment.py tests/test_loader.py \
    tests/test_train.py tests/test_video.py tests/test_demo.py \
    tests/test_compression.py tests/test_simd.py \
    -k "cuda or nvdec or pyav_cuda or gpu or same_seed_same_batches or the_same_draw_whatever or quick_demo or same_bytes or sse4_cap or avx512"
  # the same reproducibility tests with FFmpeg capped at AVX2 too (dfaug.simd): on an
  # AVX-512 Xeon recompress is reproducible this way and not uncapped; by default x264
  # alone is kept from AVX-512, as its packets were what differed
  DFAUG_LIMIT_SIMD=avx2 step 90 pytest_no_avx512 python3 -m pytest -v -rfE --tb=short \
    -p no:cacheprovider tests/test_compression.py tests/test_loader.py \
    -k "same_bytes or same_seed_same_batches or the_same_draw_whatever"
fi
if [ "$stage" = d ]; then
  { echo "cores $cores"; grep -m1 'model name' /proc/cpuinfo; grep -o -m1 'avx512[a-z]*' /proc/cpuinfo
    python3 -c "import av; print('av', av.__version__)"; } 2>&1 | tee -a "$LOG"
  # no DFAUG_LIMIT_SIMD: x264's own default cap must be enough on an AVX-512 host
  step 150 pytest_default_cap python3 -m pytest -v -rfE --tb=short -p no:cacheprovider \
    tests/test_compression.py tests/test_loader.py tests/test_simd.py \
    -k "same_bytes or same_seed_same_batches or the_same_draw_whatever or avx512 or lazily"
  # a pair's memory traffic (stored frames decoded one at a time into x264, or the whole
  # clip first), alone and with every core busy; the order turned round the second time
  for order in reencode,reencode-buffered reencode-buffered,reencode; do
    step 80 "bench_cores_$order" python3 benchmarks/bench_cores.py --workloads "$order" \
      --procs "1,$cores" --seconds 4 --rounds 2
  done
fi
if [ "$stage" = r ]; then
  # Re-encoding alone, one pinned core, ours against the recipe's way with the static
  # ffmpeg 7.0.2 of .cpu4/: on dev-cpu 2.5x (frame span) and 4.4x (sequence span) against
  # this build (3.7x / 6.7x against Debian's, which starts 50x slower). Ours with x264's
  # default cap (no AVX-512) and with none: what the cap costs on an AVX-512 host.
  use_carried_ffmpeg
  { command -v ffmpeg && ffmpeg -version | head -1; } 2>&1 | tee -a "$LOG"
  step 150 bench_recompress python3 benchmarks/bench_recompress.py --pairs "${RE_PAIRS:-30}"
  DFAUG_LIMIT_SIMD=none step 150 bench_recompress_uncapped python3 \
    benchmarks/bench_recompress.py --pairs "${RE_PAIRS:-30}"
fi
if [ "$stage" = 1 ]; then
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
  # pytest-xdist and pytest-timeout must be installed (they are not in the dev extra).
  OMP_NUM_THREADS=2 step 550 pytest python3 -m pytest -q -rfE --tb=short -n 6 \
    -p no:cacheprovider --timeout 300 --junitxml="$OUT/junit.xml" tests
fi
if [ "$stage" = 4 ]; then
  # The loader's rate per CPU core on a many-core host, CPU only (the device stage
  # excluded): workers = cores, 16 pairs per worker read 4 times a run, 2 repeats
  # (set-up took 50 s for 32 per worker on 16 cores; one pass of 32 per worker took
  # 174 s in frame mode, 159 s in sequence mode, with 2 repeats; this is about 2x the
  # timed runs for half the set-up: estimated 150-200 s in frame mode)
  use_carried_ffmpeg
  { command -v ffmpeg && ffmpeg -version | head -1; lscpu; } 2>&1 | tee -a "$LOG"
  # what the host does to any busy core (clock, hyper-threads, memory), beside what it
  # does to x264 and to a loader worker's whole work: 1, cores/2 and cores processes
  [ "${CORES_LIMIT:-150}" = 0 ] ||  # CORES_LIMIT=0 leaves it out
    step "${CORES_LIMIT:-150}" bench_cores python3 benchmarks/bench_cores.py --seconds 4 --rounds 1
  # one step per mode, frame mode first: a cut loses one mode, not both; after the timed
  # runs, worker 0 of one more run of ours is profiled with all cores busy
  # ($OUT/profile-ours-MODE.txt): ours lost half its per-core rate from 1 to 16 workers
  # in short runs there; the per-CPU-second figures leave their idle start and tail out
  # --passes: every pair read 4 times a run, so a run is 64 pair reads per worker for
  # the set-up of 16: 32 per worker in one pass still left ours idle 0.36 of the run
  # (2026-11-26), and sim_prefetch puts the steady state at 0.89 busy
  for mode in frame sequence; do
    step "${LOADER_LIMIT:-220}" "bench_loader_$mode" python3 benchmarks/bench_loader.py \
      --pairs $((${PAIRS_PER_WORKER:-16} * cores)) --passes "${PASSES:-4}" --workers "$cores" \
      --repeats "${REPEATS:-2}" --modes "$mode" --profile "$OUT"
  done
fi
cat "$JSON"
echo "stage $stage done $(date +%T)" | tee -a "$LOG"
done
