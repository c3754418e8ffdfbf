"""The decoder's harmonic bank (issue #25): oscillators at the note's pitch plus filtered noise, streamed exactly."""

from __future__ import annotations

import pytest
import torch

from synth_core.sing import SING, SINGConfig, load_checkpoint, save_checkpoint
from synth_core.sing.checkpoint import InstrumentInfo
from synth_core.sing.harmonic import midi_hz
from synth_core.sing.streaming import SingStreamer, stream_note

N = 8192  # samples per test note (0.5 s at 16 kHz)


def bank_model(atoms: bool = True, noise_bands: int = 4, harmonics: int = 24) -> SING:
    torch.manual_seed(0)
    config = SINGConfig(
        n_instruments=3, lstm_hidden=32, lstm_layers=2, decoder_channels=48, harmonics=harmonics,
        noise_bands=noise_bands, atoms=atoms,
    )  # fmt: skip
    model = SING(config).eval()
    with torch.no_grad():  # audible, unequal harmonics (a new bank starts at -20 dB, all alike)
        model.decoder.bank.amp.weight.normal_(0, 0.3)
    return model


def whole(model: SING, pitch: int, instrument: int = 1) -> torch.Tensor:
    vec = model.instrument_table[instrument]
    with torch.no_grad():
        return model(None, torch.tensor([pitch]), torch.tensor([100.0]), instrument_vec=vec[None], n_samples=N)[0]


@pytest.mark.parametrize("atoms", [True, False])
def test_a_bank_streams_exactly_what_the_whole_note_decodes(atoms):
    model = bank_model(atoms)
    for pitch in (40, 83):
        ref = whole(model, pitch)
        streamed = stream_note(model, model.instrument_table[1], pitch, 100.0, N)
        assert ref.abs().max() > 1.0
        assert (streamed - ref).norm() < 1e-4 * ref.norm(), pitch  # (float32 phases: about -90 dB)


def test_a_chord_streams_each_note_at_its_own_pitch():
    """Slots keep their own pitch and phase: a chord started in one warm-up equals its notes decoded alone (slots
    out of order, with unused slots inside the span of oscillator rows a step reads)."""
    model = bank_model()
    table = model.instrument_table.detach()
    for slots, pitches in (([3, 0], [48, 67]), ([3, 0, 1], [48, 67, 76])):
        streamer = SingStreamer(model, max_voices=4)
        streamer.start_many(slots, table[[1] * len(slots)], pitches, [100.0] * len(slots))
        order = sorted(slots)
        hops = torch.cat([streamer.step(order) for _ in range(N // model.config.hop)], 1)
        for row, slot in enumerate(order):
            ref = whole(model, pitches[slots.index(slot)])
            assert (hops[row] - ref).norm() < 1e-4 * ref.norm(), slot


def test_the_bank_alone_sounds_the_note_and_its_harmonics_only():
    """Without noise and atoms every partial sits on a multiple of the note's frequency, none above Nyquist (no
    aliases between the harmonics), whatever amplitudes the decoder sets."""
    model = bank_model(atoms=False, noise_bands=0)
    sr = model.config.sample_rate
    for pitch in (45, 84):  # at MIDI 84 only 7 of the 24 harmonics are below 8 kHz
        wav = whole(model, pitch)[2048:6144].double()
        power = torch.fft.rfft(wav * torch.hann_window(len(wav), dtype=torch.float64)).abs().square()
        hz = torch.fft.rfftfreq(len(wav), 1 / sr, dtype=torch.float64)
        f0 = float(midi_hz(torch.tensor(pitch)))
        near = ((hz / f0 - (hz / f0).round()).abs() * f0 < 3 * sr / len(wav)) & ((hz / f0).round() >= 1)
        assert power[near].sum() > 0.999 * power.sum(), pitch


def test_noise_bands_fill_between_the_harmonics():
    quiet = bank_model(atoms=False, noise_bands=8)
    with torch.no_grad():
        quiet.decoder.bank.noise.bias.fill_(-20.0)  # ~-200 dB
        loud = bank_model(atoms=False, noise_bands=8)
        loud.decoder.bank.noise.bias.fill_(0.0)
    between = []
    for model in (quiet, loud):
        wav = whole(model, 60)[2048:6144].double()
        power = torch.fft.rfft(wav * torch.hann_window(len(wav), dtype=torch.float64)).abs().square()
        between.append(float(power[1020:1058].sum() / power.sum()))  # 3.98-4.13 kHz: between harmonics 15 and 16
    assert between[0] < 1e-8 and between[1] > 1e4 * between[0], between


def test_the_output_scale_and_a_checkpoint_carry_the_bank(tmp_path):
    model = bank_model()
    before = whole(model, 57)
    model.decoder.scale_output(0.5)
    assert torch.allclose(whole(model, 57), 0.5 * before, atol=1e-5)
    names = [InstrumentInfo(f"i{k}", "keyboard") for k in range(model.config.n_instruments)]
    save_checkpoint(tmp_path / "bank.pt", model, names)
    loaded = load_checkpoint(tmp_path / "bank.pt").model
    assert (loaded.config.harmonics, loaded.config.noise_bands) == (24, 4)
    assert torch.equal(whole(loaded, 57), whole(model, 57))


def test_adding_a_bank_to_a_trained_decoder_starts_near_silent(tiny_model):
    before = whole(tiny_model, 60)
    with torch.no_grad():
        tiny_model.decoder.add_bank(16, 4, start_db=-60.0)
        loud = whole(tiny_model, 60)
        tiny_model.decoder.bank.amp.bias.fill_(tiny_model.decoder.bank._logit_for(-20.0))
        tiny_model.decoder.bank.noise.bias.fill_(tiny_model.decoder.bank._logit_for(-20.0))
        louder = whole(tiny_model, 60)
    assert tiny_model.config.harmonics == 16
    change, change_20 = (loud - before).norm(), (louder - before).norm()
    assert 38 < float(20 * torch.log10(change_20 / change)) < 42  # the bank 40 dB louder


def test_a_bank_needs_the_pitch():
    model = bank_model()
    latents = torch.zeros(1, model.config.latent_dim, 20)
    with pytest.raises(ValueError, match="pitch"):
        model.decoder(latents)


def test_a_bank_note_saved_in_one_slot_goes_on_alike_in_another():
    """The note cache's way: a note's state saved after a few hops and loaded into a slot that played another
    pitch continues that note (its pitch, phase and amplitude history come with it), not the slot's old one."""
    model = bank_model(atoms=False)
    table = model.instrument_table.detach()
    streamer = SingStreamer(model, max_voices=3)
    streamer.start_many([0, 2], table[[1, 2]], [52, 71], [100.0, 100.0])
    for _ in range(6):
        streamer.step([0, 2])
    state = streamer.save_slot(0)
    ref = torch.cat([streamer.step([0])[0] for _ in range(8)])
    streamer.load_slot(2, state)  # slot 2 sounded MIDI 71 until now
    again = torch.cat([streamer.step([2])[0] for _ in range(8)])
    assert ref.abs().max() > 0.1
    assert (again - ref).norm() < 1e-5 * ref.norm()
    moved = SingStreamer(model, max_voices=3)  # the GPU fallback's way: every slot to a new streamer
    streamer.load_slot(1, state)
    moved.take_over(streamer)
    assert (torch.cat([moved.step([1])[0] for _ in range(8)]) - ref).norm() < 1e-5 * ref.norm()
