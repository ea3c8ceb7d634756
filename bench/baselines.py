#!/usr/bin/env python
"""Regenerate results/baselines.csv: every baseline of nbs/06_baselines.ipynb on the saved folds (results/splits.csv).

Run from anywhere; paths are relative to the project root:
    OMP_NUM_THREADS=1 .venv/bin/python bench/baselines.py                # all parts, 1 CPU thread
    .venv/bin/python bench/baselines.py --only resemblyzer --threads 2   # one part
Feature caches (results/embeddings_resemblyzer*.npz, results/acoustic_features.csv, results/cv_mel128_az.npz) make a
second run fast; per-fold details go to results/baselines_details.json, the PCA figure to pngs/embeddings_pca.png.
Same as `voicegender baselines`.
"""
import os, sys
from pathlib import Path
os.environ.setdefault('OMP_NUM_THREADS', '1')   # before numpy/torch load: the default is one thread
os.chdir(Path(__file__).resolve().parent.parent)
from voicegender.baselines import cli_baselines

if __name__ == '__main__': sys.exit(cli_baselines(sys.argv[1:]))
