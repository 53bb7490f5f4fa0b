"""Optimization profiles: the --res rule, trtexec-style shapes, and their errors."""

import pytest

from harmony.engines.profiles import (
    Profile,
    parse_resolution,
    parse_resolutions,
    profile_from_options,
    profile_from_resolutions,
    profile_from_shapes,
)
from harmony.errors import HarmonyError

SHAPES_512 = "image:1x3x512x512,mask:1x1x512x512"
SHAPES_1024 = "image:1x3x1024x1024,mask:1x1x1024x1024"
SHAPES_2048 = "image:1x3x2048x2048,mask:1x1x2048x2048"


@pytest.mark.parametrize(
    ("text", "expected"), [("1024", (1024, 1024)), ("768x1024", (768, 1024)), (" 64X32 ", (64, 32))]
)
def test_parse_resolution(text, expected):
    assert parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1024x", "x1024", "1024x768x3", "-5", "1", "1x512"])
def test_bad_resolution_says_what_is_expected(text):
    with pytest.raises(HarmonyError, match=r"resolution"):
        parse_resolution(text)


def test_res_rule_min_smallest_opt_first_max_largest():
    assert profile_from_resolutions(parse_resolutions("1024")) == Profile(
        (1, 1024, 1024), (1, 1024, 1024), (1, 1024, 1024)
    )
    assert profile_from_resolutions(parse_resolutions("1024,2048")) == Profile(
        (1, 1024, 1024), (1, 1024, 1024), (1, 2048, 2048)
    )
    assert profile_from_resolutions(parse_resolutions(["2048", "512,1024"])) == Profile(
        (1, 512, 512), (1, 2048, 2048), (1, 2048, 2048)
    )
    # HxW entries: smallest and largest per axis, so min <= opt <= max always holds.
    assert profile_from_resolutions(parse_resolutions("768x1024,1024x512")) == Profile(
        (1, 768, 512), (1, 768, 1024), (1, 1024, 1024)
    )


def test_batch_fixed_or_dynamic():
    assert profile_from_resolutions(parse_resolutions("512"), batch=4) == Profile(
        (4, 512, 512), (4, 512, 512), (4, 512, 512)
    )
    assert profile_from_resolutions(
        parse_resolutions("512"), batch=4, dynamic_batch=True
    ) == Profile((1, 512, 512), (1, 512, 512), (4, 512, 512))
    for batch in (0, -1, True):
        with pytest.raises(HarmonyError, match="batch must be a positive integer"):
            profile_from_resolutions(parse_resolutions("512"), batch=batch)
    with pytest.raises(HarmonyError, match="no resolution given"):
        profile_from_resolutions(parse_resolutions(" , "))


def test_shapes_parse_into_one_profile_for_both_inputs():
    profile = profile_from_shapes(SHAPES_512, SHAPES_1024, SHAPES_2048)
    assert profile == Profile((1, 512, 512), (1, 1024, 1024), (1, 2048, 2048))
    assert profile.shapes("image") == ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 2048, 2048))
    assert profile.shapes("mask") == ((1, 1, 512, 512), (1, 1, 1024, 1024), (1, 1, 2048, 2048))
    assert profile.shape_spec("opt") == SHAPES_1024
    # Order of the entries does not matter.
    swapped = "mask:1x1x512x512,image:1x3x512x512"
    assert profile_from_shapes(swapped, swapped, swapped) == profile_from_resolutions(
        parse_resolutions("512")
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("image:1x3x512x512", "lacks mask"),
        ("image:1x3x512x512,mask:1x1x512x512,extra:1x1x1x1", "bad --min-shapes entry 'extra"),
        ("image:1x3x512x512,image:1x3x512x512", "names 'image' twice"),
        ("image:1x3x512,mask:1x1x512x512", "expected 4 positive integers"),
        ("image:1x3x512x0,mask:1x1x512x512", "expected 4 positive integers"),
        ("image=1x3x512x512,mask:1x1x512x512", "expected NAME:BxCxHxW"),
        ("image:1x4x512x512,mask:1x1x512x512", r"image must be \[B,3,H,W\], got 1x4x512x512"),
        ("image:1x3x512x512,mask:1x3x512x512", r"mask must be \[B,1,H,W\]"),
        ("image:1x3x512x512,mask:1x1x256x512", "must share batch, height and width"),
        ("image:2x3x512x512,mask:1x1x512x512", "must share batch, height and width"),
    ],
)
def test_bad_shapes_are_explained(spec, message):
    with pytest.raises(HarmonyError, match=message):
        profile_from_shapes(spec, SHAPES_1024, SHAPES_2048)


def test_min_opt_max_must_be_ordered_per_dimension():
    with pytest.raises(HarmonyError, match="height must satisfy min <= opt <= max"):
        profile_from_shapes(SHAPES_1024, SHAPES_512, SHAPES_2048)
    with pytest.raises(HarmonyError, match="batch must satisfy"):
        profile_from_shapes(SHAPES_512, "image:2x3x1024x1024,mask:2x1x1024x1024", SHAPES_2048)
    with pytest.raises(HarmonyError, match="too small"):
        Profile((1, 1, 512), (1, 512, 512), (1, 512, 512))
    with pytest.raises(HarmonyError, match="integers"):
        Profile((1, 512.0, 512), (1, 512, 512), (1, 512, 512))


def test_dict_and_cli_forms_round_trip():
    profile = profile_from_resolutions(
        parse_resolutions("768x1024,2048"), batch=2, dynamic_batch=True
    )
    assert Profile.from_dict(profile.to_dict()) == profile
    args = profile.cli_args()
    assert args[0::2] == ["--min-shapes", "--opt-shapes", "--max-shapes"]
    assert profile_from_shapes(*args[1::2]) == profile
    with pytest.raises(HarmonyError, match="malformed profile"):
        Profile.from_dict({"min": {}})


def test_contains_and_describe():
    profile = profile_from_resolutions(parse_resolutions("1024,2048"), batch=2, dynamic_batch=True)
    assert profile.contains(1, 1024, 1024) and profile.contains(2, 2048, 1500)
    assert not profile.contains(3, 1024, 1024) and not profile.contains(1, 512, 1024)
    assert profile.describe() == "batch 1..2, 1024x1024 (opt 1024x1024) .. 2048x2048"


def test_options_pick_one_style_and_default_to_the_benchmark_sizes():
    assert profile_from_options() == profile_from_resolutions(parse_resolutions("1024,2048"))
    assert profile_from_options(
        min_shapes=SHAPES_512, opt_shapes=SHAPES_512, max_shapes=SHAPES_1024
    )
    with pytest.raises(HarmonyError, match="not both"):
        profile_from_options(("512",), min_shapes=SHAPES_512)
    with pytest.raises(HarmonyError, match="also needs --opt-shapes, --max-shapes"):
        profile_from_options(min_shapes=SHAPES_512)
