#!/usr/bin/env python
"""Grad-CAM figures and the faithfulness check for a trained run (the same as `voicegender gradcam`).

    python scripts/gradcam_figures.py --run results/levers/base/fold0 [--max-clips 200] [--layer auto] [--threads 1]

Writes pngs/gradcam_{examples,class_mean,coefficients,layers,faithfulness}.png and
results/gradcam_faithfulness.json, results/gradcam_coefficients.json (see nbs/05_gradcam.ipynb).

Grad-CAM needs fastai's learner, so this loads the run's model.pkl: a pickle, which runs code stored in it when it is
loaded. Name only runs you trained yourself (it warns on every run)."""
import os, sys
os.environ.setdefault('OMP_NUM_THREADS', '1')   # stay light beside a training job; --threads raises torch's own count
os.environ.setdefault('MPLBACKEND', 'Agg')
from voicegender.gradcam import cli_gradcam

if __name__ == '__main__': sys.exit(cli_gradcam(sys.argv[1:]))
