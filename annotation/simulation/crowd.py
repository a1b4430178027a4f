"""A simulated crowd: concurrent annotators that use the task API over HTTP, as people do.

Each annotator is a thread with its own `requests.Session` and API token. It loops:
GET /api/v1/tasks/next/, wait a sampled think time, answer as its `NoisyOracle` decides,
POST /api/v1/tasks/<id>/answer/. It stops when the server returns 204 (nothing left for it),
when the crowd has given `max_answers` answers, or after `max_consecutive_errors` tasks in a
row that it failed to answer.

Connection errors, timeouts, 429 and 5xx responses are retried with exponential backoff. A
retried answer reuses its `client_token`, so the server stores it once. Other 4xx responses
are not retried. Such a response to a next-task request stops that annotator, because it
means a bad token, a blocked account, an unknown dataset or a retired condition. Such a
response to an answer counts as an error, and the annotator goes on.

Seeding: `seed` fixes every annotator's noise profile, think-time speed and random streams.
Which tasks an annotator is served still depends on thread timing, so two runs with one
seed give the same kinds of answers but not the same judgements.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from annotation.simulation.oracles import SKIP, TIE, AnnotatorProfile, NoiseModel, NoisyOracle, Oracle, OracleError

logger = logging.getLogger(__name__)

# Spread (sigma of the log) of each annotator's speed factor and of each think time around it.
SPEED_LOG_SIGMA = 0.3
THINK_TIME_LOG_SIGMA = 0.5
# Backoff before retry n (from 0) is min(BACKOFF_BASE_S * 2**n, BACKOFF_MAX_S).
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
PROGRESS_LOG_INTERVAL_S = 10.0
MAX_ERROR_SAMPLES = 20


@dataclass
class AnnotatorReport:
    """Counts of one simulated annotator's answers and errors, and the reason it stopped."""

    index: int
    profile: AnnotatorProfile
    answers: int = 0
    ties: int = 0
    skips: int = 0
    errors: int = 0
    # Answers (not skips) to questions where the noise-free oracle picked a candidate,
    # and how many of those named the same candidate.
    decided: int = 0
    agreed: int = 0
    stop_reason: str = "not started"


@dataclass
class CrowdReport:
    """Totals of one crowd run. `answers` counts every stored answer, ties and skips included."""

    annotators: list[AnnotatorReport]
    elapsed_s: float
    error_samples: list[str] = field(default_factory=list)

    @property
    def answers(self) -> int:
        return sum(annotator.answers for annotator in self.annotators)

    @property
    def ties(self) -> int:
        return sum(annotator.ties for annotator in self.annotators)

    @property
    def skips(self) -> int:
        return sum(annotator.skips for annotator in self.annotators)

    @property
    def errors(self) -> int:
        return sum(annotator.errors for annotator in self.annotators)

    @property
    def answers_per_second(self) -> float:
        return self.answers / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def agreement(self) -> float | None:
        """Share of answers that matched the noise-free oracle where it picked a candidate; None without any."""
        decided = sum(annotator.decided for annotator in self.annotators)
        if decided == 0:
            return None
        return sum(annotator.agreed for annotator in self.annotators) / decided

    @property
    def queue_exhausted(self) -> bool:
        """Whether every annotator stopped because the server had no task left for them."""
        return all(annotator.stop_reason == STOP_NO_TASK for annotator in self.annotators)

    def summary_lines(self) -> list[str]:
        agreement = "n/a (the oracle decided no answered question)"
        if self.agreement is not None:
            decided = sum(annotator.decided for annotator in self.annotators)
            agreement = f"{self.agreement:.1%} of {decided} answers where the oracle picked a candidate"
        lines = [
            f"annotators: {len(self.annotators)} "
            f"({sum(annotator.profile.careless for annotator in self.annotators)} careless)",
            f"answers:    {self.answers} (ties {self.ties}, skips {self.skips})",
            f"errors:     {self.errors}",
            f"elapsed:    {self.elapsed_s:.1f} s, {self.answers_per_second:.1f} answers/s",
            f"agreement:  {agreement}",
        ]
        reasons: dict[str, int] = {}
        for annotator in self.annotators:
            reasons[annotator.stop_reason] = reasons.get(annotator.stop_reason, 0) + 1
        lines.append("stopped:    " + ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items())))
        lines.extend(f"error:      {sample}" for sample in self.error_samples)
        return lines


STOP_NO_TASK = "no task left"
STOP_LIMIT = "answer limit reached"
STOP_INTERRUPTED = "interrupted"
STOP_ERRORS = "too many errors"
STOP_REJECTED = "rejected by the server"


class _RequestFailed(Exception):
    """A request that failed after all retries."""


class _AnnotatorStopped(Exception):
    """An error after which this annotator cannot go on."""


class _AnswerBudget:
    """Counter of answers against the limit. A slot is reserved before each task is requested."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        with self._lock:
            if self.limit is not None and self._used >= self.limit:
                return False
            self._used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._used -= 1


class _Crowd:
    def __init__(
        self,
        *,
        base_url: str,
        dataset_slug: str,
        condition_slug: str | None,
        tokens: Sequence[str],
        oracle: Oracle,
        noise: NoiseModel,
        max_answers: int | None,
        think_time_ms: float,
        seed: int,
        request_timeout_s: float,
        max_retries: int,
        max_consecutive_errors: int,
        stop_event: threading.Event,
    ):
        self.base_url = base_url.rstrip("/")
        self.dataset_slug = dataset_slug
        self.condition_slug = condition_slug
        self.tokens = list(tokens)
        self.oracle = oracle
        self.think_time_ms = think_time_ms
        self.seed = seed
        self.request_timeout_s = request_timeout_s
        self.max_retries = max_retries
        self.max_consecutive_errors = max_consecutive_errors
        self.stop = stop_event
        self.budget = _AnswerBudget(max_answers)

        profiles = noise.draw_profiles(len(self.tokens), random.Random(seed))
        self.reports = [AnnotatorReport(index=index, profile=profile) for index, profile in enumerate(profiles)]
        self.error_samples: list[str] = []
        self._lock = threading.Lock()
        self.progress_bar: tqdm | None = None

    # Bookkeeping shared by the threads.

    def _record_error(self, report: AnnotatorReport, message: str) -> None:
        with self._lock:
            report.errors += 1
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                self.error_samples.append(f"annotator {report.index}: {message}")
        logger.error("simulated annotator %s: %s", report.index, message)

    def _record_answer(self, report: AnnotatorReport, choice: object, truth: object) -> None:
        with self._lock:
            report.answers += 1
            if choice == TIE:
                report.ties += 1
            if choice == SKIP:
                report.skips += 1
            elif truth != TIE:
                report.decided += 1
                report.agreed += int(choice == truth)
            if self.progress_bar is not None:
                self.progress_bar.update(1)

    def answers_so_far(self) -> int:
        with self._lock:
            return sum(report.answers for report in self.reports)

    # HTTP.

    def _request(self, session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
        """Send the request, retrying connection errors, timeouts, 429 and 5xx with backoff."""
        for attempt in range(self.max_retries + 1):
            try:
                response = session.request(method, url, timeout=self.request_timeout_s, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                problem = f"HTTP {response.status_code}: {response.text[:200]}"

            if attempt == self.max_retries or self.stop.is_set():
                raise _RequestFailed(f"{method} {url} failed after {attempt + 1} attempts: {problem}")
            delay = min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)
            logger.warning(
                "%s %s failed (%s); retry %d of %d in %.1f s",
                method, url, problem, attempt + 1, self.max_retries, delay,
            )
            self.stop.wait(delay)
        raise AssertionError("unreachable")

    def _next_task(self, session: requests.Session) -> dict | None:
        params = {"dataset": self.dataset_slug}
        if self.condition_slug:
            params["condition"] = self.condition_slug
        response = self._request(session, "GET", f"{self.base_url}/api/v1/tasks/next/", params=params)
        if response.status_code == 204:
            return None
        if response.status_code in (401, 403):
            raise _AnnotatorStopped(
                f"GET /api/v1/tasks/next/ returned HTTP {response.status_code}: {response.text[:300]}; "
                f"check the annotator's API token and that the account is not blocked"
            )
        if response.status_code != 200:
            raise _AnnotatorStopped(
                f"GET /api/v1/tasks/next/ returned HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            task = response.json()
            candidates = task["candidates"]
            if len(candidates) != 2:
                raise ValueError(f"expected 2 candidates, got {len(candidates)}")
            task["id"] = int(task["id"])
            task["anchor"]["id"] = int(task["anchor"]["id"])
            task["condition"]["slug"] = str(task["condition"]["slug"])
            for candidate in candidates:
                candidate["id"] = int(candidate["id"])
        except (ValueError, KeyError, TypeError) as error:
            raise _AnnotatorStopped(
                f"GET /api/v1/tasks/next/ returned a task in an unexpected shape ({error}): {response.text[:300]}"
            ) from None
        return task

    def _post_answer(self, session: requests.Session, task_id: int, body: dict) -> str | None:
        """Send the answer. Return None when the server stored it, else the reason it failed."""
        url = f"{self.base_url}/api/v1/tasks/{task_id}/answer/"
        response = self._request(session, "POST", url, json=body)
        if response.status_code in (200, 201):
            return None
        return f"POST {url} returned HTTP {response.status_code}: {response.text[:300]}"

    # One annotator.

    def _think_seconds(self, rng: random.Random, speed: float) -> float:
        if self.think_time_ms <= 0:
            return 0.0
        spread = rng.lognormvariate(-(THINK_TIME_LOG_SIGMA**2) / 2, THINK_TIME_LOG_SIGMA)
        return self.think_time_ms * speed * spread / 1000.0

    def annotate(self, index: int) -> None:
        report = self.reports[index]
        report.stop_reason = "running"
        rng = random.Random(f"{self.seed}/{index}")
        speed = rng.lognormvariate(-(SPEED_LOG_SIGMA**2) / 2, SPEED_LOG_SIGMA)
        annotator = NoisyOracle(self.oracle, report.profile)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.tokens[index]}"
        consecutive_errors = 0

        try:
            while True:
                if self.stop.is_set():
                    report.stop_reason = STOP_INTERRUPTED
                    return
                if consecutive_errors >= self.max_consecutive_errors:
                    report.stop_reason = STOP_ERRORS
                    return
                if not self.budget.reserve():
                    report.stop_reason = STOP_LIMIT
                    return

                stored = False
                try:
                    stored = self._annotate_one(session, report, annotator, rng, speed)
                except _RequestFailed as error:
                    self._record_error(report, str(error))
                except _AnnotatorStopped as error:
                    self._record_error(report, str(error))
                    report.stop_reason = STOP_REJECTED
                    self.budget.release()
                    return
                if stored is None:
                    self.budget.release()
                    report.stop_reason = STOP_NO_TASK
                    return
                if stored:
                    consecutive_errors = 0
                else:
                    consecutive_errors += 1
                    self.budget.release()
        except Exception:
            # A bug here must not leave the run hanging silently: log it and stop this annotator.
            logger.exception("simulated annotator %s failed", index)
            report.stop_reason = "crashed"
            self.budget.release()
        finally:
            session.close()

    def _annotate_one(
        self,
        session: requests.Session,
        report: AnnotatorReport,
        annotator: NoisyOracle,
        rng: random.Random,
        speed: float,
    ) -> bool | None:
        """Take and answer one task: True when stored, False when it failed, None when none is left."""
        task = self._next_task(session)
        if task is None:
            return None
        shown_at = time.monotonic()
        condition_slug = task["condition"]["slug"]
        anchor_id = task["anchor"]["id"]
        left_id, right_id = (candidate["id"] for candidate in task["candidates"])
        try:
            choice = annotator.answer(condition_slug, anchor_id, left_id, right_id, rng)
            truth = self.oracle.answer(condition_slug, anchor_id, left_id, right_id, rng)
        except OracleError as error:
            raise _AnnotatorStopped(f"cannot answer task {task['id']}: {error}") from None

        if self.stop.wait(self._think_seconds(rng, speed)):
            return False
        body = {
            "choice": choice,
            "client_token": str(uuid.uuid4()),
            "response_ms": int((time.monotonic() - shown_at) * 1000),
        }
        problem = self._post_answer(session, task["id"], body)
        if problem is not None:
            self._record_error(report, problem)
            return False
        self._record_answer(report, choice, truth)
        return True


def run_crowd(
    *,
    base_url: str,
    dataset_slug: str,
    tokens: Sequence[str],
    oracle: Oracle,
    noise: NoiseModel | None = None,
    max_answers: int | None = None,
    condition_slug: str | None = None,
    think_time_ms: float = 50.0,
    seed: int = 0,
    progress: bool | None = None,
    request_timeout_s: float = 30.0,
    max_retries: int = 5,
    max_consecutive_errors: int = 5,
    stop_event: threading.Event | None = None,
) -> CrowdReport:
    """Run one annotator thread per token against the server until the work runs out.

    `max_answers` caps the answers of the whole crowd, None for no cap. `think_time_ms` is
    the mean pause between seeing a task and answering it, 0 for none. `progress` shows a
    tqdm bar, None for one only when stderr is a terminal; without a bar, progress is logged
    every 10 s. Setting `stop_event` (or Ctrl-C) makes the annotators stop after their
    current request.
    """
    if not tokens:
        raise ValueError("run_crowd needs at least one annotator token")
    if max_answers is not None and max_answers < 0:
        raise ValueError(f"max_answers must be 0 or more, or None for no limit; got {max_answers}")
    if think_time_ms < 0:
        raise ValueError(f"think_time_ms must be 0 or more, got {think_time_ms}")

    crowd = _Crowd(
        base_url=base_url,
        dataset_slug=dataset_slug,
        condition_slug=condition_slug,
        tokens=tokens,
        oracle=oracle,
        noise=noise or NoiseModel(),
        max_answers=max_answers,
        think_time_ms=think_time_ms,
        seed=seed,
        request_timeout_s=request_timeout_s,
        max_retries=max_retries,
        max_consecutive_errors=max_consecutive_errors,
        stop_event=stop_event or threading.Event(),
    )
    logger.info(
        "starting %d simulated annotators on dataset %s at %s (answer limit %s)",
        len(tokens), dataset_slug, crowd.base_url, "none" if max_answers is None else max_answers,
    )
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        crowd.progress_bar = tqdm(total=max_answers, unit="answer", desc=f"crowd on {dataset_slug}")
    threads = [
        threading.Thread(target=crowd.annotate, args=(index,), name=f"sim-annotator-{index}", daemon=True)
        for index in range(len(tokens))
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        if progress:
            # Log records are written above the bar instead of through it.
            with logging_redirect_tqdm():
                _wait_for(threads, crowd, started, log_progress=False)
        else:
            _wait_for(threads, crowd, started, log_progress=True)
    except KeyboardInterrupt:
        logger.warning("interrupted; waiting for the simulated annotators to finish their current request")
        crowd.stop.set()
        for thread in threads:
            thread.join()
    finally:
        if crowd.progress_bar is not None:
            crowd.progress_bar.close()

    report = CrowdReport(
        annotators=crowd.reports, elapsed_s=time.monotonic() - started, error_samples=crowd.error_samples
    )
    logger.info(
        "simulated crowd stopped after %.1f s: %d answers, %d errors", report.elapsed_s, report.answers, report.errors
    )
    return report


def _wait_for(threads: list[threading.Thread], crowd: _Crowd, started: float, *, log_progress: bool) -> None:
    next_log = started + PROGRESS_LOG_INTERVAL_S
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)
            if log_progress and time.monotonic() >= next_log:
                answers = crowd.answers_so_far()
                elapsed = time.monotonic() - started
                logger.info("simulated crowd: %d answers in %.0f s (%.1f/s)", answers, elapsed, answers / elapsed)
                next_log += PROGRESS_LOG_INTERVAL_S
