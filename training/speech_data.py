"""Build a speech corpus for the WaveRNN voice: 16 kHz mono WAVs plus a manifest with a seeded split.

Sources: Debian's ``asterisk-core-sounds-en-g722`` prompts (G.722 at 16 kHz, decoded with the ``G722``
package from PyPI, extra ``speech``) or any folder of WAV/FLAC recordings (mixed down, resampled).

    python -m training.speech_data --out data/speech                      # the asterisk prompts
    python -m training.speech_data --src my_recordings --out data/mine

Writes ``<out>/wav/<name>.wav`` and ``<out>/manifest.csv`` (file, split, seconds, source); the split
(train/valid/test) is by file, seeded. Files that fail to decode are skipped and reported.
Also: ``synthetic_tone`` / ``synthetic_clips``, harmonic tones for tests and ``wavernn-train --synthetic``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from synth_core.dsp import resample

SAMPLE_RATE = 16000
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en")
AUDIO_SUFFIXES = {".wav", ".flac", ".g722"}
MANIFEST = "manifest.csv"
SPLITS = ("train", "valid", "test")


@dataclass
class Entry:
    file: str  # relative to the corpus folder
    split: str
    seconds: float
    source: str = ""


def decode_g722(path: Path) -> np.ndarray:
    """A raw G.722 file (64 kbit/s, 16 kHz) -> float32 mono in [-1, 1)."""
    try:
        import G722
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("decoding .g722 needs the G722 package: pip install 'neurosynth[speech]'") from exc
    data = path.read_bytes()
    if not data:
        raise ValueError("empty file")
    pcm = np.asarray(G722.G722(SAMPLE_RATE, 64000).decode(data), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def read_audio(path: Path) -> np.ndarray:
    """Any supported file -> float32 mono at 16 kHz."""
    if path.suffix.lower() == ".g722":
        return decode_g722(path)
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(audio.mean(1), sr, SAMPLE_RATE)


def trim_silence(audio: np.ndarray, threshold_db: float = -45.0, frame: int = 160, margin: int = 3) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``threshold_db`` (relative to full scale), keeping
    ``margin`` frames of context."""
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt((audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(1))
    loud = np.flatnonzero(20 * np.log10(rms + 1e-9) > threshold_db)
    if len(loud) == 0:
        return audio[:0]
    lo = max(0, loud[0] - margin) * frame
    hi = min(n, loud[-1] + 1 + margin) * frame
    return audio[lo:hi]


def split_names(names: Sequence[str], seed: int = 0, p_valid: float = 0.05, p_test: float = 0.05) -> dict[str, str]:
    """Seeded split by file: name -> train/valid/test (at least one valid and test file when there are 3+)."""
    order = sorted(names)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(order))
    n = len(order)
    n_valid = max(1 if n >= 3 else 0, int(round(p_valid * n)))
    n_test = max(1 if n >= 3 else 0, int(round(p_test * n)))
    out = {}
    for rank, i in enumerate(perm):
        out[order[i]] = "valid" if rank < n_valid else "test" if rank < n_valid + n_test else "train"
    return out


def find_sources(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def build_corpus(
    src: Path,
    out: Path,
    seed: int = 0,
    p_valid: float = 0.05,
    p_test: float = 0.05,
    min_seconds: float = 0.3,
    log: Callable[[str], None] = print,
) -> list[Entry]:
    """Decode every recording under ``src`` into ``out/wav`` and write ``out/manifest.csv``."""
    files = find_sources(src)
    if not files:
        raise FileNotFoundError(f"no .wav/.flac/.g722 files under {src}")
    (out / "wav").mkdir(parents=True, exist_ok=True)
    kept: list[tuple[str, float, str]] = []
    failed: list[str] = []
    for path in files:
        rel = path.relative_to(src)
        name = "__".join(rel.with_suffix("").parts) + ".wav"
        try:
            audio = trim_silence(read_audio(path))
            if not np.all(np.isfinite(audio)):
                raise ValueError("non-finite samples")
        except Exception as exc:  # any decoder error: skip the file, report it
            failed.append(f"{rel}: {exc}")
            continue
        if len(audio) < min_seconds * SAMPLE_RATE:
            failed.append(f"{rel}: shorter than {min_seconds} s after trimming silence")
            continue
        sf.write(str(out / "wav" / name), np.clip(audio, -1, 32767 / 32768), SAMPLE_RATE, subtype="PCM_16")
        kept.append((f"wav/{name}", len(audio) / SAMPLE_RATE, str(rel)))
    splits = split_names([k[0] for k in kept], seed, p_valid, p_test)
    entries = [Entry(f, splits[f], round(s, 3), source) for f, s, source in kept]
    write_manifest(out, entries)
    for line in failed:
        log(f"skipped {line}")
    total = sum(e.seconds for e in entries)
    counts = {s: sum(e.split == s for e in entries) for s in SPLITS}
    log(f"{len(entries)} files ({total / 60:.1f} min) written to {out}, split {counts}, {len(failed)} skipped")
    return entries


def write_manifest(out: Path, entries: list[Entry]) -> None:
    with open(out / MANIFEST, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "split", "seconds", "source"])
        for e in entries:
            w.writerow([e.file, e.split, e.seconds, e.source])


def read_manifest(folder: Path, seed: int = 0) -> list[Entry]:
    """``folder/manifest.csv`` if present, else every WAV/FLAC under ``folder`` with a seeded 90/5/5 split."""
    path = folder / MANIFEST
    if path.is_file():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            return [Entry(r["file"], r["split"], float(r.get("seconds") or 0), r.get("source", "")) for r in rows]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: bad manifest ({exc})") from exc
    files = [p for p in find_sources(folder) if p.suffix.lower() != ".g722"]
    if not files:
        raise FileNotFoundError(f"{folder}: no manifest.csv and no .wav/.flac files")
    names = [str(p.relative_to(folder)) for p in files]
    splits = split_names(names, seed)
    return [Entry(n, splits[n], 0.0, n) for n in names]


# ---- synthetic data (tests, --synthetic) ---------------------------------------------------------


def synthetic_tone(
    f0_hz: np.ndarray, envelope: Callable[[np.ndarray], np.ndarray], rms: float = 0.1, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A harmonic tone with per-sample f0 [T] whose harmonic amplitudes follow ``envelope(freq_hz)``."""
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    phase = 2 * np.pi * np.cumsum(f0_hz) / sample_rate
    y = np.zeros_like(f0_hz)
    for k in range(1, int(sample_rate / 2 / max(f0_hz.min(), 20.0)) + 1):
        fk = k * f0_hz
        y += envelope(fk) * (fk < sample_rate / 2 - 100) * np.sin(k * phase)
    return (rms * y / max(np.sqrt(np.mean(y**2)), 1e-9)).astype(np.float32)


def formant_envelope(centres: Sequence[float], widths: Sequence[float], floor: float = 0.03):
    """An envelope function: sum of Gaussian bumps in Hz plus a floor."""

    def env(f: np.ndarray) -> np.ndarray:
        return floor + sum(np.exp(-(((f - c) / w) ** 2)) for c, w in zip(centres, widths, strict=True))

    return env


def synthetic_clips(n: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """Random harmonic tones: gliding f0 (100-400 Hz), a loudness ramp, random formant envelopes, short
    unvoiced noise gaps."""
    rng = np.random.default_rng(seed)
    T = int(seconds * SAMPLE_RATE)
    clips = []
    for _ in range(n):
        m0, m1 = rng.uniform(43, 67, 2)  # MIDI ~100-400 Hz
        f0 = 440 * 2 ** ((np.linspace(m0, m1, T) - 69) / 12)
        env = formant_envelope(rng.uniform(300, 3500, 2), rng.uniform(150, 600, 2))
        y = synthetic_tone(f0, env, rms=1.0)
        gain = 10 ** (np.linspace(*rng.uniform(-35, -12, 2), T) / 20)
        y = y * gain
        gap = int(rng.integers(T // 8, T // 2))
        y[gap : gap + T // 10] = rng.standard_normal(min(T // 10, T - gap)) * 0.01
        clips.append(y.astype(np.float32))
    return clips


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.speech_data", description=__doc__.split("\n")[0])
    p.add_argument("--src", type=Path, default=ASTERISK_DIR, help=f"recordings folder (default {ASTERISK_DIR})")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--p-valid", type=float, default=0.05)
    p.add_argument("--p-test", type=float, default=0.05)
    args = p.parse_args(argv)
    if not args.src.exists():
        hint = " (apt-get install asterisk-core-sounds-en-g722)" if args.src == ASTERISK_DIR else ""
        print(f"speech_data: {args.src} does not exist{hint}", file=sys.stderr)
        return 2
    try:
        build_corpus(args.src.resolve(), args.out, args.seed, args.p_valid, args.p_test)
    except (OSError, RuntimeError) as exc:
        print(f"speech_data: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def load_split(folder: str | Path, split: str, max_items: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """The audio (float32, 16 kHz mono) of one split of a corpus folder, in manifest order."""
    folder = Path(folder)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    entries = [e for e in read_manifest(folder, seed) if e.split == split]
    if not entries:
        raise ValueError(f"{folder}: no {split} files")
    return [read_audio(folder / e.file) for e in entries[:max_items]]
