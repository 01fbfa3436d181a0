"""The files ``siamese-edge train`` writes into a run directory. Importable without torch:
export checks its outputs against them before it needs torch, so that a machine without the
train extra still gets the one-line error that says so."""

#: what a run directory holds once training has saved anything; not overwritten unasked
RUN_FILES = ("checkpoint.pt", "last.pt")
OUTPUT_FILES = ("run.json", "log.jsonl", "config.json", "curves.png")
