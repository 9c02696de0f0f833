"""P1's reference: a bare FastAPI endpoint that stores each request's bytes in SQLite.

One INSERT and one commit per POST, in WAL mode with synchronous=FULL (the ledger's
durability), from the thread pool as the ledger's route does. Served by uvicorn exactly as
`customs-ledger serve` serves the ledger:

    BENCH_REFERENCE_DB=/tmp/ref.sqlite3 python -m uvicorn --factory \
        bench.reference_server:create_app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import os
import sqlite3
import threading

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool


class Store:
    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS requests ("
            " id INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE, body BLOB NOT NULL)"
        )

    def insert(self, key: str | None, body: bytes) -> int:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self.conn.execute(
                    "INSERT INTO requests (idempotency_key, body) VALUES (?, ?)", (key, body)
                )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def count(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def create_app() -> FastAPI:
    store = Store(os.environ["BENCH_REFERENCE_DB"])
    app = FastAPI()

    @app.post("/v1/declarations")
    async def submit(request: Request) -> Response:
        body = await request.body()
        rowid = await run_in_threadpool(store.insert, request.headers.get("idempotency-key"), body)
        return Response(b'{"id":%d}' % rowid, status_code=201, media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, int]:
        return {"log_position": store.count()}

    return app
