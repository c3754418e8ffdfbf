"""NSynth and sample-pack readers: parsing, filters, resampling, bad files, split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_core.dsp import estimate_f0, midi_to_hz
from training.datasets import (
    NOTE_SAMPLES,
    InstrumentVocab,
    load_nsynth,
    load_pack,
    load_samples,
    note_name,
    parse_note_filename,
    parse_pitch,
    parse_velocity,
)

SR = 16000


def tone(pitch: int, sr: int = SR, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * midi_to_hz(pitch) * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def make_nsynth(root, entries):
    (root / "audio").mkdir(parents=True)
    meta = {}
    for inst, family, source, pitch, vel, write in entries:
        key = f"{inst}-{pitch:03d}-{vel:03d}"
        meta[key] = {
            "note_str": key,
            "instrument_str": inst,
            "pitch": pitch,
            "velocity": vel,
            "sample_rate": SR,
            "instrument_family_str": family,
            "instrument_source_str": source,
        }
        if write:
            sf.write(root / "audio" / f"{key}.wav", tone(pitch, seconds=4.0), SR, subtype="PCM_16")
    (root / "examples.json").write_text(json.dumps(meta))


@pytest.fixture
def nsynth(tmp_path):
    entries = [
        ("bass_synthetic_001", "bass", "synthetic", 40, 100, True),
        ("bass_synthetic_001", "bass", "synthetic", 45, 127, True),
        ("keyboard_acoustic_002", "keyboard", "acoustic", 60, 75, True),
        ("keyboard_acoustic_002", "keyboard", "acoustic", 64, 100, True),
        ("string_acoustic_003", "string", "acoustic", 67, 50, True),
        ("string_acoustic_003", "string", "acoustic", 69, 100, False),  # audio missing
    ]
    make_nsynth(tmp_path / "nsynth", entries)
    return tmp_path / "nsynth"


def test_nsynth_reader_items_vocab_and_missing(nsynth):
    ds = load_nsynth(nsynth)
    assert len(ds) == 5
    assert [s[1] for s in ds.skipped] == ["audio file missing"]
    assert ds.vocab.names == ["bass_synthetic_001", "keyboard_acoustic_002", "string_acoustic_003"]
    assert ds.vocab.families == ["bass", "keyboard", "string"]
    item = ds[2]
    assert item.wav.shape == (NOTE_SAMPLES,) and item.wav.dtype.is_floating_point
    assert (item.instrument, item.pitch, item.velocity) == (1, 60, 75)
    assert abs(estimate_f0(item.wav[:8000].numpy(), SR) - midi_to_hz(60)) < 2


def test_nsynth_filters(nsynth):
    assert len(load_nsynth(nsynth, families=["bass"])) == 2
    assert len(load_nsynth(nsynth, sources=["acoustic"])) == 3
    assert len(load_nsynth(nsynth, pitch_range=(44, 64))) == 3
    assert len(load_nsynth(nsynth, velocities=[100])) == 2
    assert {r.instrument for r in load_nsynth(nsynth, instruments=["string_acoustic_003"]).records} == {
        "string_acoustic_003"
    }
    sub = load_nsynth(nsynth, max_notes=2, seed=3)
    assert len(sub) == 2 and sub.records == load_nsynth(nsynth, max_notes=2, seed=3).records


def test_nsynth_cache_is_int16_and_close(nsynth):
    ds = load_nsynth(nsynth, cache=True)
    first = ds[0].wav.clone()
    assert len(ds._store) == 1 and next(iter(ds._store.values())).dtype == np.int16
    assert np.allclose(ds[0].wav.numpy(), first.numpy(), atol=1 / 32767)


@pytest.mark.parametrize(
    "text,pitch",
    [("60", 60), ("C4", 60), ("A4", 69), ("A#3", 58), ("Eb2", 39), ("c-1", 0), ("Bb2", 46), ("C9", 120), ("G#8", 116)],
)
def test_parse_pitch(text, pitch):
    assert parse_pitch(text) == pitch


@pytest.mark.parametrize("text", ["H2", "", "C#", "121", "C10", "-1"])
def test_parse_pitch_rejects(text):
    with pytest.raises(ValueError):
        parse_pitch(text)


def test_parse_velocity_and_filenames():
    assert parse_velocity("0") == 1 and parse_velocity("200") == 127 and parse_velocity(None) == 100
    assert parse_note_filename("grand_piano_C4_100.wav") == ("grand_piano", 60, 100)
    assert parse_note_filename("pad_A#3_64.flac") == ("pad", 58, 64)
    assert parse_note_filename("bell_72.wav") == ("bell", 72, 100)
    with pytest.raises(ValueError):
        parse_note_filename("noise.wav")


def test_pack_manifest_note_names_and_resampling(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    sf.write(pack / "a.wav", tone(69, sr=44100, seconds=5.0, channels=2), 44100)  # 44.1 kHz stereo, 5 s
    sf.write(pack / "b.flac", tone(57, seconds=1.0), SR)
    sf.write(pack / "c.wav", tone(64, seconds=1.0), SR)
    (pack / "pack.csv").write_text(
        "file,instrument,pitch,velocity,family\n"
        "a.wav,lead,A4,90,synth_lead\n"
        "b.flac,lead,A3,0\n"
        "c.wav,pad,64,300\n"
        "missing.wav,pad,60,100\n"
    )
    ds = load_pack(pack)
    got = [(r.instrument, r.pitch, r.velocity) for r in ds.records]
    assert got == [("lead", 69, 90), ("lead", 57, 1), ("pad", 64, 127)]
    assert ds.vocab.names == ["lead", "pad"] and ds.vocab.families == ["synth_lead", "unknown"]
    assert [reason for _, reason in ds.skipped] == ["file not found"]
    wav = ds[0].wav.numpy()
    assert wav.shape == (NOTE_SAMPLES,)
    assert abs(estimate_f0(wav[:16000], SR) - 440.0) < 2
    assert 0.25 < np.abs(wav).max() < 0.35  # stereo mixed to mono, not summed
    short = ds[1].wav.numpy()
    assert np.any(short[:15000]) and not np.any(short[16100:])  # padded with silence


def test_pack_filenames_bad_files_reported_and_skipped(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    sf.write(pack / "organ_C4_100.wav", tone(60), SR)
    sf.write(pack / "organ_Eb2_80.wav", tone(39), SR)
    (pack / "broken_C4_100.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)  # corrupt
    sf.write(pack / "empty_C4_100.wav", np.zeros(0, dtype=np.float32), SR)  # no frames
    sf.write(pack / "noise.wav", np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32), SR)  # unpitched
    sf.write(pack / "organ_127_100.wav", tone(60), SR)  # pitch out of range
    sf.write(pack / "quiet_C4_100.wav", tone(60) * 1e-5, SR)  # silent (-90 dBFS)
    sf.write(pack / "dc_C4_100.wav", np.full(SR, 0.99, np.float32), SR)  # clipped flat
    ds = load_pack(pack)
    assert [(r.instrument, r.pitch, r.velocity) for r in ds.records] == [("organ", 60, 100), ("organ", 39, 80)]
    reasons = {p.split("/")[-1]: reason for p, reason in ds.skipped}
    assert set(reasons) == {
        "broken_C4_100.wav",
        "empty_C4_100.wav",
        "noise.wav",
        "organ_127_100.wav",
        "quiet_C4_100.wav",
        "dc_C4_100.wav",
    }
    assert "none could be estimated" in reasons["noise.wav"] and "pack.csv" in reasons["noise.wav"]
    assert reasons["quiet_C4_100.wav"].startswith("silent") and "constant" in reasons["dc_C4_100.wav"]
    assert "outside" in reasons["organ_127_100.wav"]
    assert all(ds[i].wav.shape == (NOTE_SAMPLES,) for i in range(len(ds)))


def harmonic_note(pitch: int, sr: int = SR, seconds: float = 2.0) -> np.ndarray:
    """A decaying note with 6 harmonics (a weak fundamental, as in many real instruments)."""
    t = np.arange(int(sr * seconds)) / sr
    f = midi_to_hz(pitch)
    x = sum(a * np.sin(2 * np.pi * f * k * t) for k, a in enumerate((0.3, 1.0, 0.6, 0.4, 0.2, 0.1), start=1))
    return (0.2 * x * np.exp(-t) * np.minimum(1, t / 0.01)).astype(np.float32)


@pytest.mark.parametrize("pitch", [36, 45, 60, 71, 84])
def test_unlabeled_samples_get_their_pitch_estimated(tmp_path, pitch):
    """Files with no pitch in the name belong to their folder's instrument and have their pitch estimated,
    at any sample rate, stereo, any length; the manifest may leave the pitch out too."""
    pack = tmp_path / "my_synth"
    (pack / "sub").mkdir(parents=True)
    sf.write(pack / "take 1.wav", harmonic_note(pitch, sr=44100, seconds=5.0), 44100)
    sf.write(pack / "sub" / "hit.flac", np.stack([harmonic_note(pitch, seconds=0.7)] * 2, axis=1), SR)
    ds = load_pack(pack)
    got = sorted((r.instrument, r.pitch, r.velocity, r.pitch_estimated) for r in ds.records)
    assert got == [("my_synth", pitch, 100, True), ("sub", pitch, 100, True)], ds.skipped
    named = load_pack(pack, instrument="mine")
    assert {r.instrument for r in named.records} == {"mine"} and named.vocab.names == ["mine"]
    manifest = tmp_path / "m"
    manifest.mkdir()
    sf.write(manifest / "x.wav", harmonic_note(pitch), SR)
    (manifest / "pack.csv").write_text("file,instrument,pitch,velocity\nx.wav,lead,,90\n")
    rec = load_pack(manifest).records[0]
    assert (rec.instrument, rec.pitch, rec.velocity, rec.pitch_estimated) == ("lead", pitch, 90, True)


def test_note_names():
    assert [note_name(p) for p in (21, 60, 61, 69, 108)] == ["A0", "C4", "C#4", "A4", "C8"]
    assert all(parse_pitch(note_name(p)) == p for p in range(0, 121))


def test_pack_existing_vocab_keeps_rows(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    sf.write(pack / "new_C4_100.wav", tone(60), SR)
    sf.write(pack / "old_D4_100.wav", tone(62), SR)
    vocab = InstrumentVocab(["old", "other"], ["keyboard", "string"])
    ds = load_pack(pack, vocab=vocab)
    assert ds.vocab.names == ["old", "other", "new"]
    assert {ds[i].instrument for i in range(2)} == {0, 2}


def test_split_keeps_pairs_together(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    rows = ["file,instrument,pitch,velocity"]
    sf.write(pack / "x.wav", tone(60, seconds=0.1), SR)
    for inst in ("a", "b", "c"):
        for pitch in range(40, 80):
            for vel in (50, 100):
                rows.append(f"x.wav,{inst},{pitch},{vel}")
    (pack / "pack.csv").write_text("\n".join(rows) + "\n")
    ds = load_pack(pack)
    parts = ds.split(seed=1)
    assert sum(len(p) for p in parts.values()) == len(ds) == 240
    seen = {name: set(p.pairs) for name, p in parts.items()}
    assert not seen["train"] & seen["valid"] and not seen["train"] & seen["test"] and not seen["valid"] & seen["test"]
    assert len(parts["valid"]) and len(parts["test"])
    assert {p[0] for p in seen["test"]} <= {p[0] for p in seen["train"]}  # test: known instruments
    assert parts["train"].vocab is ds.vocab


def test_dropped_files_and_folders_become_one_instrument(tmp_path):
    """The app's "New instrument" reads whatever was dropped: files and folders, named or not; the rest is reported."""
    (tmp_path / "folder").mkdir()
    sf.write(tmp_path / "folder" / "a.wav", harmonic_note(55), SR)
    sf.write(tmp_path / "cello_C3_80.wav", harmonic_note(48), SR)  # the name says pitch and velocity
    sf.write(tmp_path / "take.flac", harmonic_note(62, sr=48000), 48000)
    (tmp_path / "notes.txt").write_text("not audio")
    sf.write(tmp_path / "silence.wav", np.zeros(SR, np.float32), SR)
    files = [tmp_path / "folder", tmp_path / "cello_C3_80.wav", tmp_path / "take.flac", tmp_path / "notes.txt",
             tmp_path / "silence.wav", tmp_path / "gone.wav"]  # fmt: skip
    ds = load_samples(files, "My cello")
    got = sorted((r.instrument, r.pitch, r.velocity, r.pitch_estimated) for r in ds.records)
    assert got == [("My cello", 48, 80, False), ("My cello", 55, 100, True), ("My cello", 62, 100, True)]
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert set(reasons) == {"notes.txt", "silence.wav", "gone.wav"}
    assert reasons["notes.txt"].startswith("unreadable") and reasons["silence.wav"].startswith("silent")
    assert reasons["gone.wav"] == "file not found" and ds.vocab.names == ["My cello"]


def test_truncated_and_corrupt_samples_are_reported_and_skipped(tmp_path):
    """A WAV cut to 300 bytes (its header and a few samples) is not a note of its named pitch; a file that does not
    decode is reported too; the good files are all kept (issue #24)."""
    sf.write(tmp_path / "full.wav", harmonic_note(60), SR, subtype="PCM_16")
    (tmp_path / "cut_C4_100.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:300])
    assert sf.info(tmp_path / "cut_C4_100.wav").frames == 128  # soundfile reads it: 8 ms of audio
    (tmp_path / "bad_D4_100.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)))
    sf.write(tmp_path / "keep_E4_100.wav", harmonic_note(64), SR)
    sf.write(tmp_path / "short_F4_100.wav", harmonic_note(65, seconds=0.1), SR)  # 100 ms: still a note
    ds = load_samples(sorted(tmp_path.glob("*.wav")), "mine")
    assert sorted((Path(r.path).name, r.pitch) for r in ds.records) == [
        ("full.wav", 60),
        ("keep_E4_100.wav", 64),
        ("short_F4_100.wav", 65),
    ]
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert set(reasons) == {"cut_C4_100.wav", "bad_D4_100.wav"}
    assert (
        reasons["cut_C4_100.wav"].startswith("too short to hold a note: 8 ms") and "96 ms" in reasons["cut_C4_100.wav"]
    )
    assert reasons["bad_D4_100.wav"].startswith("unreadable")
    pack = load_pack(tmp_path)  # a sample pack for training takes the same checks
    assert {Path(p).name for p, _ in pack.skipped} == {"cut_C4_100.wav", "bad_D4_100.wav"} and len(pack) == 3


def test_minimum_note_length_follows_the_model_hop():
    from synth_core.sing.model import SINGConfig
    from training.datasets import MIN_NOTE_HOPS, MIN_NOTE_SECONDS

    c = SINGConfig()
    assert MIN_NOTE_SECONDS == MIN_NOTE_HOPS * c.hop / c.sample_rate
    assert (MIN_NOTE_HOPS * c.hop - c.frame) // c.hop + 1 >= 3  # the loss sees at least 3 frames of it
