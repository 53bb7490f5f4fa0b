import numpy as np
import pytest
import torch
from PIL import Image

from harmony.data import IHarmonyDataset, make_demo_dataset
from harmony.errors import HarmonyError


def _save(path, level, size=(6, 8), mode="RGB"):
    """A constant image whose level identifies the file once read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = np.full((*size, channels), level, np.uint8)
    Image.fromarray(pixels if channels == 3 else pixels[..., 0], mode).save(path)


def _subset(root):
    """An HCOCO-like folder: JPEG composites and reals (one real as PNG), PNG masks."""
    _save(root / "composite_images" / "c1_1_1.jpg", 10)
    _save(root / "composite_images" / "c1_1_2.jpg", 20)
    _save(root / "composite_images" / "c1_2_1.jpg", 30)
    _save(root / "composite_images" / "my_photo_1_1.jpg", 40)
    _save(root / "masks" / "c1_1.png", 101, mode="L")
    _save(root / "masks" / "c1_2.png", 102, mode="L")
    _save(root / "masks" / "my_photo_1.png", 103, mode="L")
    _save(root / "real_images" / "c1.jpg", 200)
    _save(root / "real_images" / "my_photo.png", 210)
    return root


def _level(image):
    return round(float(image.mean()) * 255)


def test_pairs_every_composite_with_its_mask_and_real_image(tmp_path):
    dataset = IHarmonyDataset(_subset(tmp_path / "HCOCO"))

    pairs = [(s.name, s.mask_path.name, s.real_path.name) for s in dataset.samples]
    assert pairs == [
        ("c1_1_1", "c1_1.png", "c1.jpg"),
        ("c1_1_2", "c1_1.png", "c1.jpg"),
        ("c1_2_1", "c1_2.png", "c1.jpg"),
        ("my_photo_1_1", "my_photo_1.png", "my_photo.png"),
    ]
    assert len(dataset) == 4
    item = dataset[2]
    assert item["composite"].shape == item["real"].shape == (1, 3, 6, 8)
    assert item["mask"].shape == (1, 1, 6, 8)
    assert (_level(item["composite"]), _level(item["mask"]), _level(item["real"])) == (30, 102, 200)
    assert item["bit_depth"] == 8 and item["mask_path"] == dataset.samples[2].mask_path
    assert _level(dataset[-1]["real"]) == 210


def test_subset_split_file_lists_bare_names(tmp_path):
    root = _subset(tmp_path / "HCOCO")
    split = root / "HCOCO_test.txt"
    split.write_text("c1_2_1.jpg\nc1_1_1.jpg\n\n")

    dataset = IHarmonyDataset(root, split_file=split)

    assert [s.name for s in dataset.samples] == ["c1_2_1", "c1_1_1"]


def test_top_level_split_file_lists_paths_relative_to_root(tmp_path):
    _subset(tmp_path / "HCOCO")
    _save(tmp_path / "HFlickr" / "composite_images" / "f7_1_1.jpg", 50)
    _save(tmp_path / "HFlickr" / "masks" / "f7_1.png", 104, mode="L")
    _save(tmp_path / "HFlickr" / "real_images" / "f7.jpg", 220)
    split = tmp_path / "IHD_test.txt"
    split.write_text("HFlickr/composite_images/f7_1_1.jpg\nHCOCO/composite_images/c1_1_2.jpg\n")

    dataset = IHarmonyDataset(tmp_path, split_file=split)

    assert [s.real_path for s in dataset.samples] == [
        tmp_path / "HFlickr" / "real_images" / "f7.jpg",
        tmp_path / "HCOCO" / "real_images" / "c1.jpg",
    ]
    assert _level(dataset[0]["mask"]) == 104


def test_missing_mask_is_reported_with_the_expected_path(tmp_path):
    root = _subset(tmp_path / "HCOCO")
    _save(root / "composite_images" / "c1_3_1.jpg", 60)

    with pytest.raises(HarmonyError) as info:
        IHarmonyDataset(root)

    message = str(info.value)
    assert "1 of 5 composites" in message
    assert "c1_3_1.jpg has no mask" in message and str(root / "masks" / "c1_3") in message


def test_missing_real_image_and_ambiguous_partner_are_reported(tmp_path):
    root = _subset(tmp_path / "HCOCO")
    (root / "real_images" / "my_photo.png").unlink()
    with pytest.raises(HarmonyError, match="has no real image"):
        IHarmonyDataset(root)

    _save(root / "real_images" / "my_photo.png", 210)
    _save(root / "real_images" / "my_photo.jpg", 210)
    with pytest.raises(HarmonyError, match="two real images"):
        IHarmonyDataset(root)


def test_bad_folders_names_and_split_entries(tmp_path):
    with pytest.raises(HarmonyError, match="does not exist"):
        IHarmonyDataset(tmp_path / "nowhere")
    with pytest.raises(HarmonyError, match="no composite_images/ folder"):
        IHarmonyDataset(tmp_path)

    root = _subset(tmp_path / "HCOCO")
    split = root / "HCOCO_train.txt"
    split.write_text("c1_1_1.jpg\nc9_9_9.jpg\n")
    with pytest.raises(HarmonyError, match=r"c9_9_9\.jpg"):
        IHarmonyDataset(root, split_file=split)
    with pytest.raises(HarmonyError, match=r"Split file .* does not exist"):
        IHarmonyDataset(root, split_file=root / "missing.txt")

    _save(root / "composite_images" / "loose.png", 0)
    with pytest.raises(HarmonyError, match="not named X_Y_Z"):
        IHarmonyDataset(root)


def test_mask_of_another_size_is_reported_on_read(tmp_path):
    root = _subset(tmp_path / "HCOCO")
    _save(root / "masks" / "c1_2.png", 102, size=(6, 9), mode="L")
    dataset = IHarmonyDataset(root)

    with pytest.raises(HarmonyError, match=r"6x9.*6x8"):
        dataset[2]


def test_reads_the_demo_dataset(tmp_path):
    samples = make_demo_dataset(tmp_path, count=3, seed=1, size=(32, 48))

    dataset = IHarmonyDataset(tmp_path)

    assert sorted(dataset.samples, key=lambda s: s.name) == sorted(samples, key=lambda s: s.name)
    item = dataset[0]
    inside = item["mask"][0, 0] == 1
    assert torch.equal(item["composite"][..., ~inside], item["real"][..., ~inside])
