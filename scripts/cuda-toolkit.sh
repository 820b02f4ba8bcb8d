#!/usr/bin/env bash
# A CUDA compiler for machines without a CUDA toolkit: nvcc 13.0 and the
# headers it needs, from NVIDIA's wheels on PyPI, installed once under
# target/cuda-toolkit (or $SEKI_CUDA_TOOLKIT_DIR). Prints the CUDA root.
#
#   scripts/cuda-toolkit.sh           install (once) and print the root
#   scripts/cuda-toolkit.sh --check   also compile kernels/cuda/seki_ops.cu
#                                     to PTX and assemble it for sm_75, sm_80,
#                                     sm_90 with ptxas (what CI runs)
#
# Building seki for GPUs with it (the run-time libraries, the NVIDIA driver
# and cuDNN, must be on the GPU machine):
#   export CUDA_HOME=$(scripts/cuda-toolkit.sh) PATH=$CUDA_HOME/bin:$PATH
#   CUDA_COMPUTE_CAP=90 cargo build --release --features cuda
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SEKI_CUDA_TOOLKIT_DIR:-target/cuda-toolkit}
root=$dir/pkgs/nvidia/cu13
pins=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
)
if [ ! -x "$root/bin/nvcc" ]; then
  mkdir -p "$dir"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$dir/pkgs" "${pins[@]}" >&2
  # The wheels lay out a CUDA root but name the runtime library by its soname only.
  [ -e "$root/lib/libcudart.so" ] || ln -s libcudart.so.13 "$root/lib/libcudart.so"
fi
root=$(cd "$root" && pwd)

if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  "$root/bin/nvcc" --ptx -O3 -std=c++17 -arch=compute_75 \
    -o "$out/seki_ops.ptx" kernels/cuda/seki_ops.cu
  kernels=$(grep -c '^\.visible \.entry' "$out/seki_ops.ptx")
  for sm in 75 80 90; do
    "$root/bin/ptxas" -arch=sm_$sm -o "$out/seki_ops.sm_$sm.cubin" "$out/seki_ops.ptx"
  done
  echo "cuda-toolkit: kernels/cuda/seki_ops.cu: $kernels kernels, PTX assembled for sm_75, sm_80, sm_90" >&2
fi
echo "$root"
