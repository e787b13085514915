"""A run's frontier as stored: which measured candidates lead on which train examples.

What `overnight show --frontier` prints and the TUI's frontier screen shows; the same rule the
reflective agent searches from (plugins/frontier.py), applied to what the store holds."""

from __future__ import annotations

MEASURED = ("baseline", "keep", "discard")


def frontier(store, run_id: int) -> list[tuple[int, list[str]]]:
    """(seq, the train examples it leads on, sorted) for each leader, most examples first."""
    from overnight.plugins.frontier import leaders

    rows = []
    for x in store.experiments(run_id):
        if x["status"] not in MEASURED or x["score"] is None:
            continue
        scores = {r["example_id"]: r["score"] for r in store.example_results(x["id"]) if r["split"] == "train"}
        if scores:
            rows.append((x["seq"], store.candidate(x["candidate"]) if x["candidate"] else "", scores))
    front = leaders(rows)
    return [(seq, sorted(led)) for seq, led in sorted(front.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
