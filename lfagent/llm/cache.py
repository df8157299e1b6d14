"""A sqlite cache of chat responses keyed by the sha256 of the whole canonical request."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from lfagent.llm.base import ChatResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class ResponseCache:
    """Responses stored by request key; `":memory:"` for a throwaway cache.

    One connection guarded by a lock: safe for the LLM's loop thread and any other thread of
    the process; WAL mode lets another process read while this one writes.
    """

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30,
                                   isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> ChatResponse | None:
        """The stored response marked `cached=True`, or None."""
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        return ChatResponse.model_validate_json(row[0]).model_copy(update={"cached": True})

    def put(self, key: str, response: ChatResponse) -> None:
        stored = response.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, response, created) "
                             "VALUES (?, ?, ?)", (key, stored, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
