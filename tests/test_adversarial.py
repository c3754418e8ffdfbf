"""The adversarial fine-tune: discriminators that learn, and a sing-train run that uses and resumes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synth_core.sing import load_checkpoint
from tests.test_training import run, write_pack
from training.adversarial import Discriminators, discriminator_loss, generator_losses, normalise_pair, parse_sizes


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return write_pack(tmp_path_factory.mktemp("data") / "pack")


def harmonic_crops(n: int, samples: int = 2048, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    f0 = 110 * 2 ** (torch.randint(0, 24, (n, 1), generator=g) / 12)
    return sum(torch.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 6)) * 0.1


def test_discriminators_learn_to_tell_a_noise_floor():
    """Real: harmonic tones; fake: the same tones with a noise floor 20 dB down (the gap SING leaves). The
    spectrogram discriminator is the one that sees it within a few dozen steps."""
    torch.manual_seed(0)
    d = Discriminators(periods=(2, 3), ffts=(256,), width=0.5)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.8, 0.99))
    losses = []
    for step in range(40):
        real = harmonic_crops(8, seed=step)
        fake = real + 0.1 * real.std() * torch.randn_like(real)
        fake, real = normalise_pair(fake, real)
        loss = discriminator_loss(d(real), d(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
    real = harmonic_crops(8, seed=99)
    fake, real = normalise_pair(real + 0.1 * real.std() * torch.randn_like(real), real)
    with torch.no_grad():
        judged_real, judged_fake = d(real), d(fake)
    (spectrogram_real, _), (spectrogram_fake, _) = judged_real[-1], judged_fake[-1]
    assert spectrogram_real.mean() > spectrogram_fake.mean() + 0.5
    gan, matching = generator_losses(judged_real, judged_fake)
    assert float(gan) > 0 and float(matching) > 0


def test_pairs_are_judged_at_the_real_crops_level():
    real = harmonic_crops(2)
    fake, norm = normalise_pair(real * 0.5, real * 3)
    torch.testing.assert_close(norm.pow(2).mean(dim=1).sqrt(), torch.ones(2))
    torch.testing.assert_close(fake, norm / 6)


def test_sizes_parse():
    assert parse_sizes("2,3, 5") == (2, 3, 5) and parse_sizes("none") == () and parse_sizes("") == ()
    with pytest.raises(ValueError):
        parse_sizes("1")


ADV = ["--stage", "e2e", "--batch-size", "2", "--crop-steps", "8", "--checkpoint-every", "1", "--adversarial", "0.1"]
SMALL = ["--disc-periods", "2,3", "--disc-ffts", "256", "--disc-width", "0.5", "--adversarial-after", "2"]


def test_adversarial_run_logs_and_resumes_its_discriminators(pack, tmp_path):
    run(pack, tmp_path / "straight", *ADV, *SMALL, "--max-steps", "4")
    run(pack, tmp_path / "split", *ADV, *SMALL, "--max-steps", "3")
    run(pack, tmp_path / "split", *ADV, "--max-steps", "4", "--resume")  # the run's discriminators come back
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt").training
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt").training
    assert a["step"] == b["step"] == 4
    assert b["adversary"]["periods"] == [2, 3] and b["adversary"]["ffts"] == [256]
    for name, x in a["adversary"]["model"].items():
        torch.testing.assert_close(x, b["adversary"]["model"][name], atol=1e-5, rtol=1e-4, msg=name)
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "disc_loss" in r]
    assert [("gen_gan_loss" in r) for r in steps] == [False, False, True, True]  # after --adversarial-after 2


def test_adversarial_needs_crops(pack, tmp_path):
    with pytest.raises(SystemExit, match="--crop-steps"):
        run(pack, tmp_path / "run", "--stage", "e2e", "--max-steps", "1", "--adversarial", "0.1")
