"""`harmony serve` beside the in-process runner, in one run: latency p50/p90/p99 and images/s of
the fitted AICT checkpoint (torch backend, CPU) at 512x512 and 1024x1024, for 1 and 4
concurrent HTTP clients, with dynamic batching on (--max-batch 4) and off (--max-batch 1).

Each server is a `harmony serve` process on 127.0.0.1 (free ports), started, measured and
stopped by this script. The in-process rows run the same runner in this process on one image
and on a batch as large as the batching server gathers: the compute ceiling that batching can
reach on this machine. Every client sends `--requests` requests of one size (binary tensors,
tritonclient HTTP), one at a time; images/s is all answers over the wall time.
Never asserts timings.

    python benchmarks/serve.py --json benchmarks/results/serve.json \\
        --markdown benchmarks/results/serve.md
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harmony.data import demo_composite
from harmony.profiling.environment import environment
from harmony.runtime.torch_runner import TorchRunner
from harmony.weights import fitted_checkpoint
from results_files import command_line, machine_line, results_parser, write_results

ARCH = "aict"
SIZES = (512, 1024)
CLIENTS = (1, 4)
BATCHING = {"on": 4, "off": 1}
# Below this gain of a batch over one image in process, batching cannot raise throughput here.
CEILING = 1.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {q: float(np.percentile(ms, int(q[1:]))) for q in ("p50", "p90", "p99")}


def in_process(size: int, batch: int, requests: int) -> dict:
    image, mask, _ = demo_composite(size, size)
    image, mask = image.expand(batch, -1, -1, -1), mask.expand(batch, -1, -1, -1)
    with TorchRunner(fitted_checkpoint(ARCH)) as runner:
        runner.infer(image, mask)  # warm-up, as the server's
        times = []
        start = time.perf_counter()
        for _ in range(requests):
            begin = time.perf_counter()
            runner.infer(image, mask)
            times.append(time.perf_counter() - begin)
        wall = time.perf_counter() - start
    return {**percentiles(times), "images_per_s": batch * requests / wall}


def start_server(max_batch: int) -> tuple[subprocess.Popen, int]:
    ports = [free_port() for _ in range(3)]
    command = [sys.executable, "-m", "harmony", "serve", str(fitted_checkpoint(ARCH))]
    command += ["--http-port", str(ports[0]), "--grpc-port", str(ports[1])]
    command += ["--metrics-port", str(ports[2]), "--max-batch", str(max_batch)]
    command += ["--max-queue-delay-us", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            url = f"http://127.0.0.1:{ports[0]}/v2/health/ready"
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return process, ports[0]
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("serve.py: harmony serve did not start")


def served(port: int, size: int, clients: int, requests: int) -> dict:
    import tritonclient.http as http

    image, mask, _ = demo_composite(size, size)
    arrays = {"image": image.numpy(), "mask": mask.numpy()}

    def client(_: int) -> list[float]:
        connection = http.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=600)
        tensors = []
        for name, array in arrays.items():
            tensor = http.InferInput(name, list(array.shape), "FP32")
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        output = [http.InferRequestedOutput("harmonized", binary_data=True)]
        times = []
        for _ in range(requests):
            begin = time.perf_counter()
            connection.infer(f"{ARCH}-fitted", tensors, outputs=output).as_numpy("harmonized")
            times.append(time.perf_counter() - begin)
        return times

    client(0)  # the first request of a size
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = [t for result in pool.map(client, range(clients)) for t in result]
    wall = time.perf_counter() - start
    return {**percentiles(times), "images_per_s": len(times) / wall}


def measure(requests: int) -> list[dict]:
    rows = []
    for size in SIZES:
        for batch in sorted(set(BATCHING.values())):
            figures = in_process(size, batch, requests)
            row = {"mode": f"in-process, batch {batch}", "size": size, "clients": 1}
            rows.append({**row, **figures})
            print(rows[-1], flush=True)
    for batching, max_batch in BATCHING.items():
        process, port = start_server(max_batch)
        try:
            for size in SIZES:
                for clients in CLIENTS:
                    figures = served(port, size, clients, requests)
                    row = {"mode": f"served, batching {batching}", "size": size, "clients": clients}
                    rows.append({**row, **figures})
                    print(rows[-1], flush=True)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
    return rows


def markdown(document: dict) -> str:
    rows = document["results"]
    lines = [
        "# harmony serve beside the in-process runner",
        "",
        machine_line(document["environment"]),
        f"{ARCH} (fitted), torch backend on the CPU; {document['requests']} requests per client; "
        "latency of each request as its client saw it; images/s: all answers over the wall time.",
        "",
        "| mode | size | clients | p50 ms | p90 ms | p99 ms | images/s | p50 vs in-process | "
        "images/s vs 1 client |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        alone = next(
            r for r in rows if r["mode"] == "in-process, batch 1" and r["size"] == row["size"]
        )
        single = next(
            r for r in rows if (r["mode"], r["size"], r["clients"]) == (row["mode"], row["size"], 1)
        )
        served = not row["mode"].startswith("in-process")
        gain = f"{row['images_per_s'] / single['images_per_s']:.2f}x" if served else ""
        lines.append(
            f"| {row['mode']} | {row['size']}x{row['size']} | {row['clients']} | "
            f"{row['p50']:.0f} | {row['p90']:.0f} | {row['p99']:.0f} | "
            f"{row['images_per_s']:.2f} | {row['p50'] / alone['p50']:.3f}x | "
            f"{gain} |"
        )
    lines += ["", *(reading(rows, size) for size in SIZES)]
    return "\n".join(lines) + "\n"


def reading(rows: list[dict], size: int) -> str:
    """What the rows of one size say: the serving overhead, what 4 clients gain with batching,
    and the ceiling a batch reaches in process."""

    def row(mode: str, clients: int = 1) -> dict:
        return next(
            r for r in rows if (r["mode"], r["size"], r["clients"]) == (mode, size, clients)
        )

    alone, batched = row("in-process, batch 1"), row(f"in-process, batch {BATCHING['on']}")
    single, many = row("served, batching on"), row("served, batching on", max(CLIENTS))
    return (
        f"- {size}x{size}: serving adds {single['p50'] / alone['p50'] - 1:+.1%} to the p50 of "
        f"one client; {max(CLIENTS)} clients with batching reach "
        f"{many['images_per_s'] / single['images_per_s']:.2f}x the single client's images/s, "
        f"while in process a batch of {BATCHING['on']} reaches "
        f"{batched['images_per_s'] / alone['images_per_s']:.2f}x one image's"
        + (
            ": one inference already keeps every core of this CPU busy, so batching has no "
            "throughput to add."
            if batched["images_per_s"] < CEILING * alone["images_per_s"]
            else "."
        )
    )


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6)
    args = parser.parse_args()
    document = {
        "environment": environment(command_line()),
        "requests": args.requests,
        "results": measure(args.requests),
    }
    write_results(args, document, markdown)


if __name__ == "__main__":
    main()
