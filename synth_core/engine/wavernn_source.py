"""The WaveRNN voice as an engine source: keyboard control -> frame features -> sampler, slot by slot.

Each step renders one conditioning frame (``hop`` = 160 samples at 16 kHz) for every active slot
in one sampler call. The "instruments" are the voice's timbre presets (spectral envelopes taken
from the training speech); their envelopes are the instrument vectors, so the app's faders and
morph pad blend timbres. Sources with ``supports_glide`` let the engine's mono mode glide.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..device import describe, select_device
from ..sing.checkpoint import InstrumentInfo
from ..wavernn.checkpoint import load_voice
from ..wavernn.model import WaveRNN
from ..wavernn.sampler_factory import make_sampler
from ..wavernn.voice import VoiceLines, VoiceSettings

DEFAULT_VOICE = Path(__file__).resolve().parents[2] / "assets" / "voice_default.pt"


class WaveRNNSource:
    """A WaveRNN voice played from the keyboard (see module doc)."""

    models_velocity = True  # velocity drives the loudness feature (and a gain below the clean level)
    supports_glide = True
    renders_glides = True  # render_notes takes glide_from: offline renders batch (synth_core.render.can_batch)
    reports_notes = True  # render_notes(..., progress=) reports each note computed (the batch render's bar)

    def __init__(
        self,
        model: WaveRNN,
        presets: list,
        backend: str = "auto",
        device: str | None = "auto",
        settings: VoiceSettings | None = None,
        seed: int = 0,
    ):
        model.eval()
        self.model = model
        self.sampler = make_sampler(model, backend=backend, device=device)
        c = model.config
        self.sample_rate = c.sample_rate
        self.hop = c.hop
        if not presets:
            raise ValueError("a voice needs at least one timbre preset")
        self.instruments = [InstrumentInfo(p.name, "vocal") for p in presets]
        self.instrument_table = np.stack([np.asarray(p.envelope, np.float32) for p in presets])
        self.device_name = f"{getattr(self.sampler, 'name', backend)} on {describe(select_device(device))}"
        self.settings = settings or VoiceSettings()
        self._seed = int(seed)
        self._calls = 0
        self.prepare(1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, backend: str = "auto", device: str | None = "auto", **kw):
        """Load a voice checkpoint (``CheckpointError`` when unreadable)."""
        dev = select_device(device) if backend != "numba" else select_device("cpu")
        ckpt = load_voice(path, device=str(dev))
        return cls(ckpt.model, ckpt.presets, backend=backend, device=str(dev), **kw)

    def set_settings(self, **changes: Any) -> None:
        """Change glide, vibrato, ADSR ... (from any thread: the worker sees a whole new object)."""
        self.settings = replace(self.settings, **changes)
        self.lines.settings = self.settings

    def prepare(self, n_slots: int) -> None:
        self.lines = VoiceLines(n_slots, self.hop / self.sample_rate, self.instrument_table.shape[1], self.settings)
        self.state = self.sampler.zero_state(n_slots)

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None, glide_from=None) -> None:
        slots = list(slots)
        glide_from = glide_from or [None] * len(slots)
        fresh = self.sampler.zero_state(len(slots))
        self.state.put(np.asarray(slots), fresh)
        for i, s in enumerate(slots):
            self.lines.start(s, float(pitches[i]), float(velocities[i]), vecs[i], glide_from[i])

    def step(self, slots) -> np.ndarray:
        idx = np.asarray(sorted(slots) if not isinstance(slots, list) else slots, dtype=np.int64)
        frames = self.lines.next_frames(idx)
        self._calls += 1
        audio, state = self.sampler.generate(
            frames, self.state.take(idx), temperature=self.settings.temperature, seed=self._seed + self._calls
        )
        self.state.put(idx, state)
        return np.asarray(audio, np.float32) * self.lines.gain[idx][:, None]

    def render_notes(
        self,
        vecs,
        pitches,
        velocities,
        sustain_steps,
        lengths,
        glide_from=None,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """Whole notes at once (offline): the first ``lengths[i]`` samples of each note as :meth:`step` plays it from
        :meth:`start_many` (the same frame features, gain and glide), each note sampled in one call, the notes
        spread over ``workers`` threads (default: one per core; the numba kernel runs without the GIL).

        Each note draws its noise from the voice's seed and a key made of what the note is (vector, pitch, velocity,
        glide): the same note sounds the same wherever it plays (the batch render computes each distinct note once),
        and no schedule of calls shapes it. (:meth:`step` draws with the seed plus the call count instead, so a
        note's noise there depends on the other notes' calls.) ``progress(samples)``: after each note, on this
        thread, its length."""
        n = len(lengths)
        glide_from = list(glide_from) if glide_from is not None else [None] * n
        vecs = np.asarray(vecs, np.float32).reshape(n, -1)
        lines = VoiceLines(1, self.hop / self.sample_rate, self.instrument_table.shape[1], self.settings)
        jobs = []
        for j in range(n):
            pitch, velocity, glide = float(pitches[j]), float(velocities[j]), glide_from[j]
            lines.start(0, pitch, velocity, vecs[j], None if glide is None else float(glide))
            frames = lines.frames_ahead(0, -(-int(lengths[j]) // self.hop))
            jobs.append((frames, lines.gain[0], note_key(vecs[j], pitch, velocity, glide), int(lengths[j])))
        temperature, seed = self.settings.temperature, self._seed

        def run(job) -> np.ndarray:
            frames, gain, key, length = job
            state = self.sampler.zero_state(1)
            state.key[:] = key
            audio, _ = self.sampler.generate(frames[None], state, temperature=temperature, seed=seed)
            return np.asarray(audio, np.float32)[0, :length] * gain

        out: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        order = sorted(range(n), key=lambda j: -len(jobs[j][0]))  # longest first: the threads end together
        workers = max(1, int(workers or os.cpu_count() or 1))
        if workers == 1 or n < 2 or not hasattr(self.sampler, "workers"):  # (torch samplers: their own threads)
            done: Iterator[np.ndarray] = map(run, [jobs[j] for j in order])
            pool = None
        else:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="wavernn-notes")
            done = pool.map(run, [jobs[j] for j in order])
        try:
            for j, audio in zip(order, done, strict=True):
                out[j] = audio
                if progress is not None:
                    progress(len(audio))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return out

    def use_cores(self, n: int) -> int:
        """Split each step's voices over ``n`` threads (offline rendering; the app's worker keeps 1: the audio
        threads need the other core); returns the count before. The samples are the same for any count."""
        before = getattr(self.sampler, "workers", 1)
        if hasattr(self.sampler, "workers"):
            self.sampler.workers = max(1, int(n))
        return before

    def sustain_step(self, seconds: float | None) -> int | None:
        return None  # a voice sustains for as long as the key is held

    def save_state(self, slot: int) -> Any:
        return self.state.take(np.array([slot])), self.lines.snapshot(slot)

    def load_state(self, slot: int, state: Any) -> None:
        sampler_state, line = state
        self.state.put(np.array([slot]), sampler_state)
        self.lines.restore(slot, line)


def note_key(vec: np.ndarray, pitch: float, velocity: float, glide_from: float | None) -> int:
    """A note's noise key for :meth:`WaveRNNSource.render_notes` (the same for the same note, in any run)."""
    glide = np.float64(np.nan if glide_from is None else glide_from)
    data = np.asarray(vec, np.float32).tobytes() + np.array([pitch, velocity, glide], np.float64).tobytes()
    return zlib.crc32(data)


def load_default_voice(
    device: str | None = "auto", path: str | os.PathLike | None = None, backend: str = "auto"
) -> WaveRNNSource:
    """The shipped voice (``assets/voice_default.pt`` or ``$NEUROSYNTH_VOICE_CHECKPOINT``)."""
    path = Path(path or os.environ.get("NEUROSYNTH_VOICE_CHECKPOINT") or DEFAULT_VOICE)
    if not path.is_file():
        raise FileNotFoundError(
            f"default voice weights not found at {path}; train them (wavernn-train) or pass a checkpoint path"
        )
    return WaveRNNSource.from_checkpoint(path, backend=backend, device=device)
