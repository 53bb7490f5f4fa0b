"""The fitted stand-in checkpoints shipped with harmony-deploy (how they were made: README.md
and the `*.provenance.json` files here)."""

from __future__ import annotations

from pathlib import Path

from harmony.errors import HarmonyError

WEIGHTS_DIR = Path(__file__).resolve().parent
FITTED_SUFFIX = ".fitted.pth"


def fitted_archs() -> tuple[str, ...]:
    """The architectures with a fitted checkpoint in the package."""
    return tuple(
        sorted(p.name[: -len(FITTED_SUFFIX)] for p in WEIGHTS_DIR.glob("*" + FITTED_SUFFIX))
    )


def fitted_checkpoint(arch: str) -> Path:
    """The fitted checkpoint of `arch` shipped in the package.

    Raises:
        HarmonyError: none is shipped for `arch` (the ones that are are named).
    """
    path = WEIGHTS_DIR / f"{arch}{FITTED_SUFFIX}"
    if not path.is_file():
        shipped = ", ".join(fitted_archs()) or "none"
        raise HarmonyError(
            f"no fitted {arch} checkpoint is shipped (shipped: {shipped}); make one with "
            f"`harmony fit {arch} -o {arch}{FITTED_SUFFIX}`"
        )
    return path
