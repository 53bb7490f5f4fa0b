"""The C++ examples (examples/cpp): harmonize_ort runs a TensorRT-target graph with the custom-op
library and writes what harmony-run writes for the same graph, refuses bad input with one line
and no file; harmonize_trt compiles against the TensorRT 11 headers (it runs only where
TensorRT and a GPU exist)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from harmony.cli.main import run_alias
from harmony.contract import PLUGIN_VERSION_ATTR
from harmony.data import png, write_image
from harmony.plugins import ORT_OPS_LIBRARY
from harmony.plugins.ort import cpu_rewrites
from tests.helpers import blob_mask, onnxruntime_headers_root, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cpp"
HEIGHT, WIDTH = 45, 61


def _onnxruntime_library() -> Path:
    """The libonnxruntime.so the installed onnxruntime wheel ships (what harmonize_ort links)."""
    import onnxruntime

    capi = Path(onnxruntime.__file__).parent / "capi"
    (library,) = capi.glob("libonnxruntime.so*")
    return library


@pytest.fixture(scope="module")
def examples_build(tmp_path_factory) -> Path:
    """examples/cpp configured and built with warnings as errors; harmonize_trt where
    TENSORRT_ROOT has the headers."""
    if shutil.which("libpng-config") is None:
        pytest.skip("libpng is not installed (Debian: libpng-dev)")
    build = tmp_path_factory.mktemp("examples_build")
    configure = [
        "cmake",
        "-S",
        str(EXAMPLES),
        "-B",
        str(build),
        f"-DONNXRUNTIME_ROOT={onnxruntime_headers_root()}",
        f"-DONNXRUNTIME_LIBRARY={_onnxruntime_library()}",
        f"-DTENSORRT_ROOT={os.environ.get('TENSORRT_ROOT', '')}",
        "-DCMAKE_CXX_FLAGS=-Werror",
    ]
    run(configure)
    run(["cmake", "--build", str(build), "--parallel", str(os.cpu_count() or 2)])
    return build


@pytest.fixture(scope="module")
def files(tmp_path_factory, exported) -> Path:
    """A TensorRT-target HDNet-lite graph, composites of both depths, masks of three kinds (RGB:
    its largest channel, gray+alpha: its alpha, a 0/1 label map), a mask of another size, a file
    that is no PNG and a graph of a newer plugin version.

    The graph is the one harmony's CPU sessions run (`cpu_rewrites` applied; on it they rewrite
    nothing more): the C++ example runs a file as it is, and the rewrite changes float rounding,
    so on the graph as exported the two would differ by a level in a rare pixel."""
    root = tmp_path_factory.mktemp("examples_files")
    _, model = exported("hdnet-lite", "trt", "fp32")
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    assert cpu_rewrites(rewritten) > 0 and cpu_rewrites(rewritten) == 0
    onnx.save(rewritten, root / "graph.onnx")
    image = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
    write_image(root / "c8.png", image)
    write_image(root / "c16.png", image, bit_depth=16)
    blob = blob_mask(HEIGHT, WIDTH, soft=True)[0, 0].numpy()
    write_image(root / "m_rgb.png", torch.from_numpy(blob).expand(1, 3, HEIGHT, WIDTH) * 0.9)
    alpha = np.stack([np.full_like(blob, 0.2), blob], axis=2)
    (root / "m_alpha.png").write_bytes(png.encode_png(np.rint(alpha * 65535).astype(np.uint16)))
    labels = (blob > 0.5).astype(np.uint8)[..., None]
    (root / "m_labels.png").write_bytes(png.encode_png(labels))
    write_image(root / "m_small.png", torch.zeros(1, 3, HEIGHT - 1, WIDTH))
    (root / "not_png.png").write_text("hello")
    newer = onnx.load(root / "graph.onnx")
    for node in newer.graph.node:
        for attribute in node.attribute:
            if attribute.name == PLUGIN_VERSION_ATTR:
                attribute.s = b"2"
    onnx.save(newer, root / "newer.onnx")
    return root


def _harmonize_ort(build: Path, library: Path, *args) -> subprocess.CompletedProcess:
    command = [str(build / "harmonize_ort"), "--custom-ops", str(library), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _levels(path: Path) -> np.ndarray:
    return png.decode_png(path.read_bytes())


@pytest.mark.parametrize(("depth", "mask"), [(8, "rgb"), (16, "alpha"), (8, "labels")])
def test_harmonize_ort_equals_harmony_run(
    examples_build, ort_ops_dir, files, tmp_path, depth, mask
):
    arguments = ["--image", files / f"c{depth}.png", "--mask", files / f"m_{mask}.png"]
    cpp, py = tmp_path / "cpp.png", tmp_path / "py.png"
    result = _harmonize_ort(
        examples_build,
        ort_ops_dir / ORT_OPS_LIBRARY,
        "--model",
        files / "graph.onnx",
        *arguments,
        "-o",
        cpp,
    )
    assert result.returncode == 0, result.stderr
    invoked = CliRunner().invoke(
        run_alias, [str(a) for a in ["--model", files / "graph.onnx", *arguments, "-o", py]]
    )
    assert invoked.exit_code == 0, invoked.output
    assert "ort-custom" in invoked.output
    expected = _levels(py)
    assert expected.dtype == (np.uint8 if depth == 8 else np.uint16)
    np.testing.assert_array_equal(_levels(cpp), expected)


@pytest.mark.parametrize(
    ("model", "mask", "library", "message"),
    [
        ("graph.onnx", "m_small.png", None, r"the mask is 44x61 \(HxW\) but the image is 45x61"),
        ("graph.onnx", "not_png.png", None, r"cannot decode .*not_png\.png: not a PNG file"),
        (
            "graph.onnx",
            "m_rgb.png",
            "missing.so",
            r"cannot load the custom-op library .*missing\.so",
        ),
        ("newer.onnx", "m_rgb.png", None, r"needs plugin version '2'"),
    ],
)
def test_harmonize_ort_refuses_bad_input(
    examples_build, ort_ops_build, files, tmp_path, model, mask, library, message
):
    out = tmp_path / "out.png"
    custom_ops = ort_ops_build / ORT_OPS_LIBRARY if library is None else tmp_path / library
    result = _harmonize_ort(
        examples_build,
        custom_ops,
        "--model",
        files / model,
        "--image",
        files / "c8.png",
        "--mask",
        files / mask,
        "-o",
        out,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert list(tmp_path.iterdir()) == []


def test_harmonize_trt_compiles_against_tensorrt_headers(examples_build):
    root = os.environ.get("TENSORRT_ROOT")
    if not root or not (Path(root) / "include" / "NvInferRuntime.h").is_file():
        pytest.skip(
            "TENSORRT_ROOT with include/NvInferRuntime.h is not set: harmonize_trt not built"
        )
    if shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit (nvcc): harmonize_trt needs the CUDA runtime headers")
    objects = list(examples_build.glob("CMakeFiles/harmonize_trt_objects.dir/*.o"))
    assert {path.name for path in objects} == {
        "harmonize_trt.cpp.o",
        "trt_harmonizer.cpp.o",
        "manifest.cpp.o",
    }
