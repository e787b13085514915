"""The console script's entry: overnight as the program, not a library a test or a host imports.

Starting a command makes many objects and frees few: importing click and then the command's
modules is most of `overnight --help` and of a run's start, and collecting meanwhile only walks
what lives on (a twentieth of `--help`). So the collector is paused before anything else is
imported, and turned back on once the command's modules are in (cli/main.py `get_command`);
`run` keeps it paused until its run is set up (cli/run.py).
"""

import gc

gc.disable()


def main() -> None:
    from overnight.cli.main import main as program

    program()
