"""Reliability (issue #4): random MIDI streams into the engine; broken files and inputs into sing-render."""

from __future__ import annotations

import io
import json

import mido
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sing_app.render_cli import main
from synth_core.engine import Engine, EngineConfig, SineSource

SR = 22050
BLOCK = 256
RELEASE_S = 0.3
CHANNEL = st.integers(0, 15)
BYTE = st.integers(0, 127)

MESSAGES = st.one_of(
    st.builds(lambda n, v, c: mido.Message("note_on", note=n, velocity=v, channel=c), BYTE, BYTE, CHANNEL),
    st.builds(lambda n, v, c: mido.Message("note_off", note=n, velocity=v, channel=c), BYTE, BYTE, CHANNEL),
    st.builds(
        lambda k, v, c: mido.Message("control_change", control=k, value=v, channel=c),
        st.one_of(st.sampled_from([64, 120, 123, 121, 7, 1]), BYTE),
        BYTE,
        CHANNEL,
    ),
    st.builds(lambda p, c: mido.Message("pitchwheel", pitch=p, channel=c), st.integers(-8192, 8191), CHANNEL),
    st.builds(lambda p, c: mido.Message("program_change", program=p, channel=c), BYTE, CHANNEL),
    st.builds(lambda v, c: mido.Message("aftertouch", value=v, channel=c), BYTE, CHANNEL),
    st.builds(lambda n, v, c: mido.Message("polytouch", note=n, value=v, channel=c), BYTE, BYTE, CHANNEL),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(BYTE, max_size=8)),
    st.sampled_from([mido.Message(t) for t in ("clock", "start", "stop", "continue", "reset", "active_sensing")]),
    st.builds(lambda p: mido.Message("songpos", pos=p), st.integers(0, 16383)),
)

# (frame offset, message) lists; offsets are sorted before rendering, duplicates allowed
STREAMS = st.lists(st.tuples(st.integers(0, SR // 2), MESSAGES), max_size=60)


def panic_events(frame: int) -> list[tuple[int, mido.Message]]:
    """CC123 (all notes off) and CC64=0 (pedal up) on every channel."""
    events = []
    for ch in range(16):
        events.append((frame, mido.Message("control_change", control=123, value=0, channel=ch)))
        events.append((frame, mido.Message("control_change", control=64, value=0, channel=ch)))
    return events


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(stream=STREAMS, max_voices=st.integers(1, 6), program_map=st.booleans())
def test_random_midi_streams_never_break_the_engine_and_never_leave_stuck_notes(stream, max_voices, program_map):
    eng = Engine(SineSource(), EngineConfig(sample_rate=SR, max_voices=max_voices, release_s=RELEASE_S))
    if program_map:
        eng.set_program_map({p: p % 2 for p in range(128)})
    events = sorted(stream, key=lambda e: e[0])
    end = SR // 2 + 1
    total = end + int((RELEASE_S + 0.1) * SR)  # release time + margin after the panic
    out = eng.render_offline([*events, *panic_events(end)], total)
    assert out.shape == (total,) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert float(np.max(np.abs(out))) <= 1.0
    assert float(np.max(np.abs(out[-BLOCK:]))) == 0.0, "a note is still sounding after all-notes-off"


def test_stuck_note_check_is_not_vacuous():
    """Held notes with the pedal down really sound at the end without the panic messages (guards the test above)."""
    eng = Engine(SineSource(), EngineConfig(sample_rate=SR, release_s=RELEASE_S))
    events = [
        (0, mido.Message("control_change", control=64, value=127, channel=3)),
        (10, mido.Message("note_on", note=60, velocity=100, channel=3)),
        (20, mido.Message("note_off", note=60, channel=3)),
    ]
    total = SR
    out = eng.render_offline(events, total)
    assert float(np.max(np.abs(out[-BLOCK:]))) > 0.01
    out = eng.render_offline([*events, *panic_events(SR // 2)], total)
    assert float(np.max(np.abs(out[-BLOCK:]))) == 0.0


# ---------------------------------------------------------------------------------------- sing-render


def real_midi_bytes() -> bytes:
    """A small valid type-1 file: tempo, program change, notes, pitch bend, pedal, two tracks."""
    mid = mido.MidiFile(type=1, ticks_per_beat=96)
    a = mido.MidiTrack()
    a.append(mido.MetaMessage("set_tempo", tempo=400000, time=0))
    a.append(mido.Message("program_change", program=40, time=0))
    a.append(mido.Message("note_on", note=60, velocity=100, time=0))
    a.append(mido.Message("control_change", control=64, value=127, time=10))
    a.append(mido.Message("pitchwheel", pitch=4000, time=10))
    a.append(mido.Message("note_off", note=60, time=20))
    a.append(mido.Message("control_change", control=64, value=0, time=10))
    b = mido.MidiTrack()
    b.append(mido.Message("note_on", channel=2, note=67, velocity=80, time=5))
    b.append(mido.Message("note_on", channel=2, note=67, velocity=0, time=40))
    mid.tracks.extend([a, b])
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


REAL = real_midi_bytes()


def render(tmp_path, midi_path, *extra) -> int:
    return main([str(midi_path), "-o", str(tmp_path / "out.wav"), "--sine", "-q", "--tail", "0.1", *extra])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_exit_0_or_2(tmp_path, data):
    path = tmp_path / "random.mid"
    path.write_bytes(data)
    assert render(tmp_path, path) in (0, 2)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, len(REAL)),
    flips=st.lists(st.tuples(st.integers(0, len(REAL) - 1), st.integers(0, 255)), max_size=4),
)
def test_truncated_or_corrupted_real_files_exit_0_or_2(tmp_path, cut, flips):
    data = bytearray(REAL)
    for pos, value in flips:
        data[pos] = value
    path = tmp_path / "broken.mid"
    path.write_bytes(bytes(data[:cut]) if cut < len(REAL) else bytes(data))
    assert render(tmp_path, path) in (0, 2)


def test_the_uncorrupted_file_renders(tmp_path):
    path = tmp_path / "real.mid"
    path.write_bytes(REAL)
    assert render(tmp_path, path) == 0
    assert (tmp_path / "out.wav").stat().st_size > 1000


def test_file_lasting_days_is_refused_not_allocated(tmp_path, capsys):
    """One corrupt-looking but valid delta time of 2**28 ticks (~16 days): exit 2, no 250 GB allocation."""
    mid = mido.MidiFile(ticks_per_beat=96)
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=100, time=0x0FFFFFFF)]))
    path = tmp_path / "days.mid"
    mid.save(path)
    assert render(tmp_path, path) == 2
    err = capsys.readouterr().err
    assert "at most" in err and "Traceback" not in err
    assert render(tmp_path, tmp_path / "days.mid", "--tail", "1e12") == 2


def odd_file(kind: str) -> mido.MidiFile:
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    t = mido.MidiTrack()
    mid.tracks.append(t)
    if kind == "empty_track":
        pass
    elif kind == "no_tracks":
        mid.tracks.clear()
    elif kind == "only_meta":
        t.append(mido.MetaMessage("track_name", name="meta only", time=0))
        t.append(mido.MetaMessage("set_tempo", tempo=600000, time=10))
        t.append(mido.MetaMessage("time_signature", numerator=7, denominator=8, time=0))
        t.append(mido.MetaMessage("end_of_track", time=100))
    elif kind == "no_notes":
        t.append(mido.Message("program_change", program=5, time=0))
        t.append(mido.Message("control_change", control=64, value=127, time=10))
        t.append(mido.Message("pitchwheel", pitch=-8192, time=10))
    elif kind == "note_on_without_off":
        for i, note in enumerate((0, 60, 127)):
            t.append(mido.Message("note_on", note=note, velocity=127, channel=i, time=20))
    elif kind == "huge_tempo_changes":
        t.append(mido.MetaMessage("set_tempo", tempo=1, time=0))  # ~1 µs per beat
        t.append(mido.Message("note_on", note=60, velocity=100, time=480))
        t.append(mido.MetaMessage("set_tempo", tempo=0xFFFFFF, time=0))  # ~16.7 s per beat
        t.append(mido.Message("note_off", note=60, time=20))
        t.append(mido.MetaMessage("set_tempo", tempo=1, time=0))
        t.append(mido.Message("note_on", note=64, velocity=100, time=10_000))
    elif kind == "drums_only":
        t.append(mido.Message("note_on", note=36, velocity=100, channel=9, time=0))
        t.append(mido.Message("note_off", note=36, channel=9, time=240))
    return mid


@pytest.mark.parametrize(
    "kind",
    ["empty_track", "no_tracks", "only_meta", "no_notes", "note_on_without_off", "huge_tempo_changes", "drums_only"],
)
def test_valid_but_odd_files_render(tmp_path, kind):
    path = tmp_path / f"{kind}.mid"
    odd_file(kind).save(path)
    assert render(tmp_path, path) == 0
    assert (tmp_path / "out.wav").is_file()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[1, 2, 3]",
        '"0=sine0"',
        "42",
        "null",
        '{"0": "no such instrument"}',
        '{"0": null}',
        '{"0": ["sine0"]}',
        '{"0": {"name": "sine0"}}',
        '{"0": 99}',
        '{"999": "sine0"}',
        '{"-1": "sine0"}',
        '{"piano": "sine0"}',
        '{"0": "sine0", "drums": true}',
    ],
)
def test_bad_program_map_json_exits_2_with_a_message(tmp_path, capsys, content):
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    pmap = tmp_path / "map.json"
    pmap.write_text(content)
    assert render(tmp_path, mid, "--program-map", str(pmap)) == 2
    err = capsys.readouterr().err
    assert "sing-render: error:" in err and "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


def test_program_map_json_that_is_not_text_exits_2(tmp_path, capsys):
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    pmap = tmp_path / "map.json"
    pmap.write_bytes(b"\xff\xfe\x00garbage\x81")
    assert render(tmp_path, mid, "--program-map", str(pmap)) == 2
    err = capsys.readouterr().err
    assert "map.json" in err and "Traceback" not in err


def test_good_program_map_json_renders(tmp_path):
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    pmap = tmp_path / "map.json"
    pmap.write_text(json.dumps({"40": "sine1", "0": "1"}))
    assert render(tmp_path, mid, "--program-map", str(pmap)) == 0


def corrupt_checkpoints(tmp_path) -> dict[str, object]:
    """name -> path of a broken checkpoint."""
    paths = {}
    for name, data in {
        "empty": b"",
        "text": b"this is not a checkpoint",
        "json": json.dumps({"format": "x"}).encode(),
        "random": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    }.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(data)
    for name, payload in {
        "list": [1, 2, 3],
        "no_format": {"model": {}},
        "no_config": {"format": "neurosynth-sing", "version": 1},
    }.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(payload, paths[name])
    return paths


def test_corrupt_checkpoints_exit_2_with_a_clear_message(tmp_path, capsys):
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    for name, path in corrupt_checkpoints(tmp_path).items():
        args = [str(mid), "-o", str(tmp_path / "out.wav"), "-q", "--device", "cpu", "--checkpoint", str(path)]
        assert main(args) == 2, name
        err = capsys.readouterr().err
        assert "sing-render: error:" in err and str(path) in err and "Traceback" not in err, (name, err)
        assert not (tmp_path / "out.wav").exists()


def test_truncated_real_checkpoint_exits_2(tmp_path, capsys, tiny_model, tiny_instruments):
    from synth_core.sing import save_checkpoint

    good = tmp_path / "good.pt"
    save_checkpoint(good, tiny_model, tiny_instruments)
    data = good.read_bytes()
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    for frac in (0.1, 0.5, 0.9):
        bad = tmp_path / f"cut{frac}.pt"
        bad.write_bytes(data[: int(len(data) * frac)])
        args = [str(mid), "-o", str(tmp_path / "out.wav"), "-q", "--device", "cpu", "--checkpoint", str(bad)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and "Traceback" not in err


def test_checkpoints_with_the_right_tag_but_wrong_fields_exit_2(tmp_path, capsys, tiny_model, tiny_instruments):
    from synth_core.sing import save_checkpoint

    good = tmp_path / "good.pt"
    save_checkpoint(good, tiny_model, tiny_instruments)
    payload = torch.load(good, weights_only=True)
    n = len(tiny_instruments)
    cases = {
        "inst_ints": {**payload, "instruments": [1] * n},
        "inst_str": {**payload, "instruments": "abc"},
        "inst_keys": {**payload, "instruments": [{"nom": "x"}] * n},
        "inst_count": {**payload, "instruments": payload["instruments"][:-1]},
        "model_list": {**payload, "model": [1, 2]},
        "model_shapes": {**payload, "model": {k: torch.zeros(1) for k in payload["model"]}},
        "config_list": {**payload, "config": [1]},
        "config_negative": {**payload, "config": {**payload["config"], "lstm_hidden": -5}},
        "version_str": {**payload, "version": "x"},
        "version_future": {**payload, "version": 99},
        "encoder": {**payload, "encoder": {"a": torch.zeros(1)}},
    }
    mid = tmp_path / "real.mid"
    mid.write_bytes(REAL)
    for name, bad in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(bad, path)
        args = [str(mid), "-o", str(tmp_path / "out.wav"), "-q", "--device", "cpu", "--checkpoint", str(path)]
        assert main(args) == 2, name
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err, (name, err)
    args = [str(mid), "-o", str(tmp_path / "out.wav"), "-q", "--device", "cpu", "--checkpoint", str(good)]
    assert main(args) == 0
