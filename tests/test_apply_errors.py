"""An apply that cannot be carried out ends in one sentence, the person's file as it was, and a
journal that says the apply failed (not that it was interrupted and rolled back)."""

from __future__ import annotations

import errno
import stat

from overnight.core.files import TMP_MARK
from tests.data.core.kit import no_traceback, recipe, rows


def _ran(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n", "hello there world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    return folder / "doc.txt", workspace / ".overnight"


def _no_temporaries(*folders) -> bool:
    return not [p for f in folders if f.is_dir() for p in f.iterdir() if p.name.startswith(TMP_MARK)]


def _quiet_status(cli, db) -> None:
    """`overnight status` tells of no interrupted apply, and the journal holds none left open."""
    status = cli("status")
    assert status.exit_code == 0 and no_traceback(status.output)
    assert "interrupted" not in status.output and "rolled back" not in status.output
    assert [r["state"] for r in rows(db, "select state from applies")] in ([], ["failed"])


def test_a_backup_folder_that_is_a_file_fails_the_apply_in_a_sentence(workspace, cli):
    doc, store = _ran(workspace, cli)
    (store / "backups").touch()  # no backup can go there

    result = cli("apply", "1:2")
    assert result.exit_code != 0
    assert f"Cannot keep a backup of {doc}: {store / 'backups'} is a file, not a folder; nothing was written." in result.output
    assert no_traceback(result.output)
    assert doc.read_text() == "hello\n" and _no_temporaries(doc.parent, store)
    _quiet_status(cli, store / "overnight.db")

    # Once the way is clear, the same apply goes through.
    (store / "backups").unlink()
    assert cli("apply", "1:2").exit_code == 0 and doc.read_text() == "hello there world\n"
    status = cli("status")
    assert "interrupted" not in status.output


def test_a_new_version_that_cannot_be_written_fails_the_apply_in_a_sentence(workspace, cli, monkeypatch):
    from overnight.core import files

    doc, store = _ran(workspace, cli)

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(doc.parent))

    monkeypatch.setattr(files.tempfile, "mkstemp", full)
    result = cli("apply", "1:2")
    assert result.exit_code != 0
    assert f"Cannot write {doc}: no space left on device ({doc.parent}); nothing was written." in result.output
    assert no_traceback(result.output)
    assert doc.read_text() == "hello\n" and _no_temporaries(doc.parent, store / "backups")
    _quiet_status(cli, store / "overnight.db")


def test_a_read_only_file_is_not_replaced(workspace, cli):
    doc, store = _ran(workspace, cli)
    doc.chmod(0o444)

    result = cli("apply", "1:2")
    assert result.exit_code != 0
    assert (f"{doc} is read-only, so nothing was written: make it writable first (chmod u+w {doc}). "
            f"Use --force to apply anyway.") in result.output
    assert no_traceback(result.output)
    assert doc.read_text() == "hello\n" and stat.S_IMODE(doc.stat().st_mode) == 0o444
    assert not (store / "backups").exists()
    _quiet_status(cli, store / "overnight.db")
    # A dry run still shows what applying would write.
    dry = cli("apply", "1:2", "--dry-run")
    assert dry.exit_code == 0 and "+hello there world" in dry.output


def test_force_replaces_a_read_only_file_keeping_its_mode_and_a_backup(workspace, cli, monkeypatch):
    """As a user other than root: the OS refuses to open a file without write bits for writing.
    Tests run as root, whom the OS never refuses, so `open` in core/files.py plays that part."""
    import builtins

    from overnight.core import files

    def as_a_user(path, mode="r", *args, **kw):
        if any(c in mode for c in "wa+") and not stat.S_IMODE(files.os.stat(path).st_mode) & stat.S_IWUSR:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return builtins.open(path, mode, *args, **kw)

    monkeypatch.setattr(files, "open", as_a_user, raising=False)
    doc, store = _ran(workspace, cli)
    doc.chmod(0o444)

    result = cli("apply", "1:2", "--force")
    assert result.exit_code == 0, result.output
    assert doc.read_text() == "hello there world\n" and stat.S_IMODE(doc.stat().st_mode) == 0o444
    [backup] = (store / "backups").iterdir()
    assert backup.read_text() == "hello\n" and f"The previous version is kept at {backup}." in result.output
    assert _no_temporaries(doc.parent, store / "backups")
    assert [r["state"] for r in rows(store / "overnight.db", "select state from applies")] == ["finished"]


def test_an_apply_journal_edited_to_name_a_device_is_not_read(workspace, cli):
    """`overnight status` finishes the applies a kill interrupted by reading their file: one a
    store edited by hand points at a device or a folder is left unread, and reported as abandoned."""
    import sqlite3

    _, store = _ran(workspace, cli)
    db = sqlite3.connect(store / "overnight.db")
    with db:
        for path in ("/dev/zero", str(workspace)):
            db.execute("insert into applies (run_id, experiment_id, path, old_digest, new_digest, state, created_at) "
                       "values (1, 1, ?, 'a', 'b', 'begun', 0)", [path])
    db.close()
    status = cli("status")
    assert status.exit_code == 0 and no_traceback(status.output), status.output
    assert [r["state"] for r in rows(store / "overnight.db", "select state from applies")] == ["abandoned", "abandoned"]
