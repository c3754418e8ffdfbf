"""The voice resampler: batched rendering equals the per-voice path, and 16 -> 48 kHz images stay below -60 dB."""

from __future__ import annotations

import numpy as np
import pytest

from synth_core.engine.resampler import KernelBank, ResamplerBank, VoiceResampler

CAPACITY = 3 * 1024 + 96


def push(rs: VoiceResampler, x: np.ndarray) -> None:
    rs.buf[rs.avail : rs.avail + len(x)] = x
    rs.avail += len(x)


@pytest.mark.parametrize("rates", [(1 / 3, 1 / 3), (0.34, 0.38), (1.5, 1.2)], ids=["48k", "bend-up", "fast"])
def test_bank_renders_what_each_voice_renders_alone(rates):
    bank = KernelBank(24)
    many = ResamplerBank(bank, 6, CAPACITY, 1024)
    alone = [VoiceResampler(bank, CAPACITY) for _ in range(3)]
    rows = [1, 4, 5]
    rng = np.random.default_rng(0)
    r0, r1 = rates
    for block in range(6):
        frames = (256, 100, 1024)[block % 3]
        for j, row in enumerate(rows):
            x = rng.standard_normal(int(frames * max(rates)) + 40 + 7 * j).astype(np.float32)
            push(many.voices[row], x)
            push(alone[j], x)
        out = np.full((3, frames), np.nan, np.float32)
        many.process_many(rows, out, r0, r1)
        for j, row in enumerate(rows):
            ref = np.empty(frames, np.float32)
            alone[j].process(ref, r0, r1)
            np.testing.assert_array_equal(out[j], ref)
            assert many.voices[row].pos == alone[j].pos and many.voices[row].avail == alone[j].avail
        r0, r1 = r1, r0  # glide back and forth


def test_images_of_a_16k_tone_at_48k_are_below_60_db():
    bank = KernelBank(24)
    many = ResamplerBank(bank, 1, CAPACITY, 1024)
    rs = many.voices[0]
    x = np.sin(2 * np.pi * 3000 * np.arange(16000) / 16000).astype(np.float32)
    out, pos = [], 0
    while len(out) * 256 < 40000:
        while rs.avail < rs.needed(256, 1 / 3, 1 / 3):
            n = min(256, rs.space())
            push(rs, x[pos : pos + n])
            pos += n
        block = np.empty((1, 256), np.float32)
        many.process_many([0], block, 1 / 3, 1 / 3)
        out.append(block[0])
    y = np.concatenate(out)[2000:34000]
    power = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / 48000)
    assert abs(f[np.argmax(power)] - 3000) < 5
    images_db = 10 * np.log10(power[f > 8000].sum() / power.sum())  # the first image sits at 13 kHz
    assert images_db < -60
