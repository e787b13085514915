"""The plugin manager: built-ins and third-party plugins, found the same way."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
from dataclasses import dataclass, field
from functools import cache

import pluggy

from . import hookspecs
from .contracts import Agent, Executor, Metric, Plugin, Surface
from .errors import OvernightError
from .options import closest

GROUP = "overnight"

KINDS = {"surface": Surface, "metric": Metric, "agent": Agent, "executor": Executor}


@dataclass
class PluginInfo:
    name: str
    version: str = ""
    provides: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str = ""


class Registry:
    """What every plugin registered, and which plugin registered it."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.classes: dict[str, dict[str, type[Plugin]]] = {k: {} for k in KINDS}
        self.owner: dict[tuple[str, str], str] = {}
        self.plugins: dict[str, PluginInfo] = {}

    def load(self, modules=(), entry_points: bool = True, builtins: bool = True) -> "Registry":
        """Registers plugins from the `overnight` entry-point group (the built-ins are
        there too, declared in pyproject.toml) and from extra module names."""
        found = []
        if entry_points:
            found = [(ep.name, _version(ep), ep.load) for ep in importlib.metadata.entry_points(group=GROUP)
                     if builtins or not _builtin(ep)]
        found += [(m, "", lambda m=m: importlib.import_module(m)) for m in modules]
        for name, version, load in found:
            info = PluginInfo(name, version=version)
            self.plugins[name] = info
            try:
                self.pm.register(load(), name=name)
            except Exception as exc:  # a broken plugin is reported, never fatal
                info.error = f"{type(exc).__name__}: {exc}"
        for kind in KINDS:
            hook = getattr(self.pm.hook, f"overnight_register_{kind}s")
            for impl in hook.get_hookimpls():
                try:
                    impl.function(register=self._register_as(kind, impl.plugin_name))
                except Exception as exc:
                    info = self.plugins.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name))
                    info.error = f"{type(exc).__name__}: {exc}"
        return self

    def _register_as(self, kind: str, plugin_name: str):
        base = KINDS[kind]

        def register(cls: type[Plugin]) -> None:
            if not (isinstance(cls, type) and base in cls.__mro__):  # Executor is a Protocol: by inheritance
                raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
            if not cls.name:
                raise TypeError(f"{cls.__name__} has no name")
            if cls.name in self.classes[kind]:
                other = self.owner[(kind, cls.name)]
                raise TypeError(f"{kind} '{cls.name}' is already registered by {other}")
            if inspect.isabstract(cls):  # refused now, listed by `overnight plugins`, not a crash mid-run
                raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
            self.classes[kind][cls.name] = cls
            self.owner[(kind, cls.name)] = plugin_name
            info = self.plugins.setdefault(plugin_name, PluginInfo(plugin_name))
            info.provides[kind].append(cls.name)

        return register

    def get(self, kind: str, name: str) -> type[Plugin]:
        found = self.classes[kind]
        if name in found:
            return found[name]
        hint = closest(name, found)
        tip = f" Did you mean '{hint}'?" if hint else ""
        raise OvernightError(
            f"Unknown {kind} kind '{name}'.{tip} Available: {', '.join(sorted(found)) or 'none'}."
        )

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def _version(ep) -> str:
    try:
        if ep.dist and ep.dist.name == "overnight":
            return f"{ep.dist.version} (built-in)"
        return ep.dist.version if ep.dist else ""
    except Exception:
        return ""


def _builtin(ep) -> bool:
    return bool(ep.dist and ep.dist.name == "overnight")


@cache
def registry(builtins: bool = True) -> Registry:
    """Every plugin; `builtins=False` skips overnight's own (for `--help`, which only needs the
    commands third-party plugins add: the built-in commands are listed in cli/main.py)."""
    # OVERNIGHT_PLUGINS="pkg.mod,other.mod" adds plugin modules that have no entry point
    # (a plugin being written, or one a test defines).
    extra = [m.strip() for m in os.environ.get("OVERNIGHT_PLUGINS", "").split(",") if m.strip()]
    return Registry().load(modules=extra, builtins=builtins)
