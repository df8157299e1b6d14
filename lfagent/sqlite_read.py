"""Reading an sqlite file in WAL mode without changing what lies beside it."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def reading_connection(path: str | Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that cannot write and leaves no files behind. In WAL mode a `mode=ro` connection creates
    the -wal and -shm files and, unable to checkpoint, leaves them when it closes (a report would change the
    run directory it reads). An ordinary connection (mode=rw: never creates the database) removes them when it
    is the last to close; query_only refuses writes. Raises sqlite3.Error when the file cannot be opened so."""
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, check_same_thread=check_same_thread)
    db.execute("PRAGMA query_only=ON")
    return db
