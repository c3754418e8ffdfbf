"""The voice resampler: batched equals per-voice, images below -60 dB, unity gain and pitch at every rate, glides."""

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


@pytest.mark.parametrize("rate", [1 / 3, 0.9, 1.25, 1.3, 2.0, 3.9, 4.5])
def test_resampling_keeps_the_level_and_the_pitch_at_every_rate(rate):
    """Unity gain (the kernels sum to 1) and the right output frequency, from every kernel of the bank."""
    bank = KernelBank(16)
    many = ResamplerBank(bank, 1, CAPACITY, 1024)
    rs = many.voices[0]
    f_in = 200.0
    x = (0.5 * np.sin(2 * np.pi * f_in * np.arange(80000) / 16000)).astype(np.float32)  # 5 s
    out, pos = [], 0
    while len(out) * 256 < 12000:
        while rs.avail < rs.needed(256, rate, rate):
            n = min(256, rs.space())
            push(rs, x[pos : pos + n])
            pos += n
        block = np.empty((1, 256), np.float32)
        many.process_many([0], block, rate, rate)
        out.append(block[0])
    y = np.concatenate(out)[1000:]
    assert np.sqrt(np.mean(y**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    crossings = np.count_nonzero(np.diff(np.signbit(y)))
    assert crossings / 2 / len(y) == pytest.approx(f_in * rate / 16000, rel=0.01)  # cycles per output sample


def test_a_glide_advances_by_the_sum_of_its_rates():
    """Within a block the rate ramps linearly from r0 to r1 (output k steps by r0 + (r1 - r0) (k + 1) / F), so a
    block moves the read position by r0 F + (r1 - r0) (F + 1) / 2, and the input behind it is dropped."""
    bank = KernelBank(16)
    a, b = VoiceResampler(bank, CAPACITY), VoiceResampler(bank, CAPACITY)
    x = np.sin(np.arange(2000) * 0.05).astype(np.float32)
    for rs in (a, b):
        push(rs, x)
    start, avail = a.pos, a.avail
    a.process(np.empty(256, np.float32), 1.0, 2.0)
    dropped = avail - a.avail
    assert a.pos + dropped == pytest.approx(start + 256 * 1.0 + 1.0 * 257 / 2)
    assert dropped > 0 and a.pos == pytest.approx(bank.taps // 2 - 1 + (a.pos + dropped - bank.taps // 2 + 1) % 1)
    b.advance(256, 1.0, 2.0)
    assert b.pos == pytest.approx(a.pos) and b.avail == a.avail
    np.testing.assert_array_equal(b.buf[: b.avail], x[dropped - (bank.taps // 2 - 1) : 2000][: b.avail])
    assert bank.for_rate(1.25) is bank.tables[1] and bank.for_rate(1.26) is bank.tables[2]
    assert bank.for_rate(9.0) is bank.tables[-1] and bank.for_rate(0.5) is bank.tables[0]
