"""Block-sparse gradual magnitude pruning of a WaveRNN's ``prunable()`` weights.

Schedule (LPCNet's cubic ramp): with final density d = 1 - target and r = 1 - progress, where
progress = (step - start) / (end - start) clipped to [0, 1],

    density = 1 - (1 - d) * (1 - r^3)      (= 1 - target * (1 - (1 - progress)^3))

so the density starts at 1, falls fastest at the start of the ramp and reaches d at ``end``.

Each matrix is cut into blocks of ``block`` = (rows, cols) weights, e.g. (4, 4) or (16, 1); blocks are
ranked by their L2 norm and the weakest are masked. The recurrent matrix is ranked per gate (r, z, n
separately, each keeping the same density); each output head matrix on its own. Masks go into
``model.mask(name)``; ``model.apply_masks()`` zeroes the weights. Pruned weights are zero and get no
gradient, so masks only ever grow sparser.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from synth_core.wavernn.model import WaveRNN


def density_at(step: int, target: float, start: int, end: int) -> float:
    """Fraction of weights kept at ``step`` (1 before ``start``, 1 - target from ``end`` on)."""
    if step < start:
        return 1.0
    if end <= start or step >= end:
        return 1.0 - target
    r = 1.0 - (step - start) / (end - start)
    return 1.0 - target * (1.0 - r**3)


def block_mask(weight: torch.Tensor, density: float, block: tuple[int, int]) -> torch.Tensor:
    """0/1 mask of ``weight``'s shape keeping the round(density * n_blocks) blocks of largest L2 norm.

    Edge blocks of matrices whose size is not a multiple of the block are partial (zero padded)."""
    rows, cols = weight.shape
    br, bc = block
    pr, pc = -rows % br, -cols % bc
    w = torch.nn.functional.pad(weight.detach().float(), (0, pc, 0, pr))
    nr, nc = w.shape[0] // br, w.shape[1] // bc
    norms = w.reshape(nr, br, nc, bc).pow(2).sum((1, 3)).flatten()
    n_keep = int(round(density * norms.numel()))
    keep = torch.zeros_like(norms)
    if n_keep > 0:
        keep[torch.topk(norms, n_keep, sorted=False).indices] = 1.0
    mask = keep.reshape(nr, 1, nc, 1).expand(nr, br, nc, bc).reshape(nr * br, nc * bc)
    return mask[:rows, :cols].to(weight.dtype)


@torch.no_grad()
def prune_to(model: WaveRNN, density: float, block: tuple[int, int] | None = None) -> dict[str, float]:
    """Set every prunable matrix's mask to ``density`` (per gate for the recurrent matrix); returns sparsity."""
    block = tuple(block or model.config.block)
    for name, weight in model.prunable().items():
        mask = model.mask(name)
        if name == "gru.weight_hh_l0":
            for g, part in enumerate(weight.chunk(3, 0)):
                h = part.shape[0]
                mask[g * h : (g + 1) * h] = block_mask(part, density, block)
        else:
            mask.copy_(block_mask(weight, density, block))
    model.apply_masks()
    return model.sparsity()


@dataclass
class Pruner:
    """Applies the schedule during training: call ``update(step)`` after each optimiser step."""

    target: float = 0.95
    start: int = 1000
    end: int = 20000
    every: int = 100  # steps between mask updates on the ramp
    block: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"sparsity target must be in [0, 1), got {self.target}")
        if self.end < self.start:
            raise ValueError(f"prune end {self.end} is before its start {self.start}")

    def density(self, step: int) -> float:
        return density_at(step, self.target, self.start, self.end)

    def due(self, step: int) -> bool:
        if self.target == 0 or not self.start <= step <= self.end:
            return False
        return step == self.end or (step - self.start) % max(1, self.every) == 0

    def update(self, model: WaveRNN, step: int) -> dict[str, float] | None:
        """Re-rank and mask when due (on the ramp every ``every`` steps and at ``end``; after that the
        masks stay as they are, saved in checkpoints); returns the sparsity when masks changed."""
        if not self.due(step):
            return None
        return prune_to(model, self.density(step), self.block)
