"""harmony in Polygraphy: an extension of `polygraphy run` (entry point
`polygraphy.run.plugins` -> `harmony.polygraphy_ext.export:argument_groups`).

- `--harmony-ort`: the model (an exported graph, as Polygraphy loaded it: `--onnx-outputs mark
  all` applies) in Polygraphy's ONNX Runtime runner, on a session where the custom nodes of
  TensorRT-target graphs run (libharmony_ort_ops.so, or the onnxruntime-extensions bridge).
- `--harmony-torch --harmony-checkpoint CKPT`: the PyTorch pipeline of the checkpoint, the
  reference.
- `--harmony-data demo|DIR` (with `--harmony-res`, `--harmony-batch`, `--harmony-count`):
  composites with their masks as the inputs (`data_loader.load_data`, also usable as
  `--data-loader-script`), instead of uniform noise, which is no mask.

- `--plugins LIB` (Polygraphy's own option): TensorRT plugin libraries that register through
  `getCreators` (libharmony_plugins.so) are registered with TensorRT before any loader runs.

Modules: `export` (what Polygraphy loads at start: argument groups only, no torch), `args`
(the groups), `session` (the session loader of --harmony-ort), `runner` (the Polygraphy runner
over a harmony runner, for --harmony-torch), `data_loader`, `plugins` (the --plugins
registration), `command` (`harmony polygraphy ARGS`: Polygraphy's CLI with that registration,
for the tools without an extension hook).
"""
