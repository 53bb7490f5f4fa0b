"""scripts/gpu_check.sh --dry-run (`harmony gpu-check --dry-run`): every step of the GPU check
on the CPU, the plugins' CPU build in place of the CUDA kernels, so the check is known to work
before a GPU is lent (what it measures there: README, "GPU check")."""

from __future__ import annotations

import json
import sys

from harmony.contract import ARCHS
from tests.helpers import REPO_ROOT, run


def test_the_dry_run_checks_parity_times_the_kernels_and_benches_every_arch(cpu_ops_dir, tmp_path):
    out = tmp_path / "gpu"
    log = run(
        ["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh"), "--dry-run", str(out)],
        env={"PYTHON": sys.executable, "HARMONY_PLUGIN_DIR": str(cpu_ops_dir)},
    )
    assert "dry run on the CPU" in log
    document = json.loads((out / "gpu_check.json").read_text())
    assert document["dry_run"] and document["device"]["name"].startswith("cpu")
    checks = {row["check"]: row for row in document["parity"]}
    assert {"LUT 64x64 float32 eager", "KNN 64x64 float32 eager"} <= set(checks)
    for arch in ARCHS:  # the pipeline on the plugins' CPU build against the reference ops
        assert f"{arch} pipeline 64x64 (libharmony_cpu_ops.so ops) vs CPU reference" in checks
    assert all(row["passed"] and row["max_abs"] <= row["bound"] for row in checks.values())
    timed = {(row["op"], row["impl"]): row for row in document["kernels"]}
    assert set(timed) == {(op, impl) for op in ("LUT", "KNN") for impl in ("kernel", "torch")}
    assert all(row["ms"] > 0 for row in timed.values())
    assert timed["LUT", "kernel"]["bandwidth_gbs"] > 0 and timed["KNN", "kernel"]["gflops"] > 0
    bench = document["bench"]
    assert sorted(record["arch"] for record in bench) == sorted(ARCHS)
    assert all(not record["skipped"] and record["latency_ms"]["mean"] > 0 for record in bench)
    report = (out / "gpu_check.md").read_text()
    assert report.startswith("# GPU check (dry run on the CPU)")
    assert "| LUT | 64x64 | float32 | kernel |" in report
