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
# instruments fitted (sing-train's embed fit, 25 s each) to FluidR3 GM notes at pitches 48-72, velocity 100, for the
# default weights: GM 1 bright piano (6.5 dB quieter than its nearest instrument on the check notes), GM 74 recorder
# (5.6 dB), GM 70 bassoon (3.7 dB)
FITTED = {
    1: [-0.2575, 2.912, -1.2992, 0.2556, 0.7985, -1.1074, -1.5884, 0.1917, 1.9433, -0.7654, -2.377, -1.3759, 0.7476,
        0.5411, 0.8286, -0.239],
    74: [0.5829, 1.1223, 0.6926, -1.1357, -1.0755, -1.0364, -1.1463, -1.4021, -0.0295, 1.4026, -0.3274, 2.3941,
         -0.014, -1.8805, 0.7522, -1.1025],
    70: [0.6877, -1.3411, -0.7858, -0.5617, 2.3805, -1.3971, -1.5528, 0.6769, 1.5689, 1.5317, 0.9314, -0.6415, -0.3345,
         -0.0287, 2.3242, 1.8393],
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
    assert before < -3.0  # quieter than its neighbour as fitted
    assert abs(after) < 3.0, (m, before, after)
