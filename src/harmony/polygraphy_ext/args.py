"""The argument groups harmony adds to `polygraphy run` (Polygraphy's BaseArgs contract: the
first docstring line is "Title: description"; options added in `add_parser_args_impl`, read in
`parse_impl`, written into the generated script in `add_to_script_impl`)."""

from __future__ import annotations

import os
from pathlib import Path

from polygraphy.tools.args import DataLoaderArgs, ModelArgs, OnnxLoadArgs
from polygraphy.tools.args import util as args_util
from polygraphy.tools.args.base import BaseArgs, BaseRunnerArgs
from polygraphy.tools.script import make_invocable

from harmony.polygraphy_ext import data_loader

RUNNER_MODULE = "harmony.polygraphy_ext.runner"
DEVICES = ("cpu", "cuda")


class HarmonyOrtRunnerArgs(BaseRunnerArgs):
    """
    harmony ONNX Runtime: running a harmony graph in ONNX Runtime, custom nodes included.

    Depends on:

        - ModelArgs
        - OnnxLoadArgs
    """

    def get_name_opt_impl(self):
        return "harmony ONNX Runtime", "harmony-ort"

    def get_extra_help_text_impl(self):
        return (
            "Polygraphy's ONNX Runtime runner on a session where the custom nodes of "
            "TensorRT-target graphs run (libharmony_ort_ops.so, else onnxruntime-extensions)."
        )

    def add_parser_args_impl(self):
        self.group.add_argument(
            "--harmony-device", choices=DEVICES, default=None, help="Device of --harmony-ort."
        )

    def parse_impl(self, args):
        self.device = args_util.get(args, "harmony_device")

    def add_to_script_impl(self, script):
        loads = self.arg_groups[OnnxLoadArgs]
        if loads.must_use_onnx_loader():  # --onnx-outputs, surgeon options: the loaded model
            model = loads.add_to_script(script, serialize_model=True)
        else:
            model = self.arg_groups[ModelArgs].path
        script.add_import(imports=["HarmonySession"], frm="harmony.polygraphy_ext.session")
        session = script.add_loader(
            make_invocable("HarmonySession", model, device=self.device), "build_harmony_session"
        )
        script.add_import(imports=["OnnxrtRunner"], frm="polygraphy.backend.onnxrt")
        script.add_runner(make_invocable("OnnxrtRunner", session))


class HarmonyTorchRunnerArgs(BaseRunnerArgs):
    """
    harmony PyTorch: running the PyTorch pipeline of a checkpoint, the reference.
    """

    def get_name_opt_impl(self):
        return "harmony PyTorch", "harmony-torch"

    def get_extra_help_text_impl(self):
        return "Needs --harmony-checkpoint (the checkpoint the graph was exported from)."

    def add_parser_args_impl(self):
        self.group.add_argument(
            "--harmony-checkpoint", default=None, help="Checkpoint run by --harmony-torch."
        )
        self.group.add_argument(
            "--harmony-torch-device",
            choices=DEVICES,
            default=None,
            help="Device of --harmony-torch.",
        )

    def parse_impl(self, args):
        self.checkpoint = args_util.get(args, "harmony_checkpoint")
        self.device = args_util.get(args, "harmony_torch_device")

    def add_to_script_impl(self, script):
        if self.checkpoint is None:
            from polygraphy.logger import G_LOGGER

            G_LOGGER.critical("--harmony-torch needs --harmony-checkpoint CHECKPOINT")
        script.add_import(imports=["HarmonyRunner"], frm=RUNNER_MODULE)
        runner = make_invocable(
            "HarmonyRunner", self.checkpoint, backend="torch", device=self.device
        )
        script.add_runner(runner)


class HarmonyTrtPluginsArgs(BaseArgs):
    """
    harmony TensorRT plugins: the dynamic plugin libraries named in --plugins, registered.
    """

    def parse_impl(self, args):
        """`--plugins` libraries such as libharmony_plugins.so register nothing when Polygraphy
        loads them (see harmony.polygraphy_ext.plugins): registered here, before any loader."""
        plugins = args_util.get(args, "plugins")
        if plugins:
            from polygraphy.logger import G_LOGGER

            from harmony.errors import HarmonyError
            from harmony.polygraphy_ext.plugins import register_plugin_libraries

            try:
                register_plugin_libraries(plugins)
            except HarmonyError as exc:
                G_LOGGER.critical(str(exc))


class HarmonyDataArgs(BaseArgs):
    """
    harmony data: composites with their masks as the inputs.

    Depends on:

        - DataLoaderArgs
    """

    def add_parser_args_impl(self):
        self.group.add_argument(
            "--harmony-data",
            default=None,
            metavar="demo|DIR",
            help="Feed composites and masks: 'demo' (demo composites) or an iHarmony4 folder "
            "(replaces the data loader; see harmony.polygraphy_ext.data_loader).",
        )
        self.group.add_argument(
            "--harmony-res", default=None, help="Sizes: N or HxW, comma-separated (default 256)."
        )
        self.group.add_argument("--harmony-batch", type=int, default=None, help="Batch (1).")
        self.group.add_argument(
            "--harmony-count", type=int, default=None, help="Feed dicts per size (1)."
        )

    def parse_impl(self, args):
        source = args_util.get(args, "harmony_data")
        if source is None:
            return
        values = {
            "data": source,
            "res": args_util.get(args, "harmony_res"),
            "batch": args_util.get(args, "harmony_batch"),
            "count": args_util.get(args, "harmony_count"),
        }
        for name, value in values.items():
            if value is not None:
                os.environ[data_loader.SETTINGS[name]] = str(value)
        loader = self.arg_groups[DataLoaderArgs]
        loader.data_loader_script = str(Path(data_loader.__file__))
        loader.data_loader_func_name = "load_data"

    def add_to_script_impl(self, script):
        """Nothing: DataLoaderArgs writes the data loader."""
