import pytest
import torch

from harmony import ops
from harmony.models import build_model, harmonize, randomize_
from harmony.models.fused_ops import use_fused_ops
from tests.helpers import blob_mask


@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_the_models_call_the_given_implementations_inside_the_block_only(arch):
    model = randomize_(build_model(arch), seed=1).eval()
    image, mask = torch.rand(1, 3, 32, 40), blob_mask(32, 40)
    calls = []

    def lut(*args):
        calls.append("lut")
        return ops.cascaded_lut(*args)

    def knn(*args, **kwargs):
        calls.append("knn")
        return ops.knn_topk_fusion(*args, **kwargs)

    expected = harmonize(model, image, mask)
    with pytest.raises(KeyError), use_fused_ops(lut, knn):
        assert torch.equal(harmonize(model, image, mask), expected)
        raise KeyError("the implementations are restored on errors too")
    assert calls == ["lut" if arch == "aict" else "knn"]
    harmonize(model, image, mask)
    assert len(calls) == 1
