#!/usr/bin/env bash
# The README's main job: install; classify the demo clips with the model shipped in the package (no training);
# then the tutorial pipeline: prepare -> split -> train -> evaluate -> calibrate -> predict, with small settings.
# Data for the tutorial: $VOICEGENDER_DATA, else ../shared/data/audiomnist_az, else ./AudioMNIST, else `voicegender download`.
# Weights: ImageNet when they can be fetched (or are cached); otherwise the run says so and trains from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VG=.venv/bin/voicegender
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per process: the default oversubscribes small machines

echo "== 1. the shipped model on the demo clips (speakers it never heard in training; results/heldout_speakers.csv)"
mkdir -p my_wavs
.venv/bin/python - <<'PY'
import shutil, pandas as pd
from pathlib import Path
from voicegender.data import corpus_table, per_speaker
roots = [Path('../shared/data')/c for c in ('audiomnist_az', 'speechocean762', 'baved')]
held = Path('results/heldout_speakers.csv')
audio = [f for f in Path('my_wavs').iterdir() if f.suffix.lower() in ('.wav', '.flac', '.ogg', '.oga', '.opus', '.mp3')]
if audio or not held.exists() or not all(r.exists() for r in roots):
    raise SystemExit(0)   # the user's own clips are there, or the corpora are not: nothing to copy
clips = corpus_table(roots)[0]
h = pd.read_csv(held); h = h[~h.child]
demo = per_speaker(clips[clips.speaker.isin(h.speaker)], 1).groupby(['corpus', 'gender']).head(1)
for r in demo.itertuples():
    shutil.copy(r.path, f"my_wavs/demo_{r.corpus}_{r.gender}_{Path(r.path).name}")
print(f"copied {len(demo)} held-out clips to my_wavs/ (record your own: python scripts/record_wav.py)")
PY
if [ -n "$(find my_wavs -maxdepth 1 -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.ogg' -o -iname '*.opus' -o -iname '*.mp3' \) | head -1)" ]; then $VG predict my_wavs
else echo "my_wavs/ holds no audio yet: record a clip with python scripts/record_wav.py"; fi

echo "== 2. the tutorial pipeline on one corpus"
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
$VG predict my_wavs --model "results/$RUN/model.safetensors"
