"""harmony-deploy: exact, fast deployment of the AICT and HDNet image-harmonization networks.

The package's front door: `harmony.harmonize` and the version. Modules inside the package import
what they need from its layers (ARCHITECTURE.md), never from here.
"""

from harmony.errors import HarmonyError
from harmony.version import __version__


def harmonize(model, image, mask, check_range: bool = True):
    """Harmonize `image` [B,3,H,W] in [0,1] with `mask` [B,1,H,W]: `harmony.models.harmonize`."""
    from harmony.models.pipeline import harmonize as _harmonize

    return _harmonize(model, image, mask, check_range)


__all__ = ["HarmonyError", "__version__", "harmonize"]
