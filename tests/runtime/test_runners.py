import pytest
import torch

from harmony.dispatch import fused_kernels_unavailable
from harmony.errors import HarmonyError
from harmony.models import build_model, harmonize, randomize_
from harmony.runtime.backends import BACKENDS, Availability, Backend, backend_for_file
from harmony.runtime.base import Runner
from harmony.runtime.torch_runner import TorchRunner, graph_capture_blocker
from tests.helpers import blob_mask


@pytest.fixture(scope="module")
def lite():
    return randomize_(build_model("hdnet-lite"), seed=6).eval()


def test_torch_runner_lifecycle(lite, rng):
    """Infer only while active, inputs checked; what it computes is the pipeline's, whose
    values the export parity and official-parity tests check."""
    image = torch.rand(2, 3, 40, 48, generator=rng)
    mask = blob_mask(40, 48, batch=2)
    runner = TorchRunner(lite)
    with pytest.raises(HarmonyError, match="not active"):
        runner.infer(image, mask)
    with runner:
        with pytest.raises(HarmonyError, match="already active"):
            runner.activate()
        assert runner.infer(image, mask).shape == image.shape and runner.arch == "hdnet-lite"
        with pytest.raises(HarmonyError, match="mask must be"):
            runner.infer(image, mask[:, :, :-1])
        with pytest.raises(HarmonyError, match="floating tensor"):
            runner.infer(image, mask.to(torch.uint8))
    assert not runner.is_active


class _Echo(Runner):
    """The smallest runner: `infer_impl` returns the image."""

    backend = "echo"

    @classmethod
    def availability(cls, device, precision=None):
        return Availability(True)

    def source_impl(self):
        return None

    def activate_impl(self):
        pass

    def infer_impl(self, image, mask):
        return image

    def deactivate_impl(self):
        pass


def test_infer_checks_inputs_from_metadata_only(monkeypatch):
    """`infer` validates shapes and dtypes without reading a value (no device synchronisation):
    tensors on the meta device hold no data, so any read of one would raise."""
    echo = Backend("echo", "checkpoint", ("cpu",), "tests.runtime.test_runners:_Echo")
    monkeypatch.setitem(BACKENDS, "echo", echo)
    image, mask = torch.empty(2, 3, 64, 48, device="meta"), torch.empty(2, 1, 64, 48, device="meta")
    with _Echo("echo", "cpu", "fp32") as runner:
        assert runner.infer(image, mask) is image
        with pytest.raises(HarmonyError, match=r"mask must be \[2,1,64,48\]"):
            runner.infer(image, mask[:, :, :32])


def test_the_value_range_is_checked_at_the_user_boundary(lite):
    image, mask = torch.full((1, 3, 32, 40), 0.5), blob_mask(32, 40)
    image[..., 0, 0] = 2.0
    with pytest.raises(HarmonyError, match=r"image values must lie in \[0,1\], got \[0\.5, 2\]"):
        harmonize(lite, image, mask)
    with pytest.raises(HarmonyError, match=r"mask values must lie in \[0,1\], got \[nan, nan\]"):
        harmonize(lite, image.clamp(max=1), mask * float("nan"))
    assert harmonize(lite, image, mask, check_range=False).shape == image.shape  # switched off


def test_torch_fp16_needs_cuda(lite):
    runner = TorchRunner(lite, device="cpu", precision="fp16")
    with pytest.raises(HarmonyError, match="torch backend unavailable: fp16 in PyTorch needs"):
        runner.activate()


def test_unavailable_backend_refuses_to_activate_with_its_reason(lite):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the cuda torch runner is available")
    with pytest.raises(HarmonyError, match="no CUDA device"):
        TorchRunner(lite, device="cuda").activate()


@pytest.mark.parametrize(
    ("name", "backend", "expected"),
    [
        ("a.pth", None, "torch"),
        ("a.safetensors", None, "torch"),
        ("a.engine", "trt", "trt"),
    ],
)
def test_backend_from_suffix(name, backend, expected):
    assert backend_for_file(name, backend).name == expected


def test_an_unknown_suffix_is_refused_with_or_without_a_backend(tmp_path):
    model = tmp_path / "a.txt"
    for backend in (None, "ort"):
        with pytest.raises(HarmonyError, match=r"a\.txt does not exist"):
            backend_for_file(model, backend)
    model.write_text("x")
    for backend in (None, "ort"):
        with pytest.raises(HarmonyError, match=r"cannot tell what .*a\.txt is from its suffix"):
            backend_for_file(model, backend)


def test_onnx_graphs_run_on_the_backend_of_their_target(exported):
    """Both ONNX Runtime backends take .onnx files: the graph's export target decides; a
    runner of the other target reads no file until activated, then refuses with the right
    backend named."""
    from harmony.runtime.ort_runner import OrtRunner

    portable, _ = exported("hdnet-lite", "ort", "fp32")
    custom, _ = exported("hdnet-lite", "trt", "fp32")
    assert backend_for_file(portable).name == "ort"
    assert backend_for_file(custom).name == "ort-custom"
    assert backend_for_file(custom, "ort").name == "ort"
    runner = OrtRunner(custom)
    assert runner.precision is None and runner.arch is None  # nothing read yet
    with pytest.raises(HarmonyError, match=r"trt-target graph.*--backend ort-custom"):
        runner.activate()
    with OrtRunner(portable) as runner:
        assert (runner.precision, runner.arch) == ("fp32", "hdnet-lite")


def test_trt_runner_is_unavailable_without_tensorrt(tmp_path):
    pytest.importorskip("harmony.runtime.trt_runner")
    from harmony.runtime.trt_runner import TrtRunner

    available = TrtRunner.availability("cuda")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert not available.ok and "TensorRT" in available.reason
    else:
        pytest.skip("TensorRT is installed here")


@pytest.mark.parametrize(
    ("options", "what"),
    [({"kernels": "fused"}, "the fused kernels"), ({"cuda_graphs": True}, "CUDA graphs")],
)
def test_fused_kernels_and_cuda_graphs_need_cuda(lite, options, what):
    with pytest.raises(HarmonyError, match=f"needs --device cuda for {what}"):
        TorchRunner(lite, device="cpu", **options)


def test_cpu_runner_runs_the_reference_ops_eagerly(lite):
    with TorchRunner(lite) as runner:
        assert (runner.kernels, runner.cuda_graphs) == ("reference", False)


def test_only_hdnet_with_the_reference_knn_cannot_be_graphed():
    assert "nonzero()" in graph_capture_blocker("hdnet-lite", "reference")
    assert graph_capture_blocker("hdnet", "fused") is None
    assert graph_capture_blocker("aict", "reference") is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_cuda_fused_kernels_and_graphs_match_the_cpu_reference(arch, rng):
    reason = fused_kernels_unavailable()
    if reason:
        pytest.skip(reason)
    model = randomize_(build_model(arch), seed=3).eval()
    with TorchRunner(model, device="cuda", kernels="fused", cuda_graphs=True) as runner:
        for soft in (False, True):  # capture, then replay on other values
            image = torch.rand(2, 3, 200, 264, generator=rng)
            mask = blob_mask(200, 264, batch=2, soft=soft)
            expected = harmonize(model, image, mask)
            torch.testing.assert_close(runner.infer(image, mask).cpu(), expected, atol=2e-4, rtol=0)
        assert runner.cuda_graphs and len(runner._graphed.graphs) == 1
