"""TensorRT and TensorRT-RTX engines: the toolchain from an exported graph to a verified engine.

- `trt_env`: the two runtimes of the TensorRT family, the GPU, the plugin library, and what an
  engine depends on (`build_environment`) or meets where it runs (`host_environment`);
- `profiles`: optimization profiles and their one parser (`profile_from_options`);
- `builder`: what a graph needs and the TensorRT calls that parse and build it;
- `cache` and `manifest`: the engine cache key and the JSON manifest written beside every engine,
  verified before an engine is reused or loaded;
- `build`: `engine_from_onnx`, the one entry point putting them together.

Runners (`harmony.runtime.trt_runner`) load engines with the manifest and runtimes defined here;
nothing here runs an engine or exports a graph.
"""
