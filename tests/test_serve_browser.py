"""The web page in a real browser: headless Chromium driven by Selenium against `voicegender serve` on a free port.
A file upload, a 2 s recording and the live mode (with Chromium's fake microphone playing a WAV), and reconnection.
Skips when Chromium, its driver or Selenium is missing (Debian: apt-get install chromium chromium-driver)."""
import io, os, sys, time, shutil, socket, subprocess, contextlib
from pathlib import Path
import numpy as np, soundfile as sf, pytest, httpx

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from selenium.common.exceptions import TimeoutException

from voicegender.core import SR
from voicegender.speech import synthetic_speech

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
CHROMEDRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver "
                                "(Debian: apt-get install chromium chromium-driver)")
SPEECH_LABELS = {'female', 'male', 'uncertain'}
STARTUP = float(os.environ.get('VOICEGENDER_TEST_STARTUP', 600))   # seconds to wait for the server (a loaded CI box)


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def speech_wav(path, seconds=1.0, f0=120, pause=0.5):
    y = np.concatenate([np.zeros(int(pause*SR)), synthetic_speech(seconds, f0), np.zeros(int(pause*SR))])
    y = y + np.random.default_rng(0).normal(0, 0.003, len(y))
    sf.write(path, y.astype(np.float32), SR, subtype='PCM_16')
    return path


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "`voicegender serve` with a tiny model, in its own process; yields its base URL."
    d = tmp_path_factory.mktemp('browser')
    from voicegender.train import tiny_learner
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): model = tiny_learner(d/'run')
    port = free_port()
    log = open(d/'server.log', 'w')
    proc = subprocess.Popen([sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())',
                             'serve', '--model', str(model), '--port', str(port), '--threads', '1'],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    url = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.time() + STARTUP
        while True:
            assert proc.poll() is None, (d/'server.log').read_text()
            try: httpx.get(url + 'health', timeout=5).raise_for_status(); break
            except httpx.HTTPError:
                assert time.time() < deadline, "the server did not start:\n" + (d/'server.log').read_text()
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate(); proc.wait(60); log.close()


@pytest.fixture(scope='module')
def mic_wav(tmp_path_factory):
    "What the fake microphone plays, looped: 2 s of a voice, then 2 s of silence."
    y = np.concatenate([synthetic_speech(2.0, 120), np.zeros(2*SR, np.float32)])
    path = tmp_path_factory.mktemp('mic')/'mic.wav'
    sf.write(path, y, SR, subtype='PCM_16')
    return path


@pytest.fixture(scope='module')
def browser(tmp_path_factory, mic_wav):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 f'--user-data-dir={tmp_path_factory.mktemp("chromium")}', '--window-size=900,1250',
                 '--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream',
                 '--use-fake-device-for-media-stream', f'--use-file-for-fake-audio-capture={mic_wav}']:
        opts.add_argument(flag)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def wait(driver, until, seconds=120):
    "Wait for `until(driver)`; on a timeout, fail showing the page's state and its console."
    try: return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: until(d))
    except TimeoutException:
        state = {id: text(driver, id) for id in ('answer', 'details', 'live-status', 'live-answer', 'live-details')}
        pytest.fail(f"timed out after {seconds} s; page: {state}; console: {driver.get_log('browser')}")


def text(driver, id): return driver.find_element(By.ID, id).text
def label(driver, id): return driver.find_element(By.ID, id).get_attribute('data-label')


def test_upload_a_file_shows_the_answer(server, browser, tmp_path):
    clip = speech_wav(tmp_path/'speech.wav')
    browser.get(server)
    assert browser.title == 'voicegender' and text(browser, 'answer') == '\u2013'
    browser.find_element(By.ID, 'file').send_keys(str(clip))
    wait(browser, lambda d: label(d, 'result') not in ('', 'busy'))
    api = httpx.post(server + 'predict', files={'file': ('speech.wav', clip.read_bytes(), 'audio/wav')}, timeout=60).json()
    assert label(browser, 'result') == text(browser, 'answer') == api['label'] and api['label'] in SPEECH_LABELS
    assert text(browser, 'p-female') == f"{api['probabilities']['female']:.3f}"
    assert text(browser, 'p-male') == f"{api['probabilities']['male']:.3f}"
    assert text(browser, 'details').startswith('speech.wav: 2 s, speech ') and 'model ' in text(browser, 'details')


def test_a_bad_file_shows_the_servers_message(server, browser, tmp_path):
    bad = tmp_path/'notes.txt'; bad.write_text('not audio')
    browser.get(server)
    browser.find_element(By.ID, 'file').send_keys(str(bad))
    wait(browser, lambda d: label(d, 'result') == 'error')
    assert text(browser, 'answer').startswith('notes.txt: not readable as audio') and text(browser, 'details') == 'HTTP 415'


def test_record_two_seconds(server, browser):
    browser.get(server)
    browser.find_element(By.ID, 'record').click()
    wait(browser, lambda d: text(d, 'details').startswith('recording.wav:'))   # the answer is in
    assert label(browser, 'result') in SPEECH_LABELS | {'no speech'}, text(browser, 'details')
    assert text(browser, 'details').startswith('recording.wav: 2'), text(browser, 'details')   # a 2 s WAV made in the page


def test_live_answers_follow_the_fake_microphone_and_reconnect(server, browser, tmp_path):
    browser.get(server)
    clip = speech_wav(tmp_path/'speech.wav')
    browser.find_element(By.ID, 'file').send_keys(str(clip))      # so the screenshot shows both parts
    wait(browser, lambda d: text(d, 'details').startswith('speech.wav:'))   # before the click: nothing moves under it
    browser.find_element(By.ID, 'live').click()
    wait(browser, lambda d: text(d, 'live-status').startswith('listening'))
    assert text(browser, 'live-status') == 'listening (16000 Hz)'   # the browser resamples to 16 kHz
    ticks = lambda d: [t.get_attribute('data-label') for t in d.find_elements(By.CSS_SELECTOR, '#strip span')]
    wait(browser, lambda d: len(ticks(d)) >= 24, 180)                # 4 answers a second: 6 s of the looped clip
    seen = ticks(browser)
    assert set(seen) <= SPEECH_LABELS | {'no speech'}
    assert 'no speech' in seen and set(seen) & SPEECH_LABELS, seen   # the voice gets answers, its pauses get "no speech"
    shot = Path(os.environ.get('VOICEGENDER_SCREENSHOT', tmp_path/'serve_page.png'))
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shot))

    before = int(browser.find_element(By.ID, 'live-result').get_attribute('data-count'))
    browser.execute_script('live.ws.close()')                        # the socket drops: the page reconnects
    wait(browser, lambda d: text(d, 'live-status').startswith('disconnected; reconnecting in 0.5 s'), 30)
    wait(browser, lambda d: text(d, 'live-status').startswith('listening'), 60)
    wait(browser, lambda d: int(d.find_element(By.ID, 'live-result').get_attribute('data-count')) >= before + 4, 60)
    browser.find_element(By.ID, 'live').click()
    assert text(browser, 'live-status') == 'off'


def two_speakers_wav(path):
    "A low voice, a pause, a high voice: 8 s."
    y = np.concatenate([np.zeros(SR//2), synthetic_speech(3.0, 110, seed=1), np.zeros(SR), synthetic_speech(3.0, 220, seed=2),
                        np.zeros(SR//2)])
    sf.write(path, (y + np.random.default_rng(0).normal(0, 0.003, len(y))).astype(np.float32), SR, subtype='PCM_16')
    return path


def test_timeline_of_an_upload(server, browser, tmp_path):
    clip = two_speakers_wav(tmp_path/'talk.wav')
    browser.get(server)
    assert not browser.find_element(By.ID, 'segment').is_enabled()              # nothing to segment yet
    browser.find_element(By.ID, 'file').send_keys(str(clip))
    wait(browser, lambda d: text(d, 'details').startswith('talk.wav:'))          # the /predict answer is in
    browser.find_element(By.ID, 'segment').click()
    wait(browser, lambda d: d.find_element(By.ID, 'timeline').get_attribute('data-state') in ('done', 'error'))
    assert browser.find_element(By.ID, 'timeline').get_attribute('data-state') == 'done', text(browser, 'seg-status')
    api = httpx.post(server + 'segment', files={'file': ('talk.wav', clip.read_bytes(), 'audio/wav')}, timeout=60).json()
    rects = browser.find_elements(By.CSS_SELECTOR, '#timeline svg rect.seg')
    label = lambda s: 'uncertain' if s['label'] != 'no speech' and s['uncertain'] else s['label']
    assert [r.get_attribute('data-label') for r in rects] == [label(s) for s in api['segments']]
    fills = {r.get_attribute('data-label'): r.value_of_css_property('fill') for r in rects}
    assert len(set(fills.values())) == len(fills) >= 2, fills                     # one colour per label, all coloured
    assert 'rgb(204, 204, 204)' == fills['no speech'] and all(f.startswith('rgb(') for f in fills.values()), fills
    widths = [float(r.get_attribute('width')) for r in rects]
    assert sum(widths) == pytest.approx(1000, abs=1)                              # the turns fill the timeline
    t = api['totals']
    share = '\u2013' if t['female_share'] is None else f"{100*t['female_share']:.0f} %"
    assert text(browser, 'seg-totals') == (f"female {t['female_s']:.1f} s \u00b7 male {t['male_s']:.1f} s \u00b7 "
                                          f"no speech {t['no_speech_s']:.1f} s \u00b7 female share of speaking time {share}")
    assert text(browser, 'seg-details').startswith(f"talk.wav: 8 s, {len(api['segments'])} segment(s)")
    shot = os.environ.get('VOICEGENDER_TIMELINE_SCREENSHOT')
    if shot: browser.save_screenshot(shot)


def test_timeline_of_a_bad_file_shows_the_servers_message(server, browser, tmp_path):
    bad = tmp_path/'notes.txt'; bad.write_text('not audio')
    browser.get(server)
    browser.find_element(By.ID, 'file').send_keys(str(bad))
    wait(browser, lambda d: label(d, 'result') == 'error')
    browser.find_element(By.ID, 'segment').click()
    wait(browser, lambda d: d.find_element(By.ID, 'timeline').get_attribute('data-state') == 'error')
    assert text(browser, 'seg-status').startswith('HTTP 415: notes.txt: not readable as audio')
