"""The memory model the size guard estimates with: package data derived from the committed
measurements, never copied by hand."""

from __future__ import annotations

import json

from harmony.memory_model import MODELS_FILE, memory_model, memory_models, models_document
from tests.helpers import REPO_ROOT

MEASUREMENTS = REPO_ROOT / "benchmarks" / "results" / "memory_model.json"


def test_the_package_data_is_what_the_measurements_give():
    """`benchmarks/memory_model.py` writes both; a hand edit of either, or measurements
    committed without the package data they give, fails here."""
    fits = json.loads(MEASUREMENTS.read_text())["models"]
    expected = models_document(fits, "")["models"]
    assert json.loads(MODELS_FILE.read_text())["models"] == expected
    assert set(memory_models()) == set(fits)


def test_estimates_cover_every_measured_point():
    """Rounding up keeps the model at or above every peak the benchmark measured."""
    document = json.loads(MEASUREMENTS.read_text())
    for record in document["results"]:
        if record["skipped"]:
            continue
        model = memory_model(record["backend"], record["arch"])
        estimate = model.peak_bytes(record["height"], record["width"], record["batch"])
        assert estimate >= record["peak_memory_mb"] * 2**20, record
