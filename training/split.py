"""The SING split: (instrument, pitch) pairs go to train / valid / test, seeded.

Test holds unseen pitch-instrument pairs of known instruments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable


def split_of(instrument: Hashable, pitch: int, seed: int = 0, p_valid: float = 0.1, p_test: float = 0.1) -> str:
    """'train', 'valid' or 'test' for one (instrument, pitch) pair; stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}/{instrument}/{int(pitch)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < p_valid:
        return "valid"
    if u < p_valid + p_test:
        return "test"
    return "train"


def sing_split(
    pairs: Iterable[tuple[Hashable, int]], seed: int = 0, p_valid: float = 0.1, p_test: float = 0.1
) -> dict[tuple[Hashable, int], str]:
    """Map every distinct (instrument, pitch) pair to its split."""
    return {(i, int(p)): split_of(i, p, seed, p_valid, p_test) for i, p in set(pairs)}
