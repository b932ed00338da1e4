"""Group commit for job submissions.

One writer thread takes every submission that arrived while the previous transaction was
committing and stores them together in one transaction; each caller is answered only after that
commit returns. Many concurrent clients then cost one fsync per batch instead of one each, and
SQLite (one writer at a time) never sees lock contention from submissions. Each writer keeps
its own database connection: a pool checkout per batch (and PostgreSQL's pre-ping, one more
round trip) cost as much as a small batch's statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from aicc.clock import Clock, WallClock
from aicc.errors import Conflict, InvalidInput
from aicc.workload.jobs import NodeShapes, SubmitRequest, submit_jobs

log = logging.getLogger("aicc.api.submitter")

# What a caller gets back: (job as a dict, created) or the error that refused it.
Outcome = tuple[dict[str, Any], bool]
# Where an outcome goes: a thread's Future, or an asyncio future with its loop.
Sink = Future | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Outcome]"]
Item = tuple[SubmitRequest, Sink]


def _deliver(pairs: list[tuple[asyncio.Future[Outcome], Outcome | BaseException]]) -> None:
    """Runs in the event loop: settle every future of one batch in one wake-up."""
    for fut, outcome in pairs:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _settle(items: list[tuple[Sink, Outcome | BaseException]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for sink, outcome in items:
        if isinstance(sink, tuple):
            by_loop.setdefault(sink[0], []).append((sink[1], outcome))
        elif not sink.done():
            if isinstance(outcome, BaseException):
                sink.set_exception(outcome)
            else:
                sink.set_result(outcome)
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_deliver, pairs)


class GroupCommitter:
    def __init__(self, factory: sessionmaker[Session], shapes: NodeShapes | None = None,
                 max_batch: int = 512, writers: int | None = None) -> None:
        self.factory = factory
        self.shapes = shapes or NodeShapes()
        self.max_batch = max_batch
        # SQLite has one writer at a time: a second thread would only wait for its lock.
        # PostgreSQL commits in parallel: a second writer fills a batch while one waits for
        # its commit to reach the disk.
        bind = factory.kw.get("bind")
        backend = bind.url.get_backend_name() if bind is not None else ""
        if writers is None:
            writers = 1 if backend == "sqlite" else 2
        self.writers = writers
        # On PostgreSQL a batch writes with one statement (jobs and their events together, see
        # ``submit_jobs``) and its reads each take their own snapshot under READ COMMITTED
        # anyway, so that statement can be its own transaction: autocommit spares the BEGIN and
        # COMMIT round trips, and the statement still returns only after its commit record is
        # flushed (synchronous_commit stays on). SQLite keeps an explicit transaction.
        self.autocommit = backend == "postgresql"
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._local = threading.local()  # each writer's connection
        self.batches = 0
        self.submissions = 0
        self.clock: Clock = WallClock()  # the center's clock: jobs are stamped in its time

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._threads = [threading.Thread(target=self._run, daemon=True,
                                                  name=f"aicc-group-commit-{k}")
                                 for k in range(self.writers)]
                for t in self._threads:
                    t.start()
                self._thread = self._threads[0]

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            threads, self._threads, self._thread = self._threads, [], None
        for _ in threads:
            self._queue.put(None)
        for t in threads:
            t.join(timeout)

    def submit(self, request: SubmitRequest) -> Future[Outcome]:
        """Queue one submission from any thread; the future resolves after its commit."""
        if self._thread is None:
            self.start()
        fut: Future[Outcome] = Future()
        self._queue.put((request, fut))
        return fut

    async def submit_async(self, request: SubmitRequest) -> Outcome:
        """Queue one submission from the event loop and wait for its commit. A batch wakes
        the loop once, however many submissions it settles."""
        if self._thread is None:
            self.start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put((request, (loop, fut)))
        return await fut

    def _connection(self) -> Connection:
        """This writer's connection, opened again after a disconnect."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.invalidated or conn.closed):
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
        if conn is None:
            bind = self.factory.kw.get("bind")
            if bind is None:
                raise RuntimeError("the session factory has no engine to connect with")
            conn = self._local.conn = bind.connect()
            if self.autocommit:
                conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def _close(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._close()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._commit(batch)
            except Exception as exc:  # keep the writer alive; every caller hears why
                log.exception("group commit failed")
                _settle([(sink, exc) for _, sink in batch])
            if stop:
                return

    def _commit(self, batch: list[Item], retried: bool = False,
                reconnected: bool = False) -> None:
        try:
            conn = self._connection()
            with self.factory(bind=conn) as session, session.begin():
                results = submit_jobs(session=session, requests=[r for r, _ in batch],
                                      shapes=self.shapes,
                                      now=datetime.fromtimestamp(self.clock.now(), UTC))
        except DBAPIError as exc:
            if exc.connection_invalidated and not reconnected:
                # The kept connection was dropped (a database restart): once more on a new one.
                self._commit(batch, retried=retried, reconnected=True)
                return
            # A concurrent writer (another process) stored the same idempotency key first, or the
            # database refused a value or the batch: retry one by one, so one bad row fails
            # alone.
            if len(batch) > 1:
                for one in batch:
                    self._commit([one])
                return
            if isinstance(exc, IntegrityError) and not retried:
                self._commit(batch, retried=True)  # the key now exists: the retry returns it
                return
            err: BaseException
            if isinstance(exc, IntegrityError):
                err = Conflict("the submission conflicts with stored data")
            elif isinstance(exc, DataError):
                err = InvalidInput("a value of the submission cannot be stored")
            else:
                err = exc  # unavailable database: the edge answers 503
            log.info("submission refused by the database: %s", exc)
            _settle([(batch[0][1], err)])
            return
        self.batches += 1
        self.submissions += len(batch)
        _settle([(sink, r.error if r.error is not None else (r.job, r.created))  # type: ignore[misc]
                 for (_, sink), r in zip(batch, results, strict=True)])
