import math

import pytest
import torch

from synth_core.sing import SING, Encoder, SINGConfig, spectral_l1
from synth_core.sing.model import velocity_weights
from synth_core.sing.streaming import SingStreamer, stream_note


def test_reference_sizes():
    c = SINGConfig()
    assert c.input_dim == 30
    assert c.pad == 2304
    assert c.n_steps == 265
    assert c.steps_for(64000) == 265
    model = SING(c)
    n = model.num_parameters()
    # REFERENCE.md: about 63.7M parameters with 1006 instruments
    assert 62e6 < n < 65e6, n


def test_whole_note_shapes(tiny_model):
    c = tiny_model.config
    with torch.no_grad():
        wav = tiny_model(torch.tensor([0, 2]), torch.tensor([60, 72]), torch.tensor([100, 25]))
        latents = tiny_model.generator(
            tiny_model.instrument_vectors(torch.tensor([1])), torch.tensor([60]), torch.tensor([50])
        )
        untrimmed = tiny_model.decoder(latents)
    assert wav.shape == (2, c.note_samples)
    assert latents.shape == (1, c.latent_dim, 265)
    assert untrimmed.shape == (1, c.note_samples + 2 * c.trim)


def test_encoder_shapes(tiny_model):
    enc = Encoder(tiny_model.config)
    wav = torch.randn(2, 64000)
    lat = enc(wav)
    assert lat.shape == (2, 128, 265)
    assert tiny_model.decode(lat).shape == (2, 64000)


def test_velocity_interpolation_hits_grid_rows():
    lo, hi, w = velocity_weights(torch.tensor([25.0, 100.0, 127.0, 62.5, 1.0]))
    rows = (lo + w).tolist()  # fractional row index
    assert rows == pytest.approx([0.0, 3.0, 4.0, 1.5, 0.0])


@pytest.mark.parametrize("velocity", [100.0, 90.0])
def test_streaming_equals_whole_note(tiny_model, velocity):
    vec = tiny_model.instrument_table[1]
    with torch.no_grad():
        whole = tiny_model(None, torch.tensor([57]), torch.tensor([velocity]), instrument_vec=vec[None])[0]
    streamed = stream_note(tiny_model, vec, 57, velocity, whole.shape[0])
    assert torch.allclose(streamed, whole, atol=1e-5, rtol=0)
    assert whole.abs().max() > 1e-3  # not trivially zero


def test_streaming_a_three_layer_lstm_equals_whole_note():
    """The shipped LSTM has three layers (the tiny one two): the streamer must feed the top layer's output on."""
    torch.manual_seed(1)
    model = SING(SINGConfig(n_instruments=2, lstm_hidden=32, lstm_layers=3, decoder_channels=48)).eval()
    vec = model.instrument_table[0]
    with torch.no_grad():
        whole = model(None, torch.tensor([60]), torch.tensor([100.0]), instrument_vec=vec[None])[0]
    assert torch.allclose(stream_note(model, vec, 60, 100.0, whole.shape[0]), whole, atol=1e-5, rtol=0)


def test_warm_up_equals_stepping_one_latent_at_a_time(tiny_model):
    """The whole-sequence warm-up (with the first hop it computes) equals stepping latent by latent, also when the
    sustain freeze falls inside it."""
    c = tiny_model.config
    fast, slow = SingStreamer(tiny_model, max_voices=3), SingStreamer(tiny_model, max_voices=3)
    table = tiny_model.instrument_table.detach()
    args = ([0, 2], table[[0, 1]], [45, 70], [100.0, 40.0], [c.context, None])  # voice 0 freezes at step 9 of 14
    fast.start_many(*args)
    slow.start_many(*args)
    assert fast.pending == {0, 2}
    idx = torch.tensor([0, 2])
    slow.h[:, idx], slow.c[:, idx], slow.history[idx], slow.ola[idx], slow.t[idx] = 0, 0, 0, 0, 0
    slow.pending.clear()
    with torch.no_grad():
        for j in range(slow.lead):
            offset = (slow.lead - j) * c.hop
            window = slow._advance(idx, emit_frame=offset < c.frame)
            if window is not None:
                slow.ola[idx, : c.frame - offset] += slow.weights.frame(window)[:, offset:]
    first_slow = slow.step([0, 2])
    for k in ("h", "c", "history", "ola"):
        assert torch.allclose(getattr(fast, k), getattr(slow, k), atol=1e-5), k
    assert torch.equal(fast.t, slow.t) and fast.t[[0, 2]].tolist() == [c.context + fast.lead] * 2
    assert torch.allclose(fast.step([2, 0]), first_slow[[1, 0]], atol=1e-5)  # the first hop, in the asked order
    assert not fast.pending
    assert torch.allclose(fast.step([0, 2]), slow.step([0, 2]), atol=1e-5)
    assert fast.history[0].abs().max() > 0 and not torch.allclose(fast.history[0], fast.history[2], atol=1e-3)


def two_streamers_playing(model) -> tuple[SingStreamer, SingStreamer]:
    """Two streamers of three slots, each playing MIDI 60 in slot 1, one hop stepped: the same state twice."""
    pair = SingStreamer(model, max_voices=3), SingStreamer(model, max_voices=3)
    for s in pair:
        s.start(1, model.instrument_table[0].detach(), 60, 100.0)
        s.step([1])
    return pair


def test_a_step_mixing_new_and_sounding_notes_gives_each_its_own_hop(tiny_model):
    table = tiny_model.instrument_table.detach()
    mixed, alone = two_streamers_playing(tiny_model)
    mixed.start(0, table[1], 67, 80.0)
    alone.start(0, table[1], 67, 80.0)
    both = mixed.step([1, 0])
    assert torch.allclose(both[0], alone.step([1])[0], atol=1e-6) and torch.allclose(both[1], alone.step([0])[0])


def test_a_bf16_warm_up_stays_close_to_fp32_and_steps_on_in_fp32(tiny_model):
    vec = tiny_model.instrument_table[1].detach()
    ref = SingStreamer(tiny_model, max_voices=1)
    fast = SingStreamer(tiny_model, max_voices=1, warmup_dtype=torch.bfloat16)
    assert fast.weights.dtype == torch.float32 and fast.warmup.dtype == torch.bfloat16
    for s in (ref, fast):
        s.start(0, vec, 57, 100.0)
    a = torch.cat([ref.step([0])[0] for _ in range(8)])
    b = torch.cat([fast.step([0])[0] for _ in range(8)])
    err_db = 10 * torch.log10(((a - b) ** 2).sum() / (a**2).sum()).item()
    assert -80 < err_db < -25, err_db  # it took effect, and it is a rounding-sized deviation


def test_streamer_slots_are_independent(tiny_model):
    s = SingStreamer(tiny_model, max_voices=4)
    table = tiny_model.instrument_table
    s.start(2, table[0], 60, 100)
    a = torch.cat([s.step([2])[0] for _ in range(3)])
    s.start(0, table[0], 60, 100)
    s.start(3, table[2], 40, 50)
    both = [s.step([0, 3, 2]) for _ in range(3)]
    first = torch.cat([b[0] for b in both])
    assert torch.allclose(first, a, atol=1e-6)  # slot 0 restarts the same note slot 2 played


def test_a_note_started_half_way_through_a_step_changes_neither_note(tiny_model):
    """``step(slots, between)``: ``between`` runs once the LSTM stepped and before the decoder; starting and stepping
    another slot there leaves both notes as they are when played one after the other."""
    table = tiny_model.instrument_table.detach()
    nested, plain = two_streamers_playing(tiny_model)
    calls = []

    def between():
        calls.append(int(nested.t[1]))
        nested.start(2, table[1], 67, 90.0)
        calls.append(nested.step([2]).clone())

    a = nested.step([1], between)
    plain_a = plain.step([1])
    plain.start(2, table[1], 67, 90.0)
    assert len(calls) == 2 and calls[0] == int(plain.t[1])  # called once, after the LSTM step of slot 1
    assert torch.equal(a, plain_a) and torch.equal(calls[1], plain.step([2]))
    for _ in range(3):
        assert torch.equal(nested.step([1, 2]), plain.step([1, 2]))


def test_priming_a_batch_size_changes_no_slot(tiny_model):
    """``prime`` runs a warm-up of silent notes for its kernels only: sounding and new notes go on unchanged."""
    table = tiny_model.instrument_table.detach()
    primed, plain = two_streamers_playing(tiny_model)
    for s in (primed, plain):
        s.start(2, table[1], 50, 70.0)  # its first hop is pending
    before = {k: getattr(primed, k).clone() for k in ("h", "c", "history", "ola", "t", "first", "static")}
    for n in (1, 3, 5):  # also more notes than the streamer has slots
        primed.prime(n)
    for k, v in before.items():
        assert torch.equal(getattr(primed, k), v), k
    assert primed.pending == {2}
    for _ in range(3):
        assert torch.equal(primed.step([1, 2]), plain.step([1, 2]))


def test_spectral_loss_properties():
    torch.manual_seed(0)
    x = torch.randn(2, 16000)
    assert spectral_l1(x, x).item() == 0.0
    assert spectral_l1(x, 0.5 * x).item() > 0
    # log(1 + |X|^2) of silence is 0, so the loss against silence is the mean log-power
    assert spectral_l1(x, torch.zeros_like(x)).item() > 1.0


def test_spectral_loss_takes_bf16_output():
    """Under bf16 autocast the decoder's output is bf16; the loss runs its FFTs in fp32."""
    torch.manual_seed(0)
    x, y = torch.randn(2, 4096).bfloat16(), torch.randn(2, 4096)
    loss = spectral_l1(x, y)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(spectral_l1(x.float(), y).item(), rel=1e-6)


def test_add_instruments_keeps_table(tiny_model):
    before = tiny_model.instrument_table.detach().clone()
    tiny_model.add_instruments(2)
    after = tiny_model.instrument_table.detach()
    assert after.shape == (5, 16)
    assert torch.equal(after[:3], before)
    assert tiny_model.config.n_instruments == 5


def test_training_loss_level_term_measures_the_level_in_nats():
    from synth_core.sing.loss import LossConfig, spectral_l1, training_loss

    torch.manual_seed(0)
    target = torch.randn(2, 8192) * 30  # loud: log(1 + E) ~ log(E)
    quiet = target / 10  # 20 dB too quiet: 2 ln 10 nats per frame
    assert torch.equal(training_loss(quiet, target), spectral_l1(quiet, target))
    level = float(training_loss(quiet, target, LossConfig(level_weight=1.0)) - spectral_l1(quiet, target))
    assert abs(level - 2 * math.log(10)) < 0.01
    assert float(training_loss(target, target, LossConfig(level_weight=1.0))) == 0.0


def test_training_loss_adds_longer_ffts():
    from synth_core.sing.loss import LossConfig, training_loss

    torch.manual_seed(0)
    out, target = torch.randn(2, 8192), torch.randn(2, 8192) * 3
    expected = spectral_l1(out, target) + spectral_l1(out, target, 2048, 512)
    torch.testing.assert_close(training_loss(out, target, LossConfig(extra_ffts=(2048,))), expected)


def test_the_convergence_term_pulls_a_quiet_output_where_the_log_loss_is_flat():
    """The silence plateau (issue #25): for an output far below its target, the pull of log(1 + |X|^2) toward the
    target fades with the output's level, while the spectral convergence's stays."""
    from synth_core.sing.loss import LossConfig, training_loss

    target = _harmonic_tone(220.0)

    def pull(level: float, config: LossConfig) -> float:  # d loss / d level along the target (< 0: grow)
        quiet = (level * target).requires_grad_(True)
        training_loss(quiet, target, config).backward()
        return float((quiet.grad * target).sum())

    levels = (1e-7, 1e-8)  # |X| ~ 0.01 and 0.001 at the harmonics
    plain = [pull(level, LossConfig()) for level in levels]
    converging = [pull(level, LossConfig(convergence_weight=1.0)) - p for level, p in zip(levels, plain, strict=True)]
    assert plain[1] / plain[0] < 0.2 and converging[1] / converging[0] > 0.9 and converging[1] < 0
    assert float(training_loss(target, target, LossConfig(convergence_weight=1.0))) < 1e-4
    half = training_loss(0.5 * target, target, LossConfig(convergence_weight=1.0))
    assert abs(float(half - training_loss(0.5 * target, target)) - 0.5) < 0.01  # half the magnitudes: 0.5


def _harmonic_tone(f0: float, n: int = 8192, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(n) / sr
    return sum(torch.sin(2 * math.pi * f0 * h * t + h) / h for h in range(1, 40) if f0 * h < sr / 2)[None] * 100


def test_low_band_term_tells_a_hop_rate_comb_from_a_low_note():
    """A decoder whose frames repeat at the hop rate plays a 62.5 Hz comb instead of C2 (65.4 Hz): the
    1024-point loss puts that comb less than half way to silence, the low band nearly as far as silence."""
    from synth_core.sing.loss import LossConfig, low_band_l1, training_loss

    note, comb = _harmonic_tone(65.41), _harmonic_tone(62.5)
    silence = torch.zeros_like(note)
    full = float(spectral_l1(comb, note) / spectral_l1(silence, note))
    low = float(low_band_l1(comb, note, 2048, 1000.0, 16000) / low_band_l1(silence, note, 2048, 1000.0, 16000))
    assert full < 0.5 < 0.75 < low
    assert float(low_band_l1(note, note, 2048, 1000.0, 16000)) == 0.0
    cfg = LossConfig(low_band_weight=2.0)
    expected = spectral_l1(comb, note) + 2.0 * low_band_l1(comb, note, 2048, 1000.0, 16000)
    torch.testing.assert_close(training_loss(comb, note, cfg), expected)


def test_high_band_term_weighs_the_missing_upper_partials():
    """A note with its partials above 3.8 kHz removed: the whole-band loss puts it close to the note (a tenth of
    the way to silence), the high-band term as far as silence; 0 for the note itself."""
    from synth_core.sing.loss import LossConfig, training_loss

    note = _harmonic_tone(110.0)
    dull = torch.fft.irfft(torch.fft.rfft(note) * (torch.fft.rfftfreq(note.shape[1], 1 / 16000) < 3800), note.shape[1])
    cfg = LossConfig(high_band_weight=1.0)
    extra = float(training_loss(dull, note, cfg) - training_loss(dull, note))
    silent_extra = float(training_loss(torch.zeros_like(note), note, cfg) - training_loss(torch.zeros_like(note), note))
    silence = float(training_loss(torch.zeros_like(note), note))
    assert float(training_loss(dull, note)) < 0.2 * silence
    assert extra > 0.9 * silent_extra > 0
    assert float(training_loss(note, note, cfg)) == 0.0


def test_mel_term_keeps_slightly_stretched_partials_at_their_level():
    """Issue #25's dull upper bands: with the target's partials stretched a little (a piano's inharmonicity), the
    per-bin log loss scores the exact harmonic series above the same series with its partials over 3 kHz 10 dB
    weaker or gone, so it teaches the bank to turn them down; the mel-band term scores the right level best."""
    from synth_core.sing.loss import LossConfig, mel_l1, power_spectrogram, training_loss

    t = torch.arange(8192) / 16000

    def tone(stretch: float = 0.0, high_db: float | None = 0.0) -> torch.Tensor:
        x = torch.zeros_like(t)
        for h in range(1, 37):
            f = 220.0 * h * (1 + stretch * h * h)
            if f > 3000 and high_db is None:
                continue
            x += torch.sin(2 * math.pi * f * t + h) / h * (10 ** (high_db / 20) if f > 3000 and high_db else 1)
        return x[None] * 100

    note = tone(stretch=5e-5)
    exact, weaker, dull = tone(), tone(high_db=-10.0), tone(high_db=None)
    assert float(spectral_l1(exact, note)) > max(float(spectral_l1(weaker, note)), float(spectral_l1(dull, note)))

    def mel(x: torch.Tensor) -> float:
        return float(mel_l1(power_spectrogram(x), power_spectrogram(note), 64, 16000))

    assert 5 * mel(exact) < mel(weaker) < mel(dull) and mel(note) == 0.0
    cfg = LossConfig(mel_weight=0.5)
    torch.testing.assert_close(training_loss(exact, note, cfg), spectral_l1(exact, note) + 0.5 * mel(exact))


def test_phase_term_sees_what_the_magnitude_loss_cannot():
    """The same tone with its harmonics' phases shifted: the magnitude loss barely tells it from the note, the
    compressed complex term as well as it tells a 30 dB noise floor; the term is 0 for the note itself."""
    from synth_core.sing.loss import LossConfig, compressed_complex_l1, training_loss

    note = _harmonic_tone(220.0)
    t = torch.arange(note.shape[1]) / 16000
    shifted = sum(torch.sin(2 * math.pi * 220.0 * h * t + 2 * h) / h for h in range(1, 37))[None] * 100
    torch.manual_seed(0)
    noisy = note + torch.randn_like(note) * note.std() * 10 ** (-30 / 20)
    assert float(spectral_l1(shifted, note)) < 0.1 * float(spectral_l1(noisy, note))
    assert float(compressed_complex_l1(shifted, note)) > float(compressed_complex_l1(noisy, note))
    assert float(compressed_complex_l1(note, note)) == 0.0
    cfg = LossConfig(phase_weight=0.5, phase_fft=256)
    expected = spectral_l1(shifted, note) + 0.5 * compressed_complex_l1(shifted, note, 256)
    torch.testing.assert_close(training_loss(shifted, note, cfg), expected)


def test_signed_synthesis_streams_and_switches_without_changing_the_output(tiny_model, tmp_path):
    from synth_core.sing import load_checkpoint, save_checkpoint
    from synth_core.sing.checkpoint import InstrumentInfo

    vec = tiny_model.instrument_table[1]
    args = (None, torch.tensor([57]), torch.tensor([100.0]))
    with torch.no_grad():
        before = tiny_model(*args, instrument_vec=vec[None])[0]
        tiny_model.decoder.make_signed()
        assert tiny_model.config.signed_synthesis
        assert torch.equal(tiny_model(*args, instrument_vec=vec[None])[0], before)  # slopes start at 0
        tiny_model.decoder.last_slope().uniform_(0.2, 0.8)
        signed = tiny_model(*args, instrument_vec=vec[None])[0]
    assert (signed - before).abs().max() > 1e-3
    assert torch.allclose(stream_note(tiny_model, vec, 57, 100.0, signed.shape[0]), signed, atol=1e-5, rtol=0)
    names = [InstrumentInfo(f"i{k}", "keyboard") for k in range(tiny_model.config.n_instruments)]
    save_checkpoint(tmp_path / "signed.pt", tiny_model, names)
    loaded = load_checkpoint(tmp_path / "signed.pt").model
    with torch.no_grad():
        assert torch.equal(loaded(*args, instrument_vec=vec[None])[0], signed)


def test_signed_atoms_build_a_tone_that_non_negative_ones_cannot():
    """Why signed synthesis (#25): the shipped decoder's 512 frame atoms, weighted by least squares on the synthesis
    layer alone, build a harmonic tone to -80 dB with signed weights, but only to about -9 dB with the non-negative
    ones a ReLU hands them: that is the floor between the harmonics."""
    from synth_core.sing import load_checkpoint
    from tests.test_default_weights import ASSET

    weight = load_checkpoint(ASSET).model.decoder.frame_weight().detach()
    t = torch.arange(23 * 256 + 1024) / 16000
    target = sum(torch.sin(2 * math.pi * 220.5 * k * t + k) / k for k in range(1, 6))[None] * 0.01

    def error_db(transform) -> float:
        torch.manual_seed(0)
        u = (0.01 * torch.rand(1, weight.shape[0], 24)).requires_grad_(True)
        opt = torch.optim.LBFGS([u], max_iter=150, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            out = torch.nn.functional.conv_transpose1d(transform(u), weight, stride=256)[:, 0]
            loss = (out[:, 768:-768] - target[:, 768:-768]).pow(2).sum() / target[:, 768:-768].pow(2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            loss = opt.step(closure)
        return 10 * math.log10(float(loss.detach()))

    signed, non_negative = error_db(lambda u: u), error_db(lambda u: u * u)
    assert signed < -40 and non_negative > -20, (signed, non_negative)
