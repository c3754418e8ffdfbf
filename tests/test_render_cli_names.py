"""sing-render finds instruments by human name or a part of one, lists human names, and plays the user's own
instruments (the app's files) by name at their own level."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sing_app.custom_instruments import CustomInstrument, CustomInstrumentStore, model_fingerprint
from sing_app.render_cli import main
from synth_core.sing import load_checkpoint, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    return path


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_readme_note_example_plays_the_acoustic_grand_piano(tmp_path, capsys):
    """README: ``sing-render --note 60 --instrument grand_piano --velocity 100 --duration 3 -o note.wav`` (the
    default weights have an Acoustic and an Electric Grand Piano)."""
    out = tmp_path / "note.wav"
    args = ["--note", "60", "--instrument", "grand_piano", "--velocity", "100", "--duration", "0.3", "--tail", "0.1"]
    assert main([*args, "-o", str(out), "-q", "--custom-dir", str(tmp_path / "none")]) == 0
    assert sf.info(out).frames == round(0.4 * 48000)
    assert main(["--note", "60", "--instrument", "piano", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and "Acoustic Grand Piano (gm000_acoustic_grand_piano)" in err


def test_list_instruments_shows_human_names(capsys, tmp_path):
    assert main(["--list-instruments", "--custom-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "0\tAcoustic Grand Piano\tKeyboard\tgm000_acoustic_grand_piano"
    assert "14\tAcoustic Guitar (nylon)\tGuitar\tgm024_acoustic_guitar_nylon" in lines


def test_custom_instruments_play_by_name_at_their_level(tmp_path, checkpoint, capsys):
    table = load_checkpoint(checkpoint).model.instrument_table.detach().float().numpy()
    store = CustomInstrumentStore(tmp_path / "instruments")
    store.add(CustomInstrument("My quiet flute", table[1].copy(), model_fingerprint(table), gain_db=-20.0))
    store.add(CustomInstrument("Other model", table[1].copy(), "0123456789abcdef"))  # not this model's: not listed
    common = ["--checkpoint", str(checkpoint), "--custom-dir", str(store.folder)]
    assert main(["--list-instruments", *common]) == 0
    out = capsys.readouterr().out
    assert "3\tMy quiet flute\tCustom\tMy quiet flute" in out and "Other model" not in out
    levels = []
    for name in ("flute", "my quiet"):
        wav = tmp_path / f"{name}.wav"
        args = ["--note", "60", "--instrument", name, "--duration", "0.5", "--tail", "0", "-o", str(wav), "-q"]
        assert main([*args, *common]) == 0
        levels.append(rms(sf.read(wav)[0]))
    assert levels[0] > 0 and levels[1] == pytest.approx(0.1 * levels[0], rel=0.05)  # -20 dB: its own level
