"""The run store: one sqlite file in RUN_DIR holding everything a run did, so it can resume after kill -9.

Each write is its own transaction (WAL mode), so a killed process loses at most the write in flight.
LLM responses are stored before they are used: a resumed run replays them instead of paying again.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

from lfagent.lf import LabelingFunction

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lfs (
  name TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'candidate',
  pinned TEXT, reason TEXT, round INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rejections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER, proposer TEXT, name TEXT, reason TEXT NOT NULL,
  text TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS llm_calls (
  key TEXT PRIMARY KEY, round INTEGER, purpose TEXT, request TEXT NOT NULL, response TEXT,
  prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL, error TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
  round INTEGER PRIMARY KEY, status TEXT NOT NULL, metrics TEXT, started REAL, finished REAL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, data TEXT, created REAL NOT NULL);
"""


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "run.sqlite"
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        if self.get_meta("run_id") is None:
            self.set_meta("run_id", uuid.uuid4().hex[:12])
            self.set_meta("created", str(time.time()))

    # -- meta
    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def run_id(self) -> str:
        return self.get_meta("run_id")

    # -- LFs
    def put_lf(self, lf: LabelingFunction, *, status: str = "candidate", round_: int | None = None) -> None:
        self.db.execute(
            "INSERT INTO lfs (name, spec, status, round, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec",
            (lf.name, lf.model_dump_json(), status, round_, time.time()))

    def set_lf_status(self, name: str, status: str, reason: str | None = None) -> None:
        self.db.execute("UPDATE lfs SET status=?, reason=? WHERE name=?", (status, reason, name))

    def pin(self, name: str, pinned: str | None) -> None:
        """pinned: 'keep', 'drop' or None (let scoring decide)."""
        self.db.execute("UPDATE lfs SET pinned=? WHERE name=?", (pinned, name))

    def lfs(self) -> list[tuple[LabelingFunction, str, str | None, str | None]]:
        rows = self.db.execute("SELECT spec, status, pinned, reason FROM lfs ORDER BY created, name").fetchall()
        return [(LabelingFunction.model_validate_json(spec), status, pinned, reason)
                for spec, status, pinned, reason in rows]

    def has_lf(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM lfs WHERE name=?", (name,)).fetchone() is not None

    # -- rejections and events
    def reject(self, reason: str, *, round_: int | None, proposer: str, name: str | None = None,
               text: str | None = None) -> None:
        self.db.execute("INSERT INTO rejections (round, proposer, name, reason, text, created) VALUES (?,?,?,?,?,?)",
                        (round_, proposer, name, reason, (text or "")[:20000], time.time()))

    def rejections(self) -> list[dict]:
        rows = self.db.execute("SELECT round, proposer, name, reason FROM rejections ORDER BY id").fetchall()
        return [dict(zip(("round", "proposer", "name", "reason"), r)) for r in rows]

    def event(self, kind: str, data=None) -> None:
        self.db.execute("INSERT INTO events (kind, data, created) VALUES (?, ?, ?)",
                        (kind, json.dumps(data, default=str), time.time()))

    def events(self, kind: str | None = None) -> list[dict]:
        """Recorded events ({kind, data, created}) in order, all or those of one kind."""
        rows = self.db.execute("SELECT kind, data, created FROM events WHERE ? IS NULL OR kind = ? ORDER BY id",
                               (kind, kind)).fetchall()
        return [{"kind": k, "data": json.loads(d) if d is not None else None, "created": c} for k, d, c in rows]

    # -- LLM calls (the response cache of record for this run)
    def llm_response(self, key: str) -> dict | None:
        row = self.db.execute("SELECT response FROM llm_calls WHERE key=? AND response IS NOT NULL", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_llm_call(self, key: str, *, round_: int | None, purpose: str, request: dict, response: dict | None,
                     prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0,
                     error: str | None = None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO llm_calls VALUES (?,?,?,?,?,?,?,?,?,?)",
            (key, round_, purpose, json.dumps(request), None if response is None else json.dumps(response),
             prompt_tokens, completion_tokens, cost, error, time.time()))

    def llm_usage(self) -> dict:
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
                              "COALESCE(SUM(cost),0) FROM llm_calls WHERE response IS NOT NULL").fetchone()
        return {"calls": row[0], "prompt_tokens": row[1], "completion_tokens": row[2], "cost": row[3]}

    def llm_usage_by_purpose(self) -> dict[str, dict]:
        """llm_usage split by what the calls were for ("propose", "annotate")."""
        rows = self.db.execute("SELECT purpose, COUNT(*), COALESCE(SUM(prompt_tokens),0), "
                               "COALESCE(SUM(completion_tokens),0), COALESCE(SUM(cost),0) FROM llm_calls "
                               "WHERE response IS NOT NULL GROUP BY purpose ORDER BY purpose").fetchall()
        return {purpose or "propose": {"calls": c, "prompt_tokens": p, "completion_tokens": t, "cost": cost}
                for purpose, c, p, t, cost in rows}

    # -- rounds
    def start_round(self, round_: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO rounds (round, status, started) VALUES (?, 'running', ?)",
                        (round_, time.time()))

    def finish_round(self, round_: int, metrics: dict) -> None:
        self.db.execute("UPDATE rounds SET status='done', metrics=?, finished=? WHERE round=?",
                        (json.dumps(metrics), time.time(), round_))

    def rounds(self) -> list[dict]:
        rows = self.db.execute("SELECT round, status, metrics FROM rounds ORDER BY round").fetchall()
        return [{"round": r, "status": s, "metrics": json.loads(m) if m else None} for r, s, m in rows]

    def close(self) -> None:
        self.db.close()
