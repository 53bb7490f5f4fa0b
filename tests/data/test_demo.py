import pytest
import torch

from harmony.data import IHarmonyDataset, demo_composite, make_demo_dataset, read_image, read_mask
from harmony.data.demo import FIT_PHOTOS, HELD_OUT_PHOTOS, PHOTOS, DemoComposites
from harmony.errors import HarmonyError


def _files(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_writes_byte_identical_files(tmp_path):
    first = make_demo_dataset(tmp_path / "a", count=3, seed=7, size=(48, 64))
    make_demo_dataset(tmp_path / "b", count=3, seed=7, size=(48, 64))
    make_demo_dataset(tmp_path / "c", count=3, seed=8, size=(48, 64))

    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(files_a) == 9 and files_a == files_b
    assert files_a != _files(tmp_path / "c")
    assert [s.name for s in first] == ["retina0000_1_1", "camera0001_1_1", "grass0002_1_1"]


def test_layout_follows_iharmony4_naming(tmp_path):
    (sample,) = make_demo_dataset(tmp_path, count=1, size=(32, 40))

    assert sample.composite_path == tmp_path / "composite_images" / "astronaut0000_1_1.png"
    assert sample.mask_path == tmp_path / "masks" / "astronaut0000_1.png"
    assert sample.real_path == tmp_path / "real_images" / "astronaut0000.png"


def test_composite_differs_from_real_only_inside_the_mask(tmp_path):
    # Default size keeps each photo's own size: the first two photos are 512x512 and 300x451.
    samples = make_demo_dataset(tmp_path, count=2, seed=0)

    sizes = []
    for sample in samples:
        composite, depth = read_image(sample.composite_path)
        real, _ = read_image(sample.real_path)
        mask = read_mask(sample.mask_path, size=tuple(composite.shape[-2:]))
        inside = mask[0, 0] == 1
        sizes.append(tuple(composite.shape[-2:]))

        assert depth == 8
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        assert 0.10 <= inside.float().mean() <= 0.40
        assert torch.equal(composite[..., ~inside], real[..., ~inside])
        assert (composite - real).abs()[..., inside].mean() > 0.02  # a visible mismatch
    assert sizes == [(512, 512), (300, 451)]


@pytest.mark.parametrize(("height", "width", "seed"), [(384, 512, 0), (97, 61, 3), (16, 16, 11)])
def test_demo_composite_shapes_mask_and_mismatch(height, width, seed):
    composite, mask, real = demo_composite(height, width, seed=seed)

    assert composite.shape == real.shape == (1, 3, height, width)
    assert mask.shape == (1, 1, height, width)
    assert composite.dtype == mask.dtype == real.dtype == torch.float32
    inside = mask[0, 0] == 1
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert 0.10 <= inside.float().mean() <= 0.40
    assert torch.equal(composite[..., ~inside], real[..., ~inside])
    assert not torch.equal(composite[..., inside], real[..., inside])


def test_demo_composite_is_sample_zero_of_the_dataset(tmp_path):
    (sample,) = make_demo_dataset(tmp_path, count=1, seed=2, size=(40, 56))

    composite, mask, real = demo_composite(40, 56, seed=2)

    assert torch.equal(composite, read_image(sample.composite_path)[0])
    assert torch.equal(mask, read_mask(sample.mask_path))
    assert torch.equal(real, read_image(sample.real_path)[0])


def test_existing_files_are_not_overwritten_without_force(tmp_path):
    (sample,) = make_demo_dataset(tmp_path, count=1, seed=0, size=(24, 24))
    sample.real_path.write_bytes(b"user data")

    with pytest.raises(HarmonyError, match="--force"):
        make_demo_dataset(tmp_path, count=1, seed=0, size=(24, 24))
    assert sample.real_path.read_bytes() == b"user data"

    make_demo_dataset(tmp_path, count=1, seed=0, size=(24, 24), force=True)
    assert read_image(sample.real_path)[0].shape == (1, 3, 24, 24)


def test_in_memory_composites_equal_the_written_files(tmp_path):
    make_demo_dataset(tmp_path, count=3, seed=4, size=(40, 56), photos=HELD_OUT_PHOTOS)
    written = IHarmonyDataset(tmp_path)
    in_memory = DemoComposites(3, seed=4, size=(40, 56), photos=HELD_OUT_PHOTOS)

    by_name = {sample["name"]: sample for sample in (written[i] for i in range(len(written)))}
    names = [in_memory[i]["name"] for i in range(len(in_memory))]
    assert names == ["astronaut0000_1_1", "chelsea0001_1_1", "astronaut0002_1_1"]
    assert sorted(names) == sorted(by_name)
    for index, name in enumerate(names):
        for key in ("composite", "mask", "real"):
            assert torch.equal(in_memory[index][key], by_name[name][key]), key


def test_fit_and_held_out_photographs_split_the_bundled_ones():
    assert not set(FIT_PHOTOS) & set(HELD_OUT_PHOTOS)
    assert set(FIT_PHOTOS) | set(HELD_OUT_PHOTOS) == set(PHOTOS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"seed": -1},
        {"size": (0, 10)},
        {"size": (10,)},
        {"size": (4.5, 8)},
        {"photos": ("lena",)},
        {"photos": ()},
        {"families": ("sepia",)},
        {"families": ()},
    ],
)
def test_invalid_options_are_harmony_errors(tmp_path, kwargs):
    with pytest.raises(HarmonyError):
        make_demo_dataset(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
