"""Lease-based leader election (coordination.k8s.io/v1), the client-go algorithm with a clean release.

* A candidate reads the Lease. It takes it when the Lease is missing (create; AlreadyExists means
  another candidate won the race), has no holder, or has not changed for ``leaseDurationSeconds``
  as measured on *our* clock from when we last saw it change (so clock skew between machines does
  not matter).
* Renewal is an update (PUT) carrying the resourceVersion we read: a 409 means somebody else wrote
  the Lease first, and we lost.
* The leader steps down when it has not renewed successfully for ``renew_deadline`` (it stops
  writing at once; it does not wait for the Lease to expire), and releases the Lease on shutdown
  (empty holder, duration 1 s) so that a successor does not wait out the full duration.

Why not ``kubernetes.leaderelection``: it is synchronous and blocks forever, uses the default client
configuration, has ``sys.exit`` calls and no release on shutdown (research/controller-testbed.md §3).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smi_bridge.controller.events import micro_time
from smi_bridge.controller.kubeapi import ApiError, KubeClient, ResourceType

Obj = dict[str, Any]
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease")
MANAGER = "smi-bridge-leader-election"

log = logging.getLogger("smi_bridge.controller.leader")


@dataclass
class _Seen:
    holder: str
    rv: str
    renew: str
    at: float  # our clock when this version of the record was first seen


class LeaseElector:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_change = on_change
        self.clock = clock
        self.is_leader = False
        self.transitions_seen = 0
        self._seen: _Seen | None = None
        self._last_renew = 0.0
        self._lease: Obj | None = None

    @property
    def holder(self) -> str | None:
        """The identity holding an unexpired Lease, as far as we know."""
        if self.is_leader:
            return self.identity
        seen = self._seen
        if seen is None or not seen.holder:
            return None
        if self.clock() - seen.at > self._duration_of(self._lease):
            return None
        return seen.holder

    @property
    def leader_known(self) -> bool:
        return self.holder is not None

    def _duration_of(self, lease: Obj | None) -> float:
        if lease is None:
            return self.lease_duration
        return float((lease.get("spec") or {}).get("leaseDurationSeconds") or self.lease_duration)

    def _set_leader(self, value: bool) -> None:
        if value == self.is_leader:
            return
        self.is_leader = value
        self.transitions_seen += 1
        log.info(
            "%s %s leadership of lease %s/%s",
            self.identity,
            "acquired" if value else "lost",
            self.namespace,
            self.name,
        )
        if self.on_change is not None:
            self.on_change(value)

    def _spec(self, *, acquire: bool, transitions: int) -> Obj:
        now = micro_time()
        spec: Obj = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        spec["acquireTime"] = (
            now if acquire else ((self._lease or {}).get("spec") or {}).get("acquireTime", now)
        )
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One round; True when we hold the Lease afterwards."""
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(acquire=True, transitions=0),
            }
            try:
                self._lease = await self.client.create(LEASES, self.namespace, body, manager=MANAGER)
            except ApiError as exc2:
                if exc2.status == 409:
                    return False
                raise
            self._observe(self._lease)
            self._last_renew = self.clock()
            return True
        self._lease = lease
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        assert self._seen is not None
        expired = self.clock() - self._seen.at > self._duration_of(lease)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder != self.identity:
            transitions += 1
        md = {k: v for k, v in (lease.get("metadata") or {}).items() if k != "managedFields"}
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": md,
            "spec": self._spec(acquire=holder != self.identity, transitions=transitions),
        }
        try:
            self._lease = await self.client.replace(LEASES, self.namespace, self.name, body, manager=MANAGER)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        self._observe(self._lease)
        self._last_renew = self.clock()
        return True

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        rv = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        holder, renew = str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or "")
        seen = self._seen
        if seen is None or (seen.holder, seen.rv, seen.renew) != (holder, rv, renew):
            self._seen = _Seen(holder, rv, renew, self.clock())

    async def run(self) -> None:
        """Campaign and renew until cancelled (then release, if we lead)."""
        try:
            while True:
                try:
                    won = await self.try_acquire_or_renew()
                except ApiError as exc:
                    log.debug("lease %s/%s: %s", self.namespace, self.name, exc)
                    won = False
                if won:
                    self._set_leader(True)
                elif self.is_leader and self.clock() - self._last_renew >= self.renew_deadline:
                    self._set_leader(False)
                elif (
                    self.is_leader
                    and not won
                    and self._seen is not None
                    and self._seen.holder != self.identity
                ):
                    self._set_leader(False)  # someone else holds it now: we were too late
                await asyncio.sleep(self.retry_period)
        except asyncio.CancelledError:
            await asyncio.shield(self.release())
            raise

    async def release(self) -> None:
        """Give the Lease up (empty holder, 1 s) if we hold it; errors are logged, not raised."""
        if not self.is_leader or self._lease is None:
            self._set_leader(False)
            return
        self._set_leader(False)
        lease = self._lease
        spec = dict(lease.get("spec") or {})
        spec.update({"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": micro_time()})
        md = {k: v for k, v in (lease.get("metadata") or {}).items() if k != "managedFields"}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md, "spec": spec}
        try:
            self._lease = await self.client.replace(LEASES, self.namespace, self.name, body, manager=MANAGER)
        except ApiError as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)


__all__ = ["LEASES", "LeaseElector"]
