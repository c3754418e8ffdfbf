"""Whole SING notes computed in batches (offline rendering): the same samples as hop-by-hop streaming.

:class:`~synth_core.sing.streaming.SingStreamer` steps the LSTM one latent at a time because a live note's length
is unknown; offline every note's length is known before it is computed, so its whole latent sequence comes from one
``nn.LSTM`` call and its frames from one decoder pass, many notes per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .model import SING

BATCH_STEPS = 48_000  # latent steps per batch (notes x steps): bounds the decoder's activations (~100 MB)


def latent_steps(model: SING, n_samples: int) -> int:
    """Latent steps whose decoded frames cover output samples 0..n_samples-1 (as streaming emits them)."""
    c = model.config
    return -(-(c.trim + n_samples - c.frame + c.hop) // c.hop) + c.context - 1


@torch.no_grad()
def render_notes(
    model: SING,
    vecs: np.ndarray,
    pitches: Sequence[int],
    velocities: Sequence[float],
    sustain_steps: Sequence[int | None],
    lengths: Sequence[int],
) -> list[np.ndarray]:
    """The first ``lengths[i]`` samples (float32, model rate) of each note, as :class:`SingStreamer` plays it from
    ``start_many`` (``sustain_steps``: the step the time embedding freezes at, ``None`` never). Notes of similar
    lengths share a batch; the result is in the input order."""
    model.eval()
    dev = next(model.parameters()).device
    n = len(lengths)
    out: list[np.ndarray | None] = [None] * n
    order = sorted(range(n), key=lambda i: lengths[i])
    top = model.generator.pitch_embedding.num_embeddings - 1  # SING knows MIDI 0..120
    i = 0
    while i < n:
        steps = latent_steps(model, max(1, int(lengths[order[min(n - 1, i)]])))
        group = [order[i]]
        i += 1
        while i < n:  # the group's longest note sets its steps: add notes while the batch stays in budget
            steps_next = latent_steps(model, max(1, int(lengths[order[i]])))
            if (len(group) + 1) * steps_next > BATCH_STEPS:
                break
            group.append(order[i])
            steps = steps_next
            i += 1
        audio = _render_group(
            model,
            torch.as_tensor(np.asarray(vecs, np.float32)[group], device=dev),
            torch.as_tensor([min(max(int(pitches[g]), 0), top) for g in group], device=dev),
            torch.as_tensor([float(velocities[g]) for g in group], dtype=torch.float32, device=dev),
            torch.as_tensor([(1 << 30) if sustain_steps[g] is None else int(sustain_steps[g]) for g in group]),
            steps,
        )
        for j, g in enumerate(group):
            out[g] = audio[j, : int(lengths[g])].copy()
    return out  # type: ignore[return-value]


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
    dec = model.decoder
    frames = dec.layers(latents)  # [B, C, T - context + 1]
    wav = F.conv_transpose1d(frames, dec.frame_weight(), dec.synthesis.bias, stride=c.hop)[:, 0]
    return wav[:, c.trim :].float().cpu().numpy()
