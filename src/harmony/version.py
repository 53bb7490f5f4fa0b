"""The version of harmony-deploy, recorded in every graph, engine manifest and result it writes."""

__version__ = "0.1.0"
