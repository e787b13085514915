"""The console script's entry: overnight as the program, not a library a test or a host imports.

Starting a command makes many objects and frees few: importing click and then the command's
modules is most of `overnight --help` and of a run's start, and collecting meanwhile only walks
what lives on (a twentieth of `--help`). So the collector is paused before anything else is
imported, and turned back on once the command's modules are in (cli/main.py `get_command`);
`run` keeps it paused until its run is set up (cli/run.py).

Ending, the program does not free its objects one by one either (`leave`).
"""

import gc

gc.disable()


def main() -> None:
    try:
        from overnight.cli.main import main as program
    except KeyboardInterrupt:  # Ctrl-C while click and the command group are imported: no traceback
        import sys

        if sys.stderr is not None:
            sys.stderr.write("Interrupted.\n")
        leave(130)
        raise SystemExit(130) from None
    try:
        program()
    except SystemExit as done:
        leave(done.code)
        raise


def leave(code) -> None:
    """Ends the process once its command is done, without freeing its objects one by one: Python
    takes 10-15 ms over that at the end of a run, which a person waits for and a script pays on
    every call. What Python would still do that matters is done first: the `atexit` handlers (work
    folders removed, logs flushed), then the output flushed. Returns, for Python's own exit, when
    another thread still works, as Python would wait for it."""
    import atexit
    import os
    import sys
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as Python prints a SystemExit's message
        if sys.stderr is not None:
            print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # stores closed too (core/store.py): the store file alone holds every run
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None when the command was started with that stream closed
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            pass
    os._exit(status % 256)
