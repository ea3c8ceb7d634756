#!/usr/bin/env bash
# Create .venv and install voicegender with everything the notebooks, tests and baselines use.
# torchvision>=0.29 makes pip take a torch/torchvision pair that import together (a pinned torch 2.13 would not).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[all]"
.venv/bin/python -c "import torchvision.ops, torch, fastai, librosa; print('torch', torch.__version__, '| torchvision ops OK | fastai', fastai.__version__)"
