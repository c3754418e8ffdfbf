"""Block-sparse (BSR-like) storage of pruned WaveRNN matrices for the numba sampler.

A matrix W [R, C] pruned in blocks of (br, bc) is stored per block-row i as the block-column
indices ``col_idx[row_ptr[i]:row_ptr[i+1]]`` of its kept blocks and their dense values. Every
supported block shape has 16 weights ((4, 4) and (16, 1)), so the values of block k are one row
``values[k]`` of a [n_blocks, 16] float32 array, stored column-major inside the block
(``values[k, b * br + a] = W[i * br + a, j * bc + b]``): the kernel's accumulator for the br rows
of a block-row is then updated by contiguous runs of br weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPPORTED_BLOCKS = ((4, 4), (16, 1))


@dataclass(frozen=True)
class BlockSparse:
    """A block-sparse matrix; see the module docstring for the layout."""

    shape: tuple[int, int]
    block: tuple[int, int]
    row_ptr: np.ndarray  # int32 [R / br + 1]
    col_idx: np.ndarray  # int32 [n_blocks] block-column index of each kept block
    values: np.ndarray  # float32 [n_blocks, br * bc], column-major inside the block

    @property
    def n_blocks(self) -> int:
        return int(self.col_idx.shape[0])

    def density(self) -> float:
        """Fraction of the matrix's blocks (= of its weights) that are stored."""
        br, bc = self.block
        total = (self.shape[0] // br) * (self.shape[1] // bc)
        return self.n_blocks / total if total else 0.0

    def to_dense(self) -> np.ndarray:
        """The dense [R, C] float32 matrix (zeros where blocks were dropped)."""
        br, bc = self.block
        out = np.zeros(self.shape, np.float32)
        for i in range(len(self.row_ptr) - 1):
            for k in range(self.row_ptr[i], self.row_ptr[i + 1]):
                j = int(self.col_idx[k])
                out[i * br : (i + 1) * br, j * bc : (j + 1) * bc] = self.values[k].reshape(bc, br).T
        return out

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """W @ x in numpy (a slow reference for tests)."""
        return self.to_dense() @ np.asarray(x, np.float32)


def _blocks(a: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """[R, C] -> [R/br, C/bc, br, bc] view of the blocks."""
    br, bc = block
    R, C = a.shape
    return a.reshape(R // br, br, C // bc, bc).transpose(0, 2, 1, 3)


def pack_bsr(matrix: np.ndarray, block: tuple[int, int], keep: np.ndarray | None = None) -> BlockSparse:
    """Pack a pruned dense matrix into block-sparse storage.

    The kept blocks are those with a nonzero weight, or with ``keep`` (a 0/1 pruning mask of the
    same shape) given, those the mask keeps; weights outside kept blocks must be zero either way.
    Raises ValueError for an unsupported block shape, a shape the blocks do not tile, or zeros
    (or a mask) that do not form whole blocks: such a matrix was not pruned in these blocks.
    """
    block = tuple(int(b) for b in block)
    if block not in SUPPORTED_BLOCKS:
        raise ValueError(f"block {block} not supported; use one of {SUPPORTED_BLOCKS}")
    w = np.asarray(matrix, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    br, bc = block
    R, C = w.shape
    if R % br or C % bc:
        raise ValueError(f"matrix shape {w.shape} is not a whole number of {block} blocks")
    nz = _blocks(w != 0, block)
    if keep is None:
        kept = nz.any(axis=(2, 3))
        partial = kept & ~nz.all(axis=(2, 3))
        if partial.any():
            i, j = np.argwhere(partial)[0]
            raise ValueError(
                f"zeros do not form whole {block} blocks ({int(partial.sum())} partly zero blocks, first at "
                f"block-row {i}, block-column {j}); pass the pruning mask as keep= or prune in {block} blocks"
            )
    else:
        k = _blocks(np.asarray(keep) != 0, block)
        if k.shape != nz.shape:
            raise ValueError(f"mask shape {np.shape(keep)} != matrix shape {w.shape}")
        kept = k.all(axis=(2, 3))
        if (k.any(axis=(2, 3)) & ~kept).any():
            raise ValueError(f"pruning mask does not form whole {block} blocks")
        if (nz & ~kept[..., None, None]).any():
            raise ValueError("nonzero weights outside the blocks the mask keeps")
    rows, cols = np.nonzero(kept)  # row-major: sorted by block-row, then block-column
    row_ptr = np.zeros(R // br + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=R // br), out=row_ptr[1:])
    vals = _blocks(w, block)[rows, cols]  # [n, br, bc]
    values = np.ascontiguousarray(vals.transpose(0, 2, 1).reshape(-1, br * bc), dtype=np.float32)
    return BlockSparse((R, C), block, row_ptr, cols.astype(np.int32), values)


def density(matrix: np.ndarray, block: tuple[int, int]) -> float:
    """Fraction of (br, bc) blocks of a dense matrix holding any nonzero weight."""
    nz = _blocks(np.asarray(matrix) != 0, tuple(block))
    return float(nz.any(axis=(2, 3)).mean())


def prune_blocks_random(shape: tuple[int, int], block: tuple[int, int], sparsity: float, seed: int = 0) -> np.ndarray:
    """A 0/1 float32 mask keeping a random (1 - sparsity) of the blocks (for benchmarks and tests)."""
    br, bc = block
    nb = (shape[0] // br, shape[1] // bc)
    rng = np.random.default_rng(seed)
    n_keep = max(1, int(round((1.0 - sparsity) * nb[0] * nb[1])))
    flat = np.zeros(nb[0] * nb[1], bool)
    flat[rng.choice(flat.size, n_keep, replace=False)] = True
    keep = flat.reshape(nb)
    return np.repeat(np.repeat(keep, br, 0), bc, 1).astype(np.float32)
