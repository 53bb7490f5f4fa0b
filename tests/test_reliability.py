"""The regression suite of the bad-input and fault battery (issue 23): one test per finding, each
failing on the code before its fix. Silent wrong results, lost files, tracebacks, refusals that
came only after long work, and messages and exit codes."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from harmony.cli.main import bench_alias, cli, export_alias, run_alias
from harmony.data import read_image, write_image
from harmony.errors import HarmonyError
from harmony.files import cache_dir, temporary_path, write_bytes_atomic
from harmony.models.init import make_random_checkpoint
from harmony.weights import fitted_checkpoint
from tests.engines.fakes import write_graph
from tests.helpers import REPO_ROOT, blob_mask


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    return make_random_checkpoint("hdnet-lite", 3, tmp_path_factory.mktemp("lite") / "lite.pth")


@pytest.fixture
def pair(tmp_path):
    """A 40x48 composite and its mask, as PNG files."""
    write_image(tmp_path / "c.png", torch.rand(1, 3, 40, 48, generator=torch.Generator()))
    write_image(tmp_path / "m.png", blob_mask(40, 48).expand(1, 3, 40, 48))
    return tmp_path / "c.png", tmp_path / "m.png"


def invoke(command, *args, **env):
    return CliRunner().invoke(command, [str(a) for a in args], env=env or None)


def no_work(monkeypatch, target: str):
    """Fail the test if `target` ("module:attribute") runs: the refusal must come first."""
    module, _, attribute = target.partition(":")

    def ran(*args, **kwargs):
        raise AssertionError(f"{target} ran before the refusal")

    monkeypatch.setattr(f"{module}.{attribute}", ran)


# 1. Integer-typed weights were cast silently.
def test_integer_weights_are_refused_with_their_names(lite, tmp_path):
    from safetensors.torch import save_file

    from harmony.models import load_checkpoint

    state = load_checkpoint(lite).state_dict()
    path = tmp_path / "ints.safetensors"
    save_file({key: (value * 100).to(torch.int32) for key, value in state.items()}, str(path))
    result = invoke(cli, "inspect", path)
    assert result.exit_code == 1 and "as integers" in result.output
    assert "model_layer0.weight (int32)" in result.output


# 2. JPEG EXIF orientation was neither applied nor kept.
def test_exif_orientation_is_applied_to_images_and_masks(tmp_path, lite):
    stored = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x40 (HxW), shown rotated: 40x30
    stored.save(tmp_path / "c.jpg", exif=exif.tobytes())
    image, _ = read_image(tmp_path / "c.jpg")
    assert tuple(image.shape[-2:]) == (40, 30)
    write_image(tmp_path / "m.png", blob_mask(40, 30).expand(1, 3, 40, 30))  # drawn as shown
    out = tmp_path / "out.png"
    args = ["--model", lite, "--image", tmp_path / "c.jpg", "--mask", tmp_path / "m.png"]
    result = invoke(run_alias, *args, "-o", out)
    assert result.exit_code == 0, result.output
    assert tuple(read_image(out)[0].shape[-2:]) == (40, 30)


# 3. The composite passed as its own mask ran without a word.
def test_the_composite_as_its_own_mask_is_warned_about(lite, pair, tmp_path):
    composite, _ = pair
    out = tmp_path / "out.png"
    result = invoke(
        run_alias, "--model", lite, "--image", composite, "--mask", composite, "-o", out
    )
    assert result.exit_code == 0, result.output
    assert "warning: the mask" in result.output and "is the composite itself" in result.output


# 4. harmony fit --low-res 0 ran with another value; --low-res -4 raised a torch error.
@pytest.mark.parametrize(
    "options",
    [["--low-res", "0"], ["--low-res", "-4"], ["--low-res", "6"], ["--steps", "0"]],
    ids=str,
)
def test_fit_options_are_usage_errors_before_any_work(tmp_path, monkeypatch, options):
    no_work(monkeypatch, "harmony.fitting.fit:fit_model")
    result = invoke(cli, "fit", "aict", "-o", tmp_path / "a.pth", *options)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "a.pth").exists()


# 5. An RGBA composite's alpha, an all-foreground mask, --cc 999, --cc 75 for FP32 graphs and a
# negative memory limit went unnoticed.
def test_a_transparent_composite_and_an_all_foreground_mask_are_warned_about(lite, tmp_path):
    rgba = np.full((40, 48, 4), 128, np.uint8)
    rgba[:20, ..., 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    write_image(tmp_path / "m.png", torch.ones(1, 3, 40, 48))
    args = ["--model", lite, "--image", tmp_path / "c.png", "--mask", tmp_path / "m.png"]
    result = invoke(run_alias, *args, "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    assert "alpha channel that is not opaque; it is ignored" in result.output
    assert "covers the whole image" in result.output


def test_compute_capabilities_are_read_as_given_and_checked_against_the_precision(tmp_path):
    graph = write_graph(tmp_path / "m.onnx")  # an FP32 graph
    bad = invoke(cli, "build", graph, "--runtime", "tensorrt-rtx", "--cc", "999")
    assert bad.exit_code == 2 and "'999' is not a compute capability" in bad.output
    turing = invoke(
        cli, "build", graph, "-o", tmp_path / "m.engine", "--runtime", "tensorrt-rtx", "--cc", "75"
    )
    assert turing.exit_code == 1 and "cannot build FP32 graphs for compute capability 7.5" in (
        turing.output
    )
    assert not (tmp_path / "m.engine").exists()


def test_a_non_positive_memory_limit_is_refused(lite, pair, tmp_path):
    composite, mask = pair
    args = ["--model", lite, "--image", composite, "--mask", mask, "-o", tmp_path / "o.png"]
    result = invoke(run_alias, *args, HARMONY_MEMORY_LIMIT_GB="-3")
    assert result.exit_code == 1 and "must be a positive number of GiB, got '-3'" in result.output


# 6. Output = input with --force overwrote the composite or the mask.
@pytest.mark.parametrize("which", ["composite", "mask"])
def test_an_output_that_is_an_input_is_refused_even_with_force(lite, pair, which):
    composite, mask = pair
    target = composite if which == "composite" else mask
    before = target.read_bytes()
    args = ["--model", lite, "--image", composite, "--mask", mask, "-o", target, "--force"]
    result = invoke(run_alias, *args)
    assert result.exit_code == 1 and f"is the {which}" in result.output
    assert target.read_bytes() == before


# 7. SIGTERM (and kill -9) during a write left temporaries that nothing removed.
def test_sigterm_ends_a_command_like_ctrl_c_and_leaves_no_temporary(tmp_path):
    script = f"""
import os, signal, time, click
from harmony.cli.common import user_errors
from harmony.files import atomic_output

@click.command()
@user_errors
def write():
    with atomic_output({str(tmp_path / "out.bin")!r}) as temp:
        temp.write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

write()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_dead_processes_are_swept_before_a_write(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = temporary_path(tmp_path / "out.png", dead.pid)
    live = temporary_path(tmp_path / "out.png", os.getpid())
    # Another host's (or container's) temporary on a shared folder: its process id means nothing
    # here. And a file that only looks like a temporary.
    name, writer, pid, token = stale.name.removesuffix(".tmp").rsplit(".", 3)
    elsewhere = stale.with_name(f"{name}.other-host-1.{pid}.{token}.tmp")
    assert writer != "other-host-1"
    foreign = tmp_path / ".out.png.not-ours.tmp"
    for path in (stale, live, elsewhere, foreign):
        path.write_bytes(b"x")
    write_bytes_atomic(tmp_path / "out.png", b"data")
    assert not stale.exists() and live.exists() and foreign.exists()
    assert elsewhere.exists()


# 8. A read-only or invalid HARMONY_CACHE_DIR gave OSError tracebacks.
def test_an_unusable_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(not_a_folder))
    with pytest.raises(HarmonyError, match=r"Cannot use the cache folder .*HARMONY_CACHE_DIR"):
        cache_dir("engines")
    result = invoke(cli, "build", write_graph(tmp_path / "m.onnx"), "--runtime", "tensorrt-rtx")
    assert result.exit_code == 1 and result.output.startswith("error: Cannot use the cache")


# 9. harmony fit at a size that cannot fit allocated until it was killed.
def test_fit_refuses_a_size_that_does_not_fit_in_memory(tmp_path, monkeypatch):
    no_work(monkeypatch, "harmony.fitting.fit:fit_model")
    args = ["fit", "hdnet-lite", "-o", tmp_path / "f.pth", "--size", "20000", "--batch", "8"]
    result = invoke(cli, *args, HARMONY_MEMORY_LIMIT_GB="8")
    assert result.exit_code == 1 and "needs about" in result.output
    assert "more than the 8.0 GiB available" in result.output


# 10. INT8 export without the ONNX Runtime custom-op library failed after the export; so does
# the verification of a TensorRT-target graph.
@pytest.mark.parametrize(
    ("options", "needed_by"),
    [
        (["--int8"], "INT8 calibration runs the graph's custom nodes"),
        (["--target", "trt"], "verifying a TensorRT-target graph runs its custom nodes"),
    ],
)
def test_graphs_with_custom_nodes_without_any_implementation_are_refused_before_the_trace(
    tmp_path, monkeypatch, options, needed_by
):
    no_work(monkeypatch, "harmony.export.exporter:onnx_from_model")
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path))  # neither library
    output = tmp_path / "g.onnx"
    result = invoke(export_alias, fitted_checkpoint("hdnet-lite"), "-o", output, *options)
    assert result.exit_code == 1 and needed_by in result.output
    assert result.output.count("build_plugins.sh") == 1  # each missing file named, one hint


# 11. harmony-bench --plot without matplotlib failed after the measurements.
def test_a_plot_without_matplotlib_is_refused_first(lite, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    no_work(monkeypatch, "harmony.profiling.plan:plan_configs")
    result = invoke(bench_alias, lite, "--plot", tmp_path / "p.png")
    assert result.exit_code == 1 and "--plot needs matplotlib" in result.output


# 12. harmony eval found a bad pair only when it reached it, and kept no score.
# A truncated JPEG (Pillow's verify() reads no JPEG data) was found only when reached.
@pytest.mark.parametrize("spoiled", ["mask of another size", "truncated JPEG composite"])
def test_eval_checks_every_pair_before_loading_the_model(tmp_path, lite, monkeypatch, spoiled):
    from harmony.data import make_demo_dataset

    samples = make_demo_dataset(tmp_path / "data", count=3, seed=0)
    if spoiled == "mask of another size":
        Image.new("L", (9, 7)).save(samples[1].mask_path)
        named = f"Mask {samples[1].mask_path} is 7x9"
    else:
        jpeg = io.BytesIO()
        Image.open(samples[2].composite_path).save(jpeg, "JPEG", quality=90)
        samples[2].composite_path.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
        named = f"Cannot decode {samples[2].composite_path}"
    no_work(monkeypatch, "harmony.profiling.eval:quality_document")
    result = invoke(cli, "eval", tmp_path / "data", "--model", lite)
    assert result.exit_code == 1 and "found before any work" in result.output
    assert named in result.output


def test_eval_writes_the_scores_before_a_failure_and_exits_1(tmp_path, lite, monkeypatch):
    from harmony.data import iharmony, make_demo_dataset

    samples = make_demo_dataset(tmp_path / "data", count=3, seed=0)
    read_image = iharmony.read_image

    def failing_on_the_second(path):
        if Path(path) == samples[1].composite_path:
            raise HarmonyError(f"Cannot decode {path}: gone")
        return read_image(path)

    monkeypatch.setattr(iharmony, "read_image", failing_on_the_second)
    report = tmp_path / "scores.json"
    result = invoke(cli, "eval", tmp_path / "data", "--model", lite, "--json", report)
    assert result.exit_code == 1 and "stopped at image 2 of 3" in result.output
    document = json.loads(report.read_text())
    assert document["images"] == 1 and document["failed"]["index"] == 1


def test_eval_keeps_the_scores_of_the_images_before_a_failure():
    from harmony.quality import evaluate

    class Broken:
        def __len__(self):
            return 3

        def __getitem__(self, index):
            if index == 1:
                raise HarmonyError("unreadable")
            image, mask = torch.rand(1, 3, 16, 16), blob_mask(16, 16)
            return {"name": f"i{index}", "composite": image, "mask": mask, "real": image}

    result = evaluate(Broken(), {})
    assert result["images"] == 1 and result["failed"] == {"index": 1, "error": "unreadable"}
    assert [row["image"] for row in result["rows"]] == ["i0"]


# 13. A 16-bit PNG declaring 15000x15000 was decoded in full before it was refused.
def _png_header(width: int, height: int, bit_depth: int, payload: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", payload) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("bit_depth", [16, 8])  # 16: our decoder; 8: Pillow's bomb check
def test_huge_images_are_refused_from_their_header(tmp_path, bit_depth):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(15000, 15000, bit_depth, zlib.compress(b"\0" * 1000)))
    with pytest.raises(HarmonyError, match="too large"):
        read_image(path)


# 14. Export to a nearly full disk failed after the export.
def test_export_checks_the_free_space_first(lite, tmp_path, monkeypatch):
    import shutil

    no_work(monkeypatch, "harmony.export.exporter:onnx_from_model")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1024))
    result = invoke(export_alias, lite, "-o", tmp_path / "g.onnx", "--target", "ort")
    assert result.exit_code == 1 and "needs about" in result.output and "MiB free" in result.output


# 15. harmony-bench with no arguments said nothing for a minute.
def test_bench_without_models_says_what_it_measures(monkeypatch):
    def stop(archs):
        raise HarmonyError("stopped")

    monkeypatch.setattr("harmony.cli.bench._demo_checkpoints", stop)
    result = invoke(bench_alias)
    assert result.output.startswith("no MODEL given: measuring the demo checkpoints of aict")


# 16. Messages and exit codes.
def test_one_wrong_tensor_names_the_closest_architecture(lite, tmp_path):
    state = torch.load(lite, weights_only=True)
    state["model_layer0.weight"] = torch.zeros(32, 3, 3, 3)  # HDNet's width, in a lite file
    torch.save(state, tmp_path / "odd.pth")
    result = invoke(cli, "inspect", tmp_path / "odd.pth")
    assert result.exit_code == 1 and "official hdnet-lite state_dict" in result.output
    assert "wrong shapes (1): model_layer0.weight" in result.output


def test_a_bad_calibration_size_is_a_usage_error(lite, monkeypatch):
    no_work(monkeypatch, "harmony.export.exporter:onnx_from_checkpoint")
    result = invoke(export_alias, lite, "--int8", "--calib-res", "0")
    assert result.exit_code == 2 and "bad resolution '0'" in result.output


def test_report_and_engine_file_names_are_checked(lite, tmp_path):
    wrong_json = invoke(bench_alias, lite, "--json", tmp_path / "r.md")
    assert wrong_json.exit_code == 2 and "is not a .json file" in wrong_json.output
    wrong_md = invoke(bench_alias, lite, "--markdown", tmp_path / "r.json")
    assert wrong_md.exit_code == 2 and "is not a .md file" in wrong_md.output
    graph = write_graph(tmp_path / "m.onnx")
    engine = invoke(cli, "build", graph, "-o", tmp_path / "x.txt", "--runtime", "tensorrt-rtx")
    assert engine.exit_code == 1 and "must be a .engine or .plan file" in engine.output


def test_a_missing_model_is_named_as_missing(pair, tmp_path):
    composite, mask = pair
    args = ["--model", tmp_path / "nothing", "--image", composite, "--mask", mask]
    result = invoke(run_alias, *args, "-o", tmp_path / "o.png")
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "cannot tell" not in result.output


def test_the_readme_says_how_files_are_handled():
    readme = (REPO_ROOT / "README.md").read_text()
    for topic in ("temporar", "EXIF", "alpha", "same file"):
        assert topic in readme, topic
