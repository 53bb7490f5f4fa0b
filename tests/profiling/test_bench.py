"""harmony-bench's library: planning (no side effects), preparing (artifacts, MACs) and running
each configuration in its own process, every configuration reported."""

import dataclasses
import json

import pytest
import torch

from harmony.models.init import make_random_checkpoint
from harmony.profiling.config import BenchConfig
from harmony.profiling.environment import environment
from harmony.profiling.measure import run_configs
from harmony.profiling.plan import plan_configs
from harmony.profiling.prepare import prepare_configs
from harmony.profiling.report import bench_document, markdown_report, markdown_table
from harmony.runtime.backends import get_backend
from harmony.runtime.sources import identify

RECORD_KEYS = {
    "arch",
    "backend",
    "precision",
    "device",
    "height",
    "width",
    "batch",
    "latency_ms",
    "throughput_ips",
    "peak_memory_mb",
    "params",
    "macs",
    "quality",
    "skipped",
}

pytestmark = pytest.mark.usefixtures("cpu_ops_dir")  # TensorRT-target exports are verified


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module: each graph is exported once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def in_cache(cache, monkeypatch):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    path = make_random_checkpoint("hdnet-lite", 0, tmp_path_factory.mktemp("bench") / "lite.pth")
    return identify(path)


def _files(folder):
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_a_source_whose_graph_cannot_be_made_is_tried_once(lite, monkeypatch):
    """MACs need the source's export; where it fails, preparing does not retry it for every
    configuration (each attempt traces the model), and the configurations get no MACs."""
    from harmony.errors import HarmonyError
    from harmony.profiling import prepare

    attempts = []

    def failing(source):
        attempts.append(source)
        raise HarmonyError("no export here")

    monkeypatch.setattr(prepare, "macs_graph", failing)
    configs = plan_configs([lite], ["torch"], ["fp32"], [(64, 48), (96, 64)], 1, 0, 1)
    configs = [dataclasses.replace(config, skip_reason="planned skip") for config in configs]
    prepared = prepare_configs(configs, [lite])
    assert len(attempts) == 1
    assert [config.macs for config in prepared] == [None, None]


def test_plan_then_prepare_then_measure(lite, in_cache):
    """Planning writes nothing; preparing exports (once) and counts MACs; the record of a
    measurement has the schema."""
    before = _files(in_cache)
    configs = plan_configs([lite], ["torch", "ort"], ["fp32"], [(64, 48)], 2, 1, 2)
    assert all(config.model is None and config.macs is None for config in configs)
    assert _files(in_cache) == before
    torch_row, ort_row = prepare_configs(configs, [lite])
    assert torch_row.model == str(lite.path) and ".ort.fp32." in ort_row.model
    assert torch_row.macs == ort_row.macs and torch_row.macs["total"] > 0
    (record,) = run_configs([torch_row])
    assert set(record) >= RECORD_KEYS
    assert record["skipped"] is None, record["skipped"]
    assert set(record["latency_ms"]) >= {"mean", "p50", "p90", "p99", "min"}
    assert record["latency_ms"]["min"] <= record["latency_ms"]["p50"] <= record["latency_ms"]["p99"]
    assert record["throughput_ips"] == pytest.approx(2e3 / record["latency_ms"]["mean"])
    assert record["params"] == 652_893 and record["peak_memory_mb"] > 50
    assert record["macs"]["total"] == sum(record["macs"]["by_stage"].values()) > 0
    json.dumps(record)  # serialisable as is


def test_fitted_weights_are_scored_on_held_out_composites_after_timing(lite, in_cache):
    from harmony.weights import fitted_checkpoint

    fitted = identify(fitted_checkpoint("hdnet-lite"))
    random_row, fitted_row = plan_configs(  # batch 2: scored at the batch it was timed at
        [lite, fitted], ["torch"], ["fp32"], [(96, 128)], 2, 0, 1, None, 2
    )
    assert random_row.quality_images == 0 and fitted_row.quality_images == 2

    (record,) = run_configs([dataclasses.replace(fitted_row, model=str(fitted.path))])

    quality = record["quality"]
    assert record["skipped"] is None and quality["images"] == 2
    assert quality["output"]["psnr"] > quality["composite"]["psnr"]
    assert "(composite " in markdown_table([record])


def test_configurations_that_cannot_run_are_reported_with_the_reason(lite, in_cache):
    configs = plan_configs([lite], ["torch", "trt"], ["fp16"], [(64, 64)], 1, 0, 1)
    records = run_configs(prepare_configs(configs, [lite]))
    assert len(records) == 2
    if not torch.cuda.is_available():
        assert (
            records[0]["skipped"]
            == "torch backend unavailable: fp16 in PyTorch needs a CUDA device"
        )
    trt = get_backend("trt").refusal(lite, "cuda", "fp16")
    if trt is not None:
        assert records[1]["skipped"] == trt
    report = markdown_report(bench_document(environment("harmony-bench test"), records))
    assert report.count("skipped: ") == sum(1 for r in records if r["skipped"])


def test_a_crashing_configuration_is_skipped_not_dropped(tmp_path):
    gone = str(tmp_path / "gone.pth")
    bogus = BenchConfig("hdnet-lite", gone, "torch", "fp32", "cpu", 32, 32, 1, 0, 1, model=gone)
    (record,) = run_configs([bogus])
    assert record["skipped"].startswith("failed (exit 1)")
    assert "gone.pth" in record["skipped"]


def test_an_onnx_graph_runs_only_at_its_own_precision_and_target(exported):
    ort_graph, trt_graph = (identify(exported("hdnet-lite", t, "fp32")[0]) for t in ("ort", "trt"))
    assert ort_graph.arch == "hdnet-lite" and ort_graph.params == 652_893
    fp32, fp16 = plan_configs([ort_graph], ["ort"], ["fp32", "fp16"], [(64, 64)], 1, 0, 1)
    assert fp32.skip_reason is None and fp32.source == str(ort_graph.path)
    assert fp16.skip_reason.startswith(f"{ort_graph.path.name} is a fp32 graph and runs at that")
    (refused,) = plan_configs([trt_graph], ["ort"], ["fp32"], [(64, 64)], 1, 0, 1)
    assert "the ort backend runs ort-target graphs: run it with --backend ort-custom" in (
        refused.skip_reason
    )
    (torch_row,) = plan_configs([ort_graph], ["torch"], ["fp32"], [(64, 64)], 1, 0, 1)
    assert torch_row.skip_reason.startswith("the torch backend runs checkpoints, not a .onnx graph")


def test_runs_that_do_not_fit_in_memory_are_skipped_with_the_estimate(lite, monkeypatch):
    monkeypatch.setenv("HARMONY_MEMORY_LIMIT_GB", "4")
    small, large = plan_configs([lite], ["ort"], ["fp32"], [(512, 512), (2048, 2048)], 1, 0, 1)
    assert small.skip_reason is None
    assert "needs about" in large.skip_reason and "more than the 4.0 GiB" in large.skip_reason
    assert "torch backend" in large.skip_reason  # what to do instead


def test_torch_runs_once_per_kernel_implementation(lite, in_cache):
    configs = plan_configs(
        [lite], ["torch", "trt"], ["fp32"], [(64, 64)], 1, 0, 1, kernels=["reference", "fused"]
    )
    assert [(c.backend, c.kernels) for c in configs] == [
        ("torch", "reference"),
        ("torch", "fused"),
        ("trt", None),
    ]
    if not torch.cuda.is_available():
        assert configs[1].skip_reason.startswith("the fused CUDA kernels cannot run: no CUDA")
        records = run_configs(prepare_configs(configs[1:2], [lite]))
        assert records[0]["kernels"] == "fused" and records[0]["skipped"]
        assert "| hdnet-lite | torch+fused | fp32 |" in markdown_table(records)


def test_ort_custom_says_what_computed_the_custom_nodes(exported):
    """ort-custom's record and label say what ran the custom nodes: onnxruntime-extensions where
    libharmony_ort_ops.so is not built (a plain install), the native library where it is."""
    from harmony.plugins.ort import EXTENSIONS, custom_ops_implementation
    from harmony.profiling.report import backend_label

    graph = identify(exported("hdnet-lite", "trt", "fp32")[0])
    (config,) = plan_configs([graph], ["ort-custom"], ["fp32"], [(48, 40)], 1, 0, 1)
    (record,) = run_configs(prepare_configs([config], [graph]))
    here = custom_ops_implementation()
    assert record["skipped"] is None and record["custom_ops"] == here
    label = "ort-custom+extensions" if here == EXTENSIONS else "ort-custom"
    assert backend_label(record) == label


@pytest.mark.parametrize("backend_option", [[], ["--backend", "torch,ort,trt"]])
def test_without_backend_the_fastest_cpu_backend_is_named(
    lite, monkeypatch, tmp_path, backend_option
):
    """Without --backend harmony-bench names the fastest CPU backend per file, precision and size
    (the GPU and skipped rows take no part); a user's --backend is their choice, and nothing is
    picked."""
    from click.testing import CliRunner

    from harmony.cli.main import cli
    from harmony.profiling import measure

    latency = {("torch", 64): 30.0, ("ort", 64): 20.0, ("torch", 96): 50.0, ("ort", 96): 60.0}
    latency |= {("trt", 64): 1.0, ("trt", 96): 1.0}  # on the GPU: not a CPU backend

    def measured(configs, progress=None):
        return [
            measure._record(
                config,
                skipped=None if key in latency else "not measured in this test",
                latency_ms=dict.fromkeys(("mean", "p50", "p90"), latency.get(key)),
                peak_memory_mb=100.0,
            )
            for config in configs
            for key in [(config.backend, config.height)]
        ]

    monkeypatch.setattr("harmony.profiling.prepare.prepare_configs", lambda configs, *_: configs)
    monkeypatch.setattr(measure, "run_configs", measured)
    report = tmp_path / "bench.json"
    arguments = ["bench", str(lite.path), "--res", "64,96", "--precision", "fp32"]
    result = CliRunner().invoke(cli, [*arguments, "--json", str(report), *backend_option])
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    if backend_option:
        assert "fastest" not in result.output and "fastest_cpu" not in document
        return
    picks = {(pick["height"], pick["backend"]): pick["speedup"] for pick in document["fastest_cpu"]}
    assert set(picks) == {(64, "ort"), (96, "torch")}
    assert picks[(64, "ort")]["torch"] == pytest.approx(1.5)
    assert picks[(96, "torch")]["ort"] == pytest.approx(1.2)
    assert "fastest CPU backend for lite.pth at 64x64 fp32: ort (1.50x torch" in result.output
