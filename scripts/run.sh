#!/usr/bin/env bash
# The README's main job: install, then prepare -> split -> train -> evaluate -> predict, with small settings.
# Data: $VOICEGENDER_DATA, else ../shared/data/audiomnist_az, else ./AudioMNIST, else `voicegender download`.
# Weights: ImageNet when they can be fetched (or are cached); otherwise the run says so and trains from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VG=.venv/bin/voicegender
DATA=${VOICEGENDER_DATA:-}
if [ -z "$DATA" ]; then
  for d in ../shared/data/audiomnist_az AudioMNIST; do [ -d "$d/data" ] && { DATA=$d; break; }; done
fi
if [ -z "$DATA" ]; then $VG download --dest AudioMNIST; DATA=AudioMNIST; fi
echo "== data: $DATA"
$VG prepare --data "$DATA"                    # mfc_dataset/ + maps/ (speech trimmed with Silero VAD)
$VG prepare --data "$DATA" --distort mix      # mfc_distorted/: room/telephone copies for training augmentation
[ -f results/splits.csv ] || $VG split --data "$DATA"
RUN=${RUN:-quickstart-$(date +%Y%m%d-%H%M%S)}
EPOCHS=${EPOCHS:-10}
if .venv/bin/python -c "import torchvision.models as m; m.resnet34(weights='DEFAULT')" >/dev/null 2>&1; then
  PRE=""; echo "== training with ImageNet weights"
else
  PRE="--no-pretrained"; echo "== ImageNet weights cannot be fetched here: training from scratch (--no-pretrained)"
fi
$VG train --name "$RUN" --fold 0 --epochs "$EPOCHS" $PRE
$VG evaluate "results/$RUN"
$VG calibrate "results/$RUN"
mkdir -p my_wavs
if ! ls my_wavs/*.wav >/dev/null 2>&1; then
  echo "== my_wavs/ is empty: copying 4 held-out test clips there as an example (record your own: python scripts/record_wav.py)"
  .venv/bin/python - "$RUN" <<'PY'
import sys, json, shutil, pandas as pd
from pathlib import Path
pred = pd.read_csv(f'results/{sys.argv[1]}/predictions.csv')
clips = pd.read_csv('results/clips.csv').set_index(pd.read_csv('results/clips.csv').path.map(lambda p: Path(p).stem))
for g in ('female', 'male'):
    for img in pred[pred.gender == g].path.head(2):
        shutil.copy(clips.loc[Path(img).stem, 'path'], f'my_wavs/example_{g}_{Path(img).stem}.wav')
PY
fi
$VG predict my_wavs --model "results/$RUN/model.pkl"
