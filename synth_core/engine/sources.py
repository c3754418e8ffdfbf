"""Voice sources: what the engine's worker steps to get audio at the model's rate.

A source has a fixed number of slots (prepared by the engine) and works like
:class:`synth_core.sing.streaming.SingStreamer`: ``start_many`` begins notes in slots,
``step`` returns the next ``hop`` samples of each given slot. ``save_state``/``load_state``
let the engine's note cache restart a note from a snapshot instead of warming it up. Optional: ``prime(n)``
prepares the warm-up of ``n`` notes at once; a source with ``supports_between`` calls ``step(slots, between)``'s
``between()`` half way through a step (the engine starts new notes there); ``set_vectors(slots, vecs)`` lets
sounding notes continue with other instrument vectors (an MPE slide).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ..device import describe, select_device, use_realtime_threads
from ..sing.checkpoint import CheckpointError, InstrumentInfo, load_checkpoint
from ..sing.model import SING
from ..sing.speed_probe import SpeedChoice, cpu_speed
from ..sing.streaming import SingStreamer

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "sing_default.pt"


@runtime_checkable
class VoiceSource(Protocol):
    """The protocol the engine's worker drives (all calls come from one thread)."""

    sample_rate: int  # model rate (16 kHz for SING)
    hop: int  # samples returned per step
    instruments: list[InstrumentInfo]
    instrument_table: np.ndarray  # [n_instruments, dim] float32
    # optional: instrument_gains, [n_instruments] linear: the level a row plays at (default 1; a user's instrument)
    device_name: str
    models_velocity: bool  # True: velocity already shapes the audio (no extra gain)

    def prepare(self, n_slots: int) -> None: ...
    def start_many(
        self,
        slots: Sequence[int],
        vecs: np.ndarray,
        pitches: Sequence[int],
        velocities: Sequence[float],
        sustain_steps: Sequence[int | None] | None = None,
    ) -> None: ...
    def step(self, slots: Sequence[int]) -> np.ndarray: ...
    def sustain_step(self, seconds: float | None) -> int | None: ...
    def save_state(self, slot: int) -> Any: ...
    def load_state(self, slot: int, state: Any) -> None: ...


class SineSource:
    """Test double: a harmonic tone at the MIDI pitch (deterministic, no model).

    Harmonic k has amplitude 1/k (4 harmonics); velocity scales the level;
    ``step_delay_s`` makes every step slow (for underrun tests).
    """

    models_velocity = True

    def __init__(
        self,
        sample_rate: int = 16000,
        hop: int = 256,
        n_instruments: int = 2,
        dim: int = 16,
        step_delay_s: float = 0.0,
        harmonics: int = 4,
    ):
        self.sample_rate = sample_rate
        self.hop = hop
        self.instruments = [InstrumentInfo(f"sine{i}", "synth_lead") for i in range(n_instruments)]
        self.instrument_table = np.eye(n_instruments, dim, dtype=np.float32)
        self.device_name = "CPU (sine test source)"
        self.step_delay_s = step_delay_s
        self.harmonics = harmonics
        self.prepare(1)

    def prepare(self, n_slots: int) -> None:
        self.freq = np.zeros(n_slots)
        self.amp = np.zeros(n_slots)
        self.n = np.zeros(n_slots, dtype=np.int64)  # samples emitted so far

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        idx = np.asarray(list(slots), dtype=np.int64)
        self.freq[idx] = 440.0 * 2.0 ** ((np.asarray(pitches, dtype=np.float64) - 69.0) / 12.0)
        self.amp[idx] = 0.25 * np.asarray(velocities, dtype=np.float64) / 127.0
        self.n[idx] = 0

    def step(self, slots) -> np.ndarray:
        if self.step_delay_s:
            import time

            time.sleep(self.step_delay_s)
        idx = np.asarray(list(slots), dtype=np.int64)
        t = (self.n[idx, None] + np.arange(self.hop)) / self.sample_rate
        phase = 2 * np.pi * self.freq[idx, None] * t
        out = sum(np.sin(k * phase) / k for k in range(1, self.harmonics + 1))
        self.n[idx] += self.hop
        return (self.amp[idx, None] * out).astype(np.float32)

    def sustain_step(self, seconds: float | None) -> int | None:
        return None

    def render_notes(self, vecs, pitches, velocities, sustain_steps, lengths) -> list[np.ndarray]:
        """Whole notes at once (offline): the samples :meth:`step` would emit from :meth:`start_many`."""
        out = []
        for p, v, n in zip(pitches, velocities, lengths, strict=True):
            freq = 440.0 * 2.0 ** ((float(p) - 69.0) / 12.0)
            phase = 2 * np.pi * freq * (np.arange(int(n)) / self.sample_rate)
            tone = sum(np.sin(k * phase) / k for k in range(1, self.harmonics + 1))
            out.append((0.25 * float(v) / 127.0 * tone).astype(np.float32))
        return out

    def save_state(self, slot: int) -> Any:
        return (self.freq[slot], self.amp[slot], int(self.n[slot]))

    def load_state(self, slot: int, state: Any) -> None:
        self.freq[slot], self.amp[slot], self.n[slot] = state


class SingSource:
    """A SING model stepped hop by hop by a :class:`SingStreamer` (one batch for all slots).

    ``warmup_dtype``: precision of new notes' warm-up (``None``: ``dtype``; ``"auto"``: on the CPU, bf16 where a
    short measurement at start finds it clearly faster, see :func:`~synth_core.sing.speed_probe.cpu_speed` and
    :class:`SingStreamer`; on a GPU, ``dtype``). ``speed``: that measurement (``None`` when none ran), whose thread
    choice the app applies with :func:`~synth_core.device.use_realtime_threads`.
    """

    models_velocity = True

    def __init__(
        self,
        model: SING,
        instruments: list[InstrumentInfo] | None = None,
        dtype: torch.dtype = torch.float32,
        device_name: str | None = None,
        warmup_dtype: torch.dtype | str | None = None,
    ):
        model.eval()
        self.model = model
        self.config = model.config
        self.sample_rate = model.config.sample_rate
        self.hop = model.config.hop
        n = model.config.n_instruments
        self.instruments = instruments or [InstrumentInfo(f"instrument {i}") for i in range(n)]
        self.instrument_table = model.instrument_table.detach().float().cpu().numpy().copy()
        self.checkpoint_path: Path | None = None  # the file it was loaded from (new instruments are fitted to it)
        self.device = next(model.parameters()).device
        self.device_name = device_name or describe(self.device)
        self.dtype = dtype
        self._warmup_auto = warmup_dtype == "auto"
        self.speed: SpeedChoice | None = None
        self.warmup_dtype = self._auto_warmup() if self._warmup_auto else warmup_dtype
        self.streamer: SingStreamer | None = None
        self.prepare(1)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | None = "auto",
        dtype: torch.dtype = torch.float32,
        warmup_dtype: torch.dtype | str | None = None,
    ) -> SingSource:
        """Load a checkpoint (``CheckpointError`` when unreadable) onto ``device`` ("auto": GPU if any)."""
        dev = select_device(device)
        ckpt = load_checkpoint(path, dev, with_training=False)
        source = cls(ckpt.model, ckpt.instruments, dtype=dtype, device_name=describe(dev), warmup_dtype=warmup_dtype)
        source.checkpoint_path = Path(path)
        return source

    def prepare(self, n_slots: int) -> None:
        if self.streamer is None or self.streamer.max_voices != n_slots:
            self.streamer = self._streamer(n_slots)

    def _auto_warmup(self) -> torch.dtype | None:
        """The warm-up precision the speed probe measures faster (on the CPU; a GPU warms up in ``dtype``)."""
        if self.device.type != "cpu":
            return None
        self.speed = cpu_speed(self.model, self.dtype)
        return self.speed.warmup_dtype

    def _streamer(self, n_slots: int) -> SingStreamer:
        return SingStreamer(self.model, max_voices=n_slots, dtype=self.dtype, warmup_dtype=self.warmup_dtype)

    def start_many(self, slots, vecs, pitches, velocities, sustain_steps=None) -> None:
        vecs_t = torch.as_tensor(np.asarray(vecs, dtype=np.float32), device=self.device)
        top = self.model.generator.pitch_embedding.num_embeddings - 1  # SING knows MIDI 0..120
        pitches = [min(max(int(p), 0), top) for p in pitches]
        self.streamer.start_many(list(slots), vecs_t, pitches, [float(v) for v in velocities], sustain_steps)

    def set_vectors(self, slots, vecs) -> None:
        """Sounding notes continue with new instrument vectors (an MPE slide; see :meth:`SingStreamer.set_vectors`)."""
        self.streamer.set_vectors(list(slots), torch.as_tensor(np.asarray(vecs, dtype=np.float32), device=self.device))

    supports_between = True  # step(slots, between): see SingStreamer.step

    def step(self, slots, between: Callable[[], None] | None = None) -> np.ndarray:
        return self.streamer.step(list(slots), between).float().cpu().numpy()

    def render_notes(self, vecs, pitches, velocities, sustain_steps, lengths) -> list[np.ndarray]:
        """Whole notes at once (offline, in ``dtype``): the samples :meth:`step` would emit from :meth:`start_many`,
        computed in batches (:func:`synth_core.sing.batch.render_notes`)."""
        from ..sing.batch import render_notes

        return render_notes(self.model, vecs, pitches, velocities, sustain_steps, lengths)

    def prime(self, batch: int) -> None:
        """Prepare the warm-up of ``batch`` notes at once (see :meth:`SingStreamer.prime`); no slot changes."""
        self.streamer.prime(batch)

    def fall_back_to_cpu(self) -> bool:
        """Move the model and every voice's state to the CPU after a GPU failure; False if already there. The now CPU
        engine's torch threads (and with ``warmup_dtype="auto"`` its warm-up precision) are the speed probe's."""
        if self.device.type == "cpu":
            return False
        old = self.streamer
        cpu = torch.device("cpu")
        self.model.to(cpu)
        self.device = cpu
        self.speed = cpu_speed(self.model, self.dtype, warmup=self._warmup_auto)
        use_realtime_threads(cpu, self.speed.threads)  # (called from the engine's worker: its own torch threads too)
        if self._warmup_auto:
            self.warmup_dtype = self.speed.warmup_dtype
        self.device_name = f"{describe(cpu)} - GPU failed"
        self.streamer = self._streamer(old.max_voices)
        self.streamer.take_over(old)
        return True

    def sustain_step(self, seconds: float | None) -> int | None:
        """Latent step whose frame is centred ``seconds`` into the note (output sample ~ step*hop - pad + frame/2)."""
        if seconds is None:
            return None
        c = self.config
        return max(c.context, int((seconds * c.sample_rate + c.pad - c.frame // 2) / c.hop))

    def save_state(self, slot: int) -> Any:
        return self.streamer.save_slot(slot)

    def load_state(self, slot: int, state: Any) -> None:
        self.streamer.load_slot(slot, state)


def load_default_source(
    device: str | None = "auto", path: str | os.PathLike | None = None, warmup_dtype: torch.dtype | str | None = None
) -> SingSource:
    """The shipped SING voice (``assets/sing_default.pt``, or ``$NEUROSYNTH_SING_CHECKPOINT``).

    Raises ``FileNotFoundError`` with a clear message while the weights are missing.
    """
    path = Path(path or os.environ.get("NEUROSYNTH_SING_CHECKPOINT") or DEFAULT_CHECKPOINT)
    if not path.is_file():
        raise FileNotFoundError(
            f"default SING weights not found at {path}; train them (sing-train) or pass a checkpoint "
            "path (e.g. sing-render --checkpoint PATH, or set NEUROSYNTH_SING_CHECKPOINT)"
        )
    try:
        return SingSource.from_checkpoint(path, device=device, warmup_dtype=warmup_dtype)
    except CheckpointError as e:
        if path != DEFAULT_CHECKPOINT:
            raise
        raise CheckpointError(
            f"{e}. The shipped default weights are damaged: restore them with `git checkout -- "
            "assets/sing_default.pt` (or reinstall), or retrain them with training/train_default.sh"
        ) from e
