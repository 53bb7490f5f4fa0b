import json

import pytest
import torch

from harmony.models.init import make_random_checkpoint
from harmony.profiling.bench import BenchConfig, environment, run_configs
from harmony.profiling.plan import model_entry, plan_configs
from harmony.profiling.report import bench_document, markdown_report, markdown_table
from harmony.runtime.trt_runner import TrtRunner

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
    "skipped",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module: each graph is exported once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    return make_random_checkpoint("hdnet-lite", 0, tmp_path_factory.mktemp("bench") / "lite.pth")


def test_a_measured_record_has_the_schema(lite, monkeypatch, cache):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(cache))
    (config,) = plan_configs([model_entry(lite)], ["torch"], ["fp32"], [(64, 48)], 2, 1, 2)
    (record,) = run_configs([config])
    assert set(record) >= RECORD_KEYS
    assert record["skipped"] is None, record["skipped"]
    assert set(record["latency_ms"]) >= {"mean", "p50", "p90", "p99", "min"}
    assert record["latency_ms"]["min"] <= record["latency_ms"]["p50"] <= record["latency_ms"]["p99"]
    assert record["throughput_ips"] == pytest.approx(2e3 / record["latency_ms"]["mean"])
    assert record["params"] == 652_893 and record["peak_memory_mb"] > 50
    assert record["macs"]["total"] == sum(record["macs"]["by_stage"].values()) > 0
    json.dumps(record)  # serialisable as is


def test_configurations_that_cannot_run_are_reported_with_the_reason(lite, monkeypatch, cache):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(cache))
    entry = model_entry(lite)
    configs = plan_configs([entry], ["torch", "trt"], ["fp16"], [(64, 64)], 1, 0, 1)
    records = run_configs(configs)
    assert len(records) == 2
    if not torch.cuda.is_available():
        assert "CUDA" in records[0]["skipped"]
    trt = TrtRunner.availability("cuda")
    if not trt.ok:
        assert records[1]["skipped"] == trt.reason
    report = markdown_report(bench_document(environment("harmony-bench test"), records))
    assert report.count("skipped: ") == sum(1 for r in records if r["skipped"])


def test_a_crashing_configuration_is_skipped_not_dropped(tmp_path):
    bogus = BenchConfig(
        "hdnet-lite", str(tmp_path / "gone.pth"), "torch", "fp32", "cpu", 32, 32, 1, 0, 1
    )
    (record,) = run_configs([bogus])
    assert record["skipped"].startswith("failed (exit 1)")
    assert "gone.pth" in record["skipped"]


def test_an_onnx_graph_runs_only_at_its_own_precision(exported):
    path, _ = exported("hdnet-lite", "ort", "fp32")
    entry = model_entry(path)
    assert entry.arch == "hdnet-lite" and entry.params == 652_893
    fp32, fp16 = plan_configs([entry], ["ort"], ["fp32", "fp16"], [(64, 64)], 1, 0, 1)
    assert fp32.skip_reason is None and fp32.model == str(path)
    assert fp16.skip_reason == f"{path.name} is a fp32 graph"


def test_torch_runs_once_per_kernel_implementation(lite, monkeypatch, cache):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(cache))
    entry = model_entry(lite)
    configs = plan_configs(
        [entry], ["torch", "trt"], ["fp32"], [(64, 64)], 1, 0, 1, kernels=["reference", "fused"]
    )
    assert [(c.backend, c.kernels) for c in configs] == [
        ("torch", "reference"),
        ("torch", "fused"),
        ("trt", None),
    ]
    if not torch.cuda.is_available():
        assert configs[1].skip_reason.startswith("the fused CUDA kernels cannot run: no CUDA")
        records = run_configs(configs[1:2])
        assert records[0]["kernels"] == "fused" and records[0]["skipped"]
        assert "| hdnet-lite | torch+fused | fp32 |" in markdown_table(records)
