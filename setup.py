"""Wheel builds carry the native libraries: `pip install .` runs scripts/build_plugins.sh and puts
what it built (libharmony_cpu_ops.so always; libharmony_cuda_ops.so with nvcc;
libharmony_plugins.so with TENSORRT_ROOT set; libharmony_ort_ops.so with ONNXRUNTIME_ROOT set)
into harmony/plugins/lib/ of the wheel, where `harmony.plugins` finds them. HARMONY_CPU_ONLY=1
builds the CPU library alone. Editable installs build nothing here: they use build/plugins/ of
the checkout (scripts/setup_env.sh builds it).
Everything else about the package is in pyproject.toml.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithNativeLibraries(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "harmony" / "plugins" / "lib"
        target.mkdir(parents=True, exist_ok=True)
        arguments = ["--cpu-only"] if os.environ.get("HARMONY_CPU_ONLY") == "1" else []
        with tempfile.TemporaryDirectory() as build_dir:
            environment = {**os.environ, "HARMONY_PLUGIN_DIR": build_dir}
            script = ROOT / "scripts" / "build_plugins.sh"
            subprocess.run(["bash", str(script), *arguments], env=environment, check=True)
            for library in Path(build_dir).glob("lib*.so"):
                shutil.copy2(library, target / library.name)


setup(cmdclass={"build_py": BuildPyWithNativeLibraries})
