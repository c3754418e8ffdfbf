"""Which controls of the window MIDI learn can map, and under which ids (see ``midi_learn_view_model``)."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from .embedding_panel import EmbeddingPanel
from .main_panels import MainPanels
from .midi_learn_view_model import MidiLearnViewModel

FADER_PREFIXES = ("embed.", "timbre.", "envelope.", "envelope_pc.")


def register_controls(learn: MidiLearnViewModel, panels: MainPanels) -> None:
    """The volume, the Voice panel's sliders and the morph pad's axes (right-click for MIDI learn)."""
    learn.register_slider("volume", "Volume", panels.volume)
    for field, s in panels.voice_panel.sliders.items():
        learn.register_slider(f"voice.{field}", f"Voice {s.control.caption.lower()}", s.slider, s.caption, " · ")
    pad = panels.morph.pad
    learn.register("morph.x", "Morph pad X", lambda v: pad.set_position(v, pad.position()[1]))
    learn.register("morph.y", "Morph pad Y", lambda v: pad.set_position(pad.position()[0], v))
    pad.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    pad.customContextMenuRequested.connect(lambda pos: learn.show_menu(["morph.x", "morph.y"], pad, pos))


def register_faders(learn: MidiLearnViewModel, embedding: EmbeddingPanel, sing: bool) -> None:
    """The faders of the synth played now, replacing the other's: SING's embedding ("embed.N", "timbre.N") and
    the voice's spectral envelope ("envelope.N", "envelope_pc.N") are mapped apart, so a controller learned on one
    never shows on (or moves) the other."""
    for prefix in FADER_PREFIXES:
        learn.unregister_prefix(prefix)
    dims, pcs, what = ("embed", "timbre", "Embedding") if sing else ("envelope", "envelope_pc", "Envelope")
    for i, f in enumerate(embedding.dim_faders):
        learn.register_slider(f"{dims}.{i + 1}", f"{what} {i + 1}", f.slider, f.caption)
    for k, f in enumerate(embedding.timbre_faders):
        learn.register_slider(f"{pcs}.{k + 1}", f"{what} PC{k + 1}", f.slider, f.caption)
