"""Error classes: a user's mistake versus a bug.

`HarmonyError` is raised for anything the user can fix (a wrong file, a mismatched size, an
unsupported option). The CLI prints its message and exits 1 without a traceback. Every other
exception is a bug and keeps its traceback. `HarmonyWarning` is something the user should know
that does not stop the work (a dropped alpha channel, a mask that covers everything): libraries
`warnings.warn` it, and the CLI prints it as `warning: ...` when it happens.
"""


class HarmonyError(Exception):
    """A user-facing error: the message says what was expected, what was received, how to fix it."""


class HarmonyWarning(UserWarning):
    """A user-facing warning: what was noticed and what it means for the result."""


# How many problems an error message lists before counting the rest.
LISTED_PROBLEMS = 5


def listing(items: list[str], separator: str = ", ") -> str:
    """The first LISTED_PROBLEMS of `items` joined by `separator`, and how many more there are."""
    listed = separator.join(items[:LISTED_PROBLEMS])
    more = len(items) - LISTED_PROBLEMS
    return f"{listed} and {more} more" if more > 0 else listed
