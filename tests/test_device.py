import torch

from synth_core.device import is_gpu_failure, select_device, use_realtime_threads


def test_select_device_defaults_to_available():
    dev = select_device(None)
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu").type == "cpu"


def test_cuda_request_without_gpu_falls_back(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("cuda").type == "cpu"


def test_gpu_failures_are_recognised():
    assert is_gpu_failure(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_gpu_failure(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not is_gpu_failure(ValueError("bad pitch"))
    assert not is_gpu_failure(RuntimeError("shape mismatch"))


def test_a_realtime_engine_on_the_cpu_runs_torch_on_one_thread():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        use_realtime_threads(torch.device("cuda"))  # a GPU engine keeps torch's default
        assert torch.get_num_threads() == 2
        use_realtime_threads(torch.device("cpu"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
