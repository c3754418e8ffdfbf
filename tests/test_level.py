"""A new instrument plays at the level of its nearest instrument: the level measurement (synth_core.level) and the
engine's per-instrument gain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synth_core.engine import SineSource
from synth_core.level import MAX_GAIN_DB, level_db, match_level, nearest_row, render_probe
from tests.engine_helpers import live, on, play, rms

DEFAULT = Path(__file__).resolve().parents[1] / "assets" / "sing_default.pt"
# instruments fitted (sing-train's embed fit, ~110 s each) to FluidR3 GM notes at pitches 48-72, velocity 100, for the
# default weights (the harmonic-bank model of 2026-12-04): GM 74 recorder (+2.1 dB against its nearest instrument on
# the check notes then), GM 70 bassoon (-1.4 dB then; -0.3 dB with the mel fine-tuned default of 2026-12-05).
# (The previous default's fitted instruments played 3.7-6.5 dB too quiet.)
FITTED = {
    74: [-0.7764, -0.8071, 0.3757, 0.0318, 1.3076, 0.606, 0.4731, 0.7578, -0.7871, 1.3867, -0.8599, 0.2498, 2.0938,
         2.5137, -0.6943, -2.8223],
    70: [0.5327, 1.1484, -0.1942, 0.6841, 0.7056, -0.2598, 0.2375, 1.2471, -1.335, -1.2363, -0.5723, -0.6211, 0.2625,
         2.1016, -1.0068, -0.5537],
}  # fmt: skip
CHECK = {"pitches": (50, 57, 64, 69), "velocities": (80, 127)}  # other notes than the measurement's


def test_the_engine_plays_new_notes_with_the_instruments_gain_and_sounding_notes_keep_theirs():
    e = live()
    vec = e.instrument_vector()
    ref = rms(play(e, on(69), blocks=40)[-4096:])
    e.set_instrument_vector(vec, gain=0.5)
    assert e.instrument_gain() == 0.5
    held = rms(play(e, blocks=20)[-4096:])
    assert held == pytest.approx(ref, rel=0.02)  # the sounding note keeps its gain
    e.handle_midi(on(69, 0))
    play(e, blocks=60)
    quiet = rms(play(e, on(69), blocks=40)[-4096:])
    assert quiet == pytest.approx(0.5 * ref, rel=0.02)
    e.set_instrument_vector(vec, gain=float("nan"))  # bad values never silence or blow up the sound
    assert e.instrument_gain() == 1.0
    e.set_instrument_vector(vec, gain=1e6)
    assert e.instrument_gain() == 32.0


def test_level_basics():
    assert level_db(np.zeros(100)) == -120.0
    assert level_db(np.full(100, 0.1)) == pytest.approx(-20.0)
    table = np.eye(3, 16, dtype=np.float32)
    assert nearest_row(table, 0.9 * table[2]) == 2
    with pytest.raises(ValueError, match="empty"):
        nearest_row(np.zeros((0, 16)), np.zeros(16))
    src = SineSource(n_instruments=3)  # the sine plays every vector alike
    m = match_level(src, np.ones(16, np.float32))
    assert m.gain_db == pytest.approx(0.0, abs=1e-6) and m.gain == pytest.approx(1.0)
    notes = render_probe(src, table[0], pitches=(60, 72), velocities=(64, 127), seconds=0.5)
    assert len(notes) == 4 and all(len(n) == src.sample_rate // 2 for n in notes)


class Silent(SineSource):
    def render_notes(self, vecs, pitches, velocities, sustain_steps, lengths):
        out = super().render_notes(vecs, pitches, velocities, sustain_steps, lengths)
        return [np.zeros_like(x) if float(np.asarray(vecs)[0, 0]) > 5 else x for x in out]


def test_a_vector_playing_silence_is_not_boosted_without_limit():
    vec = np.zeros(16, np.float32)
    vec[0] = 9.0
    assert match_level(Silent(n_instruments=2), vec).gain_db == MAX_GAIN_DB


@pytest.mark.skipif(not DEFAULT.exists(), reason="needs the default weights")
@pytest.mark.parametrize("program", sorted(FITTED))
def test_fitted_instruments_play_within_3_db_of_their_nearest_instrument(program, one_thread):
    from synth_core.engine import SingSource

    src = SingSource.from_checkpoint(DEFAULT, device="cpu")
    vec = np.asarray(FITTED[program], np.float32)
    m = match_level(src, vec)
    near = src.instrument_table[m.nearest]

    def check_db(v: np.ndarray, gain: float = 1.0) -> float:
        return level_db(gain * np.concatenate(render_probe(src, v, **CHECK)))

    before = check_db(vec) - check_db(near)
    after = check_db(vec, m.gain) - check_db(near)
    # within 3 dB of its neighbour and closer than before; one within 1 dB already stays within 1 dB (the match is
    # measured on other notes than these). The recorder (+2 dB as fitted) is the case that must be corrected.
    assert abs(after) < min(3.0, max(abs(before), 1.0)), (m, before, after)
    if program == 74:
        assert abs(before) > 1.0 and abs(after) < abs(before)
