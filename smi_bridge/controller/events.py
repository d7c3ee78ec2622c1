"""Diagnostics as Kubernetes Events on the SMI objects they are about: valid, de-duplicated, rate-limited.

Rules, and the traps behind them:

* ``events.k8s.io/v1`` when served, ``core/v1`` otherwise. events.k8s.io needs ``eventTime`` as a
  MicroTime with exactly six fractional digits (``datetime.isoformat()`` drops them when the
  microseconds are zero, and the API server then answers 400), and a name that is an RFC 1123
  subdomain; the deprecated core fields must stay unset there.
* One series per (object uid, type, reason, message). The object's resourceVersion is stored in
  ``regarding.resourceVersion``: the same finding on an unchanged object is never written twice
  (a converged controller writes nothing), while the same finding after an edit bumps the series
  count. ``prime`` reads existing series at start so that a restart does not repeat them either.
* A token bucket per object (``burst`` events, one more every ``refill_seconds``): a broken object
  cannot flood the API server; what is dropped is counted in a metric.
* Writing happens in a background task, so a slow Events API never delays reconciles; while the
  reconciler writes outputs, Events wait (``hold``/``release``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from smi_bridge.controller.kubeapi import ApiError, KubeClient, ResourceType
from smi_bridge.controller.telemetry import Telemetry
from smi_bridge.diagnostics import Diagnostic, Severity

Obj = dict[str, Any]
EventType = Literal["Normal", "Warning"]

log = logging.getLogger("smi_bridge.controller.events")

EVENTS_V1 = ResourceType("events.k8s.io", "v1", "events", "Event")
CORE_EVENTS = ResourceType("", "v1", "events", "Event")
NOTE_LIMIT = 1024
OBSERVED_ANNOTATION = "smi-bridge.io/observed-resource-version"


def micro_time(at: datetime | None = None) -> str:
    """``2026-01-01T00:00:00.000000Z``: always six fractional digits (MicroTime)."""
    t = (at or datetime.now(UTC)).astimezone(UTC)
    # explicit widths: strftime's %Y does not pad years before 1000 on glibc
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"


def plain_time(at: datetime | None = None) -> str:
    """``2026-01-01T00:00:00Z`` (metav1.Time)."""
    t = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def event_name(regarding_name: str, nanos: int) -> str:
    """``<object>.<hex time>``, the client-go convention; always a valid RFC 1123 subdomain."""
    suffix = f"{nanos:x}"
    labels = [part.strip("-") for part in re.sub(r"[^a-z0-9.-]", "-", regarding_name.lower()).split(".")]
    base = ".".join(p for p in labels if p)[: 253 - len(suffix) - 1].rstrip(".-") or "object"
    return f"{base}.{suffix}"


@dataclass(frozen=True)
class Regarding:
    """The object an Event is about (an ObjectReference)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str

    @classmethod
    def of(cls, obj: Obj) -> Regarding:
        md = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(md.get("namespace") or ""),
            str(md.get("name", "")),
            str(md.get("uid", "")),
            str(md.get("resourceVersion", "")),
        )

    def reference(self) -> Obj:
        ref: Obj = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
        }
        if self.namespace:
            ref["namespace"] = self.namespace
        return ref


# diagnostic code prefix -> (reason for errors, reason for warnings)
_REASONS = {
    "SMB": ("InvalidPolicy", "PolicyWarning"),
    "SMT": ("TranslationFailed", "LossyTranslation"),
}


def reason_for(diagnostic: Diagnostic) -> str:
    from smi_bridge.controller.reconciler import CONTROLLER_REASONS

    if diagnostic.code in CONTROLLER_REASONS:
        return CONTROLLER_REASONS[diagnostic.code]
    errors, warnings = _REASONS.get(diagnostic.code[:3], ("Error", "Warning"))
    return errors if diagnostic.severity >= Severity.ERROR else warnings


def note_for(diagnostic: Diagnostic) -> str:
    where = f" at {diagnostic.path}" if diagnostic.path else ""
    hint = f" (hint: {diagnostic.hint})" if diagnostic.hint else ""
    text = f"[{diagnostic.code}] {diagnostic.message}{where}{hint}"
    return text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 3] + "..."


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    source_rv: str
    last: float


@dataclass
class _Pending:
    key: tuple[str, str, str, str]
    regarding: Regarding
    type: EventType
    reason: str
    action: str
    note: str


class EventRecorder:
    """Queues Events and writes them in the background (``run``)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        instance: str,
        controller: str = "smi-bridge",
        api: ResourceType = EVENTS_V1,
        burst: int = 25,
        refill_seconds: float = 30.0,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_series: int = 50_000,
    ) -> None:
        self.client = client
        self.instance = instance[:128]
        self.controller = controller
        self.api = api
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.telemetry = telemetry
        self.clock = clock
        self.max_series = max_series
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._tokens: dict[str, tuple[float, float]] = {}  # uid -> (tokens, at)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._open = asyncio.Event()
        self._open.set()
        self.enabled = True  # only the leader writes

    def hold(self) -> None:
        """Defer writing while the reconciler writes outputs (Events are best effort; outputs first)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _take_token(self, uid: str) -> bool:
        now = self.clock()
        tokens, at = self._tokens.get(uid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill_seconds)
        if tokens < 1.0:
            self._tokens[uid] = (tokens, now)
            return False
        self._tokens[uid] = (tokens - 1.0, now)
        return True

    def record(
        self, regarding: Regarding, type_: EventType, reason: str, note: str, *, action: str = "Reconcile"
    ) -> bool:
        """Queue an Event unless this exact finding was already told for this version of the object."""
        if not self.enabled:
            return False
        note = note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 3] + "..."
        key = (regarding.uid, type_, reason, note)
        series = self._series.get(key)
        if series is not None and series.source_rv == regarding.resource_version:
            return False
        if not self._take_token(regarding.uid):
            if self.telemetry is not None:
                self.telemetry.events_dropped.labels(why="rate-limit").inc()
            log.info(
                "event rate limit reached for %s %s/%s: %s",
                regarding.kind,
                regarding.namespace,
                regarding.name,
                note,
            )
            return False
        # claim the series now, so that a second record before the write does not queue a duplicate
        if series is None:
            self._series[key] = _Series(
                "", regarding.namespace or "default", 0, regarding.resource_version, self.clock()
            )
        else:
            series.source_rv = regarding.resource_version
        self._queue.put_nowait(_Pending(key, regarding, type_, reason, action, note))
        return True

    def record_diagnostics(
        self, regarding: Regarding, diagnostics: Iterable[Diagnostic], *, action: str
    ) -> int:
        n = 0
        for d in diagnostics:
            if d.severity < Severity.WARNING:
                continue
            n += self.record(regarding, "Warning", reason_for(d), note_for(d), action=action)
        return n

    def pending(self) -> int:
        return self._queue.qsize()

    async def drain(self) -> None:
        """Wait until everything queued so far has been written (or given up)."""
        await self._queue.join()

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            await self._open.wait()
            try:
                await self._write(item)
            except ApiError as exc:
                if self.telemetry is not None:
                    self.telemetry.events_dropped.labels(why="api-error").inc()
                    self.telemetry.errors.labels(what="event").inc()
                log.warning(
                    "could not write event %s on %s %s/%s: %s",
                    item.reason,
                    item.regarding.kind,
                    item.regarding.namespace,
                    item.regarding.name,
                    exc,
                )
                self._series.pop(item.key, None)
            finally:
                self._queue.task_done()

    async def _write(self, item: _Pending) -> None:
        series = self._series.get(item.key)
        if series is None:
            return
        now = datetime.now(UTC)
        if series.name and series.count:
            series.count += 1
            # regarding/involvedObject are immutable on events.k8s.io: the object's resourceVersion
            # this series last saw lives in an annotation
            seen = {"annotations": {OBSERVED_ANNOTATION: item.regarding.resource_version}}
            if self.api.group == "events.k8s.io":
                patch: Obj = {
                    "metadata": seen,
                    "series": {"count": series.count, "lastObservedTime": micro_time(now)},
                }
            else:
                patch = {"metadata": seen, "count": series.count, "lastTimestamp": plain_time(now)}
            try:
                await self.client.merge_patch(
                    self.api, series.namespace, series.name, patch, manager=self.controller
                )
                self._count(item.type)
                series.last = self.clock()
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
                # the Event expired (the API server keeps them an hour): start a new series
        name = event_name(item.regarding.name, time.time_ns())
        namespace = item.regarding.namespace or "default"
        await self.client.create(
            self.api, namespace, self._body(item, name, namespace, now), manager=self.controller
        )
        self._count(item.type)
        series.name, series.namespace, series.count, series.last = name, namespace, 1, self.clock()
        if len(self._series) > self.max_series:
            for key in sorted(self._series, key=lambda k: self._series[k].last)[: self.max_series // 2]:
                self._series.pop(key, None)

    def _count(self, type_: str) -> None:
        if self.telemetry is not None:
            self.telemetry.events.labels(type=type_).inc()

    @staticmethod
    def _metadata(item: _Pending, name: str, namespace: str) -> Obj:
        return {
            "name": name,
            "namespace": namespace,
            "annotations": {OBSERVED_ANNOTATION: item.regarding.resource_version},
        }

    def _body(self, item: _Pending, name: str, namespace: str, now: datetime) -> Obj:
        if self.api.group == "events.k8s.io":
            return {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": self._metadata(item, name, namespace),
                "eventTime": micro_time(now),
                "reportingController": self.controller,
                "reportingInstance": self.instance,
                "action": item.action,
                "reason": item.reason,
                "regarding": item.regarding.reference(),
                "note": item.note,
                "type": item.type,
            }
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self._metadata(item, name, namespace),
            "involvedObject": item.regarding.reference(),
            "reason": item.reason,
            "message": item.note,
            "type": item.type,
            "count": 1,
            "firstTimestamp": plain_time(now),
            "lastTimestamp": plain_time(now),
            "source": {"component": self.controller},
            "reportingComponent": self.controller,
            "reportingInstance": self.instance,
            "action": item.action,
        }

    async def prime(self, namespaces: Iterable[str | None]) -> int:
        """Load the series this controller wrote before (so a restart does not repeat them)."""
        loaded = 0
        for ns in namespaces:
            token: str | None = None
            while True:
                page = await self.client.list_objects(self.api, ns, limit=500, continue_=token)
                for ev in page.get("items") or []:
                    loaded += self._adopt(ev)
                token = (page.get("metadata") or {}).get("continue") or None
                if not token:
                    break
        return loaded

    def _adopt(self, ev: Obj) -> int:
        v1 = self.api.group == "events.k8s.io"
        controller = ev.get("reportingController") if v1 else ev.get("reportingComponent")
        if controller != self.controller:
            return 0
        ref = (ev.get("regarding") if v1 else ev.get("involvedObject")) or {}
        note = str((ev.get("note") if v1 else ev.get("message")) or "")
        key = (str(ref.get("uid", "")), str(ev.get("type", "")), str(ev.get("reason", "")), note)
        md = ev.get("metadata") or {}
        count = int(((ev.get("series") or {}).get("count") if v1 else ev.get("count")) or 1)
        seen = (md.get("annotations") or {}).get(OBSERVED_ANNOTATION) or ref.get("resourceVersion", "")
        self._series[key] = _Series(
            str(md.get("name", "")), str(md.get("namespace", "")), count, str(seen), self.clock()
        )
        return 1


__all__ = [
    "CORE_EVENTS",
    "EVENTS_V1",
    "EventRecorder",
    "Regarding",
    "event_name",
    "micro_time",
    "note_for",
    "reason_for",
]
