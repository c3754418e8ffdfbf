"""NeuroSynth core: neural synthesis models and the real-time engine (no GUI code here)."""

__version__ = "0.1.0"
