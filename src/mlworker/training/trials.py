"""The trial loop: ask Optuna, fit the folds in the trial process, tell Optuna.

Run by the leader and by every extra worker of a study alike; each stops when the study holds
its trial budget, at the deadline, or when the leader closes the study.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from mlworker.training import auto
from mlworker.training.algorithms import Algorithm
from mlworker.training.search import Search
from mlworker.training.space import sample
from mlworker.training.trial_process import (
    IsolationStats,
    TrialCrashed,
    TrialError,
    TrialProcess,
    TrialStopped,
)

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass(frozen=True)
class Clock:
    """A search's time budget: when it started and when it must end (``time.monotonic``)."""

    started: float
    deadline: float | None = None

    def remaining(self, reserve: float = 0.0) -> float | None:
        """Seconds left before ``deadline - reserve`` (``None`` without a deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - reserve - time.monotonic()


@dataclass
class RunStats:
    """What one worker's :func:`run_trials` did."""

    trials: int = 0
    stopped: str = "n_trials"
    isolation: IsolationStats = field(default_factory=IsolationStats)


@dataclass
class _Shown:
    """The progress last shown, repeated while a fold runs (the callback checks cancellation)."""

    now: tuple[float, str] = (0.0, "starting the search")


#: User attribute of a trial created past the budget (another worker took the last slot).
DISCARDED = "discarded"


class _Stop(Exception):  # noqa: N818 - control flow inside run_trials
    """No further trial may start: ``args[0]`` says why (``timeout``, ``n_trials``)."""


def run_trials(
    search: Search,
    study: optuna.Study,
    *,
    n_trials: int,
    clock: Clock,
    n_jobs: int = 1,
    progress: Progress = _no_progress,
    reserve: Callable[[Sequence[FrozenTrial]], float] = lambda trials: 0.0,
    watch_closed: bool = False,
) -> RunStats:
    """Run trials until the study holds ``n_trials``, time is up, or the study is closed.

    Parameters
    ----------
    search
        The prepared search.
    study
        The study, created or attached.
    n_trials
        Trial budget of the whole study (all workers together).
    clock
        Start and deadline; trials are killed at ``deadline - reserve(study)``.
    n_jobs
        Threads per estimator.
    progress
        ``(fraction, message)`` callback; it may raise to stop the search (cancellation).
    reserve
        Seconds to keep free at the end (to train the best model), given the trials so far.
    watch_closed
        Stop when the study's ``closed`` attribute is set (extra workers).
    """
    stats = RunStats()
    shown = _Shown()
    process = TrialProcess(search.fold_data(n_jobs), n_jobs, tick=lambda: progress(*shown.now))
    stats.isolation = process.stats
    try:
        while True:
            trials = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.state != TrialState.WAITING and not t.user_attrs.get(DISCARDED)
            ]
            done = sum(1 for t in trials if t.state.is_finished())
            shown.now = (_fraction(done, n_trials, clock), _message(done, n_trials, trials))
            progress(*shown.now)
            remaining = clock.remaining(reserve(trials))
            if len(trials) >= n_trials:
                break
            if remaining is not None and remaining <= 0:
                stats.stopped = "timeout"
                break
            if watch_closed and study.user_attrs.get("closed"):
                stats.stopped = "closed"
                break
            stats.trials += 1
            try:
                _run_trial(search, study, process, trials, remaining, n_trials)
            except _Stop as stop:
                stats.stopped = str(stop.args[0])
                break
    finally:
        process.close()
    return stats


def _fraction(done: int, n_trials: int, clock: Clock) -> float:
    fraction = done / n_trials
    if clock.deadline is not None:
        budget = max(clock.deadline - clock.started, 1e-9)
        fraction = max(fraction, (time.monotonic() - clock.started) / budget)
    return min(fraction, 1.0)


def _message(done: int, n_trials: int, trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    values = [t.value for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    best = f" · best {max(values):.4g}" if values else ""
    return f"trial {min(done + 1, n_trials)}/{n_trials}{best}"


def _run_trial(
    search: Search,
    study: optuna.Study,
    process: TrialProcess,
    trials: Sequence[optuna.trial.FrozenTrial],
    remaining: float | None,
    n_trials: int,
) -> None:
    trial = study.ask()
    if trial.number >= n_trials:
        # Numbers count every trial the study created (queued warm starts are the first ones,
        # never more than the budget): another worker took the last slot since we counted.
        # Optuna cannot delete a trial, so it is closed unrun and left out of every report.
        trial.set_user_attr(DISCARDED, True)
        study.tell(trial, state=TrialState.FAIL)
        raise _Stop("n_trials")
    told = False
    until = share = None
    params: dict[str, Any] = {}
    try:
        name = trial.user_attrs.get("algorithm")
        if name is None:
            algorithm = auto.choose(trials, search.candidates, remaining=remaining)
            trial.set_user_attr("algorithm", algorithm.name)
        else:
            algorithm = search.algorithm(str(name))
        params = sample(search.spaces[algorithm.name], trial, prefix=search.prefix(algorithm))
        now = time.monotonic()
        until = share = None if remaining is None else now + remaining
        if search.auto and until is not None and remaining is not None:
            # One trial may not eat the budget: a third of the time left, or four times what
            # this algorithm's trials took so far, whichever is longer.
            typical = auto.records(trials, [algorithm.name])[algorithm.name].mean_seconds
            share = min(now + max(auto.AFFORDABLE_SHARE * remaining, 4 * typical), until)
        value, reported = _cross_validate(search, trial, process, algorithm, params, share)
        trial.set_user_attr("params", reported)
        study.tell(trial, value)
        told = True
    except optuna.TrialPruned:
        trial.set_user_attr("params", params)
        study.tell(trial, state=TrialState.PRUNED)
        told = True
    except TrialStopped as exc:
        at_deadline = share is not None and until is not None and share >= until
        reason = "stopped at the deadline" if at_deadline else "used its share of the time left"
        trial.set_user_attr("params", params)
        trial.set_user_attr("failure", f"{reason} ({exc})")
        study.tell(trial, state=TrialState.FAIL)
        told = True
        if at_deadline:
            raise _Stop("timeout") from exc
    except (TrialError, TrialCrashed) as exc:
        trial.set_user_attr("params", params)
        trial.set_user_attr("failure", str(exc)[:2000])
        study.tell(trial, state=TrialState.FAIL)
        told = True
    finally:
        if not told:  # cancelled, or the storage failed: never leave a trial running
            trial.set_user_attr("failure", "interrupted")
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def _cross_validate(
    search: Search,
    trial: Trial,
    process: TrialProcess,
    algorithm: Algorithm,
    params: dict[str, Any],
    until: float | None,
) -> tuple[float, dict[str, Any]]:
    scores: list[float] = []
    iterations: list[int] = []
    seconds: list[float] = []
    warm = bool(trial.user_attrs.get("warm_start"))
    for fold in range(search.cv_folds):
        result = process.fold(algorithm, params, fold, until=until)
        scores.append(result.score)
        seconds.append(result.seconds)
        if result.best_iteration is not None:
            iterations.append(result.best_iteration)
        trial.report(float(np.mean(scores)), fold)
        if not warm and fold < search.cv_folds - 1 and trial.should_prune():
            trial.set_user_attr("fit_seconds", float(np.mean(seconds)))
            raise optuna.TrialPruned(f"pruned after fold {fold + 1}")
    reported = dict(params)
    if iterations:
        reported["n_estimators"] = max(1, int(round(float(np.mean(iterations)))))
    trial.set_user_attr("fit_seconds", float(np.mean(seconds)))
    return float(np.mean(scores)), reported
