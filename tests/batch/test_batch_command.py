"""`harmony batch` end to end: equal to harmony-run image by image, failures logged and
skipped, resumable after kill -9, flat memory; and `harmonize_many`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from harmony.batch import harmonize_many
from harmony.cli.main import cli, run_alias
from harmony.data import read_image, write_image
from harmony.errors import HarmonyError
from harmony.weights import fitted_checkpoint
from tests.helpers import blob_mask

MODEL = fitted_checkpoint("hdnet-lite")


def composite(folder, name, height, width, depth=8, seed=0):
    """composite_images/<name> and its mask masks/<X_Y>.png, iHarmony4 style."""
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    write_image(folder / "composite_images" / name, image, bit_depth=depth)
    mask = blob_mask(height, width).expand(1, 3, -1, -1)
    write_image(folder / "masks" / f"{name.rsplit('_', 1)[0]}.png", mask)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Mixed sizes and bit depths; three of one size (batched together)."""
    folder = tmp_path_factory.mktemp("batch") / "data"
    for index in range(3):
        composite(folder, f"a{index}_1_1.png", 40, 56, seed=index)
    composite(folder, "b_1_1.png", 40, 56, depth=16, seed=3)
    composite(folder, "c_1_1.jpg", 33, 47, seed=4)
    composite(folder, "d_1_1.png", 64, 32, depth=16, seed=5)
    return folder


def batch(*args):
    return CliRunner().invoke(cli, ["batch", *map(str, args)])


def log_entries(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_outputs_equal_harmony_run_image_by_image(dataset, tmp_path):
    out = tmp_path / "out"
    result = batch(dataset, "--model", MODEL, "-o", out, "--batch", "3", "--quiet")
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in (dataset / "composite_images").iterdir())
    assert sorted(path.name for path in out.glob("*_1_1.*")) == names
    for name in names:
        single = tmp_path / f"single-{name}"
        mask = dataset / "masks" / f"{name.rsplit('_', 1)[0]}.png"
        args = ["--model", MODEL, "--image", dataset / "composite_images" / name, "--mask", mask]
        ran = CliRunner().invoke(run_alias, [*map(str, args), "-o", str(single)])
        assert ran.exit_code == 0, ran.output
        assert (out / name).read_bytes() == single.read_bytes(), name
    depths = {name: read_image(out / name)[1] for name in names}
    assert depths == {name: 16 if name in ("b_1_1.png", "d_1_1.png") else 8 for name in names}
    entries = log_entries(out / "harmony-batch.jsonl")
    assert [entry["status"] for entry in entries] == ["done"] * len(names)
    rerun = batch(dataset, "--model", MODEL, "-o", out, "--quiet")
    assert rerun.exit_code == 0 and [e["status"] for e in log_entries(out / "harmony-batch.jsonl")][
        len(names) :
    ] == ["skipped"] * len(names)


def test_a_manifest_of_the_same_files_gives_the_same_outputs(dataset, tmp_path):
    names = sorted(path.name for path in (dataset / "composite_images").iterdir())
    rows = [
        {
            "image": f"composite_images/{n}",
            "mask": f"masks/{n.rsplit('_', 1)[0]}.png",
            "output": str(tmp_path / "m" / n),
        }
        for n in names
    ]
    manifest = dataset / "list.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    folder_run = tmp_path / "f"
    assert batch(dataset, "--model", MODEL, "-o", folder_run, "--quiet").exit_code == 0
    result = batch(manifest, "--model", MODEL, "--log", tmp_path / "m.jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    for name in names:
        assert (tmp_path / "m" / name).read_bytes() == (folder_run / name).read_bytes()


def test_bad_inputs_are_logged_and_skipped_while_the_rest_completes(dataset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "composite_images" / "a1_1_1.png").write_bytes(b"not a png")  # corrupt
    (broken / "masks" / "c_1.png").unlink()  # missing mask
    shutil.copy(broken / "masks" / "d_1.png", broken / "masks" / "b_1.png")  # wrong size
    out = tmp_path / "out"
    result = batch(broken, "--model", MODEL, "-o", out, "--batch", "2")
    assert result.exit_code == 1
    assert "error: 3 of 6 composites failed; see" in result.output
    entries = {Path(e["image"]).name: e for e in log_entries(out / "harmony-batch.jsonl")}
    assert {name for name, e in entries.items() if e["status"] == "done"} == {
        "a0_1_1.png",
        "a2_1_1.png",
        "d_1_1.png",
    }
    assert "Cannot decode" in entries["a1_1_1.png"]["error"]
    assert "has no mask" in entries["c_1_1.jpg"]["error"]
    assert "is 64x32 (HxW) but the image" in entries["b_1_1.png"]["error"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["a0_1_1.png", "a2_1_1.png", "d_1_1.png", "harmony-batch.jsonl"]
    )
    fast = batch(broken, "--model", MODEL, "-o", tmp_path / "fast", "--fail-fast", "--workers", "1")
    assert fast.exit_code == 1 and "stopped at the first failure" in fast.output
    assert "a1_1_1.png" in fast.output


def test_a_run_killed_half_way_resumes_to_the_uninterrupted_result(tmp_path):
    data = tmp_path / "data"
    for index in range(48):
        composite(data, f"p{index:02d}_1_1.png", 48, 48 + 8 * (index % 3), seed=index)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert batch(data, "--model", MODEL, "-o", whole, "--quiet").exit_code == 0
    command = [sys.executable, "-m", "harmony", "batch", str(data), "--model", str(MODEL)]
    command += ["-o", str(resumed), "--batch", "2"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    log = resumed / "harmony-batch.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 12:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written, logged = len(list(resumed.glob("*.png"))), len(log_entries(log))
    assert 12 <= logged <= written < 48, "killed half way"
    rerun = batch(data, "--model", MODEL, "-o", resumed, "--quiet")
    assert rerun.exit_code == 0, rerun.output
    statuses = [e["status"] for e in log_entries(log)[logged:]]
    assert statuses.count("skipped") == written and statuses.count("done") == 48 - written
    assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in whole.iterdir())
    for path in whole.glob("*.png"):
        assert (resumed / path.name).read_bytes() == path.read_bytes(), path.name


def test_memory_stays_flat_over_two_thousand_images(tmp_path):
    data = tmp_path / "data"
    for index in range(8):
        composite(data, f"s{index}_1_1.png", 24, 24, seed=index)
    peaks = {}
    for count in (200, 2000):
        rows = "".join(
            f"composite_images/s{i % 8}_1_1.png,masks/s{i % 8}_1.png,out{count}/{i}.png\n"
            for i in range(count)
        )
        (data / f"list{count}.csv").write_text("image,mask,output\n" + rows)
        command = [sys.executable, "-m", "harmony", "batch", str(data / f"list{count}.csv")]
        process = subprocess.Popen([*command, "--model", str(MODEL), "--quiet", "--batch", "4"])
        _, status, usage = os.wait4(process.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(list((data / f"out{count}").iterdir())) == count
        peaks[count] = usage.ru_maxrss
    assert peaks[2000] < 1.1 * peaks[200], peaks


def test_harmonize_many_equals_the_runner_and_names_a_failing_pair():
    from harmony.runtime.torch_runner import TorchRunner

    generator = torch.Generator().manual_seed(1)
    pairs = [
        (torch.rand(3, h, w, generator=generator).numpy(), blob_mask(h, w)[0, 0].numpy())
        for h, w in ((32, 40), (32, 40), (24, 24), (32, 40))
    ]
    with TorchRunner(MODEL) as runner:
        expected = [
            runner.infer(torch.from_numpy(i)[None], torch.from_numpy(m)[None, None])
            for i, m in pairs
        ]
        outputs = list(harmonize_many(runner, iter(pairs), batch=1))
        batched = list(harmonize_many(MODEL, iter(pairs), batch=3))
        for output, other, reference in zip(outputs, batched, expected, strict=True):
            assert isinstance(output, np.ndarray) and np.array_equal(output, reference.numpy())
            np.testing.assert_allclose(other, reference.numpy(), atol=1e-5, rtol=0)
        bad = [pairs[0], (pairs[1][0] * 2, pairs[1][1]), pairs[2]]
        stream = harmonize_many(runner, bad)
        assert np.array_equal(next(stream), outputs[0])
        with pytest.raises(HarmonyError, match=r"pair 1: image values must lie in \[0,1\]"):
            next(stream)


def test_shards_on_one_folder_make_the_whole_and_force_redoes(dataset, tmp_path):
    out = tmp_path / "out"
    for index in range(2):
        result = batch(dataset, "--model", MODEL, "-o", out, "--shard", f"{index}/2", "--quiet")
        assert result.exit_code == 0, result.output
    logs = [log_entries(out / f"harmony-batch.shard-{i}-of-2.jsonl") for i in range(2)]
    names = [{Path(e["output"]).name for e in log} for log in logs]
    everything = {path.name for path in (dataset / "composite_images").iterdir()}
    assert names[0] | names[1] == everything and not names[0] & names[1]
    assert {path.name for path in out.glob("*_1_1.*")} == everything
    again = batch(dataset, "--model", MODEL, "-o", out, "--force", "--log", tmp_path / "f.jsonl")
    assert again.exit_code == 0, again.output
    assert [e["status"] for e in log_entries(tmp_path / "f.jsonl")] == ["done"] * len(everything)
    assert f"{len(everything)} done, 0 skipped, 0 failed of {len(everything)}" in again.output


def test_the_log_never_overwrites_the_manifest_and_bad_shards_are_usage_errors(dataset, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,mask\nx.png,y.png\n")
    result = batch(manifest, "--model", MODEL, "-o", tmp_path / "out", "--log", manifest)
    assert result.exit_code == 1 and "is the manifest" in result.output
    assert manifest.read_text() == "image,mask\nx.png,y.png\n"
    result = batch(dataset, "--model", MODEL, "-o", tmp_path, "--shard", "2/2")
    assert result.exit_code == 2 and "a shard is I/N" in result.output
