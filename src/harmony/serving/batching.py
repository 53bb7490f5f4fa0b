"""`Batching`: how Triton batches and spreads a served model's requests (imported by the CLI
for its option defaults, so it imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass

from harmony.errors import HarmonyError


@dataclass(frozen=True)
class Batching:
    """How Triton batches and spreads a model's requests.

    Attributes:
        max_batch: the largest batch Triton gathers; dynamic batching is on when it is above 1.
        max_queue_delay_us: how long the dynamic batcher waits for requests of the same size.
        instances: model instances (processes for the Python backend, copies on each GPU).
    """

    max_batch: int = 4
    max_queue_delay_us: int = 1000
    instances: int = 1

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue_delay_us < 0 or self.instances < 1:
            raise HarmonyError(
                "the batching needs max batch >= 1, a queue delay >= 0 and instances >= 1, got "
                f"{self.max_batch}, {self.max_queue_delay_us}, {self.instances}"
            )
