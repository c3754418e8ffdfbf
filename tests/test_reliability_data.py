"""Reliability (issue #4): corrupted WAV files and examples.json never crash the data loaders.

A damaged sample-pack file is either read or reported in ``.skipped`` and left out; a damaged
NSynth ``examples.json`` is a ``ValueError`` naming the file, or its bad entries are skipped.
"""

from __future__ import annotations

import io
import json

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.datasets import NOTE_SAMPLES, load_nsynth, load_pack

SR = 16000
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def wav_bytes(subtype: str = "PCM_16") -> bytes:
    t = np.arange(SR // 4) / SR
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), SR, format="WAV", subtype=subtype)
    return buf.getvalue()


def damage(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data[: max(0, len(data) - cut)])
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


@FAST
@given(
    cut=st.integers(0, 12000),
    flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    subtype=st.sampled_from(["PCM_16", "FLOAT", "PCM_24"]),
)
def test_damaged_pack_wavs_are_read_or_skipped(tmp_path_factory, cut, flips, subtype):
    pack = tmp_path_factory.mktemp("pack")
    (pack / "good_A4_100.wav").write_bytes(wav_bytes())
    (pack / "bad_A4_100.wav").write_bytes(damage(wav_bytes(subtype), cut, flips))
    ds = load_pack(pack)
    names = {r.path.name for r in ds.records}
    assert "good_A4_100.wav" in names
    assert len(ds.records) + len(ds.skipped) == 2
    for i in range(len(ds)):  # whatever was kept is usable audio of the right length
        wav = ds[i].wav.numpy()
        assert wav.shape == (NOTE_SAMPLES,) and np.isfinite(wav).all()


def nsynth_folder(root, meta_text: str) -> None:
    (root / "audio").mkdir()
    (root / "audio" / "guitar_acoustic_000-069-100.wav").write_bytes(wav_bytes())
    (root / "examples.json").write_text(meta_text)


GOOD_META = {
    "guitar_acoustic_000-069-100": {
        "note_str": "guitar_acoustic_000-069-100",
        "instrument_str": "guitar_acoustic_000",
        "pitch": 69,
        "velocity": 100,
        "instrument_family_str": "guitar",
        "instrument_source_str": "acoustic",
    }
}


@FAST
@given(cut=st.integers(0, 120), junk=st.text(max_size=8))
def test_truncated_examples_json_is_a_clear_error_or_loads(tmp_path_factory, cut, junk):
    root = tmp_path_factory.mktemp("nsynth")
    text = json.dumps(GOOD_META)
    nsynth_folder(root, text[: max(0, len(text) - cut)] + junk)
    try:
        ds = load_nsynth(root)
    except ValueError as exc:
        assert "examples.json" in str(exc)
        return
    assert len(ds.records) <= 1


@FAST
@given(
    field=st.sampled_from(["instrument_str", "pitch", "velocity", "note_str"]),
    value=st.one_of(st.none(), st.text(max_size=5), st.integers(-1000, 1000), st.lists(st.integers(), max_size=2)),
)
def test_wrong_typed_examples_json_entries_are_skipped(tmp_path_factory, field, value):
    root = tmp_path_factory.mktemp("nsynth")
    meta = json.loads(json.dumps(GOOD_META))
    meta["guitar_acoustic_000-069-100"][field] = value
    meta["broken"] = "not an object"
    nsynth_folder(root, json.dumps(meta))
    ds = load_nsynth(root)
    assert any(key == "broken" for key, _ in ds.skipped)
    assert len(ds.records) + len(ds.skipped) >= 1
    for i in range(len(ds)):
        assert ds[i].wav.shape == (NOTE_SAMPLES,)
