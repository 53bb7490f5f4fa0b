"""harmony-bench's outputs: the JSON document, a Markdown table and an optional plot."""

from __future__ import annotations

import json
import os

from harmony.files import atomic_output
from harmony.plugins.ort import EXTENSIONS, ORT_OPS

# The AICT paper's Table 11/12 (GTX 1070 Ti), for orientation only: other hardware.
AICT_PAPER = {1024: "72.32 ms / 1289 MB", 2048: "91.64 ms / 1653 MB"}


def bench_document(environment: dict, records: list[dict], picks: list[dict] | None = None) -> dict:
    """`{"environment": {...}, "results": [record, ...]}`, with `"fastest_cpu": [pick, ...]`
    (`fastest_cpu_backends`) where harmony-bench chose the backends itself."""
    document = {"environment": environment, "results": records}
    if picks is not None:
        document["fastest_cpu"] = picks
    return document


def fastest_cpu_backends(records: list[dict]) -> list[dict]:
    """For each file, precision, size and batch measured on the CPU by two backends or more, the
    one with the lowest mean latency: `{"source", "arch", "precision", "height", "width",
    "batch", "backend", "mean_ms", "speedup": {other backend: its mean over the fastest's}}`."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["device"] == "cpu" and not record.get("skipped"):
            key = tuple(
                record[name] for name in ("source", "arch", "precision", "height", "width", "batch")
            )
            groups.setdefault(key, []).append(record)
    picks = []
    for (source, arch, precision, height, width, batch), measured in groups.items():
        if len(measured) < 2:
            continue
        fastest = min(measured, key=lambda record: record["latency_ms"]["mean"])
        best = fastest["latency_ms"]["mean"]
        picks.append(
            {
                "source": source,
                "arch": arch,
                "precision": precision,
                "height": height,
                "width": width,
                "batch": batch,
                "backend": backend_label(fastest),
                "mean_ms": best,
                "speedup": {
                    backend_label(other): other["latency_ms"]["mean"] / best
                    for other in measured
                    if other is not fastest
                },
            }
        )
    return picks


def pick_sentence(pick: dict) -> str:
    """The pick in one line, "fastest CPU backend for FILE at HxW PRECISION: BACKEND (RATIOx
    OTHER, ...)", each ratio another backend's mean latency over the fastest's."""
    others = ", ".join(f"{ratio:.2f}x {name}" for name, ratio in pick["speedup"].items())
    return (
        f"fastest CPU backend for {os.path.basename(pick['source'])} at "
        f"{pick['height']}x{pick['width']} {pick['precision']}"
        + (f" batch {pick['batch']}" if pick["batch"] > 1 else "")
        + f": {pick['backend']} ({others})"
    )


def backend_label(record: dict) -> str:
    """The backend column: `torch+fused+graphs` for the torch backend with the plugin kernels
    and CUDA graphs, `ort-custom+extensions` for the custom nodes run by onnxruntime-extensions
    with libharmony_cpu_ops.so, the backend's name otherwise."""
    parts = [record["backend"]]
    if record.get("kernels") == "fused":
        parts.append("fused")
    if record.get("cuda_graphs"):
        parts.append("graphs")
    if record.get("custom_ops") == EXTENSIONS:
        parts.append("extensions")
    return "+".join(parts)


def write_json(path: str | os.PathLike, document: dict, force: bool = False) -> None:
    with atomic_output(path, force) as temp:
        temp.write_text(json.dumps(document, indent=2) + "\n")


def psnr_beside_composite(output: dict, composite: dict) -> str:
    """A held-out PSNR beside the composites', e.g. "31.61 (composite 29.84)", from two dicts
    of mean scores."""
    return f"{output['psnr']:.2f} (composite {composite['psnr']:.2f})"


def held_out_psnr(record: dict) -> str:
    """The bench record's held-out PSNR (`psnr_beside_composite`); "" where not scored."""
    quality = record.get("quality")
    return psnr_beside_composite(quality["output"], quality["composite"]) if quality else ""


def markdown_table(records: list[dict]) -> str:
    """One row per record; skipped configurations show their reason."""
    header = (
        "| arch | backend | precision | device | size | batch | mean ms | p50 ms | p90 ms | "
        "img/s | peak MB | params | GMACs (true) | GMACs (paper-style) | AICT paper (GTX 1070 Ti) "
        "| held-out PSNR dB |"
    )
    lines = [header, "|" + " --- |" * 16]
    for r in records:
        size = f"{r['height']}x{r['width']}"
        paper_figure = (
            AICT_PAPER.get(r["height"], "")
            if r["arch"] == "aict" and r["height"] == r["width"]
            else ""
        )
        common = [r["arch"], backend_label(r), r["precision"], r["device"], size, str(r["batch"])]
        if r.get("skipped"):
            measured = [f"skipped: {r['skipped']}"] + [""] * 4
        else:
            lat = r["latency_ms"]
            measured = [
                f"{lat['mean']:.1f}",
                f"{lat['p50']:.1f}",
                f"{lat['p90']:.1f}",
                f"{r['throughput_ips']:.2f}",
                f"{r['peak_memory_mb']:.0f}",
            ]
        macs = r.get("macs") or {}
        paper = r.get("macs_paper_style")
        cells = (
            common
            + measured
            + [
                f"{r['params']:,}" if r.get("params") else "",
                f"{macs['total'] / 1e9:.2f}" if macs else "",
                f"{paper / 1e9:.2f}" if paper else "",
                paper_figure,
                held_out_psnr(r),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(document: dict) -> str:
    env = document["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    lines = [
        "# harmony-bench",
        "",
        f"- command: `{env['command']}`",
        f"- device: {env['gpu'] or 'no GPU'}; CPU {env['cpu']} ({env['cpu_cores']} cores, "
        f"{env['torch_threads']} torch threads)",
        f"- versions: {versions}",
        "- latency: wall time per call of the runner's `infer` (inputs already in memory), "
        "after warm-up; peak MB: process RSS on the CPU, allocator/engine+I/O memory on a GPU",
        "- GMACs (true): every multiply-accumulate of the exported graph (attention included, "
        "transposed convolutions by input positions, LUT taps, KNN similarity); paper-style: "
        "the thop 0.1.1 rules the AICT paper's 14.35 G comes from",
        "- backend torch+fused: the fused ops run with the plugin kernels "
        "(libharmony_cuda_ops.so); +graphs: replayed from CUDA graphs; ort-custom: the custom "
        f"nodes computed by {ORT_OPS}, ort-custom+extensions: by {EXTENSIONS}",
        "- held-out PSNR (fitted weights only): mean over held-out demo composites resized to "
        "the size, output vs real photograph, beside the composite's own",
        "",
        markdown_table(document["results"]),
    ]
    picks = document.get("fastest_cpu")
    if picks:
        lines += ["Picked by harmony-bench (no --backend given):", ""]
        lines += [f"- {pick_sentence(pick)}" for pick in picks]
        lines.append("")
    return "\n".join(lines)


def write_markdown(path: str | os.PathLike, document: dict, force: bool = False) -> None:
    with atomic_output(path, force) as temp:
        temp.write_text(markdown_report(document))


def write_plot(path: str | os.PathLike, records: list[dict], force: bool = False) -> None:
    """Bar chart of mean latency per configuration (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from harmony.errors import HarmonyError

        raise HarmonyError("--plot needs matplotlib: pip install matplotlib") from None
    measured = [r for r in records if not r.get("skipped")]
    labels = [
        f"{r['arch']}\n{backend_label(r)} {r['precision']}\n{r['height']}x{r['width']}"
        for r in measured
    ]
    figure, axis = plt.subplots(figsize=(max(6, len(measured) * 1.2), 4))
    axis.bar(range(len(measured)), [r["latency_ms"]["mean"] for r in measured])
    axis.set_xticks(range(len(measured)), labels, fontsize=7)
    axis.set_ylabel("mean latency (ms)")
    figure.tight_layout()
    with atomic_output(path, force) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)


# How each metric is printed: (column, format).
_COLUMNS = {
    "mse": ("MSE", "{:.2f}"),
    "fmse": ("fMSE", "{:.2f}"),
    "psnr": ("PSNR dB", "{:.2f}"),
    "fpsnr": ("fPSNR dB", "{:.2f}"),
    "ssim": ("SSIM", "{:.4f}"),
}


def quality_table(document: dict) -> tuple[list[str], list[list[str]]]:
    """Mean scores per target (the composite first), with the drift from FP32 PyTorch."""
    header = ["", *(column for column, _ in _COLUMNS.values()), "drift vs torch fp32"]
    rows = []
    for label, means in document["means"].items():
        drift = document["drift"].get(label)
        drift_text = (
            ", ".join(f"{_COLUMNS[m][0]} {v:+.3g}" for m, v in drift.items()) if drift else ""
        )
        values = [fmt.format(means[m]) for m, (_, fmt) in _COLUMNS.items()]
        rows.append([label, *values, drift_text])
    return header, rows


def quality_markdown(document: dict) -> str:
    env = document["environment"]
    header, rows = quality_table(document)
    lines = [
        "# harmony eval",
        "",
        f"- command: `{env['command']}`",
        f"- model: {document['model']} ({document['arch']}, weights "
        f"{document['weights'] or 'not recorded'}); data: {document['data']}, "
        f"{document['images']} images"
        + (
            f" resized to {document['resolution'][0]}x{document['resolution'][1]}"
            if document["resolution"]
            else " at their own size"
        ),
        f"- device: {env['cpu']} ({env['cpu_cores']} cores); versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "- MSE and fMSE on the 0-255 scale (fMSE over the mask), PSNR/fPSNR from them, SSIM over "
        "the image; means over the images; drift: mean per-image difference to torch fp32",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    lines += [
        f"- {label}: custom nodes computed by {implementation}"
        for label, implementation in document.get("custom_ops", {}).items()
    ]
    lines += [f"- skipped {label}: {reason}" for label, reason in document["skipped"].items()]
    if document.get("failed"):
        failed = document["failed"]
        lines.append(
            f"- stopped at image {failed['index'] + 1}: {failed['error']} (the scores are those "
            "of the images before it)"
        )
    return "\n".join(lines) + "\n"
