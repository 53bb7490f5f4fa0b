"""`harmony batch` beside the two ways it replaces, side by side in one run: a loop of
`harmony-run` processes (start-up and model load per image) and a plain in-process loop
(decode, infer, encode one after the other, the model loaded once), over the same composites
(demo composites written as 8-bit PNGs), with the FP32 ONNX Runtime graphs (`--target ort`) of
the fitted AICT and HDNet-lite checkpoints on the CPU.

images/s is images over wall time: the batch command's includes its start-up and model load
(one per run), the process loop's its start-ups (it runs the first `--process-count` images
only: each image costs the same). The in-process loop's time split (decode / infer / encode)
shows where the time goes. Never asserts timings.

    python benchmarks/batch.py --json benchmarks/results/batch.json \\
        --markdown benchmarks/results/batch.md
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harmony.artifacts import cached_export
from harmony.data import demo_composite, read_image, read_mask, write_image
from harmony.memory_model import estimated_peak_bytes
from harmony.profiling.environment import environment
from harmony.runtime.ort_runner import OrtRunner
from harmony.weights import fitted_checkpoint
from results_files import command_line, machine_line, results_parser, write_results

ARCHS = ("hdnet-lite", "aict")
# HDNet-lite's portable graph at 2048x2048 needs most of this machine's memory
# (memory_models.json): a second run in one process is refused by the memory guard (ONNX
# Runtime's arena still holds the first run's memory), so each image would need its own process.
LARGE_ARCHS = ("aict",)
LARGE = 2048
MODES = ("harmony batch", "in-process loop", "harmony-run processes")


def write_composites(folder: Path, size: int, count: int) -> list[tuple[Path, Path]]:
    """`count` distinct composites of size x size in iHarmony4 layout; (image, mask) each."""
    pairs = []
    for index in range(count):
        image, mask, _ = demo_composite(size, size, seed=index)
        composite = folder / "composite_images" / f"c{index:04d}_1_1.png"
        write_image(composite, image)
        write_image(folder / "masks" / f"c{index:04d}_1.png", mask.expand(1, 3, -1, -1))
        pairs.append((composite, folder / "masks" / f"c{index:04d}_1.png"))
    return pairs


def batch_command(graph: Path, data: Path, out: Path, workers: int) -> float:
    command = [sys.executable, "-m", "harmony", "batch", str(data), "--model", str(graph)]
    command += ["-o", str(out), "--quiet", "--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def process_loop(graph: Path, pairs: list, out: Path) -> float:
    start = time.perf_counter()
    for image, mask in pairs:
        command = [sys.executable, "-m", "harmony", "run", "--model", str(graph)]
        command += ["--image", str(image), "--mask", str(mask), "-o", str(out / image.name)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def in_process_loop(graph: Path, pairs: list, out: Path) -> tuple[float, dict]:
    split = {"decode": 0.0, "infer": 0.0, "encode": 0.0}
    start = time.perf_counter()
    with OrtRunner(graph) as runner:
        for image_path, mask_path in pairs:
            begin = time.perf_counter()
            image, depth = read_image(image_path)
            mask = read_mask(mask_path, size=tuple(image.shape[-2:]))
            decoded = time.perf_counter()
            output = runner.infer(image, mask)
            inferred = time.perf_counter()
            write_image(out / image_path.name, output, depth)
            split["decode"] += decoded - begin
            split["infer"] += inferred - decoded
            split["encode"] += time.perf_counter() - inferred
    return time.perf_counter() - start, split


def measure(counts: dict[int, int], process_count: int, workers: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="harmony-batch-bench-") as work:
        work = Path(work)
        graphs = {arch: cached_export(fitted_checkpoint(arch), "ort", "fp32") for arch in ARCHS}
        for size, count in counts.items():
            data = work / f"data{size}"
            pairs = write_composites(data, size, count)
            for arch, graph in graphs.items():
                if size >= LARGE and arch not in LARGE_ARCHS:
                    continue
                out = work / f"{arch}-{size}"
                seconds = {
                    "harmony batch": batch_command(graph, data, out / "batch", workers),
                    "harmony-run processes": process_loop(
                        graph, pairs[:process_count], (out / "processes").absolute()
                    ),
                }
                (out / "loop").mkdir()
                seconds["in-process loop"], split = in_process_loop(graph, pairs, out / "loop")
                images = {mode: count for mode in MODES} | {
                    "harmony-run processes": min(count, process_count)
                }
                for mode in MODES:
                    row = {"arch": arch, "size": size, "mode": mode, "images": images[mode]}
                    row |= {"seconds": seconds[mode], "images_per_s": images[mode] / seconds[mode]}
                    if mode == "in-process loop":
                        row["split_s"] = split
                    rows.append(row)
                    print(row, flush=True)
    return rows


def markdown(document: dict) -> str:
    rows = document["results"]
    lines = [
        "# harmony batch beside a loop of harmony-run processes and a plain in-process loop",
        "",
        machine_line(document["environment"]),
        f"ONNX Runtime FP32 graphs (`--target ort`) of the fitted checkpoints on the CPU; "
        f"`--workers {document['workers']}`, `--batch 1`; 8-bit PNG demo composites. At "
        f"{LARGE}x{LARGE} only {', '.join(LARGE_ARCHS)}: HDNet-lite's portable graph needs about "
        f"{estimated_peak_bytes('ort', 'hdnet-lite', LARGE, LARGE) / 2**30:.1f} GiB there, and a "
        "second image in one process does not fit this machine.",
        "",
        "| model | size | mode | images | seconds | images/s | harmony batch vs this |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        batch = next(
            r
            for r in rows
            if (r["arch"], r["size"], r["mode"]) == (row["arch"], row["size"], "harmony batch")
        )
        lines.append(
            f"| {row['arch']} | {row['size']}x{row['size']} | {row['mode']} | {row['images']} | "
            f"{row['seconds']:.1f} | {row['images_per_s']:.3f} | "
            f"{batch['images_per_s'] / row['images_per_s']:.2f}x |"
        )
    lines += ["", "Where the in-process loop's time goes:", ""]
    lines += ["| model | size | decode | infer | encode |", "| --- | --- | ---: | ---: | ---: |"]
    for row in rows:
        if row["mode"] == "in-process loop":
            split = row["split_s"]
            total = sum(split.values())
            shares = " | ".join(
                f"{split[stage] / total:.0%}" for stage in ("decode", "infer", "encode")
            )
            lines.append(f"| {row['arch']} | {row['size']}x{row['size']} | {shares} |")
    lines += ["", *(reading(rows, arch, size) for arch, size in _configurations(rows))]
    return "\n".join(lines) + "\n"


def _configurations(rows: list[dict]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((row["arch"], row["size"]) for row in rows))


def reading(rows: list[dict], arch: str, size: int) -> str:
    """What one configuration's rows say: the start-up a process loop pays per image, and the
    most the overlap can gain over the plain loop (decode and encode hidden entirely)."""
    by_mode = {row["mode"]: row for row in rows if (row["arch"], row["size"]) == (arch, size)}
    loop, processes = by_mode["in-process loop"], by_mode["harmony-run processes"]
    per_image = {mode: row["seconds"] / row["images"] for mode, row in by_mode.items()}
    split = loop["split_s"]
    ceiling = sum(split.values()) / split["infer"]
    infer = split["infer"] / loop["images"]
    return (
        f"- {arch} {size}x{size}: a harmony-run process spends "
        f"{per_image['harmony-run processes'] - per_image['in-process loop']:.1f} s per image "
        f"on start-up and model load beside {per_image['in-process loop']:.1f} s of work "
        f"({infer:.1f} s of it inference): removing the start-up gains "
        f"{per_image['harmony-run processes'] / per_image['in-process loop']:.2f}x over the "
        f"process loop, and hiding decode and encode entirely as well at most "
        f"{per_image['harmony-run processes'] / infer:.2f}x ({ceiling:.2f}x over the plain loop), "
        "where ONNX Runtime already runs the inference on every core "
        f"({processes['images']} process runs measured)."
    )


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--count-1024", type=int, default=200)
    parser.add_argument("--count-2048", type=int, default=50)
    parser.add_argument("--process-count", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    counts = {1024: args.count_1024, 2048: args.count_2048}
    document = {
        "environment": environment(command_line()),
        "workers": args.workers,
        "results": measure(counts, args.process_count, args.workers),
    }
    write_results(args, document, markdown)


if __name__ == "__main__":
    main()
