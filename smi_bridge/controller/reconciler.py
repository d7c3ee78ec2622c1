"""The reconcile loop: caches -> units -> desired objects -> server-side apply, prune, finalizers, Events.

One pass (``reconcile_once``):

1. regroup namespaces into units (``desired.namespace_groups``) and pick the units touched by the
   changes since the last pass (including units that split or merged);
2. build and emit those units with the chosen backend (``desired.translate_unit``) and merge every
   unit's objects into one desired state, finalized with ownerReferences and the desired-hash;
3. apply what differs from the live object by server-side apply (field manager ``smi-bridge``,
   never ``force`` on an object we do not own), delete what we own and no longer emit, keep the
   cleanup finalizer on SMI objects whose outputs live in another namespace;
4. turn diagnostics and write outcomes into Events on the SMI objects they are about.

A converged controller sends nothing: an output is applied only when the desired body differs from
the live object (``desired.is_current``) or from what we last applied; the watch events our own
writes cause are recognised by resourceVersion; Events are de-duplicated per object version.
Only the leader writes; the others keep their caches warm.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from backends.base import Options
from smi_bridge.controller import desired as d
from smi_bridge.controller.events import EventRecorder, EventType, Regarding, note_for, reason_for
from smi_bridge.controller.informer import Informer
from smi_bridge.controller.kubeapi import ApiError, Backoff, Discovery, KubeClient
from smi_bridge.controller.telemetry import Telemetry
from smi_bridge.diagnostics import Check, Diagnostic, Severity

Obj = dict[str, Any]
ObjKey = d.ObjKey
SourceKey = d.SourceKey

log = logging.getLogger("smi_bridge.controller")

APPLY_CONFLICT = Check("SMC001", Severity.WARNING, "another field manager owns fields of an output object")
NOT_OWNED = Check(
    "SMC002", Severity.WARNING, "an object of the output's name exists and is not managed by smi-bridge"
)
KIND_MISSING = Check(
    "SMC003", Severity.ERROR, "the cluster does not serve an output kind (CRD not installed)"
)
APPLY_REJECTED = Check("SMC004", Severity.ERROR, "the API server rejected an output object")
OUT_OF_SCOPE = Check("SMC005", Severity.WARNING, "an output object falls outside the watched namespaces")
OWNERSHIP_RESTORED = Check(
    "SMC007", Severity.INFO, "fields of an owned output changed by another manager were restored"
)
APPLY_FAILED = Check("SMC008", Severity.WARNING, "an output could not be written (will retry)")
INTERNAL = Check("SMC009", Severity.ERROR, "translating a group of namespaces failed inside smi-bridge")

CHECKS: tuple[Check, ...] = (
    APPLY_CONFLICT,
    NOT_OWNED,
    KIND_MISSING,
    APPLY_REJECTED,
    OUT_OF_SCOPE,
    d.OUTPUT_CONFLICT,
    OWNERSHIP_RESTORED,
    APPLY_FAILED,
    INTERNAL,
)
CONTROLLER_REASONS = {
    "SMC001": "ApplyConflict",
    "SMC002": "NotOwned",
    "SMC003": "TargetKindMissing",
    "SMC004": "ApplyRejected",
    "SMC005": "OutOfScope",
    "SMC006": "OutputsDisagree",
    "SMC007": "OwnershipRestored",
    "SMC008": "ApplyFailed",
    "SMC009": "InternalError",
}

# What each backend may emit (apiVersion, kind): output informers watch these (label-selected) so a
# restarted controller knows what it owns. Anything else a backend emits is watched once seen.
TARGET_KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "istio": (
        ("networking.istio.io/v1", "VirtualService"),
        ("networking.istio.io/v1", "DestinationRule"),
        ("security.istio.io/v1", "AuthorizationPolicy"),
    ),
    "linkerd": (
        ("policy.linkerd.io/v1beta3", "Server"),
        ("policy.linkerd.io/v1beta3", "HTTPRoute"),
        ("policy.linkerd.io/v1alpha1", "AuthorizationPolicy"),
        ("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication"),
        ("linkerd.io/v1alpha2", "ServiceProfile"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
    ),
    "consul": (
        ("consul.hashicorp.com/v1alpha1", "ServiceDefaults"),
        ("consul.hashicorp.com/v1alpha1", "ServiceResolver"),
        ("consul.hashicorp.com/v1alpha1", "ServiceSplitter"),
        ("consul.hashicorp.com/v1alpha1", "ServiceRouter"),
        ("consul.hashicorp.com/v1alpha1", "ServiceIntentions"),
    ),
    "gateway-api": (
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1", "TCPRoute"),
        ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
    ),
}
CONTROLLER_BACKENDS = tuple(TARGET_KINDS)

Outcome = Literal[
    "created",
    "updated",
    "forced",
    "unchanged",
    "skipped",
    "frozen",
    "not-owned",
    "conflict",
    "missing-kind",
    "rejected",
    "out-of-scope",
    "failed",
    "deleted",
    "gone",
]


@dataclass
class Settings:
    backend: str
    options: Options = field(default_factory=Options)
    namespaces: tuple[str, ...] | None = None  # None: every namespace
    concurrency: int = 4
    retry: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=60.0))


@dataclass
class PassResult:
    """What one pass did (tests and the benchmark read it)."""

    units: int = 0
    outcomes: dict[ObjKey, Outcome] = field(default_factory=dict)
    finalizer_writes: int = 0
    seconds: float = 0.0

    def count(self, *kinds: Outcome) -> int:
        return sum(1 for o in self.outcomes.values() if o in kinds)


def _rv_int(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "0"))
    except ValueError:
        return 0


def _smi_key(obj: Mapping[str, Any]) -> SourceKey:
    md = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")))


def settle_memory() -> None:
    """Collect once, then freeze what survived.

    The caches and the desired state are long-lived; left to the cyclic collector, every full
    collection walks them again, a pause of up to a third of a second for a few thousand objects,
    which lands on whichever single change comes next. ``gc.freeze`` moves them out of its reach;
    the collection before it makes sure no garbage is frozen along.
    """
    gc.collect()
    gc.freeze()


class Reconciler:
    """Holds the controller's view of the cluster and makes it true."""

    def __init__(
        self,
        client: KubeClient,
        settings: Settings,
        *,
        telemetry: Telemetry | None = None,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.telemetry = telemetry or Telemetry()
        self.recorder = recorder
        self.discovery = Discovery()
        self.parse = d.ParseCache()
        self.smi: dict[SourceKey, Obj] = {}
        self.smi_by_ns: dict[str, dict[tuple[str, str], Obj]] = {}
        self.inventory_by_ns: dict[str, dict[tuple[str, str], Obj]] = {}
        self.outputs_live: dict[ObjKey, Obj] = {}
        self.unit_results: dict[d.Unit, d.UnitResult] = {}
        self.key_units: dict[ObjKey, set[d.Unit]] = {}
        self.desired: dict[ObjKey, Obj] = {}
        self.emitted: dict[ObjKey, tuple[Obj, tuple[str, ...]]] = {}  # what finalize last ran on
        self.applied_sources: dict[ObjKey, dict[SourceKey, str]] = {}  # source resourceVersions at apply
        self._groups: tuple[tuple[frozenset[str], int], list[d.Unit]] | None = None
        self.tt_changes = 0
        # (apiVersion, kind, namespace) -> a synced cache holds every object of that kind there
        self.covered: Callable[[str, str, str], bool] = lambda _api, _kind, _ns: False
        self.merge_notes: list[Diagnostic] = []
        self.applied: dict[ObjKey, tuple[str, int]] = {}
        self.dirty_ns: set[str] = set()
        self.dirty_outputs: set[ObjKey] = set()
        self.full = True
        self.leading = False
        self.wake = asyncio.Event()
        self.passes = 0
        self.changes = 0  # counts change notifications (for batching bursts)
        self.last_pass = PassResult()
        self.first_change_at: float | None = None
        self._failures: dict[ObjKey, int] = {}
        self._retry_handles: dict[ObjKey, asyncio.TimerHandle] = {}
        self._freeze_due = False
        self._lossy = 0

    # --- change intake (informer callbacks; run on the loop, never block) --------------------------

    def _dirty(self, *namespaces: str) -> None:
        self.changes += 1
        self.dirty_ns.update(namespaces)
        if self.first_change_at is None:
            self.first_change_at = time.monotonic()
        self.wake.set()

    def on_smi_change(self, _inf: Informer, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = _smi_key(obj)
        kind, ns, name = key
        touched = {ns}
        if old is not None and new is not None and _same_policy(old, new):
            # finalizers, resourceVersion, managedFields: nothing translation reads
            self.smi[key] = new
            self.smi_by_ns.setdefault(ns, {})[(kind, name)] = new
            return
        if new is None:
            self.smi.pop(key, None)
            self.smi_by_ns.get(ns, {}).pop((kind, name), None)
            if not self.smi_by_ns.get(ns):
                self.smi_by_ns.pop(ns, None)
            self.parse.forget(kind, ns, name)
        else:
            self.smi[key] = new
            self.smi_by_ns.setdefault(ns, {})[(kind, name)] = new
        if kind == "TrafficTarget":
            self.tt_changes += 1
            for o in (old, new):
                if o is not None:
                    touched |= d.referenced_namespaces(o)
        self._dirty(*touched)

    def on_inventory_change(self, _inf: Informer, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        kind, ns, name = _smi_key(obj)
        bucket = self.inventory_by_ns.setdefault(ns, {})
        if new is None:
            bucket.pop((kind, name), None)
            self.parse.forget(kind, ns, name)
            self._dirty(ns)
            return
        bucket[(kind, name)] = new
        if old is not None:
            # only what translation reads counts: a Pod's status churn must not rebuild anything
            before = self.parse.entries.get((kind, ns, name))
            after = self.parse.resource(new)
            if before is not None and after is not None and before[1].model == after.model:
                return
        self._dirty(ns)

    def on_output_change(self, _inf: Informer, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = d.output_key(obj)
        if not d.is_ours(obj) and key not in self.desired:
            # another tool's object: remembered (so that we never write over it), nothing to do
            if new is None:
                self.outputs_live.pop(key, None)
            else:
                self.outputs_live[key] = new
            return
        if new is None:
            self.outputs_live.pop(key, None)
            self.applied.pop(key, None)
        else:
            current = self.outputs_live.get(key)
            if current is not None and _rv_int(current) > _rv_int(new):
                return  # an older event than the apply response we already stored
            self.outputs_live[key] = new
            last = self.applied.get(key)
            if last is not None and last[1] == _rv_int(new):
                return  # the echo of our own write
        self.dirty_outputs.add(key)
        self.changes += 1
        if self.first_change_at is None:
            self.first_change_at = time.monotonic()
        self.wake.set()

    def mark_all(self) -> None:
        self.full = True
        self.wake.set()

    # --- the pass ---------------------------------------------------------------------------------

    def _included(self, obj: Mapping[str, Any]) -> bool:
        return not d.is_skipped(obj) and not d.is_terminating(obj)

    def _affected_units(
        self, groups: list[d.Unit], dirty: set[str], full: bool
    ) -> tuple[set[d.Unit], set[d.Unit]]:
        """(new units to rebuild, old units that no longer exist)."""
        new_set = set(groups)
        if full:
            return new_set, {u for u in self.unit_results if u not in new_set}
        affected = {g for g in groups if g & dirty}
        removed: set[d.Unit] = set()
        changed = True
        while changed:
            changed = False
            touched = set().union(*affected) | dirty if affected else set(dirty)
            for u in list(self.unit_results):
                if u in new_set or u in removed:
                    continue
                if u & touched:
                    removed.add(u)
                    changed = True
                    for g in groups:
                        if g & u and g not in affected:
                            affected.add(g)
        return affected, removed

    def _translate(self, unit: d.Unit) -> d.UnitResult:
        resources = []
        for ns in sorted(unit):
            for (_kind, _name), obj in sorted(self.smi_by_ns.get(ns, {}).items()):
                if self._included(obj):
                    res = self.parse.resource(obj)
                    if res is not None:
                        resources.append(res)
            for (_kind, _name), obj in sorted(self.inventory_by_ns.get(ns, {}).items()):
                res = self.parse.resource(obj)
                if res is not None:
                    resources.append(res)
        return d.translate_unit(unit, resources, self.settings.backend, self.settings.options)

    def _set_unit(self, unit: d.Unit, result: d.UnitResult | None) -> set[ObjKey]:
        old = self.unit_results.pop(unit, None)
        keys: set[ObjKey] = set()
        if old is not None:
            for k in old.objects:
                self.key_units.get(k, set()).discard(unit)
                keys.add(k)
        if result is not None:
            self.unit_results[unit] = result
            for k in result.objects:
                self.key_units.setdefault(k, set()).add(unit)
                keys.add(k)
        for k in keys:
            if not self.key_units.get(k):
                self.key_units.pop(k, None)
        return keys

    def _refresh_desired(self, keys: Iterable[ObjKey]) -> set[ObjKey]:
        """Recompute the finalized desired body of ``keys``; the keys whose body changed."""
        changed: set[ObjKey] = set()
        for key in keys:
            units = self.key_units.get(key)
            if not units:
                if self.desired.pop(key, None) is not None:
                    changed.add(key)
                continue
            results = [self.unit_results[u] for u in units]
            if len(results) == 1:
                obj = results[0].objects[key]
            else:
                merged, notes = d.merge_units(
                    d.UnitResult(r.unit, {key: r.objects[key]}, [], set()) for r in results
                )
                obj = merged[key]
                self.merge_notes.extend(notes)
            owners = self._owner_uids(obj)
            if key in self.desired and self.emitted.get(key) == (obj, owners):
                continue  # the same emission, the same owners: the finalized body is the same
            self.emitted[key] = (obj, owners)
            body = d.finalize(obj, self.smi)
            if self.desired.get(key) != body:
                self.desired[key] = body
                changed.add(key)
        for key in changed:
            if key not in self.desired:
                self.emitted.pop(key, None)
        return changed

    def _owner_uids(self, obj: Mapping[str, Any]) -> tuple[str, ...]:
        ns = (obj.get("metadata") or {}).get("namespace")
        return tuple(
            str(((self.smi.get(ref) or {}).get("metadata") or {}).get("uid", ""))
            for ref in d.source_refs(obj)
            if ref[1] == ns
        )

    def in_scope(self, namespace: str) -> bool:
        return self.settings.namespaces is None or namespace in self.settings.namespaces

    async def reconcile_once(self) -> PassResult:
        """One pass over everything marked dirty since the last one."""
        started = self.first_change_at or time.monotonic()
        self.first_change_at = None
        self.wake.clear()
        dirty, self.dirty_ns = self.dirty_ns, set()
        outputs, self.dirty_outputs = self.dirty_outputs, set()
        full, self.full = self.full, False
        result = PassResult()
        # 1. units
        # every namespace is a unit (or part of one): backends also emit for namespaces that hold only
        # workloads (a mesh-wide default deny, for instance), as they do on a dump of the cluster
        known = frozenset(self.smi_by_ns) | {ns for ns, objs in self.inventory_by_ns.items() if objs}
        if self._groups is not None and self._groups[0] == (known, self.tt_changes):
            groups = self._groups[1]
        else:
            tts = [
                o for (kind, _ns, _n), o in self.smi.items() if kind == "TrafficTarget" and self._included(o)
            ]
            groups = d.namespace_groups(known, tts)
            self._groups = ((known, self.tt_changes), groups)
        affected, removed = self._affected_units(groups, dirty, full)
        result.units = len(affected)
        # 2. translate
        touched: set[ObjKey] = set()
        diagnostics: list[Diagnostic] = []
        for u in removed:
            touched |= self._set_unit(u, None)
        for u in sorted(affected, key=sorted):
            try:
                res = self._translate(u)
            except Exception as exc:  # a bug in a backend must not stop the other namespaces
                log.exception("translating namespaces %s failed", ",".join(sorted(u)))
                self.telemetry.errors.labels(what="translate").inc()
                diagnostics.append(
                    INTERNAL(
                        f"translating namespaces {', '.join(sorted(u))} failed: {type(exc).__name__}: {exc}"
                    )
                )
                continue
            touched |= self._set_unit(u, res)
            diagnostics.extend(res.diagnostics)
        # 3. desired state
        self.merge_notes = []
        changed = self._refresh_desired(touched)
        if full:
            changed |= set(self.desired)
        diagnostics.extend(self.merge_notes)
        self._lossy = sum(r.lossy for r in self.unit_results.values())
        self.telemetry.lossy.set(self._lossy)
        self.telemetry.lossy_total.inc(sum(r.lossy for u, r in self.unit_results.items() if u in affected))
        # 4. writes
        apply_keys = {k for k in changed | outputs if k in self.desired}
        prune_keys = {k for k in changed | outputs if k not in self.desired}
        if full:
            prune_keys |= {k for k in self.outputs_live if k not in self.desired}
        per_source: dict[SourceKey, list[str]] = {}
        if self.leading:
            await self._write_all(apply_keys, prune_keys, result, per_source)
            result.finalizer_writes = await self._finalizers(affected, removed, full)
        else:
            self.dirty_outputs |= apply_keys | prune_keys
        # 5. feedback
        if self.leading and self.recorder is not None:
            self._report(diagnostics, per_source)
        counts: dict[str, int] = {}
        for _api, kind, _ns, _name in self.desired:
            counts[kind] = counts.get(kind, 0) + 1
        for kind, n in counts.items():
            self.telemetry.managed.labels(kind=kind).set(n)
        result.seconds = time.monotonic() - started
        self.passes += 1
        self.last_pass = result
        self.telemetry.reconciles.labels(result="error" if result.count("failed") else "success").inc()
        self.telemetry.reconcile_seconds.observe(result.seconds)
        return result

    # --- writing ----------------------------------------------------------------------------------

    async def _write_all(
        self,
        apply_keys: set[ObjKey],
        prune_keys: set[ObjKey],
        result: PassResult,
        per_source: dict[SourceKey, list[str]],
    ) -> None:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(key: ObjKey, prune: bool) -> None:
            async with gate:
                if not self.leading:
                    self.dirty_outputs.add(key)
                    return
                obj = self.desired.get(key) or self.outputs_live.get(key) or {}
                try:
                    outcome = await (self._prune(key) if prune else self._apply(key))
                except ApiError as exc:
                    outcome = "failed"
                    self.telemetry.errors.labels(what="delete" if prune else "apply").inc()
                    self._retry_later(key)
                    log.warning("%s %s: %s", "deleting" if prune else "applying", "/".join(key[1:]), exc)
                    if not prune:
                        self._note(
                            key, APPLY_FAILED(f"{key[1]} {key[2]}/{key[3]} could not be written: {exc}")
                        )
                else:
                    self._failures.pop(key, None)
                result.outcomes[key] = outcome
                if outcome in ("created", "updated", "forced", "deleted"):
                    before = self.applied_sources.get(key, {})
                    now = {
                        ref: str(((self.smi.get(ref) or {}).get("metadata") or {}).get("resourceVersion", ""))
                        for ref in d.source_refs(obj)
                    }
                    # an update is told on the sources that changed since the last write (one
                    # TrafficTarget more must not put an Event on all the others of a shared object)
                    told = (
                        now if outcome != "updated" else {r: v for r, v in now.items() if before.get(r) != v}
                    )
                    for src in told:
                        per_source.setdefault(src, []).append(f"{outcome} {key[1]} {key[2]}/{key[3]}")
                    if outcome == "deleted":
                        self.applied_sources.pop(key, None)
                    else:
                        self.applied_sources[key] = now

        # applies in kind order (what is referenced first), prunes after; Events wait meanwhile
        ordered = sorted(apply_keys, key=lambda k: (_kind_rank(k[1]), k))
        if self.recorder is not None and len(ordered) + len(prune_keys) > self.settings.concurrency:
            self.recorder.hold()
        try:
            await asyncio.gather(*(one(k, False) for k in ordered))
            await asyncio.gather(*(one(k, True) for k in sorted(prune_keys)))
        finally:
            if self.recorder is not None:
                self.recorder.release()

    def _retry_later(self, key: ObjKey) -> None:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay = self.settings.retry.delay(n)
        old = self._retry_handles.pop(key, None)
        if old is not None:
            old.cancel()

        def requeue() -> None:
            self._retry_handles.pop(key, None)
            self.dirty_outputs.add(key)
            self.wake.set()

        self._retry_handles[key] = asyncio.get_running_loop().call_later(delay, requeue)

    def _frozen(self, live: Mapping[str, Any]) -> bool:
        """An output one of whose SMI sources says ``smi-bridge.io/skip``: left exactly as it is."""
        for ref in d.source_refs(live):
            src = self.smi.get(ref)
            if src is not None and d.is_skipped(src):
                return True
        return False

    def _note(self, key: ObjKey, diagnostic: Diagnostic) -> None:
        """A write outcome, told on every SMI source of the object (Warning, or Normal for info)."""
        if diagnostic.severity >= Severity.WARNING:
            log.warning("%s: %s", diagnostic.code, diagnostic.message)
        if self.recorder is None or not self.leading:
            return
        obj = self.desired.get(key) or self.outputs_live.get(key) or {}
        kind: EventType = "Warning" if diagnostic.severity >= Severity.WARNING else "Normal"
        for ref in d.source_refs(obj):
            src = self.smi.get(ref)
            if src is not None and not d.is_skipped(src):
                self.recorder.record(
                    Regarding.of(src), kind, reason_for(diagnostic), note_for(diagnostic), action="Apply"
                )

    async def _apply(self, key: ObjKey) -> Outcome:
        api, kind, ns, name = key
        body = self.desired[key]
        if ns and not self.in_scope(ns):
            self._note(
                key,
                OUT_OF_SCOPE(
                    f"{kind} {ns}/{name} would be written outside the watched namespaces "
                    f"({', '.join(self.settings.namespaces or ())}); not applied"
                ),
            )
            return "out-of-scope"
        rt = self.discovery.find(api, kind)
        if rt is None:
            self._note(
                key,
                KIND_MISSING(
                    f"the cluster does not serve {kind} {api}; {kind} {ns}/{name} is not "
                    "applied (install its CRD)"
                ),
            )
            return "missing-kind"
        want = d.desired_hash(body)
        live = self.outputs_live.get(key)
        last = self.applied.get(key)
        if last is not None and last[0] == want and (live is None or _rv_int(live) <= last[1]):
            return "unchanged"  # our last apply is this body; the cache has not caught up yet
        if live is None and not self.covered(api, kind, ns):
            # no synced cache of this kind here: ask, so as never to write over an object we do not own
            try:
                live = await self.client.get(rt, ns or None, name)
            except ApiError as exc:
                if exc.status != 404:
                    raise
        if live is not None and not d.is_ours(live):
            self._note(
                key,
                NOT_OWNED(
                    f"{kind} {ns}/{name} exists and is not managed by smi-bridge (no "
                    "app.kubernetes.io/managed-by label and generator annotation); left alone"
                ),
            )
            return "not-owned"
        if live is not None:
            if d.is_skipped(live):
                return "skipped"
            if self._frozen(live):
                return "frozen"
            if d.is_current(live, body):
                self.applied[key] = (want, _rv_int(live))
                return "unchanged"
        outcome: Outcome = "created" if live is None else "updated"
        try:
            self.telemetry.writes.labels(verb="apply").inc()
            out = await self.client.apply(rt, body, manager=d.FIELD_MANAGER)
        except ApiError as exc:
            if exc.status == 409 and exc.causes:
                fields = ", ".join(f"{c.get('field', '')} ({c.get('message', '')})" for c in exc.causes)
                if live is not None and d.is_ours(live) and d.applied_by_us(live):
                    self.telemetry.writes.labels(verb="apply").inc()
                    out = await self.client.apply(rt, body, manager=d.FIELD_MANAGER, force=True)
                    self._note(
                        key,
                        OWNERSHIP_RESTORED(
                            f"{kind} {ns}/{name} is managed by smi-bridge; fields changed by another manager were "
                            f"restored: {fields}"
                        ),
                    )
                    outcome = "forced"
                else:
                    self._note(
                        key,
                        APPLY_CONFLICT(
                            f"applying {kind} {ns}/{name} conflicts with another field manager: {fields}; not "
                            "forced, because smi-bridge never applied this object",
                            hint="delete it so that smi-bridge can create it, or mark the SMI source "
                            'smi-bridge.io/skip: "true"',
                        ),
                    )
                    return "conflict"
            elif exc.status == 404:
                self._note(
                    key,
                    KIND_MISSING(
                        f"the cluster does not serve {kind} {api}; {kind} {ns}/{name} is not "
                        "applied (install its CRD)"
                    ),
                )
                return "missing-kind"
            elif exc.status in (400, 403, 422):
                self._note(key, APPLY_REJECTED(f"the API server rejected {kind} {ns}/{name}: {exc.message}"))
                return "rejected"
            else:
                raise
        self.applied[key] = (want, _rv_int(out))
        current = self.outputs_live.get(key)
        if current is None or _rv_int(current) < _rv_int(out):
            self.outputs_live[key] = out
        return outcome

    async def _prune(self, key: ObjKey) -> Outcome:
        api, kind, ns, name = key
        live = self.outputs_live.get(key)
        if live is None or not d.is_ours(live) or d.is_skipped(live) or self._frozen(live):
            return "skipped" if live is not None else "gone"
        if ns and not self.in_scope(ns):
            return "out-of-scope"
        rt = self.discovery.find(api, kind)
        if rt is None:
            return "missing-kind"
        uid = (live.get("metadata") or {}).get("uid")
        try:
            self.telemetry.writes.labels(verb="delete").inc()
            await self.client.delete(rt, ns or None, name, uid=str(uid) if uid else None)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
        self.applied.pop(key, None)
        self.outputs_live.pop(key, None)
        return "deleted"

    async def _finalizers(self, affected: set[d.Unit], removed: set[d.Unit], full: bool) -> int:
        """Add or remove the cleanup finalizer on SMI objects of the units this pass touched.

        A terminating object keeps it until none of its outputs is left (they were pruned above,
        once it dropped out of the build); then the deletion can finish.
        """
        namespaces = set().union(*affected, *removed) if (affected or removed) else set()
        # an output's sources all belong to the unit that emitted it: the affected units' objects
        # are enough to know which of their SMI objects need the finalizer
        units = (
            self.unit_results.values()
            if full
            else [self.unit_results[u] for u in affected if u in self.unit_results]
        )
        needed = d.needs_finalizer(o for r in units for o in r.objects.values())
        writes = 0
        for key, obj in list(self.smi.items()):
            md = obj.get("metadata") or {}
            has = d.FINALIZER in (md.get("finalizers") or [])
            terminating = d.is_terminating(obj)
            if not (full or key[1] in namespaces or (terminating and has)) or d.is_skipped(obj):
                continue
            want = self._has_outputs(key) if terminating else key in needed
            if want == has or (terminating and want):
                continue
            writes += await self._set_finalizer(obj, want)
        return writes

    def _has_outputs(self, source: SourceKey) -> bool:
        return any(source in d.source_refs(o) for o in self.outputs_live.values())

    async def _set_finalizer(self, obj: Obj, want: bool) -> int:
        kind = str(obj.get("kind", ""))
        rt = self.discovery.find(str(obj.get("apiVersion", "")), kind)
        if rt is None:
            return 0
        md = obj.get("metadata") or {}
        current = list(md.get("finalizers") or [])
        new = [f for f in current if f != d.FINALIZER] + ([d.FINALIZER] if want else [])
        # optimistic concurrency: the patch carries the resourceVersion we read
        patch = {"metadata": {"finalizers": new, "resourceVersion": md.get("resourceVersion")}}
        for _attempt in range(3):
            try:
                self.telemetry.writes.labels(verb="patch").inc()
                updated = await self.client.merge_patch(
                    rt, md.get("namespace"), str(md.get("name")), patch, manager=d.FIELD_MANAGER
                )
            except ApiError as exc:
                if exc.status == 404:
                    return 1
                if exc.status != 409:
                    self.telemetry.errors.labels(what="finalizer").inc()
                    log.warning("finalizer on %s %s/%s: %s", kind, md.get("namespace"), md.get("name"), exc)
                    return 1
                fresh = await self.client.get(rt, md.get("namespace"), str(md.get("name")))
                fmd = fresh.get("metadata") or {}
                current = list(fmd.get("finalizers") or [])
                new = [f for f in current if f != d.FINALIZER] + ([d.FINALIZER] if want else [])
                if new == current:
                    return 1
                patch = {"metadata": {"finalizers": new, "resourceVersion": fmd.get("resourceVersion")}}
                continue
            self.on_smi_change_from_write(updated)
            return 1
        return 1

    def on_smi_change_from_write(self, obj: Obj) -> None:
        """Our own finalizer write: update the cache at once (the watch event follows)."""
        key = _smi_key(obj)
        if key in self.smi and _rv_int(self.smi[key]) < _rv_int(obj):
            obj = {
                **obj,
                "metadata": {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"},
            }
            self.smi[key] = obj
            self.smi_by_ns.setdefault(key[1], {})[(key[0], key[2])] = obj

    # --- feedback ---------------------------------------------------------------------------------

    def _report(self, diagnostics: list[Diagnostic], per_source: Mapping[SourceKey, list[str]]) -> None:
        assert self.recorder is not None
        by_source: dict[SourceKey, list[Diagnostic]] = {}
        for diag in diagnostics:
            ref = diag.resource
            key = (ref.kind, ref.namespace, ref.name)
            if key in self.smi:
                by_source.setdefault(key, []).append(diag)
            elif diag.severity >= Severity.WARNING and ref.kind not in ("Service", "Pod", "ServiceAccount"):
                log.info("%s %s: %s", diag.code, ref, diag.message)
        for key, diags in by_source.items():
            obj = self.smi[key]
            if d.is_skipped(obj):
                continue
            self.recorder.record_diagnostics(Regarding.of(obj), diags, action="Translate")
        for key, lines in per_source.items():
            src = self.smi.get(key)
            if src is None or d.is_skipped(src) or d.is_terminating(src):
                continue
            shown = "; ".join(sorted(lines)[:8]) + (f"; and {len(lines) - 8} more" if len(lines) > 8 else "")
            self.recorder.record(
                Regarding.of(src), "Normal", "Applied", f"{self.settings.backend}: {shown}", action="Apply"
            )

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self, *, debounce: float = 0.005, max_batch: float = 0.5) -> None:
        """Pass after pass, whenever something is dirty and we lead.

        A burst of changes (a thousand objects created at once) is taken in one pass rather than a
        thousand: after a change the loop waits ``debounce`` and keeps waiting while more keep
        coming, up to ``max_batch``. A lone change waits only ``debounce``.
        """
        while True:
            if self._freeze_due and not self.wake.is_set():
                self._settle_memory()
            await self.wake.wait()
            if not self.leading:
                self.wake.clear()
                continue
            started = time.monotonic()
            seen = self.changes
            await asyncio.sleep(debounce)
            while self.changes != seen and time.monotonic() - started < max_batch:
                seen = self.changes
                await asyncio.sleep(debounce * 4)
            try:
                result = await self.reconcile_once()
                if result.units >= 5 or len(result.outcomes) >= 200:
                    self._freeze_due = True
            except ApiError as exc:
                self.telemetry.errors.labels(what="pass").inc()
                log.warning("reconcile pass failed: %s", exc)
                self.full = True
                await asyncio.sleep(self.settings.retry.delay(1))
                self.wake.set()
            except Exception:  # a bug of ours: keep the controller alive, say so loudly, retry later
                self.telemetry.errors.labels(what="pass").inc()
                log.exception("reconcile pass failed unexpectedly")
                self.full = True
                await asyncio.sleep(self.settings.retry.delay(3))
                self.wake.set()

    def _settle_memory(self) -> None:
        """After a large pass, when nothing waits (see ``settle_memory``)."""
        self._freeze_due = False
        settle_memory()

    def converged(self) -> bool:
        return not (self.dirty_ns or self.dirty_outputs or self.full) and not self._retry_handles


def _same_policy(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        md = {
            k: v
            for k, v in (obj.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields", "finalizers", "generation")
        }
        return {**obj, "metadata": md}

    return strip(old) == strip(new)


def _kind_rank(kind: str) -> int:
    from backends.base import object_sort_key

    return object_sort_key({"kind": kind})[0]


__all__ = [
    "CHECKS",
    "CONTROLLER_BACKENDS",
    "CONTROLLER_REASONS",
    "TARGET_KINDS",
    "PassResult",
    "Reconciler",
    "Settings",
]
