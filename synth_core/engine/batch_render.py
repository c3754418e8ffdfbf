"""Batch offline rendering: the engine plans the notes, the source computes them in batches, windows are mixed.

1. :class:`~synth_core.engine.plan.NotePlanner` runs the engine's own event handling over every event (the same
   voice allocation, stealing, pedal, mono, bend and chunking as a real-time ``render_offline``), recording each
   note a voice plays instead of computing it.
2. Notes that sound the same (instrument vector, pitch, velocity) are computed once, as long as their longest
   occurrence needs, by the source's ``render_notes`` (SING: whole latent sequences in one LSTM call and one decoder
   pass per batch of notes), a few windows ahead of the mix.
3. :class:`~synth_core.engine.note_mixer.NoteMixer` resamples, envelopes and sums them window by window; each
   window is handed out as soon as it is mixed, and a note's audio is dropped after its last occurrence, so memory
   holds the notes of a few windows, not the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import mido
import numpy as np
import torch

from .config import EngineConfig
from .engine import Engine
from .note_mixer import NoteMixer
from .plan import NotePlanner, Plan, PlannedNote

WINDOW = 1 << 18  # output samples mixed and handed out at once (5.5 s at 48 kHz)
LOOKAHEAD = 4  # windows whose new notes are computed together (larger batches)


def render_batch(
    source,
    config: EngineConfig,
    set_up: Callable[[Engine], None],
    events: Iterable[tuple[int, mido.Message]],
    total_frames: int,
    progress: Callable[[int, str], None] | None = None,
) -> Iterator[np.ndarray]:
    """``total_frames`` output samples of ``events`` (sorted ``(frame, message)``), window by window.

    ``set_up(engine)`` prepares the planning engine (program map, instruments) as it would a real-time one;
    ``source.render_notes(vecs, pitches, velocities, sustain_steps, lengths)`` computes whole notes (a source that
    glides, ``supports_glide``, also gets ``glide_from``: the note each mono glide starts from, else None).
    ``progress(frames_done, stage)``: "planning" now and then, then "rendering": the share of the work done, as
    output frames (see :func:`mix_plan`).
    """
    planner = NotePlanner(source, config)
    set_up(planner.engine)
    plan = planner.run(events, total_frames, None if progress is None else (lambda done: progress(done, "planning")))
    if progress is not None:
        progress = (lambda p: lambda done: p(done, "rendering"))(progress)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parallel work runs on threads of its own (render_notes), never on torch's pool
    try:
        yield from mix_plan(source, plan, config.resampler_taps, progress)
    finally:
        torch.set_num_threads(threads)


def mix_plan(source, plan: Plan, taps: int, progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    """The plan's output, window by window (see :func:`render_batch`).

    ``progress(frames)`` after each window and, while notes are computed, after each note a source reports
    (``render_notes(..., progress=)``, the voice; others after each batch): the frames mixed, or the share of the
    notes' source samples computed times the output's frames if that is more. Computing the notes is nearly all of the
    work and comes first (the first window needs most distinct notes), so the bar moves at the pace the work is
    done instead of waiting at 0 and then jumping."""
    mixer = NoteMixer(plan, taps)
    notes = plan.notes
    keys = [n.key() for n in notes]
    last_use: dict[tuple, int] = {k: i for i, k in enumerate(keys)}
    need: dict[tuple, int] = {}  # source samples a key's longest occurrence reads
    unbent_len: dict[tuple, int] = {}  # output samples of a key's longest unbent occurrence
    hop = source.hop
    for n, k in zip(notes, keys, strict=True):
        need[k] = max(need.get(k, 0), -(-mixer.source_samples(n) // hop) * hop)
        if mixer.unbent(n):
            unbent_len[k] = max(unbent_len.get(k, 0), n.end - n.start)
    total_work = max(1, sum(need.values()))  # source samples of every distinct note
    work_done = mixed = 0

    def report(samples: int) -> None:
        nonlocal work_done
        work_done += samples
        if progress is not None:
            progress(max(mixed, min(plan.total_frames, plan.total_frames * work_done // total_work)))

    audio: dict[tuple, np.ndarray] = {}  # source audio of the keys computed, until their last occurrence
    resampled: dict[tuple, np.ndarray] = {}  # output-rate audio of unbent keys, until their last occurrence
    sounding: dict[int, np.ndarray] = {}  # note index -> its output-rate audio, while it sounds
    computed_to = 0  # notes[:computed_to] have their source audio (or had it)
    nxt = 0  # the next note to start
    for a in range(0, plan.total_frames, WINDOW):
        b = min(a + WINDOW, plan.total_frames)
        if computed_to < len(notes) and notes[computed_to].start < b:
            horizon = a + LOOKAHEAD * WINDOW
            stop = computed_to
            while stop < len(notes) and notes[stop].start < horizon:
                stop += 1
            _compute(source, plan, notes, keys, computed_to, stop, need, audio, report)
            computed_to = stop
        while nxt < len(notes) and notes[nxt].start < b:  # notes starting here: their output-rate audio
            note, k = notes[nxt], keys[nxt]
            if mixer.unbent(note):
                if k not in resampled:
                    resampled[k] = mixer.resample_for(note, audio[k], unbent_len[k])
                sounding[nxt] = resampled[k]
            else:
                sounding[nxt] = mixer.resample(note, audio[k])
            if last_use[k] == nxt:  # (the notes still sounding keep their own reference)
                audio.pop(k, None)
                resampled.pop(k, None)
            nxt += 1
        mix = np.zeros(b - a, np.float32)
        for i, out in list(sounding.items()):
            mixer.add(mix, a, notes[i], out)
            if notes[i].end <= b:
                del sounding[i]
        mixer.finish(mix, a)
        mixed = b
        report(0)
        yield mix


def _compute(
    source,
    plan: Plan,
    notes: list[PlannedNote],
    keys: list[tuple],
    lo: int,
    hi: int,
    need: dict[tuple, int],
    audio: dict[tuple, np.ndarray],
    report: Callable[[int], None],
) -> None:
    """Compute the source audio of the keys first heard in ``notes[lo:hi]`` (one ``render_notes`` call); ``report``
    gets the source samples computed (after each note where the source says, else after the call)."""
    todo: dict[tuple, PlannedNote] = {}
    for n, k in zip(notes[lo:hi], keys[lo:hi], strict=True):
        if k not in audio and k not in todo:
            todo[k] = n
    if not todo:
        return
    first = list(todo.values())
    extra = {"glide_from": [n.glide_from for n in first]} if getattr(source, "supports_glide", False) else {}
    each = bool(getattr(source, "reports_notes", False))  # render_notes(..., progress=) after each note
    if each:
        extra["progress"] = report
    rendered = source.render_notes(
        np.stack([n.vec for n in first]),
        [n.note for n in first],
        [float(n.velocity) for n in first],
        [plan.sustain_step] * len(first),
        [need[k] for k in todo],
        **extra,
    )
    audio.update(zip(todo, rendered, strict=True))
    if not each:
        report(sum(need[k] for k in todo))
