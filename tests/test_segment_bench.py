"The segmentation bench's own arithmetic: frame scores against the reference and against the finer one without a clip's pauses."
import importlib.util
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('segbench', ROOT/'bench/segment.py'); sb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sb)

def test_pauses_inside_a_clip_count_as_speech_only_in_the_plain_reference():
    ref   = np.array([1, 1, 1, 1, 2, 2, 2, 2, 0, 0])   # a woman's clip (frames 0-3, frame 2 a pause in it), a man's, no speech
    pause = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    sys_  = np.array([1, 1, 0, 1, 2, 2, 2, 2, 0, 1])   # the system calls the pause no speech, and one frame of silence female
    s = sb.score(sys_, ref, np.zeros(10, bool), np.ones(10, bool), pause)
    assert s['speech_accuracy'] == 7/8 and s['speech_accuracy_no_pauses'] == 1.0 and s['missed_speech'] == 1/8
    assert s['false_speech'] == 1/2 and s['pause_share'] == 1/8
    assert np.isclose(s['female_share_error_pts'], abs(4/8 - 4/8)*100)                 # system 4 of 8 frames female; reference 4 of 8
    assert np.isclose(s['female_share_error_no_pauses_pts'], abs(4/8 - 3/7)*100)       # finer reference: 3 of 7
