"""Click commands: parse, call the library, map the outcome to an exit code."""
