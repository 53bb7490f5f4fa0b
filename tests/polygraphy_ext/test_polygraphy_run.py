"""harmony in Polygraphy, through Polygraphy's own CLI (subprocesses): `--harmony-ort` against
`--harmony-torch` on composites (`--harmony-data`), failing when the graph is tampered with;
our graphs through `inspect model` and `surgeon sanitize`; TensorRT-RTX through
`POLYGRAPHY_USE_TENSORRT_RTX=1 polygraphy convert` and, with our plugins, through `polygraphy run
--trt --plugins` and `harmony polygraphy convert --plugins`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from harmony.contract import CASCADED_LUT, KNN_TOPK_FUSION, PLUGIN_NAMESPACE_ATTR
from harmony.polygraphy_ext.command import plugin_paths

ARCH_OPS = {"aict": CASCADED_LUT.name, "hdnet-lite": KNN_TOPK_FUSION.name}

pytest.importorskip("polygraphy", reason="needs the polygraphy extra")

POLYGRAPHY = Path(sys.executable).parent / "polygraphy"
HARMONY = Path(sys.executable).parent / "harmony"
# FP32 graphs against the PyTorch pipeline on the CPU (the exporter's own parity bound).
TOLERANCES = ["--atol", "1e-4", "--rtol", "1e-3"]
# The engine profile of the builds: 64^2 .. 256^2.
PROFILE = [
    *("--trt-min-shapes", "image:[1,3,64,64]", "mask:[1,1,64,64]"),
    *("--trt-opt-shapes", "image:[1,3,128,128]", "mask:[1,1,128,128]"),
    *("--trt-max-shapes", "image:[1,3,256,256]", "mask:[1,1,256,256]"),
]


def polygraphy(*args, cwd, env=None, command=(POLYGRAPHY,)) -> subprocess.CompletedProcess:
    """Polygraphy's CLI in `cwd` (constant folding leaves external-data files there)."""
    return subprocess.run(
        [*map(str, command), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def compare(graph, checkpoint, *extra, cwd):
    return polygraphy(
        "run", graph, "--harmony-ort", "--harmony-torch", "--harmony-checkpoint", checkpoint,
        "--harmony-data", "demo", "--harmony-res", "64,48x80", *TOLERANCES, *extra, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("target", ["trt", "ort"])
@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_the_graph_in_onnx_runtime_matches_the_checkpoint(
    exported, checkpoints, tmp_path, arch, target
):
    graph, _ = exported(arch, target, "fp32")
    result = compare(graph, checkpoints[arch], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PASSED" in result.stdout + result.stderr
    assert "harmony-torch-runner" in result.stdout + result.stderr


def test_a_tampered_graph_fails_the_comparison(exported, checkpoints, tmp_path):
    _, model = exported("hdnet-lite", "trt", "fp32")
    tampered = onnx.ModelProto()
    tampered.CopyFrom(model)
    weight = max(tampered.graph.initializer, key=lambda tensor: len(tensor.raw_data))
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[: values.size // 2] *= 1.5
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(tampered, tmp_path / "tampered.onnx")
    result = compare(tmp_path / "tampered.onnx", checkpoints["hdnet-lite"], cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_the_data_loader_feeds_composites_and_real_masks(exported, tmp_path):
    from harmony.data import demo_composite

    graph, _ = exported("aict", "ort", "fp32")
    saved = tmp_path / "inputs.json"
    result = polygraphy(
        "run", graph, "--harmony-ort", "--harmony-data", "demo", "--harmony-res", "40x56",
        "--harmony-batch", "2", "--save-inputs", saved, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    from polygraphy.json import load_json

    (feed,) = load_json(str(saved))
    assert feed["image"].shape == (2, 3, 40, 56) and feed["mask"].shape == (2, 1, 40, 56)
    assert set(np.unique(feed["mask"])) <= {0.0, 1.0} and 0 < feed["mask"].mean() < 1
    image, mask, _ = demo_composite(40, 56, seed=1)
    assert np.array_equal(feed["image"][1:], image.numpy())
    assert np.array_equal(feed["mask"][1:], mask.numpy())


def test_inspect_lists_the_custom_nodes_and_sanitize_keeps_the_outputs(
    exported, checkpoints, tmp_path
):
    arch_ops = (("aict", CASCADED_LUT, PLUGIN_NAMESPACE_ATTR), ("hdnet-lite", KNN_TOPK_FUSION, "k"))
    for arch, contract, attribute in arch_ops:
        op = contract.name
        graph, _ = exported(arch, "trt", "fp32")
        shown = polygraphy("inspect", "model", graph, "--show", "layers", "attrs", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert op in shown.stdout and f"{attribute} = " in shown.stdout, shown.stdout[-2000:]
        sanitized = tmp_path / f"{arch}.sanitized.onnx"
        folded = polygraphy(
            "surgeon", "sanitize", graph, "--fold-constants", "-o", sanitized, cwd=tmp_path
        )
        assert folded.returncode == 0, folded.stderr[-2000:]
        result = compare(sanitized, checkpoints[arch], cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# Plain Polygraphy told to use TensorRT-RTX; `harmony polygraphy` picks it, the only one installed.
CONVERTERS = {
    "polygraphy": ((POLYGRAPHY,), {"POLYGRAPHY_USE_TENSORRT_RTX": "1"}),
    "harmony polygraphy": ((HARMONY, "polygraphy"), {}),
}


@pytest.mark.parametrize("converter", CONVERTERS)
def test_tensorrt_rtx_builds_an_engine_through_polygraphy(exported, tmp_path, converter):
    pytest.importorskip("tensorrt_rtx", reason="needs the tensorrt-rtx extra")
    if converter == "harmony polygraphy" and importlib.util.find_spec("tensorrt"):
        pytest.skip("TensorRT is installed: harmony polygraphy uses it, not TensorRT-RTX")
    command, env = CONVERTERS[converter]
    graph, _ = exported("aict", "ort", "fp32")
    engine = tmp_path / "aict.engine"
    result = polygraphy(
        "convert", graph, "--convert-to", "trt", "-o", engine, *PROFILE,
        command=command, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert engine.stat().st_size > 1_000_000


@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_sanitized_trt_target_graphs_build_with_our_plugin(
    exported, tensorrt_plugins_dir, tmp_path, arch
):
    pytest.importorskip("tensorrt_rtx", reason="needs the tensorrt-rtx extra")
    graph, _ = exported(arch, "trt", "fp32")
    sanitized = tmp_path / f"{arch}.sanitized.onnx"
    folded = polygraphy(
        "surgeon", "sanitize", graph, "--fold-constants", "-o", sanitized, cwd=tmp_path
    )
    assert folded.returncode == 0, folded.stderr[-2000:]
    plugins = ("--plugins", tensorrt_plugins_dir / "libharmony_plugins.so")
    ran, converted = tmp_path / "run.engine", tmp_path / "convert.engine"
    run = polygraphy(
        "run", sanitized, "--trt", *plugins, "--save-engine", ran, *PROFILE,
        "--harmony-data", "demo", "--harmony-res", "128",
        env={"POLYGRAPHY_USE_TENSORRT_RTX": "1"}, cwd=tmp_path,
    )  # fmt: skip
    log = run.stdout + run.stderr
    if torch.cuda.is_available():
        assert run.returncode == 0, log[-3000:]
    else:  # the engine is built and saved, and then cannot be deserialized
        assert "Could not deserialize engine" in log, log[-3000:]
    convert = polygraphy(
        "convert", sanitized, "--convert-to", "trt", "-o", converted, *plugins, *PROFILE,
        command=(HARMONY, "polygraphy"), env={"POLYGRAPHY_USE_TENSORRT_RTX": "1"}, cwd=tmp_path,
    )  # fmt: skip
    assert convert.returncode == 0, convert.stdout[-3000:] + convert.stderr[-3000:]
    for engine in (ran, converted):
        assert ARCH_OPS[arch].encode() in engine.read_bytes(), engine


def test_every_spelling_of_plugins_is_registered():
    argv = ["run", "m.onnx", "--plugins", "a.so", "b.so", "--trt", "--plugins=c.so", "x.onnx"]
    assert plugin_paths(argv) == ["a.so", "b.so", "c.so"]
