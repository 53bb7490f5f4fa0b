import pickle

import pytest
import torch
from safetensors.torch import save_file

from harmony.errors import HarmonyError
from harmony.models import AICT, HDNet, build_model, load_checkpoint, randomize_
from harmony.models.init import make_random_checkpoint


@pytest.fixture(scope="module")
def lite_state():
    return randomize_(build_model("hdnet-lite"), seed=4).state_dict()


def _same_weights(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_reads_official_aict_format_with_training_state(tmp_path):
    state = randomize_(AICT(), seed=5).state_dict()
    path = tmp_path / "aict.pth"
    torch.save({"model": state, "optimizer": {"state": {}}, "lr_scheduler": {}, "epoch": 7}, path)
    model = load_checkpoint(path)
    assert model.arch == "aict" and model.checkpoint.source_format == "aict-official"
    assert _same_weights(model, state) and not model.training


def test_reads_bare_state_dict_with_module_prefix_and_safetensors(tmp_path, lite_state):
    torch.save({f"module.{k}": v for k, v in lite_state.items()}, tmp_path / "net_G.pth")
    model = load_checkpoint(tmp_path / "net_G.pth")
    assert model.arch == "hdnet-lite" and model.checkpoint.hdnet_ngf == 8
    assert _same_weights(model, lite_state)
    save_file({k: v.contiguous() for k, v in lite_state.items()}, tmp_path / "lite.safetensors")
    assert _same_weights(load_checkpoint(tmp_path / "lite.safetensors"), lite_state)


def test_detects_width_and_input_channels(tmp_path):
    torch.save(HDNet(ngf=16, input_nc=4).state_dict(), tmp_path / "wide.pth")
    info = load_checkpoint(tmp_path / "wide.pth").checkpoint
    assert (info.arch, info.hdnet_ngf, info.hdnet_input_nc) == ("hdnet", 16, 4)


def test_random_checkpoint_is_labelled_and_not_overwritten(tmp_path):
    path = make_random_checkpoint("hdnet-lite", 3, tmp_path / "lite.pth")
    assert load_checkpoint(path).checkpoint.metadata["random_init"] is True
    before = path.read_bytes()
    with pytest.raises(HarmonyError, match="--force"):
        make_random_checkpoint("hdnet-lite", 4, path)
    assert path.read_bytes() == before
    make_random_checkpoint("hdnet-lite", 4, path, force=True)
    assert path.read_bytes() != before


class NotAllowed:
    pass


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a checkpoint"), "is not a PyTorch checkpoint"),
        (lambda p: p.write_bytes(bytes(range(256))), r"starts with bytes 00 01 02 03"),
        (lambda p: p.write_bytes(b"\x80\x02 not a checkpoint"), "truncated or corrupt"),
        (lambda p: torch.save({"model": "weights"}, p), "not a model checkpoint"),
        (lambda p: torch.save([1, 2], p), "not a model checkpoint"),
        (lambda p: torch.save({"model": NotAllowed()}, p), "holds Python objects other than"),
        (lambda p: p.write_bytes(pickle.dumps(NotAllowed())), "truncated or corrupt"),
        (lambda p: torch.save({"fc.weight": torch.zeros(2)}, p), "cannot tell the architecture"),
    ],
)
def test_unreadable_files_name_the_file_and_the_problem(tmp_path, write, message):
    path = tmp_path / "bad.pth"
    write(path)
    with pytest.raises(HarmonyError, match=message) as info:
        load_checkpoint(path)
    assert "bad.pth" in str(info.value)
    assert "weights_only=False" not in str(info.value)  # never advise unsafe loading


def test_an_onnx_graph_given_as_a_checkpoint_is_named_as_such(exported, tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(exported("hdnet-lite", "ort", "fp32")[0].read_bytes())
    with pytest.raises(HarmonyError, match=r"model\.pth is an ONNX graph, not a checkpoint"):
        load_checkpoint(path)


def test_non_finite_weights_are_refused_when_loading(tmp_path, lite_state):
    state = {key: value.clone() for key, value in lite_state.items()}
    state["model_layer3.1.weight"][0, 0, 0, 0] = float("nan")
    state["LD.linear.bias"][1] = float("inf")
    torch.save(state, tmp_path / "diverged.pth")
    with pytest.raises(HarmonyError, match=r"NaN or infinite weights in 2 tensor\(s\)") as info:
        load_checkpoint(tmp_path / "diverged.pth")
    assert "model_layer3.1.weight" in str(info.value) and "LD.linear.bias" in str(info.value)


def test_truncated_checkpoint(tmp_path, lite_state):
    path = tmp_path / "cut.pth"
    torch.save(lite_state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(HarmonyError, match=r"cut\.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(HarmonyError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(HarmonyError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_key_mismatches_are_listed(tmp_path, lite_state):
    state = dict(lite_state)
    del state["LD.linear.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["model_out.1.bias"] = torch.zeros(4)
    torch.save(state, tmp_path / "mixed.pth")
    with pytest.raises(HarmonyError) as info:
        load_checkpoint(tmp_path / "mixed.pth")
    text = str(info.value)
    assert "missing keys (1): LD.linear.bias" in text
    assert "unexpected keys (1): extra.weight" in text
    assert "model_out.1.bias: expected [3], got [4]" in text


def test_wrong_arch_request(tmp_path, lite_state):
    torch.save(lite_state, tmp_path / "lite.pth")
    with pytest.raises(HarmonyError, match=r"--arch aict was requested but .* hdnet-lite"):
        load_checkpoint(tmp_path / "lite.pth", arch="aict")
