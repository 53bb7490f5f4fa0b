"""`harmony serve` on a real tritonserver (the one PyTriton bundles), on 127.0.0.1 and free
ports: one server for the module (every architecture, raw and encoded), bounded request counts,
every process stopped at the end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harmony.data import decode_image, decode_mask, encode_image
from harmony.models.init import make_random_checkpoint
from harmony.runtime.torch_runner import TorchRunner
from harmony.weights import fitted_checkpoint
from tests.helpers import blob_mask

pytest.importorskip("pytriton", reason="needs the serve extra (nvidia-pytriton)")
http = pytest.importorskip("tritonclient.http", reason="needs the serve extra (tritonclient)")
grpc = pytest.importorskip("tritonclient.grpc", reason="needs the serve extra (tritonclient)")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

START_TIMEOUT_S = 300
# HDNet's torch run at 1024x1024 is estimated at 2.4 GiB: refused under this limit, while the
# small requests of these tests fit.
MEMORY_LIMIT_GB = "2"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


class Server:
    """A `harmony serve` process; `readiness` holds what /v2/health/ready answered while it
    started (False: refused or not ready)."""

    def __init__(self, models: list[Path], log: Path, *options: str):
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        command = [sys.executable, "-m", "harmony", "serve", *map(str, models)]
        command += ["--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)]
        command += ["--metrics-port", str(self.metrics_port), *options]
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HARMONY_MEMORY_LIMIT_GB": MEMORY_LIMIT_GB},
            )
        self.readiness = []
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.readiness.append(self.ready())
            if self.readiness[-1] and b"\nready: " in b"\n" + log.read_bytes():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        self.stop()
        raise AssertionError(f"harmony serve did not start:\n{log.read_text()[-3000:]}")

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def tritonserver_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    return {
        "aict": fitted_checkpoint("aict"),
        "hdnet-lite": fitted_checkpoint("hdnet-lite"),
        "hdnet": make_random_checkpoint("hdnet", 7, folder / "hdnet.pth"),
    }


MODEL_NAMES = {"aict": "aict-fitted", "hdnet-lite": "hdnet-lite-fitted", "hdnet": "hdnet"}


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    options = ["--max-batch", "4", "--max-queue-delay-us", "50000"]
    running = Server(list(checkpoints.values()), log, *options)
    yield running
    assert running.stop() == 128 + signal.SIGTERM


@pytest.fixture(scope="module")
def runners(checkpoints):
    """In-process torch runners of the same checkpoints: what the server must answer."""
    active = {arch: TorchRunner(path).activate() for arch, path in checkpoints.items()}
    yield active
    for runner in active.values():
        runner.deactivate()


def inputs(height: int, width: int, seed: int, batch: int = 1):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    return image.numpy(), blob_mask(height, width, batch, soft=True).numpy()


def remote_infer(protocol, port: int, model: str, image, mask):
    """`harmonized` of (image, mask) from `model` over `protocol` (tritonclient.http or .grpc);
    HTTP answers in binary, so floats come back exactly."""
    client = protocol.InferenceServerClient(f"127.0.0.1:{port}")
    tensors = []
    for name, array in (("image", image), ("mask", mask)):
        tensor = protocol.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    output = protocol.InferRequestedOutput(
        "harmonized", **({"binary_data": True} if protocol is http else {})
    )
    return client.infer(model, tensors, outputs=[output]).as_numpy("harmonized")


def http_infer(server, model, image, mask):
    return remote_infer(http, server.http_port, model, image, mask)


def grpc_infer(server, model, image, mask):
    return remote_infer(grpc, server.grpc_port, model, image, mask)


def test_readiness_comes_only_once_every_model_is_warm(server):
    assert server.readiness[0] is False and server.readiness[-1] is True
    log = server.log.read_text()
    assert log.count("successfully loaded") >= 2 * len(MODEL_NAMES)
    assert re.search(r"ready: .*aict-fitted-encoded", log)


@pytest.mark.parametrize("arch", list(MODEL_NAMES))
def test_http_and_grpc_equal_the_in_process_runner_bit_for_bit(server, runners, arch):
    for size, seed in (((48, 64), 1), ((72, 40), 2)):
        image, mask = inputs(*size, seed)
        expected = runners[arch].infer(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
        for infer in (http_infer, grpc_infer):
            assert np.array_equal(infer(server, MODEL_NAMES[arch], image, mask), expected), infer


def test_the_encoded_model_takes_and_gives_files(server, runners):
    image, mask = (torch.from_numpy(a) for a in inputs(40, 48, 3))
    client = http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    tensors = []
    files = (("image", encode_image(image, 16)), ("mask", encode_image(mask.expand(1, 3, -1, -1))))
    for name, data in files:
        tensor = http.InferInput(name, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[data]], dtype=object))
        tensors.append(tensor)
    (png,) = client.infer("hdnet-lite-fitted-encoded", tensors).as_numpy("harmonized").reshape(-1)
    written, depth = decode_image(png, "response")
    sent = decode_image(files[0][1], "image")[0], decode_mask(files[1][1], "mask")
    expected = runners["hdnet-lite"].infer(*sent)
    assert depth == 16
    np.testing.assert_allclose(written, expected, atol=0.5 / 65535, rtol=0)


def _metric(server, name: str, model: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics") as reply:
        text = reply.read().decode()
    pattern = rf'^{name}{{[^}}]*model="{re.escape(model)}"[^}}]*}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def test_concurrent_clients_are_answered_correctly_and_batched(server, runners):
    model = MODEL_NAMES["hdnet-lite"]
    counts = ("nv_inference_count", "nv_inference_exec_count")
    before = [_metric(server, name, model) for name in counts]

    def client(number: int) -> list[bool]:
        correct = []
        for request in range(25):
            image, mask = inputs(32, 40, 1000 * number + request)
            expected = runners["hdnet-lite"].infer(torch.from_numpy(image), torch.from_numpy(mask))
            answer = http_infer(server, model, image, mask)
            correct.append(bool(np.allclose(answer, expected.numpy(), atol=1e-5, rtol=0)))
        return correct

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, range(4)))
    assert all(all(correct) for correct in results) and sum(map(len, results)) == 100
    inferences, executions = (
        _metric(server, name, model) - earlier for name, earlier in zip(counts, before, strict=True)
    )
    assert inferences == 100 and executions < inferences  # requests were batched together


def test_every_bad_request_is_answered_alone_and_the_next_good_one_succeeds(server):
    model = MODEL_NAMES["hdnet-lite"]
    image, mask = inputs(32, 40, 5)
    cases = [
        ("hdnet-lite-fitted", image, mask[..., :-1], "must share batch, height and width"),
        ("hdnet-lite-fitted", image * 3, mask, "image values must lie in [0,1]"),
        ("hdnet-lite-fitted", np.full_like(image, np.nan), mask, "NaN or infinite"),
        ("hdnet-lite-fitted", image[:, :1], mask, "unexpected shape"),  # Triton's own check
        ("hdnet", *inputs(1024, 1024, 6), "refused before allocation"),
    ]
    for name, bad_image, bad_mask, message in cases:
        bad_image, bad_mask = np.ascontiguousarray(bad_image), np.ascontiguousarray(bad_mask)
        with pytest.raises(InferenceServerException, match=re.escape(message)) as error:
            http_infer(server, name, bad_image, bad_mask)
        assert error.value.status() == "400"
        assert http_infer(server, model, image, mask).shape == image.shape
    assert "needs about" in str(error.value)  # the memory refusal names estimate and limit
    assert "more than the 2.0 GiB available" in str(error.value)
    client = http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    garbage = [http.InferInput(name, [1, 1], "BYTES") for name in ("image", "mask")]
    for tensor in garbage:
        tensor.set_data_from_numpy(np.array([[b"not an image"]], dtype=object))
    with pytest.raises(InferenceServerException, match="Cannot decode the request's image"):
        client.infer("hdnet-lite-fitted-encoded", garbage)
    empty = http_infer(server, model, image, np.zeros_like(mask))  # a warning, not an error
    assert np.allclose(empty, image, atol=1e-6)
    assert server.ready() and "request 0: the mask is empty" in server.log.read_text()


def test_sigterm_finishes_the_requests_in_flight_and_leaves_no_server(tmp_path):
    served = Server([fitted_checkpoint("hdnet-lite")], tmp_path / "serve.log")
    tritonservers = served.tritonserver_pids()
    assert tritonservers, "harmony serve runs tritonserver as its child"
    image, mask = inputs(1024, 1024, 8)
    answer = {}
    request = threading.Thread(
        target=lambda: answer.update(output=http_infer(served, "hdnet-lite-fitted", image, mask))
    )
    request.start()
    time.sleep(0.5)  # the request is in flight
    assert served.stop() == 128 + signal.SIGTERM
    request.join(60)
    assert answer["output"].shape == image.shape  # answered, not dropped
    for pid in tritonservers:
        assert not Path(f"/proc/{pid}").exists(), f"tritonserver {pid} outlived harmony serve"


def test_tritonserver_loads_the_repository_triton_repo_writes(tmp_path, runners):
    """The self-contained Python backend repository of `harmony triton-repo` (the checkpoint
    copied in, referred to relative to the model), read by the bundled tritonserver itself."""
    from click.testing import CliRunner

    from harmony.cli.main import cli
    from harmony.serving.server import Endpoints, start_server, triton_install, wait_until_ready

    repository = tmp_path / "repo"
    written = CliRunner().invoke(
        cli, ["triton-repo", str(fitted_checkpoint("hdnet-lite")), "-o", str(repository)]
    )
    assert written.exit_code == 0, written.output
    endpoints = Endpoints("127.0.0.1", *free_ports(3))
    process = start_server(repository, endpoints, 10, triton_install())
    try:
        wait_until_ready(process, endpoints, START_TIMEOUT_S)
        image, mask = inputs(56, 48, 9)
        expected = runners["hdnet-lite"].infer(torch.from_numpy(image), torch.from_numpy(mask))
        served = SimpleNamespace(http_port=endpoints.http_port)
        assert np.array_equal(http_infer(served, "hdnet-lite-fitted", image, mask), expected)
    finally:
        process.terminate()
        assert process.wait(60) == 0


def test_a_port_in_use_is_refused_and_one_just_released_is_not():
    from harmony.errors import HarmonyError
    from harmony.serving.server import Endpoints

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        http_port, metrics_port = free_ports(2)
        with pytest.raises(HarmonyError, match=f"cannot listen on 127.0.0.1:{port}"):
            Endpoints("127.0.0.1", http_port, port, metrics_port).check_free()
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: its port stays in TIME_WAIT
    Endpoints("127.0.0.1", http_port, port, metrics_port).check_free()  # as a restarted server
