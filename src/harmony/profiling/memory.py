"""Peak memory of the current process: its peak resident set size."""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM is missing from /proc/self/status (Linux only)")
