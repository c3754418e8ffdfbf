"""PCA of the instrument table: a few "timbre" axes to move an embedding along (numpy only)."""

from __future__ import annotations

import numpy as np


class TimbreSpace:
    """Principal components of the instrument embedding table.

    ``coords(vec)`` gives a vector's position on the top components; ``move(vec, k, value)`` returns
    the vector shifted along component ``k`` so its coordinate becomes ``value`` (other coordinates and
    the part of the vector outside the top components are unchanged, since components are orthonormal).
    """

    def __init__(self, table: np.ndarray, n_components: int = 4):
        table = np.asarray(table, dtype=np.float64)
        if table.ndim != 2 or table.shape[0] < 1:
            raise ValueError(f"instrument table must be [n, dim], got shape {table.shape}")
        self.mean = table.mean(axis=0)
        centred = table - self.mean
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        keep = int(min(n_components, vt.shape[0], int(np.sum(s > 1e-9 * max(s.max(initial=0.0), 1e-30)))))
        self.components = vt[:keep]  # [k, dim], orthonormal rows
        n = max(table.shape[0] - 1, 1)
        self.explained_variance = s[:keep] ** 2 / n
        total = float((s**2).sum())
        self.explained_ratio = (s[:keep] ** 2 / total) if total > 0 else np.zeros(keep)
        proj = centred @ self.components.T if keep else np.zeros((table.shape[0], 0))
        self.coord_min = proj.min(axis=0) if keep else np.zeros(0)
        self.coord_max = proj.max(axis=0) if keep else np.zeros(0)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def coords(self, vec: np.ndarray) -> np.ndarray:
        return (np.asarray(vec, dtype=np.float64) - self.mean) @ self.components.T

    def move(self, vec: np.ndarray, k: int, value: float) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float64)
        current = float(self.coords(vec)[k])
        return (vec + (value - current) * self.components[k]).astype(np.float32)
