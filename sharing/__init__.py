"""Sharing recipes: the library a person can name, getting one from elsewhere, and trusting it.

One module per job: `library` (bundled and installed recipes, their files and
digest), `sources` (where a recipe comes from, fetched into staging), `unpack`
(archives with no way out), `indexes` (names mapped to sources and digests),
`install` (staging to the library in one rename), `trust` (what a recipe runs
and the person's yes), `describe` (what list, show and validate say) and
`scaffold` (a new recipe.toml). It imports `overnight.core` only; the command
line and the TUI are front ends over it.
"""
