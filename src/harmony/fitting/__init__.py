"""`harmony fit`: stand-in checkpoints fitted on synthetic composites (see `fit`)."""
