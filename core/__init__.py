"""The loop and its contracts. Names no surface, metric or agent: those are plugins."""
