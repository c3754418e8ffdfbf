"""The shipped default SING weights: size, instruments, and notes at the requested pitch through the model, the
streaming engine and sing-render (no skip: the instrument must play out of the box)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.common import SIZES
from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.sing import load_checkpoint
from synth_core.sing.checkpoint import find_instrument
from synth_core.sing.streaming import stream_note

ASSET = Path(__file__).resolve().parents[1] / "assets" / "sing_default.pt"

# (instrument name fragment, MIDI pitch, velocity): families across the keyboard and the velocity range
CASES = [
    ("acoustic_grand_piano", 60, 100),
    ("acoustic_grand_piano", 72, 50),
    ("gm073_flute", 72, 127),
    ("trumpet", 60, 100),
    ("violin", 67, 80),
    ("church_organ", 55, 127),
    ("lead_2_sawtooth", 64, 100),  # at 62 (a test pitch) it plays an octave up: one of the 2 % misses (model card)
    ("choir_aahs", 65, 100),
    # the lowest octave, which the first shipped model played as hop-rate buzz
    ("acoustic_grand_piano", 40, 100),
    ("electric_bass_finger", 38, 127),
    ("cello", 43, 80),
    ("acoustic_guitar_nylon", 45, 50),
    ("trombone", 46, 100),
]


@pytest.fixture(scope="module")
def default_ckpt():
    return load_checkpoint(ASSET)


def semitones_off(wav: np.ndarray, pitch: int) -> float:
    held = wav[4000:20000]  # 0.25 .. 1.25 s: the held part, as training.evaluate measures it
    assert np.sqrt(np.mean(held**2)) > 1e-3, "silent"
    return abs(hz_to_midi(estimate_f0(held, 16000)) - pitch)


def test_shipped_file_is_small_and_complete(default_ckpt):
    assert ASSET.stat().st_size < 40 * 2**20
    assert ASSET.with_suffix(".json").is_file()
    config = default_ckpt.config
    assert {k: getattr(config, k) for k in SIZES["shipped"]} == SIZES["shipped"]
    assert config.n_instruments == len(default_ckpt.instruments) >= 24
    assert len({i.family for i in default_ckpt.instruments}) == 11  # every NSynth family
    assert default_ckpt.metadata["folded_training_gain"] > 1  # trained off the silence plateau, played at 1x


@pytest.mark.parametrize("name,pitch,velocity", CASES)
def test_default_model_plays_the_requested_pitch(default_ckpt, name, pitch, velocity):
    model = default_ckpt.model
    index = find_instrument(default_ckpt.instruments, name)
    with torch.no_grad():
        wav = model(torch.tensor([index]), torch.tensor([pitch]), torch.tensor([float(velocity)]))[0].numpy()
    assert wav.shape == (64000,)
    assert semitones_off(wav, pitch) < 1.0


def test_streamed_note_is_pitched_like_the_whole_note(default_ckpt):
    """The engine's streaming path (hand-written LSTM cell, overlap-add) plays the shipped weights too."""
    model = default_ckpt.model
    index = find_instrument(default_ckpt.instruments, "gm073_flute")
    with torch.no_grad():
        wav = stream_note(model, model.instrument_table[index].detach(), 72, 100.0, 64000).float().numpy()
    assert semitones_off(wav, 72) < 1.0


def test_sing_render_note_with_default_weights(tmp_path):
    from sing_app.render_cli import main

    out = tmp_path / "note.wav"
    argv = ["--note", "67", "--instrument", "violin", "--velocity", "100", "--duration", "2"]
    assert main([*argv, "-o", str(out), "-q"]) == 0  # at the engine's 48 kHz, through its resampler
    wav, sr = sf.read(out, always_2d=True)
    held = wav[int(0.25 * sr) : int(1.25 * sr)].mean(axis=1)
    assert np.sqrt(np.mean(held**2)) > 1e-3
    assert abs(hz_to_midi(estimate_f0(held, sr)) - 67) < 1.0
