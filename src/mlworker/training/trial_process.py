"""A killable child process that fits the folds of a search, so no trial outlives its deadline.

A Python thread cannot be stopped in the middle of a scikit-learn ``fit``; a process can. Each
search keeps one small child process (started from the ``forkserver``, which already imported
scikit-learn and the boosting libraries, so a start costs tens of milliseconds instead of
seconds), sends it the prepared data once, then one request per fold: the algorithm, its
parameters and the fold number. The answer is the fold's score. When the deadline passes, the
search is cancelled, or the child dies, the parent kills it (``SIGKILL``) and starts a fresh one
for the next trial if time remains.

The fork server is a clean interpreter: it never ran an OpenMP region, so forking from it is safe
for LightGBM and XGBoost, unlike forking the job process itself.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from mlworker.training.algorithms import Algorithm
from mlworker.training.features import ColumnPlan
from mlworker.training.model import fit_model
from mlworker.training.scoring import SCORERS
from mlworker.training.target import Target

#: Modules the fork server imports once, so trial processes start with them loaded.
PRELOAD = (
    "mlworker.training.trial_process",
    "mlworker.training.trainer",
    "sklearn.ensemble",
    "sklearn.svm",
    "lightgbm",
    "xgboost",
)
_POLL_SECONDS = 0.25
_MAIN_LOCK = threading.Lock()
_data: FoldData | None = None


class TrialStopped(Exception):  # noqa: N818 - a signal, caught by the search
    """The child was killed: its time was up."""


class TrialCrashed(Exception):  # noqa: N818
    """The child process died on its own (out of memory, a crash in native code)."""


class TrialError(Exception):
    """The fit raised; the message names the exception."""


@dataclass(frozen=True)
class FoldData:
    """What the child needs to fit any fold: the prepared table and the fold indices."""

    target: Target
    plan: tuple[ColumnPlan, ...]
    features: pd.DataFrame
    codes: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    scoring: str
    random_state: int
    n_jobs: int


@dataclass(frozen=True)
class FoldScore:
    """The score of one fold, the trees early stopping kept, and the child's compute time."""

    score: float
    best_iteration: int | None
    seconds: float


@dataclass
class IsolationStats:
    """What running trials in a child process cost, for the result and the benchmark.

    Attributes
    ----------
    starts
        Child processes started (one, plus one after each kill or crash).
    start_seconds
        Time from starting a child to it holding the data, summed.
    calls
        Requests answered.
    overhead_seconds
        Round-trip time minus the child's own compute time, summed over requests.
    """

    starts: int = 0
    start_seconds: float = 0.0
    calls: int = 0
    overhead_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """JSON form."""
        per_call = self.overhead_seconds / self.calls if self.calls else 0.0
        return {
            "process_starts": self.starts,
            "start_seconds": round(self.start_seconds, 4),
            "requests": self.calls,
            "overhead_seconds": round(self.overhead_seconds, 4),
            "overhead_ms_per_request": round(1000 * per_call, 3),
        }


def evaluate_fold(
    data: FoldData, algorithm: Algorithm, params: Mapping[str, Any], fold: int
) -> FoldScore:
    """Fit ``algorithm`` on fold ``fold``'s training rows and score its validation rows."""
    started = time.perf_counter()
    train, valid = data.folds[fold]
    model = fit_model(
        algorithm,
        params,
        target=data.target,
        plan=data.plan,
        features=data.features.iloc[train],
        codes=data.codes[train],
        random_state=data.random_state,
        n_jobs=data.n_jobs,
        early_stopping=True,
    )
    predicted, proba = model.predict_codes(data.features.iloc[valid])
    score = SCORERS[data.scoring](data.codes[valid], predicted, proba)
    if not np.isfinite(score):
        raise ValueError(f"{data.scoring} is undefined on fold {fold} (a single class?)")
    best = model.extra.get("best_iteration")
    return FoldScore(score, None if best is None else int(best), time.perf_counter() - started)


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Start children without the parent's ``__main__``.

    multiprocessing makes every child re-run the parent's main script (pytest, uvicorn, the
    CLI), which costs seconds per trial process; the child needs nothing from it.
    """
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always started by a parent
        return
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(3)


def _serve(conn: Connection) -> None:
    """Child main loop: hold the data, answer fold and call requests until told to stop."""
    global _data
    threading.Thread(target=_exit_with_parent, daemon=True, name="parent-watch").start()
    warnings.simplefilter("ignore")  # convergence chatter belongs to no log
    started = time.perf_counter()
    _data, n_jobs = conn.recv()
    # OpenMP and BLAS pools (HistGradientBoosting, numpy) get the threads the job may use,
    # not every core of the machine.
    _limits = threadpool_limits(limits=n_jobs)  # held for the life of the process
    conn.send(("ready", time.perf_counter() - started))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, payload = request
        began = time.perf_counter()
        try:
            if kind == "fold":
                assert _data is not None
                answer: Any = evaluate_fold(_data, *payload)
            else:
                function, args, kwargs = payload
                answer = function(*args, **kwargs)
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}", time.perf_counter() - began))
            continue
        conn.send(("ok", answer, time.perf_counter() - began))


@dataclass
class TrialProcess:
    """Parent-side handle on the child that fits folds.

    Parameters
    ----------
    data
        Sent once to every child this handle starts (``None`` for :meth:`call` only).
    n_jobs
        Threads the child's OpenMP and BLAS pools may use.
    tick
        Called about every quarter second while waiting (progress, cancellation); an exception
        it raises propagates after the child is killed.
    """

    data: FoldData | None
    n_jobs: int = 1
    tick: Callable[[], None] = lambda: None
    stats: IsolationStats = field(default_factory=IsolationStats)
    _process: BaseProcess | None = None
    _conn: Connection | None = None
    _ready: bool = False
    _started_at: float = 0.0

    def start(self) -> None:
        """Start a child (from the fork server) and send it the data."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(target=_serve, args=(child_end,), daemon=True, name="trial")
        self._started_at = time.perf_counter()
        with _main_hidden():
            process.start()
        child_end.close()
        self._process, self._conn, self._ready = process, parent_end, False
        self.stats.starts += 1
        parent_end.send((self.data, self.n_jobs))

    def fold(
        self, algorithm: Algorithm, params: Mapping[str, Any], fold: int, *, until: float | None
    ) -> FoldScore:
        """Score one fold; raise :class:`TrialStopped` once ``until`` (monotonic) passes."""
        answer: FoldScore = self._request(("fold", (algorithm, dict(params), fold)), until)
        return answer

    def call(
        self, function: Callable[..., Any], *args: Any, until: float | None, **kwargs: Any
    ) -> Any:
        """Run a module-level ``function`` in the child; same stopping rules as :meth:`fold`."""
        return self._request(("call", (function, args, kwargs)), until)

    def close(self) -> None:
        """Stop the child: politely if idle, by ``SIGKILL`` otherwise."""
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if process is None or conn is None:
            return
        try:
            conn.send(None)
        except OSError:
            pass
        process.join(timeout=0.5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
        conn.close()

    def kill(self) -> None:
        """Kill the child at once (its result is no longer wanted)."""
        if self._process is not None:
            self._process.kill()
        self.close()

    # --- internals -----------------------------------------------------------------------------
    def _request(self, request: tuple[str, Any], until: float | None) -> Any:
        if self._process is None or not self._process.is_alive():
            self.close()
            self.start()
        assert self._conn is not None
        if not self._ready:
            self._wait(until)
            self._receive()
            self.stats.start_seconds += time.perf_counter() - self._started_at
            self._ready = True
        began = time.perf_counter()
        self._conn.send(request)
        self._wait(until)
        status, answer, seconds = self._receive()
        self.stats.calls += 1
        self.stats.overhead_seconds += max(0.0, time.perf_counter() - began - seconds)
        if status == "error":
            raise TrialError(answer)
        return answer

    def _receive(self) -> Any:
        assert self._conn is not None
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            message = self._death()
            self.kill()
            raise TrialCrashed(message) from exc

    def _wait(self, until: float | None) -> None:
        assert self._conn is not None and self._process is not None
        while True:
            wait = _POLL_SECONDS
            if until is not None:
                wait = min(wait, max(0.0, until - time.monotonic()))
            if self._conn.poll(wait):
                return
            if not self._process.is_alive():
                message = self._death()
                self.kill()
                raise TrialCrashed(message)
            if until is not None and time.monotonic() >= until:
                self.kill()
                raise TrialStopped("stopped at its time limit")
            try:
                self.tick()
            except BaseException:
                self.kill()
                raise

    def _death(self) -> str:
        code = None
        if self._process is not None:
            self._process.join(timeout=1)
            code = self._process.exitcode
        return f"the trial process died (exit code {code}); it may have run out of memory"
