"""The sharing package stands on `core` alone: no front end, no plugin comes with it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import overnight.sharing

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("overnight."))))
"""


def test_every_sharing_module_imports_only_core():
    modules = [f"overnight.sharing.{m.name}" for m in pkgutil.iter_modules(overnight.sharing.__path__)]
    assert {"overnight.sharing.install", "overnight.sharing.trust", "overnight.sharing.unpack"} <= set(modules)

    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert [m for m in loaded if not m.startswith(("overnight.core", "overnight.sharing"))] == []
