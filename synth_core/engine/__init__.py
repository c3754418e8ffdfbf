"""Real-time voice engine (no Qt): sources, voices, audio output and MIDI input."""

from .config import EngineConfig, EngineStats
from .engine import Engine
from .sources import SineSource, SingSource, VoiceSource, load_default_source

__all__ = ["Engine", "EngineConfig", "EngineStats", "SineSource", "SingSource", "VoiceSource", "load_default_source"]
