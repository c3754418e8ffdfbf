"""Short listening examples for the docs: real note / SING / pitch-shift baseline, a chord and a morph.

    python -m training.render_examples assets/sing_default.pt --data data/gm_pack --out docs/examples

For each of a few instruments, the held-out test note nearest middle C (velocity 127) three times: the pack's
real note (FluidR3), the model's, and the pitch-shift baseline (the nearest training pitch, resampled); then a
four-note chord and a five-note arpeggio morphing between two instruments (their embeddings blended, as the app's
morph pad does). 16 kHz mono FLAC (lossless, so the noise floor is heard as it is), ``SECONDS`` each. Writes
``<out>/README.md`` listing the files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from synth_core.atomic_file import atomic_write, atomic_write_text
from synth_core.sing.checkpoint import load_checkpoint
from synth_core.sing.instrument_names import display_name
from training import perceptual
from training.baseline import PitchShiftBaseline
from training.evaluate import load_audio, read_pack, split_seed, training_gain
from training.split import split_of

SECONDS = 3.0
INSTRUMENTS = ("gm000_acoustic_grand_piano", "gm042_cello", "gm071_clarinet")
CHORD = ("gm000_acoustic_grand_piano", (48, 55, 64, 71))  # C3 G3 E4 B4
MORPH = ("gm073_flute", "gm056_trumpet", (60, 64, 67, 72, 67))


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio / max(1.0, peak / 0.99)  # never clip; quieter notes keep their level
    atomic_write(path, lambda f: sf.write(f, audio.astype(np.float32), sample_rate, format="FLAC", subtype="PCM_16"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.render_examples", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=Path("data/gm_pack"))
    ap.add_argument("--out", type=Path, default=Path("docs/examples"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ckpt = load_checkpoint(args.checkpoint, "cpu")
    model, cfg = ckpt.model.eval(), ckpt.config
    names = {info.name: k for k, info in enumerate(ckpt.instruments)}
    _, scale = training_gain(ckpt)
    sr, n = cfg.sample_rate, int(SECONDS * cfg.sample_rate)
    notes = [note for note in read_pack(args.data) if note.instrument in names]
    seed = split_seed(ckpt.training)
    by_key = {(x.instrument, x.pitch, x.velocity): x for x in notes}
    baseline = PitchShiftBaseline(
        [key for key, x in by_key.items() if split_of(x.instrument, x.pitch, seed) == "train"],
        lambda *key: load_audio(by_key[key].path, cfg.note_samples, sr),
    )

    def play(vecs: torch.Tensor, pitches: list[int], velocity: float = 127.0) -> np.ndarray:
        with torch.inference_mode():
            out = model.generate(vecs, torch.tensor(pitches), torch.full((len(pitches),), velocity))
        return (out.float() * scale).numpy()

    table = model.instrument_table.detach()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Listening examples", "", f"Rendered by `python -m training.render_examples {args.checkpoint}`: "
             "16 kHz mono FLAC. Real = the FluidR3 note the model was measured against (a pitch it never heard "
             "for that instrument); baseline = the nearest training pitch of the real instrument, resampled.", "",
             "| instrument (MIDI note) | real | SING | baseline | ViSQOL SING / baseline |",
             "|---|---|---|---|---|"]  # fmt: skip
    for inst in INSTRUMENTS:
        test = [
            x for x in notes if x.instrument == inst and x.velocity == 127 and split_of(inst, x.pitch, seed) == "test"
        ]
        note = min(test, key=lambda x: (abs(x.pitch - 60), x.pitch))
        stem = inst.split("_", 1)[1]
        real = load_audio(note.path, cfg.note_samples, sr)[:n]
        sing = play(table[names[inst]][None], [note.pitch])[0][:n]
        base = baseline(inst, note.pitch, 127, cfg.note_samples)[:n]
        for kind, audio in (("real", real), ("sing", sing), ("baseline", base)):
            write_flac(args.out / f"{stem}_{kind}.flac", audio, sr)
        links = " | ".join(f"[{k}]({stem}_{k}.flac)" for k in ("real", "sing", "baseline"))
        mos = [perceptual.visqol_mos(real, x, sr) for x in (sing, base)]
        lines.append(f"| {display_name(inst)} ({note.pitch}) | {links} | {mos[0]:.2f} / {mos[1]:.2f} |")
    inst, pitches = CHORD
    chord = play(table[names[inst]].expand(len(pitches), -1), list(pitches)).sum(axis=0)[:n]
    write_flac(args.out / "chord_sing.flac", chord, sr)
    a, b, arpeggio = MORPH
    weights = np.linspace(0.0, 1.0, len(arpeggio))
    vecs = torch.stack([(1 - w) * table[names[a]] + w * table[names[b]] for w in weights])
    step = int(0.6 * sr)
    morph = np.zeros(step * (len(arpeggio) - 1) + n, np.float32)
    for k, note_audio in enumerate(play(vecs, list(arpeggio))):
        morph[k * step : k * step + n] += note_audio[:n]
    write_flac(args.out / "morph_sing.flac", morph, sr)
    lines += [
        "",
        f"- [chord_sing.flac](chord_sing.flac): {display_name(inst)}, MIDI {', '.join(map(str, pitches))} at once.",
        f"- [morph_sing.flac](morph_sing.flac): five notes from {display_name(a)} to {display_name(b)} (their "
        "embeddings blended 0, 25, 50, 75, 100 %).",
        "",
    ]
    atomic_write_text(args.out / "README.md", "\n".join(lines))
    print(f"wrote {len(INSTRUMENTS) * 3 + 2} files and README.md to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
