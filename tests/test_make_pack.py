"""make_pack: GM family table, NSynth records, and (when FluidSynth + FluidR3 are installed) real renders."""

from __future__ import annotations

import importlib.util
import json
import shutil
from ctypes.util import find_library
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_core.dsp import estimate_f0, hz_to_midi
from synth_core.gm import DEFAULT_PROGRAMS, NSYNTH_FAMILIES, gm_family, instrument_str, parse_programs
from training.make_pack import Note, make_pack, note_record, parse_range

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _fluid_missing() -> str | None:
    if not SOUNDFONT.is_file():
        return f"{SOUNDFONT} not installed (apt install fluid-soundfont-gm)"
    if importlib.util.find_spec("fluidsynth") is None:
        return "pyfluidsynth not installed (pip install pyfluidsynth)"
    if find_library("fluidsynth") is None and shutil.which("fluidsynth") is None:
        return "libfluidsynth not installed (apt install fluidsynth)"
    return None


needs_fluid = pytest.mark.skipif(_fluid_missing() is not None, reason=_fluid_missing() or "")


def test_gm_family_mapping():
    assert gm_family(0) == "keyboard"
    assert gm_family(11) == "mallet"
    assert gm_family(19) == "organ"
    assert gm_family(24) == "guitar"
    assert gm_family(33) == "bass"
    assert gm_family(40) == "string"
    assert gm_family(48) == "string"
    assert gm_family(52) == gm_family(53) == "vocal"
    assert gm_family(56) == "brass"
    assert gm_family(66) == "reed"
    assert gm_family(73) == "flute"
    assert gm_family(80) == gm_family(89) == "synth_lead"
    assert gm_family(125) is None
    with pytest.raises(ValueError):
        gm_family(128)


def test_default_programs_cover_all_families():
    assert len(DEFAULT_PROGRAMS) >= 32
    assert {gm_family(p) for p in DEFAULT_PROGRAMS} == set(NSYNTH_FAMILIES)


def test_parse_lists():
    assert parse_programs("0, 24,40-42") == [0, 24, 40, 41, 42]
    assert parse_programs("default") == sorted(DEFAULT_PROGRAMS)
    with pytest.raises(ValueError, match="no NSynth family"):
        parse_programs("122")
    assert parse_range("24-26,60") == [24, 25, 26, 60]


def test_note_record_has_nsynth_fields():
    rec = note_record(Note(40, 60, 100), 7)
    assert rec["note_str"] == f"{instrument_str(40)}-060-100" and "-" not in rec["instrument_str"]
    assert rec["instrument_family_str"] == "string"
    assert rec["instrument_family"] == NSYNTH_FAMILIES.index("string") == 8
    assert rec["instrument_source_str"] == "synthetic" and rec["instrument_source"] == 2
    assert rec["qualities"] == [0] * 10 and rec["sample_rate"] == 16000 and rec["note"] == 7


@needs_fluid
def test_render_pack(tmp_path):
    # piano C4 and flute A4, plus a finger-bass note above its range (FluidR3 has nothing there: silent)
    report = make_pack(SOUNDFONT, tmp_path, [0, 73, 33], [60, 69, 120], [100], workers=1, progress=False)
    examples = json.loads((tmp_path / "examples.json").read_text())
    assert "gm033_electric_bass_finger-120-100" in report["dropped_silent"]
    assert "gm000_acoustic_grand_piano-060-100" in examples and "gm073_flute-069-100" in examples
    assert 0 < report["peak"] < 1 and not report["clipped"]
    for key in ("gm000_acoustic_grand_piano-060-100", "gm073_flute-069-100"):
        rec = examples[key]
        audio, sr = sf.read(tmp_path / "audio" / f"{key}.wav", dtype="float32")
        assert sr == 16000 and audio.shape == (64000,)
        assert sf.info(tmp_path / "audio" / f"{key}.wav").subtype == "PCM_16"
        hold = np.sqrt(np.mean(audio[8000:40000] ** 2))
        tail = np.sqrt(np.mean(audio[-8000:] ** 2))
        assert tail < 0.1 * hold, (key, hold, tail)  # released at 3 s
        f0 = estimate_f0(audio[4000:20000], sr)
        assert abs(hz_to_midi(f0) - rec["pitch"]) < 0.5, (key, f0)

    # resumable and deterministic: a second run renders only what is missing, bit-identically
    first = (tmp_path / "audio" / "gm073_flute-069-100.wav").read_bytes()
    (tmp_path / "audio" / "gm073_flute-069-100.wav").unlink()
    again = make_pack(SOUNDFONT, tmp_path, [0, 73, 33], [60, 69, 120], [100], workers=1, progress=False)
    assert again["skipped_existing"] == len(examples) - 1
    assert (tmp_path / "audio" / "gm073_flute-069-100.wav").read_bytes() == first
