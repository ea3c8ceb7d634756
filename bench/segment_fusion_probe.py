"""Would `--fusion`'s heads help `segment`? A probe on the saved test conversations of `bench/segment.py` (run it
first): each speech segment the shipped decoder found is relabelled by pooling its p(female) with the heads' answers
on its audio (`pool_log_odds`, as `predict --fusion resemblyzer,yin`), and both labellings are scored on the same frames.

    python bench/segment_fusion_probe.py      # writes results/segment_fusion_probe.json

The shipped heads were fitted on the corpora of these conversations (other speakers): an in-corpus view. Not a
setting of the package."""
import sys, json
from pathlib import Path
import numpy as np, soundfile as sf
sys.path.insert(0, str(Path(__file__).parent)); import segment as sb

def relabel(segs, y, sr, pred):
    "Each speech segment's label from its p(female) pooled with the heads' answers on its audio."
    from voicegender.deploy import pool_log_odds
    out = []
    for lab,a,b,p in segs:
        if lab == 'no speech' or p is None: out.append((lab, a, b)); continue
        x = pred.prepared(y[int(a*sr):int(b*sr)], sr)[1]
        q = pool_log_odds([p, *(h.p_female(x) for h in pred.heads)])
        out.append(('female' if q >= 0.5 else 'male', a, b))
    return out

if __name__ == '__main__':
    from voicegender.deploy import Predictor
    from voicegender.segment import finish
    root = sb.ROOT; thr = json.loads((root/'results/segment_bench.json').read_text())['threshold']
    pred, rows = Predictor(fusion='resemblyzer,yin', threads=1), []
    for f in sorted(sb.WORK.glob('test_*.wav')):
        z = np.load(f.with_suffix('.ours.npz'))
        raw = dict(speech=[tuple(r) for r in z['speech']], windows=z['windows'], probs=z['probs'], duration=float(z['duration']))
        segs = finish(raw, thr)['segments']; y, sr = sf.read(f, dtype='float32'); ref = sb.ref_of(f)
        for name,lab in (('decoder', [s[:3] for s in segs]), ('decoder + heads', relabel(segs, y, sr, pred))):
            s = sb.score(sb.seg_frames(lab, len(ref[0])), *ref)
            rows.append(dict(file=f.stem, labels=name, **{k: s[k] for k in ('speech_accuracy', 'wrong_gender', 'female_share_error_pts')}))
        print(f.stem, *(f"{r['labels']}: speech {r['speech_accuracy']:.3f}, wrong {r['wrong_gender']:.3f}, share error "
                        f"{r['female_share_error_pts']:.2f}" for r in rows[-2:]), sep=' | ', flush=True)
    (root/'results/segment_fusion_probe.json').write_text(json.dumps(dict(threshold=thr, rows=rows), indent=1))
