import torch

from synth_core.device import select_device, with_cpu_fallback


def test_select_device_defaults_to_available():
    dev = select_device(None)
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu").type == "cpu"


def test_cuda_request_without_gpu_falls_back(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("cuda").type == "cpu"


def test_gpu_failure_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    calls = []

    def run(dev):
        calls.append(dev.type)
        if dev.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return 42

    result, used = with_cpu_fallback(run, torch.device("cuda"))
    assert (result, used.type, calls) == (42, "cpu", ["cuda", "cpu"])
