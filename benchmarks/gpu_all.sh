#!/usr/bin/env bash
# Every GPU check of the pack in one run, for a machine with a CUDA GPU. Parts:
#   render   rendering speed (benchmarks/render.py: pixel and neural renderers, 256x160 to 1080p)
#   render_chunk  the neural renderer at 512x288 in fixed chunks of 30 frames
#   sample   sampling speed (benchmarks/sample.py: 25/50/250 DDIM steps, with and without loop guidance)
#   sample_eager  the same without CUDA graphs (default size, unguided)
#   tests    the CUDA tests (tests/test_cuda.py, tests/test_softsplat.py): GPU results equal the CPU's
#   animate  the README's main job on the GPU (gid animate on the bundled picture, with loop guidance)
#   train    a short fine-tune of stage 1, stage 2 and the renderer on the clips in $CLIPS (gid train);
#            its train_summary.json gives seconds per 1,000 steps on the GPU
# Usage: bash benchmarks/gpu_all.sh LOG_DIR [PART ...]   (default: render sample tests animate)
# Each part runs under its own time limit, writes LOG_DIR/<part>.log and prints its last lines; a
# failing part does not stop the others.
set -u
log_dir=${1:?usage: gpu_all.sh LOG_DIR [PART ...]}
shift
parts=${*:-render sample tests animate}
mkdir -p "$log_dir"
export PYTHONUNBUFFERED=1 OPENCV_FFMPEG_LOGLEVEL=-8
python=${PYTHON:-python3}

part() {
    local name=$1 limit=$2 lines=$3
    shift 3
    echo "=== $name (limit ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$@" >"$log_dir/$name.log" 2>&1
    local rc=$?
    echo "--- $name: rc=$rc after $((SECONDS - start)) s"
    tail -n "$lines" "$log_dir/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
"$python" -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__)"

for name in $parts; do
    case $name in
    render) part render 120 12 "$python" benchmarks/render.py --devices cuda --repeats 2 ;;
    render_chunk) part render_chunk 40 4 "$python" benchmarks/render.py --devices cuda --repeats 2 --renderers neural \
        --sizes 512x288 --chunk 30 ;;
    sample) part sample 150 16 "$python" benchmarks/sample.py --devices cuda ;;
    sample_eager) GID_NO_CUDA_GRAPHS=1 part sample_eager 40 4 "$python" benchmarks/sample.py --devices cuda \
        --sizes default --unguided-only ;;
    tests) part tests 90 12 "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_softsplat.py ;;
    animate) part animate 60 8 "$python" -m gid_models.cli animate gid_models/assets/dandelion_meadow.jpg --loop --device cuda \
        -o "$log_dir/dandelion_loop_gpu.mp4" ;;
    train)
        run_dir=$(mktemp -d)
        part train 150 8 "$python" -m gid_models.train.train_all --out "$run_dir/model" --clips "${CLIPS:?set CLIPS}" \
            --prepare-args '--min-frames 96 --stride 40' --stages stage1,stage2,renderer \
            --stage1-steps 200 --stage2-steps 200 --renderer-steps 200 --device cuda
        cp "$run_dir/model/train_summary.json" "$log_dir/" && grep -E '"(status|seconds_per_1000_steps|batch_size)"' \
            "$log_dir/train_summary.json" ;;
    *) echo "unknown part '$name' (render, render_chunk, sample, sample_eager, tests, animate, train)" ;;
    esac
done
