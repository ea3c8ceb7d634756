"""Would an int8 network meet the 10 ms latency target? A probe, not a feature: the shipped model's ONNX graph quantised
statically (onnxruntime QDQ, per-channel int8 weights, uint8 activations, MinMax ranges from 150 clips of *training*
speakers), timed at batch 1 on one thread against the float graph, and compared window by window on 300 clips of the
held-out speakers (results/heldout_speakers.csv).

    OMP_NUM_THREADS=1 python bench/int8_probe.py      # -> results/bench_int8_probe.json
"""
import json, os, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, onnxruntime as ort
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantType, QuantFormat
from onnxruntime.quantization.shape_inference import quant_pre_process
from voicegender.core import shipped_model, read_model_file, load_audio, SHARED_DATA, atomic_write
from voicegender.engine import cached_graph
from voicegender.deploy import Predictor
from voicegender.mfcc import model_input
from voicegender.data import corpus_table

ROOT = Path(__file__).resolve().parents[1]

def batch(pred, settings, paths):
    "The network inputs of every speech window of the clips."
    ims = []
    for f in paths:
        y = load_audio(f); _, win = pred.speech(y)
        if win: ims += pred.images(y, win)[0]
    return model_input(ims, pred.model.size, settings.get('normalize'))

def session(f):
    so = ort.SessionOptions(); so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = 1, 1, 3
    return ort.InferenceSession(str(f), so, providers=['CPUExecutionProvider'])

def median_ms(sess, x, n=300):
    for _ in range(30): sess.run(None, {'images': x})
    ts = []
    for _ in range(n): t = time.perf_counter(); sess.run(None, {'images': x}); ts.append(time.perf_counter() - t)
    return round(1000*float(np.median(ts)), 2)

def main():
    model = shipped_model(); settings = read_model_file(model)[0]
    pred = Predictor(threads=1)
    held = set(pd.read_csv(ROOT/'results/heldout_speakers.csv').speaker.astype(str))
    clips = corpus_table([Path(SHARED_DATA)/n for n in ('audiomnist_az', 'speechocean762', 'baved')])[0]
    train = clips[~clips.speaker.astype(str).isin(held)].sample(150, random_state=0)
    test = clips[clips.speaker.astype(str).isin(held)].sample(300, random_state=0)
    x_cal, x_test = batch(pred, settings, train.path), batch(pred, settings, test.path)
    class Reader(CalibrationDataReader):
        def __init__(self): self.it = iter({'images': x_cal[i:i+1]} for i in range(len(x_cal)))
        def get_next(self): return next(self.it, None)
    with tempfile.TemporaryDirectory() as d:
        pre, q8 = Path(d)/'pre.onnx', Path(d)/'int8.onnx'
        quant_pre_process(str(cached_graph(model, settings)), str(pre))
        quantize_static(str(pre), str(q8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        f32, i8 = session(cached_graph(model, settings)), session(q8)
        size_mb = os.path.getsize(q8)/1e6
        ms = [(median_ms(f32, x_test[:1]), median_ms(i8, x_test[:1])) for _ in range(3)]
        run = lambda s: np.concatenate([s.run(None, {'images': x_test[i:i+64]})[0] for i in range(0, len(x_test), 64)])
        la, lb = run(f32), run(i8)
        bs64 = [median_ms(s, x_test[:64], 30)/64 for s in (f32, i8)]
    T = settings['calibration']['temperature']
    pf = lambda l: (np.exp(l/T)/np.exp(l/T).sum(1, keepdims=True))[:, 0]
    dp = np.abs(pf(la) - pf(lb))
    res = dict(model=str(model), calibration_windows=len(x_cal), test_windows=len(x_test), int8_mb=round(size_mb, 1),
               batch1_ms_float=[a for a,_ in ms], batch1_ms_int8=[b for _,b in ms],
               batch64_ms_per_window=dict(float=round(bs64[0], 2), int8=round(bs64[1], 2)),
               same_top_label=float((la.argmax(1) == lb.argmax(1)).mean()),
               p_female_abs_diff=dict(median=float(np.median(dp)), p99=float(np.quantile(dp, 0.99)), max=float(dp.max())),
               note="network only (no decoding, speech detection or MFCC); one thread; a probe, not an engine option")
    atomic_write(ROOT/'results/bench_int8_probe.json', json.dumps(res, indent=1)); print(json.dumps(res, indent=1))

if __name__ == '__main__': main()
