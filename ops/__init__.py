"""What a person does to runs and experiments, whichever front end they use.

`overnight.cli` and `overnight.tui` both call these; neither imports the other.
One module per job: finding runs and experiments (find), controlling a live run
(control), reviewing (review), applying (apply), measuring again (remeasure),
starting a run (runs), and the one door to the trust record (trust_gate).
Each works through a `Store`, so it reaches a run started in another process.
Imports stay light: the TUI's first paint must not wait for a plugin library.
"""
