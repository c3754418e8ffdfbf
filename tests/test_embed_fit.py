"""A new instrument from a few samples: the embedding fit (``sing-train --stage embed``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from synth_core.sing import load_checkpoint
from synth_core.sing.loss import spectral_l1
from tests.test_training import run, write_pack
from training.embed_fit import FitCancelled, FitConfig, fit_embedding, fit_pack
from training.evaluate import pitch_hit, training_gain
from training.sing_train import main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "assets" / "sing_default.pt"
SR = 16000


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny trained checkpoint (two instruments 'sine' and 'square')."""
    root = tmp_path_factory.mktemp("embed")
    pack = write_pack(root / "pack")
    run(pack, root / "base", "--stage", "e2e", "--max-steps", "2", "--batch-size", "4", "--crop-steps", "8")
    return root / "base" / "checkpoint.pt"


def states_equal(a: torch.nn.Module, b: torch.nn.Module, skip: str) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa if k != skip)


def test_embed_stage_adds_one_instrument_and_changes_nothing_else(tiny_base, tmp_path):
    samples = write_pack(tmp_path / "mine", instruments=(("x", 5),), pitches=(50, 62, 69))
    for f in samples.iterdir():  # no pitches in the names: estimated
        f.rename(f.with_name(f"take {f.stem.split('_')[1]}.wav"))
    out = tmp_path / "run"
    args = ["--pack", str(samples), "--init", str(tiny_base), "--stage", "embed", "--out", str(out), "--name", "Mine"]
    assert main([*args, "--embed-steps", "6", "--embed-starts", "2", "--no-progress", "--threads", "1"]) == 0
    base, new = load_checkpoint(tiny_base), load_checkpoint(out / "checkpoint.pt")
    assert [i.name for i in new.instruments] == ["sine", "square", "Mine"] and new.instruments[2].family == "custom"
    key = "generator.instrument_embedding.weight"
    assert states_equal(base.model, new.model, skip=key)  # every weight bit-identical
    assert torch.equal(new.model.instrument_table[:2], base.model.instrument_table)  # old rows too
    assert states_equal(base.encoder, new.encoder, skip="")
    report = json.loads((out / "checkpoint.pt.embed.json").read_text())
    (fit,) = report["instruments"]
    assert sorted(n["pitch"] for n in fit["notes"]) == [50, 62, 69] and all(n["pitch_estimated"] for n in fit["notes"])
    assert fit["loss"] <= min(t["start_loss"] for t in fit["tried"]) and len(fit["tried"]) == 2
    assert torch.allclose(new.model.instrument_table[2], torch.tensor(fit["vector"]), atol=1e-5)
    # the new instrument plays through the renderer
    from sing_app.render_cli import main as render

    wav = tmp_path / "n.wav"
    assert (
        render(
            ["--checkpoint", str(out / "checkpoint.pt"), "--instrument", "mine", "--note", "60", "-o", str(wav), "-q"]
        )
        == 0
    )
    assert np.abs(sf.read(wav)[0]).max() > 0


def test_embed_stage_bad_input_fails_clearly_and_writes_nothing(tiny_base, tmp_path, capsys):
    samples = write_pack(tmp_path / "mine", instruments=(("x", 5),), pitches=(60,))
    (samples / "notes.txt").write_text("not audio")
    (samples / "broken_C4.wav").write_bytes(b"RIFF" + bytes(40))
    out = tmp_path / "run"
    base = ["--init", str(tiny_base), "--stage", "embed", "--out", str(out), "--no-progress", "--threads", "1"]
    with pytest.raises(SystemExit, match="already has an instrument named 'sine'"):
        main(["--pack", str(samples), *base, "--name", "Sine"])
    empty = tmp_path / "empty"
    empty.mkdir()
    sf.write(empty / "silent_C4.wav", np.zeros(SR, np.float32), SR)
    with pytest.raises(SystemExit, match="no usable notes.*silent"):
        main(["--pack", str(empty), *base])
    with pytest.raises(SystemExit, match="needs --pack"):
        main(["--pack", str(samples), "--stage", "embed", "--out", str(out)])
    assert not out.exists()
    # a cancelled fit leaves an existing file exactly as it was
    out.mkdir()
    target = out / "checkpoint.pt"
    target.write_bytes(b"previous")
    calls = iter(range(10**6))
    with pytest.raises(FitCancelled):
        fit_pack(tiny_base, samples, target, config=FitConfig(steps=5), should_stop=lambda: next(calls) >= 3)
    assert target.read_bytes() == b"previous" and sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]
    # the corrupt file is skipped, the good one used
    fit_pack(tiny_base, samples, target, config=FitConfig(steps=2, starts=1))
    report = json.loads((out / "checkpoint.pt.embed.json").read_text())
    assert [s["file"].split("/")[-1] for s in report["skipped"]] == ["broken_C4.wav"]


def test_fit_leaves_the_model_as_it_was(tiny_base):
    ck = load_checkpoint(tiny_base)
    model = ck.model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    notes = torch.randn(2, 8000) * 0.1
    r = fit_embedding(
        model,
        notes,
        torch.tensor([60, 64]),
        torch.tensor([100, 100]),
        ["sine", "square"],
        config=FitConfig(steps=3, starts=2),
    )
    assert r.vector.shape == (ck.config.instrument_dim,) and np.isfinite(r.loss)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="no notes"):
        fit_embedding(model, notes[:0], torch.tensor([]), torch.tensor([]), ["sine", "square"])


def test_a_fitted_instrument_plays_unseen_pitches_closer_than_the_nearest_one(tmp_path):
    """With the shipped model: samples of an instrument the table does not hold (a blend of two rows) at three
    pitches; the fitted row plays three other pitches closer to that instrument than its nearest row, in tune."""
    ck = load_checkpoint(DEFAULT)
    model, names = ck.model, [i.name for i in ck.instruments]
    table = model.instrument_table.detach()
    truth = 0.5 * (table[names.index("gm040_violin")] + table[names.index("gm073_flute")])
    gain, scale = training_gain(ck)

    def play(vec: torch.Tensor, pitches: list[int]) -> torch.Tensor:
        p = torch.tensor(pitches)
        return model.generate(vec.expand(len(p), -1), p, torch.full((len(p),), 100.0)) * scale

    samples = tmp_path / "blend"
    samples.mkdir()
    for pitch, audio in zip((48, 60, 72), play(truth, [48, 60, 72]), strict=True):
        sf.write(samples / f"blend_{pitch}.wav", audio.numpy(), SR)
    out = tmp_path / "fit.pt"
    report = fit_pack(DEFAULT, samples, out)
    fitted = load_checkpoint(out)
    assert [i.name for i in fitted.instruments] == [*names, "blend"]
    fit = report["instruments"][0]
    nearest = table[names.index(fit["nearest"])]
    unseen = [53, 65, 77]
    want = play(truth, unseen)
    got = play(fitted.model.instrument_table[-1].detach(), unseen)
    l1_fit = float(spectral_l1(got * gain, want * gain))
    l1_nearest = float(spectral_l1(play(nearest, unseen) * gain, want * gain))
    assert l1_fit < 0.8 * l1_nearest, (l1_fit, l1_nearest, fit["nearest"])
    assert all(pitch_hit(a.numpy(), p, SR) for a, p in zip(got, unseen, strict=True))


def test_the_app_fit_skips_truncated_and_corrupt_samples_and_keeps_the_rest(tiny_checkpoint, tmp_path):
    """``synth_core.sing.fit.fit_samples`` (what the app runs): a WAV cut to 300 bytes and an undecodable file are
    reported with their reasons; the instrument is fitted to the good notes only (issue #24)."""
    from synth_core.sing.fit import fit_samples

    samples = write_pack(tmp_path / "mine", instruments=(("x", 5),), pitches=(50, 62))
    whole = next(samples.glob("*.wav")).read_bytes()
    (tmp_path / "cut_C4.wav").write_bytes(whole[:300])
    (tmp_path / "junk_D4.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    report = fit_samples(
        tiny_checkpoint, [samples, tmp_path / "cut_C4.wav", tmp_path / "junk_D4.wav"], "Mine", config=FitConfig(steps=2)
    )
    assert sorted(n["pitch"] for n in report["notes"]) == [50, 62]
    reasons = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"cut_C4.wav", "junk_D4.wav"}
    assert reasons["cut_C4.wav"].startswith("too short") and reasons["junk_D4.wav"].startswith("unreadable")
    with pytest.raises(ValueError, match="no usable notes.*too short"):
        fit_samples(tiny_checkpoint, [tmp_path / "cut_C4.wav"], "Mine", config=FitConfig(steps=2))
