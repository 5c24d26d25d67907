"""Prometheus metrics of `plumb reconcile --watch`: their values, the text format, the /metrics server.

Owns the metric names and what they mean. Called by `reconciler.watch`, which feeds it
each cycle's plan and result; the HTTP server runs on its own daemon thread and reads a
consistent snapshot under a lock.

Written with the standard library (text exposition format 0.0.4) instead of
prometheus_client: ten metrics do not need a dependency, plumb must run on a bare Python,
and there is no process-global registry to collide in tests or in several loops.
"""

from __future__ import annotations

import math
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable, Mapping

from .planmodel import Classification, NodePlan

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric family: its samples are (suffix, labels, value)."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            lines.append(f"{family.name}{suffix}{{{text}}} {_number(value)}" if text
                         else f"{family.name}{suffix} {_number(value)}")
    return "\n".join(lines) + "\n"


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def samples(self) -> list[tuple[str, Labels, float]]:
        out = [("_bucket", (("le", _number(b)),), float(c)) for b, c in zip(self.buckets, self.counts)]
        out.append(("_bucket", (("le", "+Inf"),), float(self.count)))
        return out + [("_sum", (), self.sum), ("_count", (), float(self.count))]


class WatchMetrics:
    """The watch loop's metrics. Writers: the loop thread; reader: the HTTP server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs = {"ok": 0, "failed": 0}
        self.duration = Histogram()
        self.node_up: dict[str, int] = {}
        self.node_counts: dict[str, Counter] = {}  # node → classification → resources (last plan)
        self.backoff: dict[str, int] = {}
        self.next_runs: dict[str, float] = {}
        self.last_run: float | None = None
        self.revision: str | None = None
        self.valid: bool | None = None

    def run_finished(self, ok: bool, seconds: float | None, finished_at: float) -> None:
        """A cycle ended; `seconds` is None when it stopped before starting (invalid manifests)."""
        with self._lock:
            self.runs["ok" if ok else "failed"] += 1
            if seconds is not None:
                self.duration.observe(seconds)
            self.last_run = finished_at

    def nodes_seen(self, plans: Iterable[NodePlan]) -> None:
        """Up/down and resource classifications of nodes just observed (after any apply)."""
        with self._lock:
            for plan in plans:
                self.node_up[plan.node] = int(plan.reachable)
                if plan.reachable:
                    self.node_counts[plan.node] = Counter(r.classification for r in plan.resources)
                else:
                    self.node_counts.pop(plan.node, None)

    def fleet(self, nodes: Iterable[str], backoff: Mapping[str, int], next_runs: Mapping[str, float | None]) -> None:
        """The nodes and associations now managed: series of the others are dropped."""
        keep = set(nodes)
        with self._lock:
            for table in (self.node_up, self.node_counts):
                for gone in set(table) - keep:
                    del table[gone]
            self.backoff = {n: backoff.get(n, 0) for n in keep}
            self.next_runs = {a: t for a, t in next_runs.items() if t is not None}

    def manifests(self, valid: bool, revision: str | None) -> None:
        with self._lock:
            self.valid = valid
            if revision is not None:
                self.revision = revision

    def families(self) -> list[Family]:
        with self._lock:
            return [f for f in (self._runs(), self._duration(), *self._nodes(), self._plan(), *self._times(),
                                *self._manifests()) if f is not None]

    def text(self) -> str:
        return render(self.families())

    def _runs(self) -> Family:
        return Family("plumb_reconcile_runs_total", "counter", "Reconcile cycles of the watch loop, by result.",
                      [("", (("result", r),), float(n)) for r, n in self.runs.items()])

    def _duration(self) -> Family:
        return Family("plumb_reconcile_duration_seconds", "histogram",
                      "How long a reconcile cycle took (observe, plan, apply, verify).", self.duration.samples())

    def _nodes(self) -> list[Family]:
        drift = [("", (("node", n),), float(sum(c[k] for k in c if k.drifted)))
                 for n, c in sorted(self.node_counts.items())]
        return [
            Family("plumb_drift_resources", "gauge", "Resources that drifted from last-applied, per node (last plan).",
                   drift),
            Family("plumb_node_up", "gauge", "1 if the node was reachable at its last observation, else 0.",
                   [("", (("node", n),), float(v)) for n, v in sorted(self.node_up.items())]),
            Family("plumb_node_backoff_cycles", "gauge", "Watch cycles the node still sits out after failures.",
                   [("", (("node", n),), float(v)) for n, v in sorted(self.backoff.items())]),
        ]

    def _plan(self) -> Family:
        totals: Counter = Counter()
        for counts in self.node_counts.values():
            totals.update(counts)
        return Family("plumb_plan_resources", "gauge", "Resources by classification in the last plan of each node.",
                      [("", (("classification", c.value),), float(totals[c])) for c in Classification])

    def _times(self) -> list[Family | None]:
        last = None if self.last_run is None else Family(
            "plumb_last_run_timestamp_seconds", "gauge", "When the last reconcile cycle finished (Unix time).",
            [("", (), self.last_run)])
        nexts = Family("plumb_association_next_run_timestamp_seconds", "gauge",
                       "When each association is due next by its schedule (Unix time).",
                       [("", (("association", a),), t) for a, t in sorted(self.next_runs.items())])
        return [last, nexts]

    def _manifests(self) -> list[Family | None]:
        info = None if self.revision is None else Family(
            "plumb_manifests_info", "gauge", "The manifests being applied: their git revision ('' outside git).",
            [("", (("git_revision", self.revision),), 1.0)])
        valid = None if self.valid is None else Family(
            "plumb_manifests_valid", "gauge", "1 if the manifests on disk load, else 0 (then nothing is applied).",
            [("", (), float(self.valid))])
        return [info, valid]


# --- the /metrics endpoint -----------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464' or ':9464' (every interface) → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"metrics address '{address}' is not HOST:PORT (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


class MetricsServer:
    """Serves `text()` at /metrics on its own daemon thread until `close()`."""

    def __init__(self, address: str, text: Callable[[], str]) -> None:
        host, port = parse_address(address)
        handler = type("Handler", (_Handler,), {"text": staticmethod(text)})
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="plumb-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    text: Callable[[], str]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE, self.text())
        elif path == "/":
            self._send(200, "text/plain; charset=utf-8", "plumb reconcile --watch: metrics at /metrics\n")
        else:
            self._send(404, "text/plain; charset=utf-8", "not found: try /metrics\n")

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # scrapes are not worth a log line
        pass
