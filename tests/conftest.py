import pytest
import torch


@pytest.fixture
def rng():
    """A seeded torch generator (seed 0)."""
    return torch.Generator().manual_seed(0)
