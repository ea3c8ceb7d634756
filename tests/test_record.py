"Recording: the file it writes, unique names, and clear failures without PortAudio or an input device."
import sys, types, datetime, subprocess, os
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from voicegender.speech import synthetic_speech
from voicegender.record import record_clip, save_new_wav, cli_record, input_devices, RecordError, sounddevice_record

ROOT = Path(__file__).resolve().parents[1]


def fake_recorder(seconds, sr, device):
    return synthetic_speech(seconds, 120, sr)[:, None]   # sounddevice returns (frames, channels)


def test_record_clip_writes_16bit_mono_wav(tmp_path):
    said = []
    path = record_clip(0.5, 8000, None, tmp_path/'my_wavs', fake_recorder, countdown=3, say=said.append, sleep=lambda s: None)
    assert said == ['3...', '2...', '1...', 'Speak now!']
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 4000, 'PCM_16')
    y, _ = sf.read(str(path), dtype='float32')
    assert np.abs(y - synthetic_speech(0.5, 120, 8000)).max() < 1e-3   # 16-bit quantisation only
    assert path.parent == tmp_path/'my_wavs' and path.name.startswith('clip-') and path.suffix == '.wav'


def test_names_are_unique_and_nothing_is_overwritten(tmp_path):
    now = datetime.datetime(2024, 5, 1, 12, 0, 0)
    y = np.full(100, 0.25, np.float32)
    paths = [save_new_wav(y*(k+1)/4, tmp_path, 16000, now=now) for k in range(3)]
    assert [p.name for p in paths] == ['clip-20240501-120000.wav', 'clip-20240501-120000-1.wav', 'clip-20240501-120000-2.wav']
    first, _ = sf.read(str(paths[0]), dtype='float32')
    assert abs(first[0] - 0.0625) < 1e-3                                 # the first file kept its content
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)   # no temporary files left


def test_silent_recording_warns(tmp_path):
    said = []
    record_clip(0.2, 16000, None, tmp_path, lambda s, sr, d: np.zeros((int(s*sr), 1), np.float32), countdown=0,
                say=said.append)
    assert any('silent' in s for s in said)


def fake_sounddevice(inputs=True, captured=None):
    "A stand-in for the sounddevice module: two devices, the first an input unless `inputs` is False."
    sd = types.ModuleType('sounddevice')
    class PortAudioError(Exception): pass
    sd.PortAudioError = PortAudioError
    devs = [dict(name='Fake mic', max_input_channels=2 if inputs else 0, default_samplerate=44100.),
            dict(name='Fake speaker', max_input_channels=0, default_samplerate=48000.)]
    sd.query_devices = lambda *a, **k: devs
    def check_input_settings(device=None, channels=None, samplerate=None, dtype=None):
        if not inputs: raise PortAudioError('Error querying device -1')
    sd.check_input_settings = check_input_settings
    def rec(frames, samplerate, channels, dtype, device=None):
        if captured is not None: captured.update(frames=frames, samplerate=samplerate, device=device)
        return synthetic_speech(frames/samplerate, 200, samplerate)[:, None]
    sd.rec, sd.wait = rec, lambda: None
    return sd


def test_cli_record_with_a_device(tmp_path, monkeypatch, capsys):
    captured = {}
    monkeypatch.setitem(sys.modules, 'sounddevice', fake_sounddevice(captured=captured))
    assert cli_record(['--seconds', '0.5', '--rate', '16000', '--device', '0', '--out-dir', str(tmp_path), '--countdown', '0']) == 0
    out = capsys.readouterr().out
    assert 'Speak now!' in out and 'saved' in out
    assert captured == dict(frames=8000, samplerate=16000, device=0)
    assert len(list(tmp_path.glob('clip-*.wav'))) == 1
    assert cli_record(['--list-devices']) == 0
    out = capsys.readouterr().out
    assert 'Fake mic' in out and 'Fake speaker' not in out                 # input devices only


def test_no_input_device(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'sounddevice', fake_sounddevice(inputs=False))
    assert cli_record(['--out-dir', str(tmp_path/'w'), '--countdown', '0']) == 1
    err = capsys.readouterr()
    assert 'no usable input device' in err.err and 'Speak now!' not in err.out   # fails before the countdown
    assert not (tmp_path/'w').exists()
    assert input_devices() == []
    assert cli_record(['--list-devices']) == 1


def _no_portaudio(tmp_path):
    fake = tmp_path/'fake'; fake.mkdir()
    (fake/'sounddevice.py').write_text("raise OSError('PortAudio library not found')\n")
    return fake


def test_no_portaudio(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(_no_portaudio(tmp_path)))
    monkeypatch.delitem(sys.modules, 'sounddevice', raising=False)
    with pytest.raises(RecordError, match='PortAudio'): sounddevice_record(1.0, 16000)
    assert cli_record(['--out-dir', str(tmp_path/'w'), '--countdown', '0']) == 1
    assert 'PortAudio' in capsys.readouterr().err and not (tmp_path/'w').exists()
    assert cli_record(['--list-devices']) == 1


def test_sounddevice_not_installed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'sounddevice', None)   # import raises ImportError
    assert cli_record(['--countdown', '0']) == 1
    assert "pip install 'voicegender[record]'" in capsys.readouterr().err


def test_script_without_portaudio_exits_cleanly(tmp_path):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(_no_portaudio(tmp_path)), str(ROOT)])}
    r = subprocess.run([sys.executable, str(ROOT/'scripts/record_wav.py'), '--out-dir', str(tmp_path/'w'), '--countdown', '0'],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r
    assert 'PortAudio' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    h = subprocess.run([sys.executable, str(ROOT/'scripts/record_wav.py'), '--help'], capture_output=True, text=True,
                       env=env, timeout=120)
    assert h.returncode == 0 and '--list-devices' in h.stdout
