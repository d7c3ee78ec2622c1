"""A Kubernetes API server fake on 127.0.0.1: real HTTP, one process, stdlib threads.

Why a fake of our own: the published mocks (kmock, mockernetes) have no resourceVersions, no
server-side apply, no 410 and no optimistic concurrency, and they answer in ways the official client
mis-reads (research/controller-testbed.md §2). This one follows the protocol closely enough that the
``kubernetes`` client, ``kubectl`` and the controller talk to it unchanged, and the contract suite
(tests/controller) runs the same scenarios against it and a real kube-apiserver to keep it honest.

What it does:

* discovery (``/version``, ``/api``, ``/apis``, per group/version resource lists); built-in types
  plus every served version of every CRD created through ``apiextensions.k8s.io/v1``;
* CRUD with one global resourceVersion (an etcd revision), uids, timestamps, ``generateName``,
  ``generation`` (moves only on spec), optimistic concurrency (409 on a stale resourceVersion; 422
  for a PUT without one on a custom resource), merge and JSON patch (415 for strategic merge on a
  custom resource), server-side apply with field ownership, conflicts and ``force``
  (``ssa.py``), the status subresource, finalizers and ``deletionTimestamp``, ``dryRun``;
* CRD structural schemas: pruning and type validation (``crdschema.py``);
* list with ``limit``/``continue``, label and field selectors; watch with replay from a
  resourceVersion, synthetic ADDED without one, 410 ``Expired`` (as an ERROR event in a 200 stream)
  once history is compacted, ``timeoutSeconds``, BOOKMARKs on request, selector transitions
  (ADDED/DELETED as objects enter or leave the selection);
* no-op writes keep the resourceVersion and produce no watch event;
* Leases, core/v1 and events.k8s.io/v1 Events (one storage, converted both ways), MicroTime checks;
* fault injection (``Fault``: status codes with Retry-After, slow answers, dropped connections),
  ``compact()``, ``expire_watches()``, ``drop_watches()``, ``pause()``/``resume()`` (connection
  refused), and a request log.

Deliberate gaps (a real server has them; none matter to the controller): no garbage collection and no
namespace controller (like the apiserver-only real tier), no admission, no RBAC, no CEL, no defaulting
beyond a few Service/Pod fields, no strategic merge (it is a JSON merge for built-ins), no protobuf,
no Table output, lists with ``continue`` read the current state rather than a snapshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from smi_bridge.controller.testing import crdschema
from smi_bridge.controller.testing.ssa import (
    ApplyConflict,
    ListRules,
    Scope,
    apply_config,
    clone,
    record_update,
)

Obj = dict[str, Any]

SERVER_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-smi-bridge-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ResourceType:
    """One served (group, version, resource)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    rules: ListRules = field(default_factory=ListRules)
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    custom: bool = False  # a custom resource (PUT needs a resourceVersion, no strategic merge)
    generation: bool = False
    storage: tuple[str, str] | None = None  # another type's storage (events.k8s.io -> core events)
    name_label: bool = False  # names are DNS labels (no dots), not subdomains

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def store_key(self) -> tuple[str, str]:
        return self.storage or (self.group, self.plural)

    def describe(self) -> Obj:
        out: Obj = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(_VERBS),
        }
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        return out


_CORE_RULES = ListRules(
    keys={
        "spec.ports": ("port", "protocol"),
        "spec.containers": ("name",),
        "spec.initContainers": ("name",),
        "spec.containers.ports": ("containerPort", "protocol"),
        "spec.containers.env": ("name",),
        "spec.volumes": ("name",),
    }
)
_WORKLOAD_RULES = ListRules(
    keys={
        "spec.template.spec.containers": ("name",),
        "spec.template.spec.initContainers": ("name",),
        "spec.template.spec.containers.ports": ("containerPort", "protocol"),
        "spec.template.spec.containers.env": ("name",),
        "spec.template.spec.volumes": ("name",),
    }
)


def builtin_types(endpointslice_versions: Iterable[str] = ("v1",)) -> list[ResourceType]:
    types = [
        ResourceType(
            "", "v1", "namespaces", "Namespace", False, short_names=("ns",), status=True, name_label=True
        ),
        ResourceType(
            "",
            "v1",
            "services",
            "Service",
            True,
            short_names=("svc",),
            status=True,
            rules=_CORE_RULES,
            name_label=True,
        ),
        ResourceType("", "v1", "pods", "Pod", True, short_names=("po",), status=True, rules=_CORE_RULES),
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
        ResourceType("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
        ResourceType("", "v1", "secrets", "Secret", True),
        ResourceType("", "v1", "endpoints", "Endpoints", True, short_names=("ep",)),
        ResourceType("", "v1", "events", "Event", True, short_names=("ev",)),
        ResourceType(
            "events.k8s.io", "v1", "events", "Event", True, short_names=("ev",), storage=("", "events")
        ),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            status=True,
        ),
    ]
    for kind, plural in (
        ("Deployment", "deployments"),
        ("StatefulSet", "statefulsets"),
        ("DaemonSet", "daemonsets"),
        ("ReplicaSet", "replicasets"),
    ):
        types.append(
            ResourceType(
                "apps", "v1", plural, kind, True, status=True, rules=_WORKLOAD_RULES, generation=True
            )
        )
    for v in endpointslice_versions:
        types.append(
            ResourceType(
                "discovery.k8s.io",
                v,
                "endpointslices",
                "EndpointSlice",
                True,
                storage=("discovery.k8s.io", "endpointslices"),
            )
        )
    return types


class StatusError(Exception):
    """An API error answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Obj | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details or {}
        self.headers = dict(headers or {})

    def body(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _gr(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def _not_found(rt: ResourceType, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{_gr(rt)} "{name}" not found', {"name": name, "group": rt.group, "kind": rt.plural}
    )


def _conflict(rt: ResourceType, name: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_gr(rt)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def _invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> StatusError:
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    return StatusError(
        422,
        "Invalid",
        f'{rt.kind}.{rt.group or "core"} "{name}" is invalid: {text}'
        if rt.group
        else f'{rt.kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [
                {
                    "reason": "FieldValueInvalid" if "Required" not in m else "FieldValueRequired",
                    "message": m,
                    "field": f,
                }
                for f, m in causes
            ],
        },
    )


@dataclass
class Fault:
    """A canned answer for matching requests (first match wins; ``times=None``: every time).

    ``status`` 0 means: answer normally after ``delay`` seconds (a slow answer). ``drop`` closes
    the connection without answering.
    """

    status: int = 500
    method: str | None = None
    path: str | None = None  # regular expression searched in the path
    watch: bool | None = None  # only watch requests (True) or only others (False)
    times: int | None = 1
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    hits: int = 0

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.path and not re.search(self.path, path):
            return False
        return self.watch is None or self.watch == is_watch


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it (the log tests read: ``writes()`` counts mutations)."""

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    status: int
    watch: bool
    user_agent: str
    at: float

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class _LogEntry:
    rv: int
    type: str
    key: tuple[str, str]
    namespace: str
    name: str
    obj: Obj
    prev: Obj | None


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass
class _Response:
    status: int
    body: Obj | str
    headers: dict[str, str] = field(default_factory=dict)


class _Watch:
    """One watch stream; ``serve`` writes events until timeout, close, drop or expiry."""

    def __init__(
        self, api: FakeKubeAPI, rt: ResourceType, namespace: str | None, query: Mapping[str, str]
    ) -> None:
        self.api, self.rt, self.namespace = api, rt, namespace
        self.labels = crdschema.label_selector(query.get("labelSelector", ""))
        self.fields = crdschema.field_selector(query.get("fieldSelector", ""))
        rv = query.get("resourceVersion", "")
        self.start_rv = int(rv) if rv not in ("", "0") else None
        timeout = query.get("timeoutSeconds")
        self.deadline = time.monotonic() + (float(timeout) if timeout else api.max_watch_seconds)
        self.bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.dropped = False
        self.closed = False
        self.expired = False

    def _match(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        md = obj.get("metadata", {})
        if self.namespace is not None and md.get("namespace") != self.namespace:
            return False
        return self.labels(md.get("labels") or {}) and self.fields(obj)

    def _event(self, entry: _LogEntry) -> Obj | None:
        if entry.key != self.rt.store_key or (
            self.namespace is not None and entry.namespace != self.namespace
        ):
            return None
        cur, prev = self._match(entry.obj), self._match(entry.prev)
        if entry.type == "ADDED":
            return {"type": "ADDED", "object": entry.obj} if cur else None
        if entry.type == "DELETED":
            return {"type": "DELETED", "object": entry.obj} if cur or prev else None
        if cur and prev:
            return {"type": "MODIFIED", "object": entry.obj}
        if cur:
            return {"type": "ADDED", "object": entry.obj}
        if prev and entry.prev is not None:
            # the object left the selection: DELETED with its last matching state, at this revision
            last = clone(entry.prev)
            last["metadata"]["resourceVersion"] = str(entry.rv)
            return {"type": "DELETED", "object": last}
        return None

    def serve(self, write: Callable[[bytes], None]) -> bool:
        """Stream events; False when the connection must be dropped without a clean end."""
        api = self.api
        initial: list[Obj] = []
        entries: list[_LogEntry] | None
        with api._cond:
            if self.start_rv is None:
                pos = api._rv
                initial = [
                    {"type": "ADDED", "object": o}
                    for o in api._objects_of(self.rt, self.namespace)
                    if self._match(o)
                ]
            elif self.start_rv < api._compacted_rv:
                initial = [{"type": "ERROR", "object": _expired(self.start_rv).body()}]
                pos = -1
            else:
                pos = self.start_rv
            api._watches.add(self)
        try:
            for ev in initial:
                write(api._encode_event(ev, self.rt))
            if pos < 0:
                return True
            next_bookmark = time.monotonic() + api.bookmark_interval if api.bookmark_interval else None
            while True:
                with api._cond:
                    while api._rv <= pos and not (self.dropped or self.closed or self.expired):
                        now = time.monotonic()
                        wake = self.deadline
                        if next_bookmark is not None and self.bookmarks:
                            wake = min(wake, next_bookmark)
                        if now >= wake:
                            break
                        api._wakeup(self.rt.store_key).wait(min(wake - now, 1.0))
                    if self.dropped:
                        return False
                    entries = api._entries_after(pos) if api._rv > pos else []
                    if entries is None:
                        self.expired = True
                        entries = []
                    else:
                        pos = max(pos, api._rv)
                for entry in entries:
                    change = self._event(entry)
                    if change is not None:
                        write(api._encode_event(change, self.rt))
                if self.expired:
                    write(api._encode_event({"type": "ERROR", "object": _expired(pos).body()}, self.rt))
                    return True
                if self.closed:
                    return True
                now = time.monotonic()
                if next_bookmark is not None and now >= next_bookmark:
                    if self.bookmarks:
                        mark = {
                            "apiVersion": self.rt.api_version,
                            "kind": self.rt.kind,
                            "metadata": {"resourceVersion": str(pos)},
                        }
                        write(api._encode_event({"type": "BOOKMARK", "object": mark}, self.rt))
                    next_bookmark = now + api.bookmark_interval
                if now >= self.deadline:
                    return True
        finally:
            with api._cond:
                api._watches.discard(self)


def _expired(rv: int) -> StatusError:
    return StatusError(410, "Expired", f"too old resource version: {rv}")


class FakeKubeAPI:
    """The fake server. ``start()`` binds 127.0.0.1 (port 0: any free port); ``url`` is its address.

    Thread-safe: one lock guards the store; each connection has its own thread.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        endpointslice_versions: Iterable[str] = ("v1",),
        history: int = 200_000,
        token: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # one condition per stored type, on the same lock: a write wakes only the watches of its type
        self._wakeups: dict[tuple[str, str], threading.Condition] = {}
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._log: list[_LogEntry] = []
        self._rv = 0
        self._compacted_rv = 0
        self._history = history
        self._watches: set[_Watch] = set()
        self._ip_next = 10
        self.token = token
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.bookmark_interval = 0.0  # seconds; 0 = never send BOOKMARKs
        self.max_watch_seconds = 1800.0  # server-side watch timeout when the client gives none
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        for rt in builtin_types(endpointslice_versions):
            self._register(rt)
        for ns in ("default", "kube-system", "kube-public"):
            self.create(
                self._type("", "v1", "namespaces"),
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> FakeKubeAPI:
        api = self

        class Handler(_Handler):
            pass

        Handler.api = api
        server = _Server(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection (watches end abruptly)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._cond:
            for w in list(self._watches):
                w.dropped = True
            self._wake_all()
            conns = list(self._connections)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def pause(self) -> None:
        """Simulate an unreachable API server: connections are refused until ``resume()``."""
        self.stop()

    def resume(self) -> None:
        self.start()

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ---------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def compact(self) -> int:
        """Forget the event history: watches from any older resourceVersion now get 410."""
        with self._cond:
            self._compacted_rv = self._rv
            self._log.clear()
            return self._rv

    def expire_watches(self) -> None:
        """Every open watch receives an ERROR 410 event and ends (a watch cache that fell behind)."""
        with self._cond:
            self._compacted_rv = self._rv
            self._log.clear()
            for w in self._watches:
                w.expired = True
            self._wake_all()

    def drop_watches(self) -> None:
        """Every open watch connection is cut without a clean end."""
        with self._cond:
            for w in self._watches:
                w.dropped = True
            self._wake_all()

    def end_watches(self) -> None:
        """Every open watch ends cleanly (the server's own timeout)."""
        with self._cond:
            for w in self._watches:
                w.closed = True
            self._wake_all()

    def open_watches(self) -> int:
        with self._lock:
            return len(self._watches)

    def writes(self, since: int = 0) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests[since:] if r.is_write]

    def mark(self) -> int:
        """A position in the request log (for ``writes(since=...)``)."""
        with self._lock:
            return len(self.requests)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    # --- direct access (tests set up state without HTTP) ---------------------------------------------

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        group, _, version = api_version.rpartition("/")
        rt = self._type(group, version, plural)
        with self._lock:
            obj = self._objects.get(rt.store_key, {}).get((namespace or "", name))
            return self._present(obj, rt) if obj is not None else None

    def list_of(self, api_version: str, plural: str, namespace: str | None = None) -> list[Obj]:
        group, _, version = api_version.rpartition("/")
        rt = self._type(group, version, plural)
        with self._lock:
            return [self._present(o, rt) for o in self._objects_of(rt, namespace)]

    def put_object(self, obj: Obj) -> Obj:
        """Create or replace ``obj`` as an administrator would (no preconditions), status included."""
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        rt = self._type_by_kind(group, version, str(obj["kind"]))
        ns = obj.get("metadata", {}).get("namespace") if rt.namespaced else None
        name = obj["metadata"]["name"]
        with self._lock:
            live = self._objects.get(rt.store_key, {}).get((ns or "", name))
            if live is None:
                created = self.create(rt, ns, obj, manager="test-setup")
                if rt.status and "status" in obj:
                    body = clone(created)
                    body["status"] = obj["status"]
                    return self.update(rt, ns, name, body, manager="test-setup", subresource="status")
                return created
            body = clone(obj)
            body.setdefault("metadata", {})["resourceVersion"] = live["metadata"]["resourceVersion"]
            out = self.update(rt, ns, name, body, manager="test-setup")
            if rt.status and "status" in obj:
                body = clone(out)
                body["status"] = obj["status"]
                out = self.update(rt, ns, name, body, manager="test-setup", subresource="status")
            return out

    def delete_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj:
        """Delete as an administrator would (finalizers still hold the object)."""
        group, _, version = api_version.rpartition("/")
        rt = self._type_by_kind(group, version, kind)
        return self.delete(rt, namespace if rt.namespaced else None, name, {})

    def patch_object(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        manager: str = "test-setup",
    ) -> Obj:
        """A JSON merge patch by ``manager`` (an update: the manager takes the fields it changes)."""
        group, _, version = api_version.rpartition("/")
        rt = self._type_by_kind(group, version, kind)
        obj, _ = self.patch(
            rt,
            namespace if rt.namespaced else None,
            name,
            json.dumps(patch).encode(),
            "application/merge-patch+json",
            manager=manager,
        )
        return obj

    # --- types ---------------------------------------------------------------------------------

    def _register(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._objects.setdefault(rt.store_key, {})

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise StatusError(
                404,
                "NotFound",
                "the server could not find the requested resource",
                {"group": group, "kind": plural},
            )
        return rt

    def _type_by_kind(self, group: str, version: str, kind: str) -> ResourceType:
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise StatusError(404, "NotFound", f"no kind {kind} in {group}/{version}")

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for g, v, _ in self._types:
            if g and v not in groups.setdefault(g, []):
                groups[g].append(v)
        return {g: sorted(vs, key=_version_priority) for g, vs in groups.items()}

    def _register_crd(self, crd: Obj) -> None:
        spec = crd.get("spec", {})
        group, names = spec.get("group", ""), spec.get("names", {})
        self._unregister_crd_types(group, names.get("plural", ""))
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            subres = v.get("subresources") or {}
            self._register(
                ResourceType(
                    group,
                    v["name"],
                    names["plural"],
                    names["kind"],
                    spec.get("scope") == "Namespaced",
                    singular=names.get("singular", ""),
                    short_names=tuple(names.get("shortNames") or ()),
                    status="status" in subres,
                    rules=crdschema.list_rules(schema),
                    schema=schema,
                    custom=True,
                    generation=True,
                )
            )

    def _unregister_crd_types(self, group: str, plural: str) -> None:
        for key in [k for k in self._types if k[0] == group and k[2] == plural]:
            del self._types[key]

    # --- store ---------------------------------------------------------------------------------

    def _objects_of(self, rt: ResourceType, namespace: str | None) -> list[Obj]:
        store = self._objects.get(rt.store_key, {})
        keys = sorted(k for k in store if namespace is None or k[0] == namespace)
        return [store[k] for k in keys]

    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, type_: str, rt: ResourceType, obj: Obj, prev: Obj | None) -> None:
        md = obj["metadata"]
        self._log.append(
            _LogEntry(
                int(md["resourceVersion"]),
                type_,
                rt.store_key,
                md.get("namespace", ""),
                md["name"],
                obj,
                prev,
            )
        )
        if len(self._log) > self._history:
            drop = len(self._log) // 2
            self._compacted_rv = self._log[drop - 1].rv
            del self._log[:drop]
        self._wakeup(rt.store_key).notify_all()

    def _wakeup(self, key: tuple[str, str]) -> threading.Condition:
        cond = self._wakeups.get(key)
        if cond is None:
            cond = self._wakeups[key] = threading.Condition(self._lock)
        return cond

    def _wake_all(self) -> None:
        for cond in self._wakeups.values():
            cond.notify_all()

    def _entries_after(self, rv: int) -> list[_LogEntry] | None:
        if rv < self._compacted_rv:
            return None
        if not self._log:
            return []
        first = self._log[0].rv
        start = max(0, rv - first + 1)
        return self._log[start:]

    def _present(self, obj: Obj, rt: ResourceType) -> Obj:
        """The stored object as the requested version shows it."""
        out: Obj = clone(obj)
        if rt.storage == ("", "events") and rt.group == "events.k8s.io":
            out = _core_event_to_events_v1(out)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def _encode_event(self, ev: Obj, rt: ResourceType) -> bytes:
        obj = ev["object"]
        if ev["type"] not in ("ERROR", "BOOKMARK"):
            obj = self._present(obj, rt)
        return (json.dumps({"type": ev["type"], "object": obj}, sort_keys=True) + "\n").encode()

    # --- validation and defaulting ---------------------------------------------------------------

    def _check_times(self, rt: ResourceType, obj: Obj) -> None:
        micro: list[tuple[str, Any]] = []
        plain: list[tuple[str, Any]] = []
        if rt.kind == "Event":
            micro += [
                ("eventTime", obj.get("eventTime")),
                ("series.lastObservedTime", (obj.get("series") or {}).get("lastObservedTime")),
            ]
            for k in (
                "firstTimestamp",
                "lastTimestamp",
                "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp",
            ):
                plain.append((k, obj.get(k)))
        if rt.kind == "Lease":
            spec = obj.get("spec") or {}
            micro += [
                ("spec.acquireTime", spec.get("acquireTime")),
                ("spec.renewTime", spec.get("renewTime")),
            ]
        for where, value in micro:
            if value is not None and not (isinstance(value, str) and _MICROTIME.match(value)):
                raise StatusError(
                    400,
                    "BadRequest",
                    f'{where}: parsing time "{value}" as '
                    '"2006-01-02T15:04:05.000000Z07:00": cannot parse as ".000000"',
                )
        for where, value in plain:
            if value is not None and not (isinstance(value, str) and _TIME.match(value)):
                raise StatusError(
                    400,
                    "BadRequest",
                    f'{where}: parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse',
                )

    def _validate(self, rt: ResourceType, obj: Obj, *, events_v1: bool, old: Obj | None = None) -> None:
        md = obj.get("metadata", {})
        name = md.get("name", "")
        pattern, limit = (_LABEL, 63) if rt.name_label else (_SUBDOMAIN, 253)
        what = "a lowercase RFC 1123 label" if rt.name_label else "a lowercase RFC 1123 subdomain"
        # core/v1 Events take any name (1.20 and later); events.k8s.io checks names like everything else
        lenient = rt.kind == "Event" and not events_v1
        if not lenient and (not isinstance(name, str) or not pattern.match(name) or len(name) > limit):
            raise _invalid(
                rt, str(name), [("metadata.name", f'Invalid value: "{name}": a name must be {what}')]
            )
        generate = md.get("generateName")
        if generate and not lenient and old is None:
            masked = generate[:-1] + "a" if generate.endswith("-") else generate
            if not pattern.match(masked):
                raise _invalid(
                    rt,
                    str(name),
                    [("metadata.generateName", f'Invalid value: "{generate}": a name prefix must be {what}')],
                )
        causes: list[tuple[str, str]] = []
        if rt.custom:
            causes += crdschema.validate(rt.schema, obj)
        if rt.kind == "Event" and events_v1 and old is None:
            for f in (
                "deprecatedSource",
                "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp",
                "deprecatedCount",
            ):
                if obj.get(f):
                    causes.append((f, "Invalid value: needs to be unset"))
        if rt.kind == "Event" and events_v1:
            for f in ("reportingController", "reportingInstance", "action", "reason"):
                if not obj.get(f):
                    causes.append((f, "Required value"))
            if not obj.get("eventTime"):
                causes.append(("eventTime", "Required value"))
            if obj.get("type") not in ("Normal", "Warning"):
                causes.append(
                    ("type", f'Unsupported value: "{obj.get("type")}": supported values: "Normal", "Warning"')
                )
            if len(str(obj.get("note") or "")) > 1024:
                causes.append(("note", "Too long: must have at most 1024 bytes"))
        if rt.kind == "Pod":
            containers = (obj.get("spec") or {}).get("containers")
            if not containers:
                causes.append(("spec.containers", "Required value"))
            for i, c in enumerate(containers or []):
                if not isinstance(c, dict) or not c.get("name"):
                    causes.append((f"spec.containers[{i}].name", "Required value"))
                if isinstance(c, dict) and not c.get("image"):
                    causes.append((f"spec.containers[{i}].image", "Required value"))
        if rt.kind == "EndpointSlice" and not obj.get("addressType"):
            causes.append(("addressType", "Required value"))
        if rt.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            if name != f"{names.get('plural')}.{spec.get('group')}":
                causes.append(
                    ("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
                )
            if not spec.get("versions"):
                causes.append(("spec.versions", "Required value"))
        if causes:
            raise _invalid(rt, name, causes)

    def _default(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        if rt.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    p.setdefault("targetPort", p.get("port"))
            if old is not None and "clusterIP" in (old.get("spec") or {}) and not spec.get("clusterIP"):
                spec["clusterIP"] = old["spec"]["clusterIP"]
            if not spec.get("clusterIP"):
                spec["clusterIP"] = f"10.0.0.{self._ip_next}"
                self._ip_next = self._ip_next + 1 if self._ip_next < 250 else 10
            if spec["clusterIP"] != "None":
                spec["clusterIPs"] = [spec["clusterIP"]]
        elif rt.kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            if old is None:
                obj["status"] = {"phase": "Active"}
        elif rt.kind == "Pod" and old is None:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif rt.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), "")
            obj["status"] = {
                "acceptedNames": spec.get("names", {}),
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "lastTransitionTime": now_time(),
                        "message": "no conflicts found",
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "lastTransitionTime": now_time(),
                        "message": "the initial names have been accepted",
                    },
                ],
                "storedVersions": [storage] if storage else [],
            }

    def _prepare(self, rt: ResourceType, obj: Obj, old: Obj | None, *, events_v1: bool) -> Obj:
        """Prune, default, validate; the stored shape (core Events for events.k8s.io)."""
        if rt.custom:
            obj = crdschema.prune(rt.schema, obj)
        self._check_times(rt, obj)
        self._validate(rt, obj, events_v1=events_v1, old=old)
        if events_v1:
            obj = _events_v1_to_core_event(obj)
        self._default(rt, obj, old)
        obj["apiVersion"] = "v1" if events_v1 else rt.api_version
        return obj

    # --- writes ----------------------------------------------------------------------------------

    def _namespace_ok(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns = self._objects[("", "namespaces")].get(("", namespace or ""))
        if ns is None:
            raise StatusError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace or "", "kind": "namespaces"},
            )
        if ns["metadata"].get("deletionTimestamp"):
            raise StatusError(
                403,
                "Forbidden",
                f"{rt.plural} is forbidden: unable to create new content in "
                f"namespace {namespace} because it is being terminated",
            )

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Obj,
        *,
        manager: str = "",
        dry_run: bool = False,
        managed_fields: list[Obj] | None = None,
    ) -> Obj:
        with self._cond:
            obj = clone(body)
            md = obj.setdefault("metadata", {})
            if rt.namespaced:
                if md.get("namespace") not in (None, "", namespace):
                    raise StatusError(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match "
                        "the namespace sent on the request",
                    )
                md["namespace"] = namespace
            else:
                md.pop("namespace", None)
            if not md.get("name"):
                if md.get("generateName"):
                    md["name"] = md["generateName"] + "".join(secrets.choice(_GEN_CHARS) for _ in range(5))
                else:
                    raise _invalid(
                        rt, "", [("metadata.name", "Required value: name or generateName is required")]
                    )
            self._namespace_ok(rt, namespace)
            store = self._objects[rt.store_key]
            key = (namespace or "" if rt.namespaced else "", md["name"])
            if key in store:
                raise StatusError(
                    409,
                    "AlreadyExists",
                    f'{_gr(rt)} "{md["name"]}" already exists',
                    {"name": md["name"], "group": rt.group, "kind": rt.plural},
                )
            if rt.status and rt.custom:
                obj.pop("status", None)
            for k in (
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "managedFields",
                "generation",
            ):
                md.pop(k, None)
            obj = self._prepare(rt, obj, None, events_v1=rt.storage == ("", "events") and bool(rt.group))
            md = obj["metadata"]
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_time()
            if rt.generation:
                md["generation"] = 1
            if managed_fields is not None:
                md["managedFields"] = managed_fields
            else:
                record_update(
                    None,
                    obj,
                    manager or "unknown",
                    rt.rules,
                    api_version=rt.api_version,
                    now=now_time(),
                    scope="all",
                )
            if dry_run:
                return self._present(obj, rt)
            md["resourceVersion"] = str(self._bump())
            store[key] = obj
            if rt.kind == "CustomResourceDefinition":
                self._register_crd(obj)
            self._record("ADDED", rt, obj, None)
            return self._present(obj, rt)

    def _live(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._objects.get(rt.store_key, {}).get((namespace or "" if rt.namespaced else "", name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _store(self, rt: ResourceType, old: Obj, new: Obj, *, dry_run: bool) -> Obj:
        """Write ``new`` over ``old`` unless nothing changed; finalizer-complete deletes happen here."""
        md = new["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old["metadata"]:
                md[k] = old["metadata"][k]
            else:
                md.pop(k, None)
        md["name"] = old["metadata"]["name"]
        if "namespace" in old["metadata"]:
            md["namespace"] = old["metadata"]["namespace"]
        md["resourceVersion"] = old["metadata"]["resourceVersion"]
        if rt.generation:
            md["generation"] = old["metadata"].get("generation", 1)
            if _spec_of(old, rt) != _spec_of(new, rt):
                md["generation"] += 1
        if _comparable(old) == _comparable(new):
            return self._present(old, rt)  # a no-op: same resourceVersion, no event
        if dry_run:
            return self._present(new, rt)
        md["resourceVersion"] = str(self._bump())
        key = (md.get("namespace", ""), md["name"])
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            del self._objects[rt.store_key][key]
            self._record("DELETED", rt, new, old)
            self._after_delete(rt, new)
            return self._present(new, rt)
        self._objects[rt.store_key][key] = new
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(new)
        self._record("MODIFIED", rt, new, old)
        return self._present(new, rt)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        manager: str = "",
        subresource: str = "",
        dry_run: bool = False,
        require_rv: bool | None = None,
    ) -> Obj:
        with self._cond:
            old = self._live(rt, namespace, name)
            new = clone(body)
            md = new.setdefault("metadata", {})
            if md.get("name") not in (None, name):
                raise StatusError(
                    400,
                    "BadRequest",
                    f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})",
                )
            rv = md.get("resourceVersion")
            if require_rv is None:
                require_rv = rt.custom
            if not rv and require_rv:
                raise _invalid(
                    rt,
                    name,
                    [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
                )
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            new = self._merge_scope(rt, old, new, subresource)
            events_v1 = rt.storage == ("", "events") and bool(rt.group)
            new = self._prepare(rt, new, old, events_v1=events_v1)
            record_update(
                old,
                new,
                manager or "unknown",
                rt.rules,
                api_version=rt.api_version,
                now=now_time(),
                scope=_scope(rt, subresource),
                subresource=subresource,
            )
            return self._store(rt, old, new, dry_run=dry_run)

    def _merge_scope(self, rt: ResourceType, old: Obj, new: Obj, subresource: str) -> Obj:
        """What a write to the main resource or to /status may change."""
        if subresource == "status":
            out: Obj = clone(old)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            return out
        if rt.status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        new["metadata"]["managedFields"] = clone(old["metadata"].get("managedFields", []))
        return new

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        *,
        manager: str = "",
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
    ) -> tuple[Obj, int]:
        ctype = content_type.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return self.apply(
                rt,
                namespace,
                name,
                body,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=dry_run,
            )
        try:
            patch = json.loads(body or b"null")
        except ValueError as exc:
            raise StatusError(400, "BadRequest", f"error decoding patch: {exc}") from None
        with self._cond:
            old = self._live(rt, namespace, name)
            current = self._present(old, rt)
            if ctype == "application/merge-patch+json" or (
                ctype == "application/strategic-merge-patch+json" and not rt.custom
            ):
                if not isinstance(patch, dict):
                    raise StatusError(400, "BadRequest", "merge patch must be an object")
                want_rv = (patch.get("metadata") or {}).get("resourceVersion")
                if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                    raise _conflict(rt, name)
                new = _merge_patch(current, patch)
            elif ctype == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise StatusError(400, "BadRequest", "json patch must be a list")
                new = _json_patch(current, patch)
                want_rv = (new.get("metadata") or {}).get("resourceVersion")
                if want_rv != old["metadata"]["resourceVersion"]:
                    raise _conflict(rt, name)
            else:
                raise StatusError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml",
                )
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(
                rt,
                namespace,
                name,
                new,
                manager=manager,
                subresource=subresource,
                dry_run=dry_run,
                require_rv=False,
            ), 200

    def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        *,
        manager: str,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
    ) -> tuple[Obj, int]:
        if not manager:
            raise StatusError(
                400,
                "BadRequest",
                "PATCH " + name + ": fieldManager: Required value: is required for apply patch",
            )
        config = _decode(body)
        if not isinstance(config, dict):
            raise StatusError(400, "BadRequest", "apply configuration must be an object")
        if config.get("apiVersion") != rt.api_version or config.get("kind") != rt.kind:
            raise StatusError(
                400,
                "BadRequest",
                f"the API version in the data ({config.get('apiVersion')}) and "
                f"kind ({config.get('kind')}) do not match {rt.api_version} {rt.kind}",
            )
        md = config.get("metadata") or {}
        if md.get("name") not in (None, name):
            raise StatusError(
                400,
                "BadRequest",
                f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})",
            )
        if rt.namespaced and md.get("namespace") not in (None, "", namespace):
            raise StatusError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if rt.custom:
            config = crdschema.prune(rt.schema, config)
        scope = _scope(rt, subresource)
        with self._cond:
            store = self._objects[rt.store_key]
            live = store.get((namespace or "" if rt.namespaced else "", name))
            try:
                merged = apply_config(
                    live,
                    config,
                    manager,
                    rt.rules,
                    force=force,
                    api_version=rt.api_version,
                    now=now_time(),
                    scope=scope,
                )
            except ApplyConflict as exc:
                raise StatusError(
                    409,
                    "Conflict",
                    str(exc),
                    {
                        "causes": [
                            {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f}
                            for m, f in exc.conflicts
                        ]
                    },
                ) from None
            merged["apiVersion"], merged["kind"] = rt.api_version, rt.kind
            merged.setdefault("metadata", {})["name"] = name
            if live is None:
                if subresource:
                    raise _not_found(rt, name)
                managed = merged["metadata"].pop("managedFields", None) or []
                return self.create(
                    rt, namespace, merged, manager=manager, dry_run=dry_run, managed_fields=managed
                ), 201
            managed = merged["metadata"].get("managedFields")
            if subresource != "status" and rt.status and "status" in live:
                merged["status"] = clone(live["status"])
            new = self._prepare(rt, merged, live, events_v1=rt.storage == ("", "events") and bool(rt.group))
            if managed is not None:
                new["metadata"]["managedFields"] = managed
            return self._store(rt, live, new, dry_run=dry_run), 200

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Obj, *, dry_run: bool = False
    ) -> Obj:
        with self._cond:
            old = self._live(rt, namespace, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise StatusError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            if dry_run:
                return self._present(old, rt)
            finalizers = list(old["metadata"].get("finalizers") or [])
            if rt.kind == "Namespace":
                finalizers += list((old.get("spec") or {}).get("finalizers") or [])
            if finalizers:
                if old["metadata"].get("deletionTimestamp"):
                    return self._present(old, rt)
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = now_time()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if rt.kind == "Namespace":
                    new["status"] = {"phase": "Terminating"}
                new["metadata"]["resourceVersion"] = str(self._bump())
                self._objects[rt.store_key][(namespace or "" if rt.namespaced else "", name)] = new
                self._record("MODIFIED", rt, new, old)
                return self._present(new, rt)
            gone = clone(old)
            gone["metadata"]["resourceVersion"] = str(self._bump())
            del self._objects[rt.store_key][(namespace or "" if rt.namespaced else "", name)]
            self._record("DELETED", rt, gone, old)
            self._after_delete(rt, gone)
            return self._present(gone, rt)

    def _after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind != "CustomResourceDefinition":
            return
        # the apiextensions server removes every custom resource of a deleted CRD
        spec = obj.get("spec", {})
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        crt = next((t for t in self._types.values() if t.group == group and t.plural == plural), None)
        store = self._objects.pop((group, plural), {})
        for key in sorted(store):
            gone = clone(store[key])
            gone["metadata"]["resourceVersion"] = str(self._bump())
            if crt is not None:
                self._record("DELETED", crt, gone, store[key])
        self._unregister_crd_types(group, plural)
        for w in self._watches:
            if w.rt.store_key == (group, plural):
                w.closed = True
        self._wake_all()

    # --- reads -------------------------------------------------------------------------------------

    def list_objects(self, rt: ResourceType, namespace: str | None, query: Mapping[str, str]) -> Obj:
        labels = crdschema.label_selector(query.get("labelSelector", ""))
        fields = crdschema.field_selector(query.get("fieldSelector", ""))
        limit = int(query.get("limit") or 0)
        with self._lock:
            rv = self._rv
            start = None
            token = query.get("continue")
            if token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(token.encode()))
                    rv, start = int(state["rv"]), tuple(state["start"])
                except (ValueError, KeyError, TypeError):
                    raise StatusError(400, "BadRequest", "continue key is not valid") from None
                if rv < self._compacted_rv:
                    raise StatusError(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a "
                        "consistent list result. You can start a new list without the continue "
                        "parameter.",
                    )
            store = self._objects.get(rt.store_key, {})
            keys = sorted(
                k for k in store if (namespace is None or k[0] == namespace) and (start is None or k > start)
            )
            items: list[Obj] = []
            more = None
            remaining = 0
            for k in keys:
                obj = store[k]
                if not labels(obj["metadata"].get("labels") or {}) or not fields(obj):
                    continue
                if limit and len(items) >= limit:
                    more = k
                    remaining += 1
                    continue
                items.append(obj)
            presented = [self._present(o, rt) for o in items]
        if not rt.custom:
            for o in presented:
                o.pop("apiVersion", None)
                o.pop("kind", None)
        meta: Obj = {"resourceVersion": str(rv)}
        if more is not None and items:
            last = items[-1]["metadata"]
            cont = {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(cont).encode()).decode()
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = remaining  # the real server gives it only without selectors
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": presented}

    # --- HTTP dispatch -----------------------------------------------------------------------------

    def _discovery(self, path: str) -> Obj | None:
        parts = [p for p in path.split("/") if p]
        if parts in (["api"],):
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self._port}"}
                ],
            }
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, vs) for g, vs in sorted(self._groups().items())],
            }
        if len(parts) == 2 and parts[0] == "apis":
            vs = self._groups().get(parts[1])
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], vs)} if vs else None
        if len(parts) == 3 and parts[0] == "apis":
            return (
                self._resource_list(parts[1], parts[2])
                if parts[2] in self._groups().get(parts[1], [])
                else None
            )
        if parts == ["version"]:
            return dict(SERVER_VERSION)
        return None

    @staticmethod
    def _group(name: str, versions: list[str]) -> Obj:
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": vs, "preferredVersion": vs[0]}

    def _resource_list(self, group: str, version: str) -> Obj:
        resources: list[Obj] = []
        for (g, v, _), rt in sorted(self._types.items()):
            if g == group and v == version:
                resources.append(rt.describe())
                if rt.status:
                    resources.append(
                        {
                            "name": f"{rt.plural}/status",
                            "singularName": "",
                            "namespaced": rt.namespaced,
                            "kind": rt.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def _route(self, path: str) -> tuple[ResourceType, str | None, str | None, str]:
        """(type, namespace, name, subresource) for a resource path."""
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        with self._lock:
            rt = self._type(group, version, rest[0])
        if rt.namespaced != (namespace is not None) and len(rest) > 1:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not (sub == "status" and rt.status):
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return rt, namespace, name, sub

    def handle(self, req: _Request) -> _Response | _Watch:
        if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
            raise StatusError(401, "Unauthorized", "Unauthorized")
        path = req.path.rstrip("/") or "/"
        if path in ("/healthz", "/readyz", "/livez"):
            return _Response(200, "ok")
        if path == "/fake/stats" and req.method == "GET":
            # not Kubernetes: lets a test or benchmark in another process read the request log's totals
            with self._lock:
                return _Response(
                    200,
                    {
                        "requests": len(self.requests),
                        "writes": sum(1 for r in self.requests if r.is_write),
                        "resourceVersion": self._rv,
                    },
                )
        if req.method == "GET":
            with self._lock:
                doc = self._discovery(path)
            if doc is not None:
                return _Response(200, doc)
            if path.startswith("/openapi"):
                raise StatusError(404, "NotFound", "the server could not find the requested resource")
        rt, namespace, name, sub = self._route(path)
        q = req.query
        manager = q.get("fieldManager") or req.headers.get("user-agent", "unknown").split("/")[0]
        dry = q.get("dryRun") == "All"
        if req.method == "GET" and name is None:
            if q.get("watch") in ("true", "1"):
                return _Watch(self, rt, namespace, q)
            return _Response(200, self.list_objects(rt, namespace, q))
        if req.method == "GET":
            with self._lock:
                return _Response(200, self._present(self._live(rt, namespace, name or ""), rt))
        if req.method == "POST" and name is None:
            return _Response(
                201, self.create(rt, namespace, _json_body(req.body), manager=manager, dry_run=dry)
            )
        if req.method == "PUT" and name is not None:
            return _Response(
                200,
                self.update(
                    rt, namespace, name, _json_body(req.body), manager=manager, subresource=sub, dry_run=dry
                ),
            )
        if req.method == "PATCH" and name is not None:
            obj, code = self.patch(
                rt,
                namespace,
                name,
                req.body,
                req.headers.get("content-type", ""),
                manager=q.get("fieldManager", "")
                if "apply" in req.headers.get("content-type", "")
                else manager,
                force=q.get("force") in ("true", "1"),
                subresource=sub,
                dry_run=dry,
            )
            return _Response(code, obj)
        if req.method == "DELETE" and name is not None:
            options = _json_body(req.body) if req.body.strip() else {}
            obj = self.delete(
                rt, namespace, name, options, dry_run=dry or "All" in (options.get("dryRun") or [])
            )
            if rt.custom or rt.kind in ("Pod", "Namespace") or obj["metadata"].get("deletionTimestamp"):
                return _Response(200, obj)
            return _Response(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "uid": obj["metadata"]["uid"],
                    },
                },
            )
        if req.method == "DELETE":
            with self._lock:
                targets = [o["metadata"]["name"] for o in self.list_objects(rt, namespace, q)["items"]]
            for n in targets:
                with contextlib.suppress(StatusError):
                    self.delete(rt, namespace, n, {}, dry_run=dry)
            return _Response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        raise StatusError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    def _fault(self, method: str, path: str, is_watch: bool) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(method, path, is_watch):
                    f.hits += 1
                    return f
        return None


def _scope(rt: ResourceType, subresource: str) -> Scope:
    if subresource == "status":
        return "status"
    return "main" if rt.status else "all"


def _spec_of(obj: Obj, rt: ResourceType) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind", "status")}


def _comparable(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k not in ("apiVersion",)}
    md = dict(out.get("metadata") or {})
    md.pop("resourceVersion", None)
    mf = []
    for e in md.pop("managedFields", None) or []:
        mf.append({k: v for k, v in e.items() if k != "time"})
    md["managedFields"] = sorted(mf, key=lambda e: (e.get("manager", ""), e.get("operation", "")))
    out["metadata"] = md
    return out


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order: GA before beta before alpha, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def _decode(body: bytes) -> Any:
    """A JSON or YAML request body (apply bodies are YAML by content type, and usually JSON)."""
    try:
        return json.loads(body or b"null")
    except ValueError:
        pass
    try:
        return yaml.load(body.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StatusError(400, "BadRequest", f"error decoding body: {exc}") from None


def _json_body(body: bytes) -> Obj:
    obj = _decode(body) if body else {}
    if not isinstance(obj, dict):
        raise StatusError(400, "BadRequest", "the request body must be an object")
    return obj


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise StatusError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(doc: Obj, ops: list[Any]) -> Obj:
    out: Any = clone(doc)

    def parent(tokens: list[str]) -> tuple[Any, str]:
        node = out
        for t in tokens[:-1]:
            node = node[int(t)] if isinstance(node, list) else node[t]
        return node, tokens[-1]

    try:
        for op in ops:
            kind, tokens = op["op"], _pointer(op["path"])
            if kind == "test":
                node = out
                for t in tokens:
                    node = node[int(t)] if isinstance(node, list) else node[t]
                if node != op.get("value"):
                    raise StatusError(
                        422,
                        "Invalid",
                        f"the server rejected our request: test operation for path {op['path']!r} failed",
                    )
                continue
            if kind in ("move", "copy"):
                src = _pointer(op["from"])
                node = out
                for t in src:
                    node = node[int(t)] if isinstance(node, list) else node[t]
                value = clone(node)
                if kind == "move":
                    p, k = parent(src)
                    if isinstance(p, list):
                        p.pop(int(k))
                    else:
                        del p[k]
                kind, op = "add", {"value": value}
            p, k = parent(tokens)
            if kind == "add":
                if isinstance(p, list):
                    p.insert(len(p) if k == "-" else int(k), clone(op["value"]))
                else:
                    p[k] = clone(op["value"])
            elif kind == "replace":
                if isinstance(p, list):
                    p[int(k)] = clone(op["value"])
                else:
                    if k not in p:
                        raise KeyError(k)
                    p[k] = clone(op["value"])
            elif kind == "remove":
                if isinstance(p, list):
                    p.pop(int(k))
                else:
                    del p[k]
            else:
                raise StatusError(422, "Invalid", f"unknown JSON patch operation {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise StatusError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    if not isinstance(out, dict):
        raise StatusError(422, "Invalid", "the patch must leave an object")
    return out


# core/v1 Event field <-> events.k8s.io/v1 Event field (one storage, two shapes)
_EVENT_FIELDS = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)


def _core_event_to_events_v1(obj: Obj) -> Obj:
    out = dict(obj)
    for core, v1 in _EVENT_FIELDS:
        if core in out:
            out[v1] = out.pop(core)
    return out


def _events_v1_to_core_event(obj: Obj) -> Obj:
    out = dict(obj)
    for core, v1 in _EVENT_FIELDS:
        if v1 in out:
            out[core] = out.pop(v1)
    return out


class _Server(ThreadingHTTPServer):
    # the default accept backlog (5) resets connections when a test opens dozens at once
    request_queue_size = 512
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: FakeKubeAPI

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces stderr lines
        return

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the client's
        # delayed ACK stall every response by ~40 ms (Go's net/http sets it too)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.api._lock:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.api._lock:
            self.api._connections.discard(self.connection)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        is_watch = query.get("watch") in ("true", "1")
        req = _Request(self.command, url.path, query, headers, body)
        status = 0
        try:
            fault = self.api._fault(self.command, url.path, is_watch)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:
                    status = -1
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.status:
                    hdrs = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    reason = {
                        429: "TooManyRequests",
                        500: "InternalError",
                        503: "ServiceUnavailable",
                        504: "Timeout",
                        403: "Forbidden",
                        401: "Unauthorized",
                    }.get(fault.status, "InternalError")
                    raise StatusError(fault.status, reason, f"injected fault: {reason}", headers=hdrs)
            result = self.api.handle(req)
            if isinstance(result, _Watch):
                status = 200
                self._stream(result)
                return
            status = result.status
            self._send(result.status, result.body, result.headers)
        except StatusError as exc:
            status = exc.code
            self._send(exc.code, exc.body(), exc.headers)
        except crdschema.SelectorError as exc:
            status = 400
            self._send(400, StatusError(400, "BadRequest", str(exc)).body(), {})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.api._lock:
                self.api.requests.append(
                    RequestRecord(
                        self.command,
                        url.path,
                        query,
                        headers.get("content-type", ""),
                        status,
                        is_watch,
                        headers.get("user-agent", ""),
                        time.time(),
                    )
                )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send(self, code: int, body: Obj | str, headers: Mapping[str, str]) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body, sort_keys=True).encode()
        self.send_response(code)
        self.send_header(
            "Content-Type", "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, watch: _Watch) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

        def write(data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            clean = watch.serve(write)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            return
        if clean:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        else:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeKubeAPI]:
    """``with running() as api:`` a started fake that is stopped afterwards."""
    api = FakeKubeAPI(**kwargs).start()
    try:
        yield api
    finally:
        api.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m smi_bridge.controller.testing.fakeapi [--port N]``: serve until interrupted."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="a fake Kubernetes API server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpointslice-version", action="append", default=[])
    args = parser.parse_args(argv)
    api = FakeKubeAPI(port=args.port, endpointslice_versions=args.endpointslice_version or ("v1",)).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sys.stdout.write(api.url + "\n")
    sys.stdout.flush()
    stop.wait()
    api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "SERVER_VERSION",
    "Fault",
    "FakeKubeAPI",
    "RequestRecord",
    "ResourceType",
    "StatusError",
    "running",
]
