"""Whole SING notes computed in batches (offline rendering): the same samples as hop-by-hop streaming.

:class:`~synth_core.sing.streaming.SingStreamer` steps the LSTM one latent at a time because a live note's length
is unknown; offline every note's length is known before it is computed, so its whole latent sequence comes from one
``nn.LSTM`` call and its frames from one decoder pass, many notes per batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .model import SING

BATCH_STEPS = 48_000  # latent steps per batch (notes x steps): bounds the decoder's activations (~100 MB)


def latent_steps(model: SING, n_samples: int) -> int:
    """Latent steps whose decoded frames cover output samples 0..n_samples-1 (as streaming emits them)."""
    c = model.config
    return (c.trim + n_samples - 1) // c.hop + c.context  # every frame overlapping the last sample


@torch.no_grad()
def render_notes(
    model: SING,
    vecs: np.ndarray,
    pitches: Sequence[int],
    velocities: Sequence[float],
    sustain_steps: Sequence[int | None],
    lengths: Sequence[int],
    workers: int | None = None,
) -> list[np.ndarray]:
    """The first ``lengths[i]`` samples (float32, model rate) of each note, as :class:`SingStreamer` plays it from
    ``start_many`` (``sustain_steps``: the step the time embedding freezes at, ``None`` never).

    Notes of similar lengths share a batch; the batches run on ``workers`` threads (default: one per core), each
    with one torch thread: torch's own threads wait for each other at every operation, which is slow as soon as
    anything else runs on a core, while independent batches just share the cores. The result is in input order.
    """
    model.eval()
    n = len(lengths)
    workers = max(1, int(workers or os.cpu_count() or 1))
    groups = _groups(model, lengths, per_group=-(-n // workers) if n else 1)
    dev = next(model.parameters()).device
    top = model.generator.pitch_embedding.num_embeddings - 1  # SING knows MIDI 0..120
    vecs = np.asarray(vecs, np.float32)

    def run(group: tuple[list[int], int]) -> np.ndarray:
        notes, steps = group
        return _render_group(
            model,
            torch.as_tensor(vecs[notes], device=dev),
            torch.as_tensor([min(max(int(pitches[g]), 0), top) for g in notes], device=dev),
            torch.as_tensor([float(velocities[g]) for g in notes], dtype=torch.float32, device=dev),
            torch.as_tensor([(1 << 30) if sustain_steps[g] is None else int(sustain_steps[g]) for g in notes]),
            steps,
        )

    if dev.type != "cpu" or workers == 1 or len(groups) == 1:
        audios = [run(g) for g in groups]
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="sing-batch") as pool:
                audios = list(pool.map(_no_grad(run), groups))
        finally:
            torch.set_num_threads(threads)
    out: list[np.ndarray | None] = [None] * n
    for (notes, _), audio in zip(groups, audios, strict=True):
        for j, g in enumerate(notes):
            out[g] = audio[j, : int(lengths[g])].copy()
    return out  # type: ignore[return-value]


def _no_grad(fn):
    def call(*args):
        with torch.no_grad():
            return fn(*args)

    return call


def _groups(model: SING, lengths: Sequence[int], per_group: int) -> list[tuple[list[int], int]]:
    """Notes in batches of similar length (by length, at most ``per_group`` notes and :data:`BATCH_STEPS` steps
    each), longest first so that parallel workers finish together; each with its latent steps."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[tuple[list[int], int]] = []
    i = 0
    while i < len(order):
        group = [order[i]]
        steps = latent_steps(model, max(1, int(lengths[order[i]])))
        i += 1
        while i < len(order) and len(group) < per_group:
            steps_next = latent_steps(model, max(1, int(lengths[order[i]])))
            if (len(group) + 1) * steps_next > BATCH_STEPS:
                break
            group.append(order[i])
            steps = steps_next
            i += 1
        groups.append((group, steps))
    return groups[::-1]


def _render_group(
    model: SING,
    vecs: torch.Tensor,
    pitches: torch.Tensor,
    velocities: torch.Tensor,
    limits: torch.Tensor,
    steps: int,
) -> np.ndarray:
    """``steps`` latent steps of each note decoded and trimmed: [notes, samples] float32."""
    c = model.config
    gen = model.generator
    dev = vecs.device
    static = gen.static_condition(vecs.float(), pitches, velocities)
    t = torch.minimum(torch.arange(steps, device=dev)[None], limits.to(dev)[:, None])
    x = torch.cat([static[:, None].expand(-1, steps, -1), gen.time_condition(t)], 2)
    hidden, _ = gen.lstm(x)
    latents = gen.output(hidden).transpose(1, 2)  # [B, latent, T]
    wav = model.decoder(latents, pitches)
    return wav[:, c.trim :].float().cpu().numpy()
