"""What dataclasses compile, kept between starts of the console script.

A dataclass compiles its `__init__`, `__repr__`, `__eq__` (and more when frozen) from source
text each time its module is imported: about 0.6 ms a class on a small machine, and a run
imports some fifty before its first measurement, the TUI hundreds. Python keeps a module's
bytecode between starts; this keeps those methods' the same way. Only the console script
installs it (`overnight.cli.main`, before a command's modules are imported): each source text
dataclasses hands to `exec` is compiled once, as `exec` would compile it, and kept in one file
per Python version in the user's cache folder, read as a command starts and written at the exit
when something new was compiled. A file that cannot be read counts as empty.
OVERNIGHT_COMPILED_CACHE=0 turns it off.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import sys

CAP = 4000  # methods kept in the file; past it, only those the last command used


class Compiled:
    """Compiled code by source text: `exec` for the dataclasses module. The file maps each source
    to its marshalled code, unmarshalled only when that source comes again: a start reads the
    methods of every command and plugin ever seen, and builds only those it needs."""

    def __init__(self, path: str):
        self.path, self.known, self.used, self.new = path, {}, set(), False
        try:
            with open(path, "rb") as f:
                known = marshal.loads(f.read())
            self.known = known if isinstance(known, dict) else {}
        except (OSError, ValueError, EOFError, TypeError):
            pass

    def exec(self, source, globals=None, locals=None, /, **options) -> None:
        if globals is None:  # as the builtin: the caller's namespaces
            caller = sys._getframe(1)
            globals, locals = caller.f_globals, caller.f_locals if locals is None else locals
        if not isinstance(source, str) or options:
            return builtins.exec(source, globals, locals, **options)
        code = self._code(source)
        self.used.add(source)
        builtins.exec(code, globals, locals)

    def _code(self, source: str):
        kept = self.known.get(source)
        if kept is not None:
            try:
                return marshal.loads(kept)
            except (ValueError, EOFError, TypeError):
                pass
        # dont_inherit: the future flags of dataclasses' module (none), not this one's
        code = compile(source, "<string>", "exec", dont_inherit=True)
        self.known[source], self.new = marshal.dumps(code), True
        return code

    def save(self) -> None:
        if not self.new:
            return
        keep = self.known if len(self.known) <= CAP else {s: self.known[s] for s in self.used}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(marshal.dumps(keep))
            os.replace(tmp, self.path)  # whole or not at all, whoever else writes it
        except (OSError, ValueError):
            if os.path.exists(tmp):
                os.remove(tmp)


_installed: Compiled | None = None


def install() -> Compiled | None:
    """Once a process; not where dataclasses compiles otherwise than this expects (a newer Python)."""
    global _installed
    if _installed is not None or os.environ.get("OVERNIGHT_COMPILED_CACHE") == "0":
        return _installed
    if vars(dataclasses).get("exec", builtins.exec) is not builtins.exec or "annotations" in vars(dataclasses):
        return None
    _installed = Compiled(os.path.join(folder(), f"dataclasses-{sys.implementation.cache_tag}-{sys.flags.optimize}.bin"))
    dataclasses.exec = _installed.exec
    atexit.register(_installed.save)
    return _installed


def folder() -> str:
    """OVERNIGHT_HOME/cache when it is set (tests, portable setups), else the user's cache folder."""
    home = os.environ.get("OVERNIGHT_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "cache")
    from platformdirs import user_cache_dir

    return user_cache_dir("overnight")
