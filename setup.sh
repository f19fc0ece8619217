#!/usr/bin/env bash
# Sets up nnjit on a fresh Debian/Ubuntu machine, then runs the main job: the embedded default
# model on WebGPU (lavapipe, a CPU Vulkan driver, when there is no GPU) and on Wasm (wasmtime),
# each checked against onnxruntime.
#   ./setup.sh            install and run
#   ./setup.sh --no-run   install only (CI uses this)
# It is idempotent: a second run installs only what changed.
# Python packages go into the project's own virtual environment, .venv/ (made from the system
# python3, or from $PYTHON), so a python3 that refuses pip (PEP 668) is no obstacle. `make` and the
# tests use .venv without activating it; for daily use: `source .venv/bin/activate`.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if command -v apt-get >/dev/null; then
  # lavapipe (Vulkan on the CPU) for wgpu-py; wabt's wat2wasm to cross-check emitted WAT;
  # chromium for the browser tests (driven by playwright; never `playwright install`);
  # python3-venv so that the system python3 can make .venv
  need=""
  for p in mesa-vulkan-drivers libvulkan1 wabt chromium; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need="$need python3-venv"
  fi
  if [ -n "$need" ]; then
    echo "setup: apt-get install$need"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from $("$PYTHON" -c 'import sys; print(sys.executable)')"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing nnjit and its pinned dependencies into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'
# the browser benchmark's contenders (ONNX Runtime Web, TensorFlow.js), pinned by
# bench/browser/package-lock.json, so that tests/test_docs.py runs that benchmark in its smoke
# mode; without npm the test skips it and says why
lock=bench/browser/package-lock.json
if command -v npm >/dev/null && [ "$lock" -nt bench/browser/node_modules/.package-lock.json ]; then
  echo "setup: npm ci in bench/browser (the browser benchmark's pinned contenders)"
  (cd bench/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ "${1:-}" != "--no-run" ]; then
  .venv/bin/nnjit run --backend webgpu --check
  .venv/bin/nnjit run --backend wasm --check
  echo "setup: done. Enter the environment with: source .venv/bin/activate"
fi
