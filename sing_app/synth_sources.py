"""The sources of the app's synths (no Qt): each loaded once from its factory; a failure is kept with its reason."""

from __future__ import annotations

from collections.abc import Callable


class SynthSources:
    """``factories``: synth key -> a function returning its source (None: no model given)."""

    def __init__(self, factories: dict[str, Callable[[], object] | None], loaded: dict[str, object] | None = None):
        self.factories = dict(factories)
        self.sources: dict[str, object] = dict(loaded or {})
        self.errors: dict[str, str] = {}  # key -> why that synth is unavailable

    def get(self, key: str):
        """The source of synth ``key``, loaded the first time; None when it cannot load (see ``errors[key]``)."""
        if key in self.sources:
            return self.sources[key]
        factory = self.factories.get(key)
        try:
            if factory is None:
                raise RuntimeError("no model given to this window")
            source = factory()
        except Exception as e:  # noqa: BLE001 - missing/bad weights or a broken build: keep the app working
            self.errors[key] = str(e).strip() or type(e).__name__
            return None
        self.errors.pop(key, None)
        self.sources[key] = source
        return source

    def set(self, key: str, source: object) -> None:
        """Play ``source`` as synth ``key`` from now on (e.g. a fine-tuned model)."""
        self.sources[key] = source
        self.errors.pop(key, None)
