"""Compile and cache librosa's numba kernels (pyin, yin, lpc, zero crossings, peak picking, local extrema, complex
magnitudes and phasors) in one process, for float32 and float64 input, before `scripts/test.sh` runs two notebooks at
a time: two processes writing the same numba cache at once left one that crashed `librosa.pyin` with a segfault."""
import numpy as np, librosa

SR = 16000
t = np.arange(SR)/SR
for dtype in (np.float32, np.float64):
    y = (np.sin(2*np.pi*150*t) + 0.01*np.random.default_rng(0).standard_normal(SR)).astype(dtype)
    librosa.pyin(y, fmin=60, fmax=400, sr=SR, frame_length=1024)
    librosa.yin(y, fmin=60, fmax=400, sr=SR, frame_length=1024)
    librosa.lpc(y, order=8); librosa.zero_crossings(y)
    librosa.util.localmax(y); librosa.util.localmin(y)
    librosa.util.peak_pick(np.abs(y[:2000]), pre_max=3, post_max=3, pre_avg=3, post_avg=3, delta=0.1, wait=5)
    spec = np.fft.rfft(y); librosa.util.abs2(spec); librosa.util.phasor(np.angle(spec))
print("librosa's numba kernels compiled and cached")
