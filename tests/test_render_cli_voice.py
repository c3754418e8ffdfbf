"""sing-render --voice: the sine stand-in for the voice (monkeypatched loader) and real bad checkpoints."""

from __future__ import annotations

import mido
import numpy as np
import pytest
import soundfile as sf

import sing_app.synths
from sing_app.render_cli import main
from synth_core.dsp import estimate_f0, midi_to_hz
from synth_core.engine.sine_voice import SineVoiceSource

NAMES = ["dark 1", "dark 2", "mid 1", "bright 1"]


@pytest.fixture
def standin(monkeypatch):
    """Every --voice load returns a fresh stand-in; the last one and the paths asked for are kept."""
    loaded = {"paths": [], "source": None}

    def load(path=None, device="auto"):
        loaded["paths"].append(path)
        loaded["source"] = SineVoiceSource(n_presets=4, names=NAMES)
        return loaded["source"]

    monkeypatch.setattr(sing_app.synths, "load_voice_source", load)
    return loaded


def legato_file(path):
    """Note 60 from 0 to 1.0 s, note 72 from 0.5 to 1.0 s (overlapping: legato in mono)."""
    mid = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks per second
    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=100, time=0),
            mido.Message("note_on", note=72, velocity=100, time=480),
            mido.Message("note_off", note=72, time=480),
            mido.Message("note_off", note=60, time=0),
        ]
    )
    mid.tracks.append(track)
    mid.save(path)
    return path


def f0_at(y, sr, t, n=2048):
    return estimate_f0(y[int(t * sr) : int(t * sr) + n], sr)


def test_voice_note_and_presets(tmp_path, standin, capsys):
    assert main(["--voice", "--list-instruments"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in NAMES) and standin["paths"] == [None]
    wav = tmp_path / "n.wav"
    args = ["--voice", "my.pt", "--note", "64", "--instrument", "bright", "--duration", "0.5", "--tail", "0.5"]
    assert main([*args, "-o", str(wav), "-q"]) == 0
    assert standin["paths"][-1] == "my.pt"
    y, sr = sf.read(wav)
    assert len(y) == sr and f0_at(y, sr, 0.2) == pytest.approx(midi_to_hz(64), rel=0.01)
    assert np.abs(y[int(0.9 * sr) :]).max() == 0
    assert main(["--voice", "--note", "60", "--instrument", "tuba", "-o", str(wav), "-q"]) == 2
    assert "unknown instrument 'tuba'" in capsys.readouterr().err


def test_voice_mono_glides_and_poly_does_not(tmp_path, standin):
    mid = legato_file(tmp_path / "legato.mid")
    mono, poly = tmp_path / "mono.wav", tmp_path / "poly.wav"
    assert main([str(mid), "--voice", "--mono", "--glide", "0.4", "-o", str(mono), "-q", "--tail", "0.5"]) == 0
    assert standin["source"].settings.glide_s == 0.4
    y, sr = sf.read(mono)
    assert midi_to_hz(62) < f0_at(y, sr, 0.68) < midi_to_hz(70)  # half way through the 0.4 s glide
    assert f0_at(y, sr, 0.95) == pytest.approx(midi_to_hz(72), rel=0.02)
    assert main(["--voice", str(mid), "-o", str(poly), "-q", "--tail", "0.5"]) == 0  # "--voice FILE.mid" too
    y, sr = sf.read(poly)
    assert f0_at(y, sr, 0.25) == pytest.approx(midi_to_hz(60), rel=0.01)
    spectrum = np.abs(np.fft.rfft(y[int(0.6 * sr) : int(0.6 * sr) + 8192] * np.hanning(8192)))
    freqs = np.fft.rfftfreq(8192, 1 / sr)
    level = {n: spectrum[np.argmin(np.abs(freqs - midi_to_hz(n)))] for n in (60, 72)}
    assert level[60] > 0.3 * level[72]  # both notes sound at once


def test_voice_option_errors(tmp_path, standin, capsys):
    wav = str(tmp_path / "x.wav")
    assert main(["--note", "60", "--glide", "0.1", "--sine", "-o", wav]) == 2
    assert "--glide needs --voice" in capsys.readouterr().err
    assert main(["--voice", "--sine", "--note", "60", "-o", wav]) == 2
    assert main(["--voice", "--note", "60", "--glide", "-1", "-o", wav]) == 2


def test_missing_or_bad_voice_checkpoint_exits_2(tmp_path, capsys):
    wav = tmp_path / "x.wav"
    assert main(["--voice", str(tmp_path / "none.pt"), "--note", "60", "-o", str(wav)]) == 2
    assert "voice checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage, not a torch file")
    assert main(["--voice", str(bad), "--note", "60", "-o", str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sing-render: error:") and "Traceback" not in err
    assert not wav.exists()


@pytest.mark.parametrize("subscale", [0, 16])
def test_tiny_random_wavernn_voice_renders(tmp_path, subscale):
    """The real WaveRNNSource with a tiny untrained model, plain or subscale (16 samples per step)."""
    import torch

    from synth_core.wavernn import WaveRNN, WaveRNNConfig, features
    from synth_core.wavernn import checkpoint as ckpt_mod
    from synth_core.wavernn.subscale import SubscaleWaveRNN

    torch.manual_seed(0)
    config = WaveRNNConfig(hidden=32, cond_channels=16, head_hidden=16)
    model = SubscaleWaveRNN(config, subscale=subscale) if subscale else WaveRNN(config)
    presets = [
        features.VoicePreset(name=f"tone {i}", envelope=np.full(20, 0.1 * i, np.float32), midi=60.0, loudness_db=-20.0)
        for i in range(2)
    ]
    path = tmp_path / "voice.pt"
    ckpt_mod.save_voice(path, model, presets)
    wav = tmp_path / "v.wav"
    assert main(["--voice", str(path), "--list-instruments"]) == 0
    args = ["--voice", str(path), "--device", "cpu", "--note", "60", "--instrument", "tone 1", "--duration", "0.2"]
    assert main([*args, "--tail", "0.1", "--mono", "-o", str(wav), "-q"]) == 0
    y, sr = sf.read(wav)
    assert len(y) == round(0.3 * sr) and np.isfinite(y).all() and np.abs(y).max() > 0
