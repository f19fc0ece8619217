#!/usr/bin/env bash
# Sets up nnjit on a fresh Debian/Ubuntu machine (apt + pip), then runs the main job: the embedded
# default model on WebGPU (lavapipe, a CPU Vulkan driver, when there is no GPU) and on Wasm
# (wasmtime), each checked against onnxruntime.
#   ./setup.sh            install and run
#   ./setup.sh --no-run   install only (CI uses this)
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if command -v apt-get >/dev/null; then
  # lavapipe (Vulkan on the CPU) for wgpu-py; wabt's wat2wasm to cross-check emitted WAT;
  # chromium for the browser tests (driven by playwright; never `playwright install`)
  need=""
  for p in mesa-vulkan-drivers libvulkan1 wabt chromium; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  if [ -n "$need" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ "${1:-}" != "--no-run" ]; then
  nnjit run --backend webgpu --check
  nnjit run --backend wasm --check
fi
