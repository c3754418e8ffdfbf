"""Qt widgets of the NeuroSynth app; each talks through Qt signals, none of them touches the engine."""
