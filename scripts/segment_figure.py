#!/usr/bin/env python
"""A timeline of `voicegender segment` on one benchmark conversation: the truth, our segments, inaSpeechSegmenter's.

    python bench/segment.py --tune && python scripts/segment_figure.py [NAME]   # NAME: a .tmp/segment_bench/*.wav stem

Writes pngs/segment_timeline.png (the first 120 s; speakers the shipped model never heard).
"""
import sys, json, importlib.util
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('segbench', ROOT/'bench/segment.py'); sb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sb)

def main(name='test_speechocean762_music_5min', seconds=120):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from voicegender.segment import DECODER
    from voicegender.model import load_model, shipped_model
    wav = sb.WORK/f'{name}.wav'
    ref, music, *_ = sb.ref_of(wav)   # also the scored and pauses masks
    thr = load_model(shipped_model()).settings['calibration']['threshold']
    ours, _ = sb.ours_segments(wav, thr, **{k: v for k,v in DECODER.items()})
    rows = [('truth', ref), ('voicegender', sb.seg_frames(ours, len(ref)))]
    peer_file = sb.WORK/'peer.json'
    if peer_file.exists():
        peer = json.loads(peer_file.read_text())['files'].get(str(wav))
        if peer: rows.append(('inaSpeechSegmenter', sb.seg_frames([tuple(s) for s in peer['segments']], len(ref))))
    n = int(seconds/sb.FRAME); colours = np.array([[0.85, 0.85, 0.85], [0.85, 0.3, 0.45], [0.2, 0.45, 0.8]])
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.55*len(rows)))
    for i,(lab, f) in enumerate(rows): ax.imshow(colours[f[:n]][None], extent=(0, seconds, i - 0.4, i + 0.4), aspect='auto')
    ax.set(yticks=range(len(rows)), yticklabels=[r[0] for r in rows], ylim=(len(rows) - 0.5, -0.5), xlabel='seconds',
           title=f"{name} (first {seconds} s): female red, male blue, no speech grey")
    fig.tight_layout(); out = ROOT/'pngs/segment_timeline.png'
    from voicegender.core import atomic_path
    with atomic_path(out) as tmp: fig.savefig(tmp, dpi=120, format='png')
    print(out)

if __name__ == '__main__': main(*sys.argv[1:2])
