"""export (fp16 round trip, size guard), the pitch-shift baseline and evaluate on a tiny synthetic pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.dsp import estimate_f0, hz_to_midi, midi_to_hz
from synth_core.sing import Encoder, load_checkpoint, save_checkpoint
from training import export as export_mod
from training.baseline import PitchShiftBaseline, pitch_shift
from training.evaluate import evaluate, markdown_table
from training.split import split_of

SR = 16000


def sine_note(pitch: int, n: int = 64000) -> np.ndarray:
    t = np.arange(n) / SR
    env = np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 20))
    return (0.3 * env * np.sin(2 * np.pi * midi_to_hz(pitch) * t)).astype(np.float32)


def test_export_fp16_round_trip(tmp_path, tiny_model, tiny_instruments):
    src = tmp_path / "train.pt"
    training = {"seed": 3, "steps": 10, "optimizer": {"state": list(range(1000))}, "latents": torch.zeros(3)}
    save_checkpoint(src, tiny_model, tiny_instruments, encoder=Encoder(tiny_model.config), training=training)
    dst = tmp_path / "out" / "sing.pt"
    dst.parent.mkdir()
    size = export_mod.export(src, dst)
    assert size == dst.stat().st_size < src.stat().st_size / 2
    ckpt = load_checkpoint(dst)
    assert ckpt.encoder is None and ckpt.training == {"seed": 3, "steps": 10}
    assert ckpt.metadata["dtype"] == "float16"
    assert json.loads(dst.with_suffix(".json").read_text())["instruments"][1]["name"] == "flute"
    args = (torch.tensor([0, 2]), torch.tensor([60, 48]), torch.tensor([100.0, 50.0]))
    with torch.no_grad():
        ref = tiny_model(*args, n_samples=4096)
        out = ckpt.model(*args, n_samples=4096)
    assert torch.allclose(out, ref, atol=1e-2 * float(ref.abs().max()) + 1e-6)


def test_export_refuses_large_files(tmp_path, tiny_model, tiny_instruments, monkeypatch):
    src = tmp_path / "train.pt"
    save_checkpoint(src, tiny_model, tiny_instruments)
    monkeypatch.setattr(export_mod, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="--force"):
        export_mod.export(src, tmp_path / "big.pt")
    assert not (tmp_path / "big.pt").exists()
    assert export_mod.export(src, tmp_path / "big.pt", force=True) > 1000


def test_pitch_shift_interval():
    shifted = pitch_shift(sine_note(57), 7)
    assert shifted.shape == (64000,)
    assert abs(hz_to_midi(estimate_f0(shifted[4000:20000], SR)) - 64) < 0.1
    down = pitch_shift(sine_note(64), -5)
    assert abs(hz_to_midi(estimate_f0(down[4000:20000], SR)) - 59) < 0.1


def test_baseline_uses_nearest_training_pitch():
    loaded = []

    def load(instrument, pitch, velocity):
        loaded.append((instrument, pitch, velocity))
        return sine_note(pitch)

    base = PitchShiftBaseline([("a", 48, 100), ("a", 55, 100), ("a", 60, 50), ("b", 62, 100)], load)
    assert base.source_pitch("a", 53, 100) == 55
    out = base("a", 53, 100)
    assert loaded[-1] == ("a", 55, 100)
    assert abs(hz_to_midi(estimate_f0(out[4000:20000], SR)) - 53) < 0.1
    with pytest.raises(KeyError):
        base("c", 60, 100)


def write_sine_pack(root, instruments, pitches, velocity=100):
    (root / "audio").mkdir(parents=True)
    examples = {}
    for inst in instruments:
        for p in pitches:
            key = f"{inst}-{p:03d}-{velocity:03d}"
            sf.write(root / "audio" / f"{key}.wav", sine_note(p), SR, subtype="PCM_16")
            examples[key] = {
                "note": len(examples), "note_str": key, "instrument": instruments.index(inst),
                "instrument_str": inst, "pitch": p, "velocity": velocity, "sample_rate": SR,
                "instrument_family": 4, "instrument_family_str": "keyboard",
                "instrument_source": 2, "instrument_source_str": "synthetic",
                "qualities": [0] * 10, "qualities_str": [],
            }  # fmt: skip
    (root / "examples.json").write_text(json.dumps(examples))


def test_evaluate_on_tiny_pack(tmp_path, tiny_model, tiny_instruments):
    names = [i.name for i in tiny_instruments]
    pitches = list(range(55, 67))
    assert any(split_of(n, p, 0) == "test" for n in names for p in pitches)
    write_sine_pack(tmp_path / "pack", names, pitches)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, tiny_model, tiny_instruments, training={"seed": 0})
    metrics = evaluate(ckpt, tmp_path / "pack", max_notes=3, out=tmp_path / "report", n_plot=2)
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["splits"]["train"]["notes"] == 3 and saved["splits"]["test"]["notes"] >= 1
    for split in ("train", "test"):
        m = metrics["splits"][split]
        # an untrained model is far from the sines; shifted sines are close
        assert m["baseline_spectral_l1"] < m["sing_spectral_l1"]
        assert m["target_pitch_accuracy"] == 1.0 and m["baseline_pitch_accuracy"] == 1.0
        hits = m["sing_pitch_accuracy"] * m["notes"]
        assert abs(hits - round(hits)) < 1e-9 and m["sing_pitch_accuracy"] < m["target_pitch_accuracy"]
    png = (tmp_path / "report" / "spectrograms.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    table = markdown_table(metrics)
    assert "| train | 3 |" in table and "| test |" in table and "Blends of two instruments" in table
    assert metrics["loss_gain"] == 1.0 and metrics["blends"]["notes"] == 10
    assert all(b["a"] != b["b"] and 0.2 <= b["weight"] <= 0.8 for b in metrics["blends"]["blends"])


def test_evaluate_scales_a_raw_checkpoint_by_its_gain_and_scores_at_it(tmp_path, tiny_model, tiny_instruments):
    """A raw checkpoint trained at gain 8 outputs 8x the pack's level: evaluate brings it back, measures its level
    error, and computes the spectral L1 at gain 8 (where silence scores clearly worse than a sine)."""
    names = [i.name for i in tiny_instruments]
    write_sine_pack(tmp_path / "pack", names, list(range(55, 67)))
    plain, raw = tmp_path / "plain.pt", tmp_path / "raw.pt"
    save_checkpoint(plain, tiny_model, tiny_instruments, training={"seed": 0})
    loud = load_checkpoint(plain).model
    loud.decoder.scale_output(8)
    save_checkpoint(raw, loud, tiny_instruments, training={"seed": 0, "gain": 8.0})
    a = evaluate(plain, tmp_path / "pack", max_notes=3, n_blends=0)["splits"]["train"]
    b = evaluate(raw, tmp_path / "pack", max_notes=3, n_blends=0)["splits"]["train"]
    assert b["level_error_db_mean"] == pytest.approx(a["level_error_db_mean"], abs=0.01)
    assert b["silence_spectral_l1"] > 2 * a["silence_spectral_l1"]  # the same notes, scored at gain 8


def test_export_calibrates_the_output_level(tmp_path, tiny_model, tiny_instruments):
    from training.evaluate import median_level_error

    names = [i.name for i in tiny_instruments]
    write_sine_pack(tmp_path / "pack", names, list(range(55, 67)))
    src, dst = tmp_path / "run.pt", tmp_path / "ship.pt"
    save_checkpoint(src, tiny_model, tiny_instruments, training={"seed": 0})
    before = median_level_error(tiny_model, tiny_instruments, tmp_path / "pack", 0, n_notes=8)
    export_mod.export(src, dst, dtype="float32", calibrate=tmp_path / "pack", calibrate_notes=8)
    shipped = load_checkpoint(dst)
    assert shipped.metadata["level_calibration_db"] == pytest.approx(-before, abs=0.01)
    assert abs(median_level_error(shipped.model, tiny_instruments, tmp_path / "pack", 0, n_notes=8)) < 0.01


def test_export_folds_training_gain(tmp_path, tiny_model, tiny_instruments):
    src, dst = tmp_path / "run.pt", tmp_path / "ship.pt"
    save_checkpoint(src, tiny_model, tiny_instruments, training={"gain": 4.0, "step": 10})
    export_mod.export(src, dst, dtype="float32")
    shipped = load_checkpoint(dst)
    args = (torch.tensor([1]), torch.tensor([60]), torch.tensor([100]))
    with torch.no_grad():
        assert torch.allclose(shipped.model(*args), tiny_model(*args) / 4.0, atol=1e-6)
    assert shipped.training["gain"] == 1.0
    assert shipped.metadata["folded_training_gain"] == 4.0


def test_evaluate_perceptual_report_ranks_the_baseline_above_an_untrained_model(tmp_path, tiny_model, tiny_instruments):
    """``--visqol``: the shifted sines sound like their targets, an untrained model does not; the report's tables
    cover every note by family and by band."""
    pytest.importorskip("visqol")
    from training.evaluate import perceptual_table

    names = [i.name for i in tiny_instruments]
    write_sine_pack(tmp_path / "pack", names, list(range(55, 67)))
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, tiny_model, tiny_instruments, training={"seed": 0})
    report = evaluate(ckpt, tmp_path / "pack", max_notes=1, n_blends=0, visqol_notes=2)["perceptual"]
    v = report["visqol"]
    assert report["notes"] == 2 and v["baseline"] > v["sing"] + 0.5, v
    assert v["lowpass_3k5"] > v["noise_20db"]  # a sine has nothing above 3.5 kHz to lose; noise it hears
    assert (
        sum(r["notes"] for r in report["by_family"].values())
        == 2
        == sum(r["notes"] for r in report["by_band"].values())
    )
    assert "| MIDI " in perceptual_table(report) and "ViSQOL v3" in perceptual_table(report)
    assert set(report["upper_bands_db_median"]) == {"4-6 kHz", "6-8 kHz"} and "6-8 kHz" in perceptual_table(report)
