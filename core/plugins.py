"""The plugin manager: built-ins and third-party plugins, found the same way."""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from functools import cache

import pluggy

from . import entrypoints, hookspecs
from .contracts import Agent, Executor, Metric, Plugin, Surface
from .errors import OvernightError
from .options import closest

GROUP = "overnight"
# The built-ins that watch a run (an `overnight_event` hook), declared beside them in pyproject.toml:
# a run imports these whatever its recipe names (tests/test_plugins_registry.py holds the list to the hooks).
OBSERVERS = "overnight.observers"

KINDS = {"surface": Surface, "metric": Metric, "agent": Agent, "executor": Executor}


@dataclass
class PluginInfo:
    """One plugin as `overnight plugins` lists it: what it provides, and why it failed or was refused."""

    name: str
    provides: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str = ""
    refused: list[str] = field(default_factory=list)  # kinds it offered that another plugin, built-in first, has
    builtin: bool = False
    entry: object = field(default=None, repr=False)  # its entry point, whose distribution is read only when shown

    @property
    def version(self) -> str:
        """Read when shown (`overnight plugins`): a package's metadata costs milliseconds each."""
        return _version(self.entry, self.builtin)


class Registry:
    """What every plugin registered, and which plugin registered it."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.classes: dict[str, dict[str, type[Plugin]]] = {k: {} for k in KINDS}
        self.owner: dict[tuple[str, str], str] = {}
        self.plugins: dict[str, PluginInfo] = {}
        self.hooked: set[str] = set()  # the plugins whose register hooks have run
        self.pending: list[tuple] = []  # plugins not imported yet (`on_demand`), built-ins first

    def load(self, modules=(), entry_points: bool = True, builtins: bool = True) -> "Registry":
        """Registers plugins from the `overnight` entry-point group (the built-ins are
        there too, declared in pyproject.toml) and from extra module names."""
        self._add(_found(modules, entry_points, builtins))
        return self

    def on_demand(self, modules=()) -> "Registry":
        """Imports plugins when `get` asks for a kind none loaded has: built-ins one at a time (those
        named like the kind first), then every other plugin. Reading a recipe imports only what
        it names (`recipes list`, `show`, `validate`); built-ins still win every kind they have."""
        self.pending = sorted(_found(modules, True, True), key=lambda plugin: not plugin[3])
        return self

    def watching(self, modules=()) -> "Registry":
        """For a run: kinds on demand as `on_demand`, and at once every plugin that may observe the
        run: each third-party one (what it does is not known before it is imported) and the built-ins
        declared observers. A third party's kinds still wait until every built-in has had its turn."""
        self.on_demand(modules)
        observers = _observers()
        now = [p for p in self.pending if not p[3] or observers is None or p[0] in observers]
        self.pending = [p for p in self.pending if p not in now]
        self._add(now)
        return self

    def _add(self, found: list[tuple]) -> None:
        for name, entry, load, builtin in found:
            info = PluginInfo(name, builtin=builtin, entry=entry)
            self.plugins[name] = info
            try:
                self.pm.register(load(), name=name)
            except Exception as exc:  # a broken plugin is reported, never fatal
                info.error = f"{type(exc).__name__}: {exc}"
        # Built-ins first: a third-party plugin can add kinds, never take one overnight has (so while
        # a built-in waits to be imported, a third party's kinds wait too).
        ready = not any(plugin[3] for plugin in self.pending)
        for kind in KINDS:
            for impl in sorted(getattr(self.pm.hook, f"overnight_register_{kind}s").get_hookimpls(),
                               key=lambda impl: not self._is_builtin(impl.plugin_name)):
                if impl.plugin_name in self.hooked or not (ready or self._is_builtin(impl.plugin_name)):
                    continue
                try:
                    impl.function(register=self._register_as(kind, impl.plugin_name))
                except Exception as exc:
                    info = self.plugins.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name))
                    info.error = f"{type(exc).__name__}: {exc}"
        self.hooked.update(name for name, _ in self.pm.list_name_plugin() if ready or self._is_builtin(name))

    def _load_pending(self, kind: str, name: str) -> None:
        # The plugin named like the kind first, then those whose names start with it ("command-agent").
        builtins = sorted((p for p in self.pending if p[3]), key=lambda p: (p[0] != name, not p[0].startswith(name)))
        for plugin in builtins:
            self.pending.remove(plugin)
            self._add([plugin])
            if name in self.classes[kind]:
                return
        rest, self.pending = self.pending, []
        self._add(rest)

    def _is_builtin(self, plugin_name: str) -> bool:
        info = self.plugins.get(plugin_name)
        return bool(info and info.builtin)

    def call_each(self, hook: str, **kwargs) -> list[str]:
        """Calls every plugin's `hook` on its own; one that raises is skipped, and named in the
        warnings returned (so a broken plugin cannot break `overnight --help`)."""
        warnings = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames if a in kwargs})
            except Exception as exc:
                warnings.append(f"the plugin '{impl.plugin_name}' failed in {hook} and was skipped: "
                                f"{type(exc).__name__}: {exc}")
        return warnings

    def _register_as(self, kind: str, plugin_name: str):
        base = KINDS[kind]

        def register(cls: type[Plugin]) -> None:
            if not (isinstance(cls, type) and base in cls.__mro__):  # Executor is a Protocol: by inheritance
                raise TypeError(f"{cls!r} is not a {base.__name__} subclass")
            if not cls.name:
                raise TypeError(f"{cls.__name__} has no name")
            if cls.name in self.classes[kind]:
                other = self.owner[(kind, cls.name)]
                whose = "the built-in plugin" if self._is_builtin(other) else "the plugin"
                info = self.plugins.setdefault(plugin_name, PluginInfo(plugin_name))
                info.refused.append(f"{kind} '{cls.name}' refused: {whose} '{other}' has that kind already")
                return
            if inspect.isabstract(cls):  # refused now, listed by `overnight plugins`, not a crash mid-run
                raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
            self.classes[kind][cls.name] = cls
            self.owner[(kind, cls.name)] = plugin_name
            info = self.plugins.setdefault(plugin_name, PluginInfo(plugin_name))
            info.provides[kind].append(cls.name)

        return register

    def get(self, kind: str, name: str) -> type[Plugin]:
        if name not in self.classes[kind] and self.pending:
            self._load_pending(kind, name)
        found = self.classes[kind]
        if name in found:
            return found[name]
        hint = closest(name, found)
        tip = f" Did you mean '{hint}'?" if hint else ""
        broken = [p.name for p in self.broken()]
        failed = f" Plugins that failed to load: {', '.join(broken)} (see `overnight plugins`)." if broken else ""
        raise OvernightError(
            f"Unknown {kind} kind '{name}'.{tip} Available: {', '.join(sorted(found)) or 'none'}.{failed}"
        )

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def _found(modules, entry_points: bool, builtins: bool) -> list[tuple]:
    """(name, entry point, load, built-in) of each plugin to register."""
    found = []
    if entry_points:
        found = [(ep.name, ep, ep.load, _builtin(ep)) for ep in _entry_points()
                 if ep.group == GROUP and (builtins or not _builtin(ep))]
    return found + [(m, None, lambda m=m: importlib.import_module(m), False) for m in modules]


def _observers() -> frozenset[str] | None:
    """The built-ins declared observers; None when overnight's own metadata declares none (an
    install older than the declaration): then every built-in is taken for one."""
    return frozenset(ep.name for ep in _entry_points() if ep.group == OBSERVERS and _builtin(ep)) or None


@cache
def _entry_points() -> tuple:
    """The entry points of both groups, scanned once a process (the scan reads every installed package)."""
    return tuple(entrypoints.find((GROUP, OBSERVERS)))


def _version(entry, builtin: bool) -> str:
    try:
        dist = entry.dist if entry is not None else None
        if dist is None:
            return ""
        return f"{dist.version} (built-in)" if builtin else dist.version
    except Exception:
        return ""


def _builtin(ep) -> bool:
    return ep.dist_name == "overnight"


@cache
def registry(builtins: bool = True) -> Registry:
    """Every plugin; `builtins=False` skips overnight's own (for `--help`, which only needs the
    commands third-party plugins add: the built-in commands are listed in cli/main.py)."""
    return Registry().load(modules=_extra(), builtins=builtins)


def for_run() -> Registry:
    """The plugins a run needs: those its recipe names, imported as it names them, and every plugin
    that may watch it (see `Registry.watching`). Kinds resolve exactly as in a full registry."""
    return _for_run(tuple(_extra()))


@cache
def _for_run(extra: tuple[str, ...]) -> Registry:
    return Registry().watching(modules=extra)


def kinds() -> Registry:
    """The plugins a recipe names, imported as it names them (see `Registry.on_demand`): for reading
    recipes, not for running them (a run also imports every plugin that may watch it: `for_run`)."""
    return _kinds(tuple(_extra()))


@cache
def _kinds(extra: tuple[str, ...]) -> Registry:
    return Registry().on_demand(modules=extra)


def _extra() -> list[str]:
    # OVERNIGHT_PLUGINS="pkg.mod,other.mod" adds plugin modules that have no entry point
    # (a plugin being written, or one a test defines).
    return [m.strip() for m in os.environ.get("OVERNIGHT_PLUGINS", "").split(",") if m.strip()]
