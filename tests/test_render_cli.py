"""sing-render on small MIDI files made with mido and a tiny-model checkpoint."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest
import soundfile as sf

from sing_app.render_cli import main
from synth_core.render import default_program_map, parse_program_map
from synth_core.sing import InstrumentInfo, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    return path


def two_notes_file(path, tempo=500000):
    """Note 60 at 0-0.5 s, note 64 at 1.0-1.5 s (120 bpm), program 40 (violin -> string family)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=40, time=0))
    track.append(mido.Message("note_on", note=60, velocity=100, time=0))
    track.append(mido.Message("note_off", note=60, time=480))
    track.append(mido.Message("note_on", note=64, velocity=90, time=480))
    track.append(mido.Message("note_on", note=64, velocity=0, time=480))
    drums = mido.MidiTrack()  # channel 10: skipped by default
    drums.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=1440))
    mid.tracks.append(drums)
    mid.type = 1
    mid.save(path)
    return path


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_render_midi_file(tmp_path, checkpoint):
    out = tmp_path / "song.wav"
    rc = main([str(two_notes_file(tmp_path / "s.mid")), "-o", str(out), "--checkpoint", str(checkpoint), "-q",
               "--sample-rate", "44100", "--tail", "1.0"])  # fmt: skip
    assert rc == 0
    y, sr = sf.read(out)
    assert sr == 44100 and len(y) == round(2.5 * sr)
    sec = lambda a, b: y[int(a * sr) : int(b * sr)]  # noqa: E731
    assert rms(sec(0.1, 0.45)) > 0 and rms(sec(1.1, 1.45)) > 0  # sound where notes are
    assert np.all(sec(0.85, 0.98) == 0)  # silence between (after the 0.3 s release)
    assert np.all(sec(1.9, 2.5) == 0)  # drums (channel 10) skipped


def test_render_with_tempo_change(tmp_path, checkpoint):
    path = two_notes_file(tmp_path / "slow.mid", tempo=1000000)  # 60 bpm: everything twice as long
    out = tmp_path / "slow.wav"
    assert main([str(path), "-o", str(out), "--checkpoint", str(checkpoint), "-q", "--tail", "0"]) == 0
    y, sr = sf.read(out)
    assert len(y) == 3 * sr


def test_single_note_and_float_output(tmp_path, checkpoint):
    out = tmp_path / "note.wav"
    args = ["--note", "60", "--instrument", "flute", "--velocity", "100", "--duration", "0.5", "--tail", "0.5"]
    assert main([*args, "-o", str(out), "--checkpoint", str(checkpoint), "--float", "-q"]) == 0
    info = sf.info(out)
    assert info.subtype == "FLOAT" and info.frames == 48000
    y, sr = sf.read(out)
    assert rms(y[: sr // 2]) > 0 and np.all(y[int(0.85 * sr) :] == 0)


def test_list_instruments(capsys, checkpoint):
    assert main(["--list-instruments", "--checkpoint", str(checkpoint)]) == 0
    assert "flute" in capsys.readouterr().out


def test_errors_exit_2_without_traceback(tmp_path, checkpoint, capsys):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi at all")
    assert main([str(bad), "-o", str(tmp_path / "x.wav"), "--checkpoint", str(checkpoint), "-q"]) == 2
    assert "not a valid Standard MIDI File" in capsys.readouterr().err
    assert main(["--note", "60", "--instrument", "tuba", "-o", str(tmp_path / "x.wav"),
                 "--checkpoint", str(checkpoint), "-q"]) == 2  # fmt: skip
    assert "unknown instrument 'tuba'" in capsys.readouterr().err
    assert main(["--note", "60", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    mid = two_notes_file(tmp_path / "s.mid")
    args = [str(mid), "-o", str(tmp_path / "x.wav"), "--checkpoint", str(checkpoint), "--program-map", "0=tuba"]
    assert main(args) == 2
    assert not (tmp_path / "x.wav").exists()


def test_program_maps(tmp_path):
    instruments = [InstrumentInfo("p", "keyboard"), InstrumentInfo("f", "flute"), InstrumentInfo("v", "string")]
    default = default_program_map(instruments)
    assert default[0] == 0 and default[40] == 2 and default[73] == 1 and default[56] == 0  # brass: none -> 0
    assert parse_program_map("0=f, 40=v,drums=p", instruments) == {"0": 1, "40": 2, "drums": 0}
    js = tmp_path / "map.json"
    js.write_text(json.dumps({"5": "v"}))
    assert parse_program_map(str(js), instruments) == {"5": 2}
    with pytest.raises(ValueError):
        parse_program_map("200=p", instruments)


def test_program_map_drums_are_rendered_when_mapped(tmp_path, checkpoint):
    out = tmp_path / "d.wav"
    mid = two_notes_file(tmp_path / "s.mid")
    assert main([str(mid), "-o", str(out), "--checkpoint", str(checkpoint), "-q", "--program-map", "drums=cello"]) == 0
    y, sr = sf.read(out)
    assert rms(y[int(1.9 * sr) : int(2.3 * sr)]) > 0


def test_default_program_map_prefers_named_gm_programs():
    from synth_core.render import default_program_map
    from synth_core.sing.checkpoint import InstrumentInfo

    infos = [
        InstrumentInfo("gm000_acoustic_grand_piano", "keyboard"),
        InstrumentInfo("gm073_flute", "flute"),
        InstrumentInfo("gm075_pan_flute", "flute"),
        InstrumentInfo("my_flute", "flute"),
    ]
    m = default_program_map(infos)
    assert (m[0], m[73], m[75], m[76], m[74]) == (0, 1, 2, 2, 1)
    assert m[40] == 0  # no string instrument: falls back to instrument 0


@pytest.mark.parametrize("pitch", [45, 64, 81])
def test_rendered_midi_file_has_energy_at_the_played_pitch(tmp_path, pitch):
    from synth_core.dsp import band_energy_ratio, estimate_f0, hz_to_midi, midi_to_hz

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=pitch, velocity=100, time=240))  # 0.25 s at 120 bpm
    track.append(mido.Message("note_off", note=pitch, time=960))  # held 1 s
    path, out = tmp_path / "one.mid", tmp_path / "one.wav"
    mid.save(path)
    assert main([str(path), "-o", str(out), "--sine", "--sample-rate", "44100", "--tail", "0.5", "-q"]) == 0
    wav, sr = sf.read(out)
    assert sr == 44100 and len(wav) == pytest.approx(1.75 * sr, abs=sr * 0.05)
    held = wav[int(0.4 * sr) : int(1.2 * sr)]
    assert abs(hz_to_midi(estimate_f0(held, sr)) - pitch) < 0.5
    assert band_energy_ratio(held, sr, midi_to_hz(pitch)) > 0.9
    assert np.abs(wav[: int(0.2 * sr)]).max() < 1e-4  # silence before the note-on


@pytest.mark.parametrize("batch", [True, False])
def test_render_falls_back_to_cpu_when_the_gpu_fails(tiny_model, tiny_instruments, gpu_fails_once, batch):
    from synth_core.engine import SingSource
    from synth_core.render import render_midi

    src = SingSource(tiny_model, tiny_instruments)
    failures = gpu_fails_once(src)
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=60, velocity=100, time=0))
    track.append(mido.Message("note_off", note=60, time=480))
    audio = render_midi(src, mid, 16000, tail_s=0.2, batch=batch)
    assert failures and src.device.type == "cpu"
    assert len(audio) == int(0.7 * 16000) and np.abs(audio).max() > 0
