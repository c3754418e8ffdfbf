"""The shipped default SING weights load and play the requested pitches."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.sing import load_checkpoint
from synth_core.sing.checkpoint import find_instrument

ASSET = Path(__file__).resolve().parents[1] / "assets" / "sing_default.pt"
pytestmark = pytest.mark.skipif(
    not ASSET.is_file(), reason="assets/sing_default.pt is not shipped yet (default weights still to be trained)"
)

# (instrument name fragment, MIDI pitch): several families across the keyboard
CASES = [
    ("acoustic_grand_piano", 48),
    ("acoustic_grand_piano", 60),
    ("flute", 72),
    ("trumpet", 60),
    ("violin", 67),
    ("acoustic_bass", 40),
]


@pytest.fixture(scope="module")
def default_ckpt():
    return load_checkpoint(ASSET)


def test_shipped_file_is_small_and_complete(default_ckpt):
    assert ASSET.stat().st_size < 40 * 2**20
    assert default_ckpt.config.n_instruments == len(default_ckpt.instruments) >= 32
    assert ASSET.with_suffix(".json").is_file()


@pytest.mark.parametrize("name,pitch", CASES)
def test_default_model_plays_the_requested_pitch(default_ckpt, name, pitch):
    model = default_ckpt.model
    index = find_instrument(default_ckpt.instruments, name)
    with torch.no_grad():
        wav = model(torch.tensor([index]), torch.tensor([pitch]), torch.tensor([100.0]))[0].numpy()
    assert wav.shape == (64000,)
    held = wav[4000:40000]  # 0.25 s .. 2.5 s: the held part of the note
    assert np.sqrt(np.mean(held**2)) > 1e-3
    assert abs(hz_to_midi(estimate_f0(held, 16000)) - pitch) < 1.0


def test_sing_render_note_with_default_weights(tmp_path):
    from sing_app.render_cli import main

    out = tmp_path / "note.wav"
    assert (
        main(
            [
                "--note",
                "57",
                "--instrument",
                "acoustic_grand_piano",
                "--velocity",
                "100",
                "--duration",
                "2",
                "--sample-rate",
                "16000",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    wav, sr = sf.read(out)
    assert sr == 16000
    assert abs(hz_to_midi(estimate_f0(wav[4000:24000], sr)) - 57) < 1.0
