"""Group commit for job submissions.

One writer thread takes every submission that arrived while the previous transaction was
committing and stores them together in one transaction; each caller is answered only after that
commit returns. Many concurrent clients then cost one fsync per batch instead of one each, and
SQLite (one writer at a time) never sees lock contention from submissions.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from aicc.errors import AiccError, Conflict
from aicc.store.db import transaction
from aicc.workload.jobs import NodeShapes, SubmitRequest, submit_jobs

log = logging.getLogger("aicc.api.submitter")

# What a caller gets back: (job as a dict, created) or the error that refused it.
Outcome = tuple[dict[str, Any], bool]


class GroupCommitter:
    def __init__(self, factory: sessionmaker[Session], shapes: NodeShapes | None = None,
                 max_batch: int = 512) -> None:
        self.factory = factory
        self.shapes = shapes or NodeShapes()
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[SubmitRequest, Future[Outcome]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.submissions = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="aicc-group-commit",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def submit(self, request: SubmitRequest) -> Future[Outcome]:
        """Queue one submission; the future resolves after its transaction has committed."""
        if self._thread is None:
            self.start()
        fut: Future[Outcome] = Future()
        self._queue.put((request, fut))
        return fut

    def _run(self) -> None:
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
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            if stop:
                return

    def _commit(self, batch: list[tuple[SubmitRequest, Future[Outcome]]]) -> None:
        try:
            with transaction(self.factory) as session:
                results = submit_jobs(session=session, requests=[r for r, _ in batch],
                                      shapes=self.shapes)
                outcomes: list[Outcome | AiccError] = [
                    r.error if r.error is not None else (r.job, r.created)  # type: ignore[misc]
                    for r in results]
        except (IntegrityError, OperationalError) as exc:
            # A concurrent writer (another process) stored the same idempotency key first, or the
            # database refused the batch: retry one by one, so one bad row fails alone.
            if len(batch) > 1:
                for one in batch:
                    self._commit([one])
                return
            _, fut = batch[0]
            if isinstance(exc, IntegrityError) and not getattr(fut, "_aicc_retried", False):
                fut._aicc_retried = True  # type: ignore[attr-defined]
                self._commit(batch)  # the key now exists: the retry finds and returns it
                return
            fut.set_exception(Conflict("the submission conflicts with stored data")
                              if isinstance(exc, IntegrityError) else exc)
            return
        self.batches += 1
        self.submissions += len(batch)
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, AiccError):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
