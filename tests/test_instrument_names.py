"""Human instrument names and lookup by index, old id, human name or an unambiguous part of one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth_core.sing.checkpoint import InstrumentInfo, find_instrument
from synth_core.sing.instrument_names import display_name, family_label, match_instrument

SIDECAR = Path(__file__).parents[1] / "assets/sing_default.json"
DEFAULT = [i["name"] for i in json.loads(SIDECAR.read_text())["instruments"]]


def test_display_names():
    assert display_name("gm000_acoustic_grand_piano") == "Acoustic Grand Piano"
    assert display_name("gm024_acoustic_guitar_nylon") == "Acoustic Guitar (nylon)"
    assert display_name("gm080_lead_1_square") == "Lead 1 (square)"
    assert display_name("gm040_my_own_violin") == "My Own Violin"  # not the GM name: the id's words
    assert display_name("My cello") == "My cello"  # a user's name as it is
    assert family_label("synth_lead") == "Synth lead" and family_label("unknown") == "" and family_label(None) == ""
    assert len({display_name(n) for n in DEFAULT}) == len(DEFAULT)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gm000_acoustic_grand_piano", "gm000_acoustic_grand_piano"),  # the old id
        ("GM040_VIOLIN", "gm040_violin"),
        ("3", "gm005_electric_piano_2"),  # an index
        ("Acoustic Grand Piano", "gm000_acoustic_grand_piano"),  # the human name
        ("acoustic guitar (nylon)", "gm024_acoustic_guitar_nylon"),
        ("grand_piano", "gm000_acoustic_grand_piano"),  # the README's example: its alias beats Electric Grand Piano
        ("grand piano", "gm000_acoustic_grand_piano"),
        ("acoustic gr", "gm000_acoustic_grand_piano"),  # the start of a name
        ("electric grand", "gm002_electric_grand_piano"),
        ("nylon", "gm024_acoustic_guitar_nylon"),  # one word of a name
        ("harp", "gm046_orchestral_harp"),  # a whole word wins over the start of Harpsichord
        ("flu", "gm073_flute"),  # the start of a word
        ("pad 2", "gm089_pad_2_warm"),
        ("gm110", "gm110_fiddle"),
    ],
)
def test_lookup(query, expected):
    assert DEFAULT[match_instrument(DEFAULT, query)] == expected


def test_ambiguous_names_list_the_candidates():
    with pytest.raises(KeyError) as err:
        match_instrument(DEFAULT, "guitar")
    msg = err.value.args[0]
    assert "ambiguous" in msg
    assert "Acoustic Guitar (nylon) (gm024_acoustic_guitar_nylon)" in msg and "Overdriven Guitar" in msg
    assert "Electric Bass" not in msg
    with pytest.raises(KeyError, match="Electric Piano 1.*Electric Piano 2"):
        match_instrument(DEFAULT, "electric piano")


def test_unknown_name():
    with pytest.raises(KeyError, match=r"unknown instrument 'tuba'; known: Acoustic Grand Piano, Electric Grand"):
        match_instrument(DEFAULT, "tuba")


def test_find_instrument_with_plain_names():
    infos = [InstrumentInfo("piano"), InstrumentInfo("flute"), InstrumentInfo("My cello", "custom")]
    assert find_instrument(infos, "my_cello") == 2
    assert find_instrument(infos, "CEL") == 2
    assert find_instrument(infos, "FLU") == 1
