"""`harmony serve`: the tritonserver binary that PyTriton bundles, on a model repository of
Python backend models (`harmony.serving.repository`), as one process this one owns.

- The binary and its libraries come from the `nvidia-pytriton` wheel (`pip install
  'harmony-deploy[serve]'`); Triton's Python backend needs the stub built for this Python, which
  the wheel ships per version: the backend folder (`backend_directory`) is assembled once in
  harmony's cache.
- The stub runs an embedded Python that finds its environment from PATH: the folder of this
  interpreter goes first, so the models import harmony from the same environment. Its libpython
  is this interpreter's (LD_LIBRARY_PATH), not the system's: with another libpython of the same
  version (a pyenv build beside Debian's), model loading fails in multiprocessing.
- Triton opens its endpoints once every model is loaded, and a model loads only once warm
  (`triton_model.TritonPythonModel.initialize`): ready means warm.
- SIGTERM and SIGINT are passed on to tritonserver, which stops taking requests, finishes the
  ones in flight (up to `--exit-timeout-secs`) and exits; tritonserver gets SIGTERM too if this
  process dies first (PR_SET_PDEATHSIG), so no server outlives it.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harmony.errors import HarmonyError
from harmony.files import cache_dir
from harmony.serving.batching import Batching
from harmony.serving.repository import serving_repository

SERVE_EXTRA = "pip install 'harmony-deploy[serve]'"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Endpoints:
    """Where the server listens: one address for HTTP, gRPC and metrics, three ports."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def arguments(self) -> list[str]:
        return [
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
        ]

    def check_free(self) -> None:
        """Raise HarmonyError naming a port something else listens on."""
        for port in (self.http_port, self.grpc_port, self.metrics_port):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                # As servers bind: a port left in TIME_WAIT by a server just stopped is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, port))
                except OSError as exc:
                    raise HarmonyError(
                        f"cannot listen on {self.host}:{port} ({exc.strerror or exc}); choose "
                        "other ports (--http-port, --grpc-port, --metrics-port)"
                    ) from None


@dataclass(frozen=True)
class TritonInstall:
    """The bundled tritonserver: its binary, its libraries and the Python backend folder."""

    binary: Path
    libraries: Path
    backends: Path


def triton_install() -> TritonInstall:
    """The tritonserver of the installed nvidia-pytriton, with the Python backend assembled for
    this Python in harmony's cache.

    Raises:
        HarmonyError: nvidia-pytriton is not installed, or ships no stub for this Python.
    """
    if importlib.util.find_spec("pytriton") is None:
        raise HarmonyError(f"harmony serve needs Triton Inference Server: {SERVE_EXTRA}")
    import pytriton
    from pytriton.utils.distribution import get_libs_path

    root = Path(pytriton.__file__).parent / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise HarmonyError(
            f"nvidia-pytriton {_version('nvidia-pytriton')} has no Python backend for Python "
            f"{version}; run harmony serve with a Python it supports (3.8 to 3.13)"
        )
    backends = cache_dir("tritonserver") / f"pytriton-{_version('nvidia-pytriton')}-py{version}"
    if not (backends / "python" / stub.name).is_file():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=backends.parent))
        shutil.copytree(root / "backends" / "python", staging / "python")
        shutil.copy2(stub, staging / "python" / stub.name)
        try:
            staging.rename(backends)
        except OSError:  # another process assembled it first
            shutil.rmtree(staging, ignore_errors=True)
    return TritonInstall(root / "bin" / "tritonserver", Path(get_libs_path()), backends)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def server_environment(install: TritonInstall) -> dict[str, str]:
    """The environment tritonserver and its Python backend stubs run in (module docstring)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libraries = [str(install.libraries), sysconfig.get_config_var("LIBDIR") or ""]
    if env.get("LD_LIBRARY_PATH"):
        libraries.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, libraries))
    return env


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_server(
    repository: Path, endpoints: Endpoints, exit_timeout_s: int, install: TritonInstall
) -> subprocess.Popen:
    """tritonserver on `repository`, every model loaded at start, strict readiness."""
    command = [
        str(install.binary),
        f"--model-repository={repository}",
        f"--backend-directory={install.backends}",
        f"--exit-timeout-secs={exit_timeout_s}",
        "--strict-readiness=true",
        "--log-verbose=0",
        *endpoints.arguments(),
    ]
    return subprocess.Popen(command, env=server_environment(install), preexec_fn=_die_with_parent)


def wait_until_ready(process: subprocess.Popen, endpoints: Endpoints, timeout_s: float) -> None:
    """Return once the server says it is ready.

    Raises:
        HarmonyError: tritonserver exited (a model failed to load: its log says why), or was not
            ready within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HarmonyError(
                f"tritonserver exited with status {process.returncode} while loading the models "
                "(its log above says why)"
            )
        if is_ready(endpoints):
            return
        time.sleep(0.2)
    raise HarmonyError(f"tritonserver was not ready after {timeout_s:.0f} s")


def is_ready(endpoints: Endpoints) -> bool:
    """Whether /v2/health/ready answers 200."""
    try:
        with urllib.request.urlopen(f"{endpoints.http_url}/v2/health/ready", timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serve(
    models: list[Path],
    endpoints: Endpoints,
    batching: Batching,
    backend: str | None = None,
    device: str | None = None,
    exit_timeout_s: int = 30,
    ready_timeout_s: float = 600,
    on_ready=None,
) -> int:
    """Serve `models` until SIGTERM or SIGINT; returns the exit status (143 after SIGTERM, 130
    after SIGINT, tritonserver's own where it stopped by itself).

    Raises:
        HarmonyError: no Triton installed, a port in use, a model that cannot be served.
    """
    install = triton_install()
    endpoints.check_free()
    stopped: list[int] = []
    with tempfile.TemporaryDirectory(prefix="harmony-serve-") as work:
        repository = Path(work) / "models"
        names = serving_repository(models, repository, batching, backend, device)
        process = start_server(repository, endpoints, exit_timeout_s, install)

        def stop(signum, frame) -> None:
            stopped.append(signum)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # Triton drains the requests in flight

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not stopped:
                wait_until_ready(process, endpoints, ready_timeout_s)
                if on_ready is not None:
                    on_ready(names)
            status = process.wait()
        except HarmonyError:
            if process.poll() is None:
                process.terminate()
            process.wait()
            if not stopped:  # stopped while loading: not an error
                raise
            status = process.returncode
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 128 + stopped[0] if stopped else status
