"""The console script keeps what dataclasses compile between starts: classes made from the
kept code behave exactly as classes compiled afresh, a second start compiles nothing, and a
cache that cannot be read is only a slower start. Each case runs in a process of its own, as
the console script installs the cache for the whole process."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Dataclasses of every kind the cache must not change, described by what a program can observe.
PROBE = r'''
import dataclasses, inspect, json, os, sys
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

if os.environ.get("INSTALL"):
    from overnight.cli import compiled
    cache = compiled.install()

@dataclass(frozen=True)
class Base:
    run_id: int
    kind: ClassVar[str] = ""

@dataclass(frozen=True)
class Child(Base):
    seq: int
    score: float | None = None
    tags: tuple = ()
    kind: ClassVar[str] = "child"

@dataclass(order=True)
class Mutable:
    name: str
    items: list = field(default_factory=list)
    hidden: int = field(default=3, repr=False, compare=False)
    seed: InitVar[int] = 0

    def __post_init__(self, seed):
        self.items = self.items + [seed]

@dataclass(slots=True, kw_only=True)
class Slotted:
    a: int
    b: str = "b"

@dataclass(unsafe_hash=True, eq=True)
class Hashed:
    x: int

def observe():
    out = {}
    c = Child(1, 2, 0.5)
    out["repr"] = [repr(c), repr(Mutable("m", seed=7)), repr(Slotted(a=1)), repr(Hashed(4))]
    out["eq"] = [c == Child(1, 2, 0.5), c == Child(1, 3), Mutable("a") < Mutable("b"), Mutable("a", hidden=1) == Mutable("a")]
    out["hash"] = [hash(c) == hash(Child(1, 2, 0.5)), hash(Hashed(4)) == hash(Hashed(4))]
    try:
        c.seq = 5
        out["frozen"] = "mutated"
    except dataclasses.FrozenInstanceError as exc:
        out["frozen"] = type(exc).__name__
    try:
        Slotted(1)
        out["kw_only"] = "accepted"
    except TypeError as exc:
        out["kw_only"] = str(exc)
    out["signatures"] = [str(inspect.signature(cls)) for cls in (Child, Mutable, Slotted, Hashed)]
    out["annotations"] = [repr(cls.__init__.__annotations__) for cls in (Child, Mutable, Slotted)]
    out["fields"] = [[f.name for f in dataclasses.fields(cls)] for cls in (Child, Mutable, Slotted)]
    out["slots"] = Slotted.__slots__
    return out

print(json.dumps(observe()))
if os.environ.get("INSTALL"):
    print(json.dumps({"compiled_now": cache.new if cache else None, "installed": cache is not None}))
'''


def probe(home: Path, install: bool, **env) -> list[dict]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OVERNIGHT_COMPILED_CACHE",)}
    environ.update(OVERNIGHT_HOME=str(home), INSTALL="1" if install else "", **env)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=environ)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache").glob("dataclasses-*.bin"))


def test_classes_from_kept_code_behave_as_classes_compiled_afresh(tmp_path):
    (afresh,) = probe(tmp_path, install=False)
    assert not cache_files(tmp_path)
    first, told = probe(tmp_path, install=True)
    assert told == {"compiled_now": True, "installed": True}
    assert first == afresh
    assert len(cache_files(tmp_path)) == 1
    second, told = probe(tmp_path, install=True)
    assert told == {"compiled_now": False, "installed": True}  # everything came from the file
    assert second == afresh


def test_a_cache_that_cannot_be_read_is_only_a_slower_start(tmp_path):
    probe(tmp_path, install=True)
    (kept,) = cache_files(tmp_path)
    kept.write_bytes(b"not marshal data")
    again, told = probe(tmp_path, install=True)
    assert told["compiled_now"] is True and again == probe(tmp_path, install=False)[0]
    assert probe(tmp_path, install=True)[1]["compiled_now"] is False  # written whole again
    kept.write_bytes(marshal.dumps({source: b"not code" for source in marshal.loads(kept.read_bytes())}))
    again, told = probe(tmp_path, install=True)  # each method that cannot be read is compiled again
    assert told["compiled_now"] is True and again == probe(tmp_path, install=False)[0]


def test_the_cache_can_be_turned_off(tmp_path):
    observed, told = probe(tmp_path, install=True, OVERNIGHT_COMPILED_CACHE="0")
    assert told == {"compiled_now": None, "installed": False} and not cache_files(tmp_path)
    assert observed == probe(tmp_path, install=False)[0]


@pytest.mark.parametrize("program", [True, False])
def test_only_the_console_script_keeps_compiled_code(program, tmp_path):
    # A test or a host that imports overnight keeps its own Python as it was.
    code = ("import sys\nsys.argv = ['overnight', 'plugins', '--json']\nfrom overnight.cli import main\n"
            + ("main.main()\n" if program else "main.cli.main(standalone_mode=False)\n"))
    environ = {**os.environ, "OVERNIGHT_HOME": str(tmp_path)}
    environ.pop("OVERNIGHT_COMPILED_CACHE", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ)
    assert done.returncode == 0, done.stderr
    assert bool(cache_files(tmp_path)) is program
