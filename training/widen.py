"""Widen a trained SING's decoder (and encoder) without changing what it plays.

The decoder's hidden layers are ``channels`` wide; a model trained at 512 can grow to 1024 and keep training
from where it was (net2net-style function-preserving expansion): each new hidden channel gets fresh weights
from its inputs, while its weights into the old channels and into the output start at zero. The widened model's
output equals the original's exactly; the new channels start learning at the first step (their output weights
get gradients through their non-zero activations).

    python -m training.widen runs/default/e2e/stage_e2e.pt --decoder-channels 1024 -o runs/wide/start.pt
    sing-train ... --stage e2e --from runs/wide/start.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from synth_core.sing import load_checkpoint, save_checkpoint
from synth_core.sing.model import SING, Encoder

log = logging.getLogger("widen")


def _fresh(layer: nn.Module, **sizes: int) -> nn.Module:
    """A freshly initialised copy of ``layer`` with other channel counts (PyTorch's default init)."""
    if isinstance(layer, nn.ConvTranspose1d):
        cls = nn.ConvTranspose1d
    elif isinstance(layer, nn.Conv1d):
        cls = nn.Conv1d
    else:
        raise TypeError(f"cannot widen {type(layer).__name__}")
    kw = {
        "in_channels": layer.in_channels,
        "out_channels": layer.out_channels,
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "bias": layer.bias is not None,
    } | sizes
    return cls(**kw).to(layer.weight.device, layer.weight.dtype)


def _in_out_axes(layer: nn.Module) -> tuple[int, int]:
    """Weight axes of (input, output) channels: Conv1d is [out, in, k], ConvTranspose1d [in, out, k]."""
    return (0, 1) if isinstance(layer, nn.ConvTranspose1d) else (1, 0)


@torch.no_grad()
def widen_chain(layers: Sequence[nn.Module], channels: int) -> list[nn.Module]:
    """Widen the hidden channels between consecutive layers of a chain to ``channels``.

    ``layers[0]`` keeps its inputs and ``layers[-1]`` its outputs; every channel count in between grows.
    Between ReLUs the new channels add nothing to the old ones (zero weights from new inputs to old outputs),
    so the chain's output is unchanged.
    """
    out: list[nn.Module] = []
    for k, layer in enumerate(layers):
        in_ax, out_ax = _in_out_axes(layer)
        old_in, old_out = layer.weight.shape[in_ax], layer.weight.shape[out_ax]
        new_in = old_in if k == 0 else channels
        new_out = old_out if k == len(layers) - 1 else channels
        if new_in < old_in or new_out < old_out:
            raise ValueError(f"cannot shrink {old_in}x{old_out} to {new_in}x{new_out}")
        sizes = {"in_channels": new_in, "out_channels": new_out}
        wide = _fresh(layer, **sizes)
        weight = wide.weight.data
        # new inputs -> old outputs start at zero; new outputs keep their fresh init from every input
        index_new_in = [slice(None)] * weight.dim()
        index_new_in[in_ax] = slice(old_in, None)
        index_new_in[out_ax] = slice(0, old_out)
        weight[tuple(index_new_in)] = 0
        index_old = [slice(None)] * weight.dim()
        index_old[in_ax] = slice(0, old_in)
        index_old[out_ax] = slice(0, old_out)
        weight[tuple(index_old)] = layer.weight
        if layer.bias is not None:
            wide.bias.data[:old_out] = layer.bias
        out.append(wide)
    return out


def _convs(seq: nn.Sequential) -> list[int]:
    return [k for k, m in enumerate(seq) if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]


@torch.no_grad()
def widen_model(model: SING, channels: int, encoder: Encoder | None = None) -> None:
    """Widen ``model``'s decoder (and ``encoder``, which shares the size) to ``channels`` in place."""
    dec = model.decoder
    if dec.bank is not None:
        raise ValueError("widening a decoder with a harmonic bank is not supported (its layers read the channels)")
    idx = _convs(dec.layers)
    wide = widen_chain([dec.layers[k] for k in idx] + [dec.synthesis], channels)
    for k, layer in zip(idx, wide[:-1], strict=True):
        dec.layers[k] = layer
    dec.synthesis = wide[-1]
    slope = dec.last_slope()
    if slope is not None:  # a signed synthesis: the new channels' slopes start at 0 too
        act = nn.PReLU(channels, init=0.0).to(slope.device, slope.dtype)
        act.weight[: slope.shape[0]] = slope
        dec.layers[-1] = act
    if encoder is not None:
        idx = _convs(encoder.layers)
        wide = widen_chain([encoder.analysis] + [encoder.layers[k] for k in idx], channels)
        encoder.analysis = wide[0]
        for k, layer in zip(idx, wide[1:], strict=True):
            encoder.layers[k] = layer
        encoder.config = dataclasses.replace(encoder.config, decoder_channels=channels)
    model.config.decoder_channels = channels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sing-widen", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--decoder-channels", type=int, required=True)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seeds the new channels' initialisation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    ck = load_checkpoint(args.checkpoint)
    before, old_channels = ck.model.num_parameters(), ck.config.decoder_channels
    if args.decoder_channels < ck.config.decoder_channels:
        parser.error(f"the decoder has {ck.config.decoder_channels} channels; it can only grow")
    try:
        widen_model(ck.model, args.decoder_channels, ck.encoder)
    except ValueError as exc:
        parser.error(str(exc))
    training = dict(ck.training or {})
    training["widened_from"] = {"checkpoint": str(args.checkpoint), "decoder_channels": old_channels}
    save_checkpoint(args.out, ck.model, ck.instruments, ck.encoder, training, ck.metadata)
    log.info(
        "%s: decoder %d channels, %.2fM -> %.2fM parameters",
        args.out,
        args.decoder_channels,
        before / 1e6,
        ck.model.num_parameters() / 1e6,
    )


if __name__ == "__main__":
    main()
