"""`python -m harmony`: the `harmony` command (for environments where its script is not on PATH)."""

from harmony.cli.main import cli

cli()
