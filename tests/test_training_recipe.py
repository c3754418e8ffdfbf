"""The default SING recipe's levers: sounding crops, the training gain carried across stages, velocity rows,
and a learning test that the recipe's level and loss go clearly below silence on rendered notes."""

from __future__ import annotations

import json

import pytest
import torch

from synth_core.sing import SING, Encoder, load_checkpoint, save_checkpoint
from synth_core.sing.model import NSYNTH_VELOCITIES
from tests.conftest import tiny_config
from tests.test_make_pack import SOUNDFONT, needs_fluid
from tests.test_training import TINY, run, write_pack
from training.export import export, fill_velocity_rows
from training.sing_steps import CropGeometry
from training.sing_train import main


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_sounding_offsets_skip_the_silent_tail():
    config = tiny_config()
    crop = CropGeometry(config, 8)
    hop = config.hop
    wav = torch.zeros(3, config.note_samples)
    wav[0, : 40 * hop] = torch.randn(40 * hop)  # loud for 40 hops, then silence
    wav[1, 100 * hop : 120 * hop] = torch.randn(20 * hop)  # a late burst
    offsets = crop.sounding_offsets(wav.repeat(200, 1), 40.0, torch.Generator().manual_seed(0)).view(200, 3)
    assert int(offsets[:, 0].max()) <= 39 and int(offsets[:, 0].min()) == 0
    assert int(offsets[:, 1].min()) >= 100 - crop.k + 1 and int(offsets[:, 1].max()) <= 119
    # a silent note may be cropped anywhere
    assert int(offsets[:, 2].max()) > 100
    assert int(offsets.max()) <= crop.max_offset


def test_from_carries_the_gain_and_init_rescales_an_exported_model(tmp_path):
    pack = write_pack(tmp_path / "pack", instruments=(("sine", 1),), pitches=(48, 60))
    run(pack, tmp_path / "ae", "--stage", "ae", "--max-steps", "2", "--gain", "16")
    run(pack, tmp_path / "lstm", "--stage", "lstm", "--max-steps", "1", "--from", str(tmp_path / "ae/stage_ae.pt"))
    assert load_checkpoint(tmp_path / "lstm/checkpoint.pt").training["gain"] == 16.0
    # an exported model plays at the pack's level; fine-tuning it trains at its training gain again
    export(tmp_path / "lstm/checkpoint.pt", tmp_path / "exported.pt", dtype="float32")
    exported = load_checkpoint(tmp_path / "exported.pt").model.eval()
    ft_args = ("--stage", "e2e", "--max-steps", "1", "--lr", "0", "--init", str(tmp_path / "exported.pt"))
    run(pack, tmp_path / "ft", *ft_args)
    ft = load_checkpoint(tmp_path / "ft/checkpoint.pt")
    assert ft.training["gain"] == 16.0
    args = (torch.tensor([0]), torch.tensor([60]), torch.tensor([100.0]))
    with torch.no_grad():
        torch.testing.assert_close(ft.model.eval()(*args), exported(*args) * 16, rtol=1e-4, atol=1e-6)


def test_fill_velocity_rows_interpolates_untrained_rows():
    torch.manual_seed(0)
    model = SING(tiny_config())
    table = model.generator.velocity_embedding.weight
    before = table.detach().clone()
    filled = fill_velocity_rows(model, [50, 127])
    assert [NSYNTH_VELOCITIES[r] for r in filled] == [25, 75, 100]
    after = table.detach()
    torch.testing.assert_close(after[1], before[1])
    torch.testing.assert_close(after[4], before[4])
    torch.testing.assert_close(after[0], before[1])  # below the lowest trained velocity: a copy
    w = (75 - 50) / (127 - 50)
    torch.testing.assert_close(after[2], before[1] * (1 - w) + before[4] * w)
    # a velocity between two grid values trains both neighbours: nothing to fill
    assert fill_velocity_rows(model, [25, 60, 90, 127]) == []


def test_export_fills_the_velocity_rows_the_pack_never_had(tmp_path, tiny_instruments):
    model = SING(tiny_config())
    src = tmp_path / "train.pt"
    save_checkpoint(src, model, tiny_instruments, encoder=Encoder(model.config), training={"velocities": [100]})
    export(src, tmp_path / "out.pt", dtype="float32")
    ck = load_checkpoint(tmp_path / "out.pt")
    table = ck.model.generator.velocity_embedding.weight.detach()
    assert torch.equal(table, table[3:4].expand_as(table))
    assert ck.metadata["filled_velocity_rows"] == [25, 50, 75, 127]


@needs_fluid
def test_recipe_learns_below_silence_on_rendered_notes(tmp_path):
    """The recipe's direction, cheaply: at the recipe's gain, a tiny autoencoder on a few FluidR3 notes goes
    clearly below the loss of outputting silence within a bounded number of steps (measured: 0.53x at gain 128,
    0.54x at 8, 0.89x at gain 1). A regression of the level (gain not applied, audio scaled wrong) or of the
    loss keeps it on the silence plateau."""
    from training.make_pack import make_pack

    make_pack(SOUNDFONT, tmp_path / "pack", programs=[0, 73], pitches=[48, 60, 72], velocities=[100], workers=1,
              progress=False)  # fmt: skip
    out = tmp_path / "run"
    main(
        ["--data", str(tmp_path / "pack"), "--out", str(out), "--p-valid", "0", "--p-test", "0", *TINY,
        "--stage", "ae", "--crop-steps", "8", "--gain", "128", "--lr", "3e-3", "--batch-size", "6",
        "--max-steps", "120", "--epochs", "1000", "--eval-every", "120", "--eval-notes", "6"]
    )  # fmt: skip
    final = [r for r in records(out) if "train_spectral_l1" in r][-1]
    assert final["train_spectral_l1"] < 0.7 * final["train_silence_l1"], final


def test_plot_curves_draws_a_run_and_reports_a_missing_one(tmp_path, capsys):
    from training.plot_curves import main as plot_main

    pack = write_pack(tmp_path / "pack", instruments=(("sine", 1),), pitches=(48, 60))
    run(pack, tmp_path / "ae", "--stage", "ae", "--max-steps", "4", "--eval-every", "2")
    assert plot_main([str(tmp_path / "ae"), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert plot_main([str(tmp_path / "nothing"), "-o", str(tmp_path / "x.png")]) == 1
    assert "metrics.jsonl not found" in capsys.readouterr().err


def test_widen_keeps_what_the_model_plays_and_trains_on(tmp_path):
    from training.widen import main as widen_main
    from training.widen import widen_model

    torch.manual_seed(0)
    model, encoder = SING(tiny_config()).eval(), Encoder(tiny_config())
    wav = torch.randn(2, 4096)
    args = (torch.tensor([0, 2]), torch.tensor([40, 72]), torch.tensor([50.0, 127.0]))
    with torch.no_grad():
        before, latents = model(*args), encoder(wav)
    widen_model(model, 96, encoder)
    assert model.decoder.synthesis.weight.shape[0] == 96 and encoder.analysis.weight.shape[0] == 96
    assert model.config.decoder_channels == 96 == encoder.config.decoder_channels
    with torch.no_grad():
        torch.testing.assert_close(model(*args), before, rtol=0, atol=1e-6)
        torch.testing.assert_close(encoder(wav), latents, rtol=0, atol=1e-6)
    # the new channels learn from the first step: their output weights get a gradient
    model.train()(*args).square().mean().backward()
    assert float(model.decoder.synthesis.weight.grad[48:].abs().sum()) > 0
    with pytest.raises(ValueError, match="shrink"):
        widen_model(model, 32)

    # CLI: a trained checkpoint widens, loads at the new size and keeps training with --from
    pack = write_pack(tmp_path / "pack", instruments=(("sine", 1),), pitches=(48, 60))
    run(pack, tmp_path / "ae", "--stage", "ae", "--max-steps", "1", "--gain", "16")
    widen_main([str(tmp_path / "ae/stage_ae.pt"), "--decoder-channels", "64", "-o", str(tmp_path / "wide.pt")])
    wide = load_checkpoint(tmp_path / "wide.pt")
    assert wide.config.decoder_channels == 64 and wide.training["gain"] == 16.0
    assert wide.training["widened_from"]["decoder_channels"] == 48
    # the checkpoint's size wins over the --decoder-channels 48 of the command line
    run(pack, tmp_path / "ae2", "--stage", "ae", "--max-steps", "1", "--from", str(tmp_path / "wide.pt"))
    assert load_checkpoint(tmp_path / "ae2/stage_ae.pt").config.decoder_channels == 64


def test_widen_keeps_a_signed_synthesis():
    from training.widen import widen_model

    torch.manual_seed(0)
    model = SING(tiny_config(signed_synthesis=True)).eval()
    with torch.no_grad():
        model.decoder.last_slope().uniform_(0.1, 0.9)
        args = (torch.tensor([0, 2]), torch.tensor([40, 72]), torch.tensor([50.0, 127.0]))
        before = model(*args)
        widen_model(model, 96)
        assert model.decoder.last_slope().shape == (96,)
        torch.testing.assert_close(model(*args), before, rtol=0, atol=1e-6)
