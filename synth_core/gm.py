"""General MIDI melodic programs: names, NSynth families and the default pack's program set."""

from __future__ import annotations

import re

#: NSynth instrument families, in NSynth's id order.
NSYNTH_FAMILIES: tuple[str, ...] = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)  # fmt: skip
#: NSynth instrument sources, in NSynth's id order.
NSYNTH_SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")
#: NSynth note qualities, in NSynth's id order (all zero for rendered notes).
NSYNTH_QUALITIES: tuple[str, ...] = (
    "bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
    "nonlinear_env", "percussive", "reverb", "tempo-synced",
)  # fmt: skip

#: The 128 General MIDI level 1 program names (program numbers 0-127).
GM_PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)  # fmt: skip
assert len(GM_PROGRAM_NAMES) == 128

# GM groups of 8 programs -> NSynth family (None: no NSynth family, e.g. sound effects).
_GROUP_FAMILY: tuple[str | None, ...] = (
    "keyboard",  # 0-7 piano
    "mallet",  # 8-15 chromatic percussion
    "organ",  # 16-23 organ (incl. accordion, harmonica)
    "guitar",  # 24-31 guitar
    "bass",  # 32-39 bass
    "string",  # 40-47 strings
    "string",  # 48-55 ensemble (52-54 are voices, below)
    "brass",  # 56-63 brass
    "reed",  # 64-71 reed
    "flute",  # 72-79 pipe
    "synth_lead",  # 80-87 synth lead
    "synth_lead",  # 88-95 synth pad
    "synth_lead",  # 96-103 synth effects
    None,  # 104-111 ethnic (per-program below)
    None,  # 112-119 percussive (per-program below)
    None,  # 120-127 sound effects
)
_PROGRAM_FAMILY: dict[int, str] = {
    47: "mallet",  # Timpani is struck, not bowed
    52: "vocal",  # Choir Aahs
    53: "vocal",  # Voice Oohs
    54: "vocal",  # Synth Voice
    104: "guitar",  # Sitar
    105: "guitar",  # Banjo
    106: "guitar",  # Shamisen
    107: "guitar",  # Koto
    108: "mallet",  # Kalimba
    109: "reed",  # Bagpipe
    110: "string",  # Fiddle
    111: "reed",  # Shanai
    112: "mallet",  # Tinkle Bell
    113: "mallet",  # Agogo
    114: "mallet",  # Steel Drums
}

#: The default pack: 46 melodic programs covering all 11 NSynth families (at least 3 each).
DEFAULT_PROGRAMS: tuple[int, ...] = (
    0, 2, 4, 5, 6, 7,  # keyboard
    8, 11, 12, 13,  # mallet
    19, 20, 21, 22,  # organ (16-18 have strong 16' sub-octaves: their f0 reads an octave low)
    24, 25, 26, 29,  # guitar
    32, 33, 35, 38,  # bass
    40, 42, 45, 46, 48, 110,  # string
    56, 57, 60, 61,  # brass
    64, 66, 68, 71,  # reed
    72, 73, 75, 79,  # flute
    80, 81, 89,  # synth_lead
    52, 53, 54,  # vocal
)  # fmt: skip


def gm_family(program: int) -> str | None:
    """NSynth family of a GM program (0-127), or None for programs with no NSynth family (sound effects)."""
    if not 0 <= program < 128:
        raise ValueError(f"GM program must be 0..127, got {program}")
    return _PROGRAM_FAMILY.get(program, _GROUP_FAMILY[program // 8])


def gm_name(program: int) -> str:
    """General MIDI name of a program."""
    if not 0 <= program < 128:
        raise ValueError(f"GM program must be 0..127, got {program}")
    return GM_PROGRAM_NAMES[program]


def instrument_str(program: int) -> str:
    """NSynth-style instrument name without '-', e.g. 'gm000_acoustic_grand_piano'."""
    slug = re.sub(r"[^a-z0-9]+", "_", gm_name(program).lower()).strip("_")
    return f"gm{program:03d}_{slug}"


def parse_int_ranges(spec: str) -> list[int]:
    """'24-96', '60,62,64' or '24-48,60' -> sorted unique ints; ValueError on anything else."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise ValueError(f"bad list {spec!r}: {part!r} is not a number or range") from None
    if not out:
        raise ValueError(f"empty list {spec!r}")
    return sorted(out)


def parse_programs(spec: str) -> list[int]:
    """'default', or comma-separated program numbers / ranges ('0,24,40-42') -> sorted unique programs."""
    spec = spec.strip()
    if spec == "default":
        return sorted(DEFAULT_PROGRAMS)
    programs = parse_int_ranges(spec)
    for p in programs:
        if gm_family(p) is None:
            raise ValueError(f"GM program {p} ({gm_name(p)}) has no NSynth family; choose a melodic program")
    return programs
