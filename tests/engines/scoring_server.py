"""A real HTTP scoring endpoint on 127.0.0.1 for tests of the ``external_endpoint`` engine.

The server is a :class:`http.server.ThreadingHTTPServer` on a free port, served from a
background thread; it answers POSTs the way a model endpoint does and records every request.

The server listens on loopback, which the egress policy denies by default: engines that call it
are built with :data:`LOOPBACK_EGRESS`, the policy an operator gets with
``MLWORKER_EGRESS_ALLOW=127.0.0.1/32,::1/128``.

Usage::

    with ScoringServer() as server:                      # batch mode, scores at "scores"
        engine = build_engine(
            "external_endpoint", {"endpointUrl": server.url}, egress=LOOPBACK_EGRESS
        )
        scores = engine.score(candidates)
        assert scores.tolist() == server.expected_scores(candidates)
        server.configure(delay_s=1.0)                    # change behaviour at any time
        server.fail_next(2, status=503)                  # next two requests fail
        server.requests[-1].header("x-api-key")          # what reached the server

or the ``scoring_server`` pytest fixture (import it into the test module or a conftest).

Behaviour (constructor keywords, or :meth:`ScoringServer.configure`; see :class:`Behaviour`):

``mode``
    ``"batch"``: the body holds an array of instances (under ``instances_key``, or the body
    itself when that is ``None``) and the answer holds one score per instance.
    ``"single"``: the body is one instance (under ``single_key`` when set).
``scores_path`` / ``score_item_path``
    Where the answer puts the scores. Dot paths; a bracketed index or a bare-digit segment
    builds an array (padded with ``null``), any other segment an object. In batch mode the
    array of scores goes at ``scores_path``; with ``score_item_path`` each item is an object
    (or array) holding its score there: ``scores_path="predictions", score_item_path="score"``
    answers ``{"predictions": [{"score": 0.2}, ...]}``. In single mode the score goes at
    ``scores_path`` (``"predictions[0].score"`` → ``{"predictions": [{"score": 0.2}]}``).
``explanations_path`` / ``explainer``
    Put ``explainer(instance)`` there too (batch: an array, one per instance).
``model``
    ``instance -> score`` (any JSON value, so tests can answer 1.7 or ``"high"``);
    :func:`default_model` by default.
``delay_s``, ``drip_s``, ``status``, ``location``, ``raw_body``, ``extra_scores``
    Wait before answering (interrupted when the server stops); send the answer in 10 pieces
    with ``drip_s`` between them (a server that trickles); answer with another status (a
    JSON error body), with a ``Location`` header when set (a redirect); answer these exact
    bytes (``b"not json"``); add (or, negative, drop) scores in batch answers to get the
    length wrong.

Recorded: :attr:`ScoringServer.requests` (:class:`RecordedRequest`: method, path with query,
headers, raw body), :attr:`ScoringServer.request_count` and
:attr:`ScoringServer.accepted_connections` (TCP connections accepted, requests or not).

``host`` picks the loopback address to listen on (``"127.0.0.2"``, ``"::1"``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

import pandas as pd
import pytest

from mlworker.egress import EgressPolicy

Model = Callable[[Mapping[str, Any]], Any]

#: Loopback allow-listed, as an operator would for a model server on the same host.
LOOPBACK_ALLOW = "127.0.0.1/32,::1/128"
LOOPBACK_EGRESS = EgressPolicy.from_entries(LOOPBACK_ALLOW.split(","))


def default_model(instance: Mapping[str, Any]) -> float:
    """A deterministic score in ``[0.05, 0.95]`` from the instance's ids (6 decimals)."""
    key = f"{instance.get('customerId')}|{instance.get('offerId')}".encode()
    fraction = int(hashlib.sha256(key).hexdigest()[:8], 16) / 0xFFFFFFFF
    return round(0.05 + 0.9 * fraction, 6)


@dataclass(frozen=True)
class Behaviour:
    """How the server answers; see the module docstring."""

    mode: Literal["batch", "single"] = "batch"
    instances_key: str | None = "instances"
    single_key: str | None = None
    scores_path: str = "scores"
    score_item_path: str | None = None
    explanations_path: str | None = None
    explainer: Model | None = None
    model: Model = default_model
    delay_s: float = 0.0
    status: int = 200
    raw_body: bytes | None = None
    extra_scores: int = 0
    drip_s: float = 0.0
    location: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def nest(path: str, value: Any) -> Any:
    """Build the JSON document that holds ``value`` at dot ``path``.

    >>> nest("data.items.2.p", 0.3)
    {'data': {'items': [None, None, {'p': 0.3}]}}
    >>> nest("predictions[0].score", 0.2)
    {'predictions': [{'score': 0.2}]}
    """
    if path == "":
        return value
    segments: list[str | int] = []
    for part in path.split("."):
        name, indices = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part).groups()  # type: ignore[union-attr]
        if name:
            segments.append(int(name) if name.isdigit() else name)
        segments.extend(int(i) for i in re.findall(r"\[(\d+)\]", indices))
    for segment in reversed(segments):
        if isinstance(segment, int):
            value = [None] * segment + [value]
        else:
            value = {segment: value}
    return value


class ScoringServer:
    """A local scoring endpoint; a context manager that starts and stops it.

    Parameters
    ----------
    path
        The request path the endpoint lives at (:attr:`url` includes it).
    **behaviour
        Initial :class:`Behaviour` fields.
    """

    def __init__(
        self, *, path: str = "/invocations", host: str = "127.0.0.1", **behaviour: Any
    ) -> None:
        self.path = path
        self.host = host
        self._accepted = 0
        self._behaviour = Behaviour(**behaviour)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures_left = 0
        self._failure_status = 500
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Listen on a free port of :attr:`host` and serve from a daemon thread."""
        handler = _handler_for(self)
        self._httpd = _CountingServer(self, (self.host, 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers still pending are abandoned."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def accepted_connections(self) -> int:
        """TCP connections accepted so far (a refused call must leave this at zero)."""
        with self._lock:
            return self._accepted

    @property
    def url(self) -> str:
        """The endpoint URL to configure as ``endpointUrl``."""
        return f"{self.base_url}{self.path}"

    # -- behaviour --------------------------------------------------------------------------
    @property
    def behaviour(self) -> Behaviour:
        with self._lock:
            return self._behaviour

    def configure(self, **changes: Any) -> None:
        """Change :class:`Behaviour` fields for the following requests."""
        with self._lock:
            self._behaviour = dataclasses.replace(self._behaviour, **changes)

    def fail_next(self, count: int, *, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status`` and a JSON error body."""
        with self._lock:
            self._failures_left = count
            self._failure_status = status

    # -- recordings -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def expected_scores(self, candidates: pd.DataFrame | Sequence[Mapping[str, Any]]) -> list[Any]:
        """What the current model answers for each candidate (rows of a frame or mappings)."""
        rows: Sequence[Mapping[str, Any]] = (
            [{str(k): v for k, v in row.items()} for row in candidates.to_dict("records")]
            if isinstance(candidates, pd.DataFrame)
            else candidates
        )
        model = self.behaviour.model
        return [model(row) for row in rows]

    # -- answering (called from handler threads) --------------------------------------------
    def _answer(self, request: RecordedRequest) -> tuple[int, bytes]:
        with self._lock:
            self._requests.append(request)
            behaviour = self._behaviour
            failing = self._failures_left > 0
            if failing:
                self._failures_left -= 1
            failure_status = self._failure_status
        if behaviour.delay_s > 0 and self._stopping.wait(behaviour.delay_s):
            return 503, b'{"error": "server stopping"}'
        if failing:
            return failure_status, json.dumps({"error": "injected failure"}).encode()
        if behaviour.status >= 300:
            return behaviour.status, json.dumps({"error": "configured status"}).encode()
        if behaviour.raw_body is not None:
            return 200, behaviour.raw_body
        try:
            instances = _instances(request.json(), behaviour)
        except (ValueError, KeyError, TypeError) as error:
            return 400, json.dumps({"error": f"bad request: {error}"}).encode()
        return 200, json.dumps(_response(instances, behaviour)).encode()


class _CountingServer(ThreadingHTTPServer):
    """Counts every accepted connection; listens on IPv6 for an IPv6 host."""

    daemon_threads = True

    def __init__(self, owner: ScoringServer, address: tuple[str, int], handler: Any) -> None:
        self._owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self._owner._lock:
            self._owner._accepted += 1
        return accepted


def _instances(body: Any, behaviour: Behaviour) -> list[Mapping[str, Any]]:
    if behaviour.mode == "batch":
        items = body if behaviour.instances_key is None else body[behaviour.instances_key]
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise ValueError("expected an array of instance objects")
        return items
    instance = body if behaviour.single_key is None else body[behaviour.single_key]
    if not isinstance(instance, Mapping):
        raise ValueError("expected one instance object")
    return [instance]


def _response(instances: list[Mapping[str, Any]], behaviour: Behaviour) -> Any:
    scores = [behaviour.model(instance) for instance in instances]
    explanations = [
        behaviour.explainer(instance) if behaviour.explainer else None for instance in instances
    ]
    if behaviour.mode == "single":
        document = nest(behaviour.scores_path, scores[0])
        extra = explanations[0]
    else:
        if behaviour.extra_scores > 0:
            scores += [0.5] * behaviour.extra_scores
        elif behaviour.extra_scores < 0:
            scores = scores[: behaviour.extra_scores]
        items: list[Any] = scores
        if behaviour.score_item_path is not None:
            items = [nest(behaviour.score_item_path, score) for score in scores]
        document = nest(behaviour.scores_path, items)
        extra = explanations
    if behaviour.explanations_path is not None:
        document = _merge(document, nest(behaviour.explanations_path, extra))
    return document


def _merge(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        merged = dict(left)
        for key, value in right.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    return right


def _handler_for(server: ScoringServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints and httpx's pool use

        def do_POST(self) -> None:  # noqa: N802 - the http.server naming convention
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = RecordedRequest(
                method="POST",
                path=self.path,
                headers=tuple((str(k), str(v)) for k, v in self.headers.items()),
                body=body,
            )
            if self.path.split("?")[0] != server.path:
                self._send(404, b'{"error": "not found"}')
                return
            status, payload = server._answer(recorded)
            self._send(status, payload, drip_s=server.behaviour.drip_s)

        def _send(self, status: int, payload: bytes, *, drip_s: float = 0.0) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if server.behaviour.location is not None and 300 <= status < 400:
                    self.send_header("Location", server.behaviour.location)
                self.end_headers()
                if drip_s <= 0:
                    self.wfile.write(payload)
                    return
                step = max(1, -(-len(payload) // 10))
                for start in range(0, len(payload), step):
                    self.wfile.write(payload[start : start + step])
                    self.wfile.flush()
                    if server._stopping.wait(drip_s):
                        return
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def scoring_server() -> Iterator[ScoringServer]:
    """A fresh :class:`ScoringServer` with default behaviour, stopped after the test."""
    with ScoringServer() as server:
        yield server


__all__ = [
    "LOOPBACK_ALLOW",
    "LOOPBACK_EGRESS",
    "Behaviour",
    "RecordedRequest",
    "ScoringServer",
    "default_model",
    "nest",
    "scoring_server",
]
