"""Error classes: a user's mistake versus a bug.

`HarmonyError` is raised for anything the user can fix (a wrong file, a mismatched size, an
unsupported option). The CLI prints its message and exits 1 without a traceback. Every other
exception is a bug and keeps its traceback.
"""


class HarmonyError(Exception):
    """A user-facing error: the message says what was expected, what was received, how to fix it."""
