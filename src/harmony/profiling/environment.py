"""What a measurement ran on: the machine, library versions and the command line."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from harmony.engines.trt_env import RUNTIMES, import_runtime
from harmony.version import __version__


def environment(command: str) -> dict:
    """Machine, library versions and the command line of a run."""
    versions = {"harmony": __version__, "torch": torch.__version__}
    for module in ("onnxruntime", "onnx"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    for runtime in RUNTIMES.values():
        installed = runtime.is_installed()
        versions[runtime.name] = (
            import_runtime(runtime).__version__ if installed else ("not installed")
        )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": command,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "versions": versions,
    }


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else the platform's processor name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
