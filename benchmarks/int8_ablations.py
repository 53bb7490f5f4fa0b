"""The measurements behind two INT8 defaults, on this machine's CPU:

- HDNet-lite exported with its `int8_float_modules` (the image-facing first layer and the
  output layer, FP16 by default) INT8 as well: does it keep the held-out gain?
- the AICT INT8 graph in ONNX Runtime with every default graph optimization (QDQ propagation
  included) against harmony's sessions, which disable `plugins.ort.DISABLED_OPTIMIZERS`: PSNR to
  the FP32 PyTorch output on the parity composites.

Both exports use harmony-export's INT8 defaults (8 demo composites of the fit photographs at
1024x1024, min-max ranges). Needs libharmony_ort_ops.so.

    python benchmarks/int8_ablations.py --json benchmarks/results/int8_ablations.json \\
        --markdown benchmarks/results/int8_ablations.md
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harmony.export.exporter import onnx_from_checkpoint
from harmony.export.verify import VerificationError
from harmony.models.hdnet import HDNet
from harmony.profiling.environment import environment
from harmony.weights import fitted_checkpoint
from results_files import command_line, machine_line, results_parser, write_results


def main() -> None:
    args = results_parser(__doc__.splitlines()[0]).parse_args()
    work = Path(tempfile.mkdtemp(prefix="harmony-int8-ablations-"))
    document = {
        "environment": environment(command_line()),
        "ablations": [hdnet_lite_all_layers_int8(work), ort_qdq_propagation(work)],
    }
    write_results(args, document, markdown)


def hdnet_lite_all_layers_int8(work: Path) -> dict:
    """HDNet-lite with its `int8_float_modules` INT8 too, beside the default export."""
    outcomes = {}
    default = HDNet.int8_float_modules
    for label, modules in (("default", default), ("all INT8", ())):
        HDNet.int8_float_modules = modules
        try:
            report = onnx_from_checkpoint(
                fitted_checkpoint("hdnet-lite"),
                work / f"lite.{len(modules)}.onnx",
                precision="int8",
            )
            outcomes[label] = (
                f"{len(report.int8_layers)} INT8 layers, PSNR to FP32 "
                f"{min(p.psnr_db for p in report.parity):.1f} dB, held-out gain kept "
                f"{report.gain_kept:.0%}"
            )
        except VerificationError as exc:
            outcomes[label] = f"refused: {exc}"
        finally:
            HDNet.int8_float_modules = default
    return {
        "what": f"hdnet-lite, {', '.join(default)} FP16 (default) or INT8 (all INT8)",
        "outcomes": outcomes,
    }


def ort_qdq_propagation(work: Path) -> dict:
    """The AICT INT8 graph in ONNX Runtime with its defaults and in harmony's sessions."""
    import onnxruntime

    from harmony.export.verify import parity
    from harmony.models import load_checkpoint
    from harmony.plugins import ort_ops_library_path
    from harmony.plugins.ort import DISABLED_OPTIMIZERS, inference_session

    checkpoint, graph = fitted_checkpoint("aict"), work / "aict.int8.onnx"
    onnx_from_checkpoint(checkpoint, graph, precision="int8")
    options = onnxruntime.SessionOptions()
    options.register_custom_ops_library(str(ort_ops_library_path()))
    sessions = {
        "onnxruntime defaults": onnxruntime.InferenceSession(str(graph), options),
        f"harmony (without {', '.join(DISABLED_OPTIMIZERS)})": inference_session(
            graph, custom_ops=True
        ),
    }
    model = load_checkpoint(checkpoint)
    return {
        "what": "aict INT8 graph in ONNX Runtime on the CPU, lowest PSNR to FP32 on the parity "
        "composites",
        "outcomes": {
            label: f"{min(p.psnr_db for p in parity(model, _Session(session))):.1f} dB"
            for label, session in sessions.items()
        },
    }


class _Session:
    """`run(feeds)` of an ONNX Runtime session, as `export.verify.parity` calls it."""

    def __init__(self, session):
        self.session = session

    def run(self, feeds):
        return self.session.run(None, feeds)


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        "# INT8 ablations",
        "",
        machine_line(env),
        "",
    ]
    for item in document["ablations"]:
        lines += [f"## {item['what']}", ""]
        lines += [f"- {label}: {outcome}" for label, outcome in item["outcomes"].items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
