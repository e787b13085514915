"""The night and the morning: a queue of recipes run one after another, its digest, and the
report a person opens in a browser. Built on the store and the `overnight run` command."""
