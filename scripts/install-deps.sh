#!/usr/bin/env bash
# Installs everything reel needs to build and test on Debian 12, as root. Idempotent:
# packages already present are left alone. CUDA (nvcc, cuBLAS, cuDNN) is optional and is
# used from /usr/local/cuda when it is there; nothing here installs it.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
  nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev libstb-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#packages[@]} packages present"
