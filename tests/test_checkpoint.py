import pytest
import torch

from synth_core.sing import CheckpointError, Encoder, load_checkpoint, save_checkpoint
from synth_core.sing.checkpoint import write_json_sidecar


def test_round_trip(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "m.pt"
    enc = Encoder(tiny_model.config)
    save_checkpoint(path, tiny_model, tiny_instruments, encoder=enc, training={"stage": "ae", "epoch": 3})
    ck = load_checkpoint(path)
    assert ck.config == tiny_model.config
    assert [i.name for i in ck.instruments] == ["piano", "flute", "cello"]
    assert ck.training["epoch"] == 3
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v), k
    assert ck.encoder is not None
    assert ck.instrument_index("FLU") == 1
    with pytest.raises(KeyError):
        ck.instrument_index("tuba")
    write_json_sidecar(tmp_path / "m.json", ck)
    assert "instrument_table" in (tmp_path / "m.json").read_text()


def test_half_precision_loads_as_float(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "h.pt"
    save_checkpoint(path, tiny_model, tiny_instruments, dtype=torch.float16)
    ck = load_checkpoint(path)
    w = ck.model.decoder.synthesis.weight
    assert w.dtype == torch.float32
    assert torch.allclose(w, tiny_model.decoder.synthesis.weight, atol=1e-3)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "t.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"hello": 1}, path)
    with pytest.raises(CheckpointError, match="not a NeuroSynth SING checkpoint"):
        load_checkpoint(path)


def test_config_mismatch(tmp_path, tiny_model, tiny_instruments):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    payload = torch.load(path, weights_only=True)
    payload["config"]["decoder_channels"] = 64
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path, tiny_model, tiny_instruments, monkeypatch):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model, tiny_instruments)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, tiny_model, tiny_instruments)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_find_instrument_by_substring():
    from synth_core.sing.checkpoint import InstrumentInfo, find_instrument

    infos = [InstrumentInfo(n) for n in ("gm000_acoustic_grand_piano", "gm004_electric_piano_1", "gm073_flute")]
    assert find_instrument(infos, "flute") == 2
    assert find_instrument(infos, "grand") == 0
    assert find_instrument(infos, "1") == 1
    with pytest.raises(KeyError, match="ambiguous"):
        find_instrument(infos, "piano")
