"""Informer-style caches: list, then watch from the list's resourceVersion, forever.

The protocol rules this follows (research/controller-testbed.md, behaviours 2-6):

* list (paged) and replace the cache, telling the owner what was added, changed and removed since
  the previous cache (a relist after a 410 is a rebuild, not a reset to empty);
* watch from the list's resourceVersion; on a clean end of the stream (``timeoutSeconds``, the
  server's own timeout) watch again from the last resourceVersion seen;
* a 410 ``Expired`` arrives as an ERROR event inside a 200 stream, or as the HTTP status of the
  watch: list again;
* BOOKMARK events only move the resourceVersion; they are used when they come and never required;
* connection failures back off with jitter and resume from the last resourceVersion.

Objects are stored without ``metadata.managedFields`` unless asked (only the controller's own outputs
need them, to tell what it applied; they are often the larger half of an object).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from smi_bridge.controller.kubeapi import ApiError, Backoff, KubeClient, ResourceType

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
ChangeHandler = Callable[["Informer", Obj | None, Obj | None], None]

log = logging.getLogger("smi_bridge.controller.informer")


class Expired(Exception):
    """The watch's resourceVersion is too old (410): the cache must be listed again."""


def key_of(obj: Obj) -> Key:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name") or ""))


def _slim(obj: Obj, rt: ResourceType, keep_managed_fields: bool = False) -> Obj:
    md = obj.get("metadata")
    if not keep_managed_fields and isinstance(md, dict) and "managedFields" in md:
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}
    # list items of built-in types come without apiVersion/kind
    if "apiVersion" not in obj or "kind" not in obj:
        obj = {**obj, "apiVersion": rt.api_version, "kind": rt.kind}
    return obj


class Informer:
    """The cache of one resource type in one namespace (or all), kept current by list+watch.

    ``on_change(informer, old, new)`` is called for every change: ``old is None`` for an addition,
    ``new is None`` for a removal. It runs on the event loop and must not block.
    """

    def __init__(
        self,
        client: KubeClient,
        rt: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        on_change: ChangeHandler | None = None,
        backoff: Backoff | None = None,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (240, 360),
        on_error: Callable[[Informer, Exception], None] | None = None,
        keep_managed_fields: bool = False,
    ) -> None:
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.on_change = on_change
        self.on_error = on_error
        self.keep_managed_fields = keep_managed_fields
        self.backoff = backoff or Backoff(base=0.2, cap=30.0)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.store: dict[Key, Obj] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.lists = 0  # how many times the cache was (re)listed
        self.watches = 0  # how many watch requests were made
        self.gone = False  # the type stopped being served (404)
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()

    @property
    def name(self) -> str:
        where = self.namespace or "*"
        sel = f" [{self.label_selector}]" if self.label_selector else ""
        return f"{self.rt}@{where}{sel}"

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.store.get((namespace, name))

    async def run(self) -> None:
        need_list = True
        failures = 0
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                failures = 0
            except Expired:
                need_list = True
                failures += 1
                if failures > 1:
                    await asyncio.sleep(self.backoff.delay(failures - 1))
            except ApiError as exc:
                failures += 1
                if exc.status == 410:
                    need_list = True
                elif exc.status == 404:
                    # the type is no longer served (its CRD was deleted): everything in it is gone
                    self.gone = True
                    self._replace({}, "")
                    self.synced.set()
                if self.on_error is not None:
                    self.on_error(self, exc)
                log.debug("informer %s: %s (retry %d)", self.name, exc, failures)
                await asyncio.sleep(self.backoff.delay(failures, exc.retry_after))
            except (ValueError, TypeError, KeyError) as exc:
                # an answer we could not read (not JSON, an unexpected shape): keep the cache, say so,
                # list again after a pause; a cache must never die quietly
                failures += 1
                need_list = True
                log.warning(
                    "informer %s: unreadable answer from the API server: %r (retry %d)",
                    self.name,
                    exc,
                    failures,
                )
                if self.on_error is not None:
                    self.on_error(self, exc)
                await asyncio.sleep(self.backoff.delay(failures))

    async def _relist(self) -> None:
        items: dict[Key, Obj] = {}
        token: str | None = None
        rv = ""
        while True:
            try:
                page = await self.client.list_objects(
                    self.rt,
                    self.namespace,
                    label_selector=self.label_selector,
                    limit=self.page_size,
                    continue_=token,
                )
            except ApiError as exc:
                if exc.status == 410 and token:
                    # the continue token outlived the server's history: start the list over
                    items, token = {}, None
                    continue
                raise
            md = page.get("metadata") or {}
            if not token:
                rv = str(md.get("resourceVersion") or "")
            for raw in page.get("items") or []:
                if isinstance(raw, dict):
                    obj = _slim(raw, self.rt, self.keep_managed_fields)
                    items[key_of(obj)] = obj
            token = md.get("continue") or None
            if not token:
                break
        self.lists += 1
        self.gone = False
        self._replace(items, rv)
        self.synced.set()

    def _replace(self, items: dict[Key, Obj], rv: str) -> None:
        old = self.store
        self.store = items
        self.resource_version = rv
        if self.on_change is None:
            return
        for key, obj in items.items():
            prev = old.get(key)
            if prev is None or _rv(prev) != _rv(obj):
                self.on_change(self, prev, obj)
        for key, prev in old.items():
            if key not in items:
                self.on_change(self, prev, None)

    async def _watch(self) -> None:
        low, high = self.watch_timeout
        self.watches += 1
        async for event in self.client.watch(
            self.rt,
            self.namespace,
            resource_version=self.resource_version or None,
            timeout_seconds=self._rng.randint(low, high) if high > low else low,
            label_selector=self.label_selector,
        ):
            kind = event.get("type")
            raw = event.get("object")
            if not isinstance(raw, dict):
                continue
            if kind == "ERROR":
                code = raw.get("code")
                if code == 410 or raw.get("reason") in ("Expired", "Gone"):
                    raise Expired(str(raw.get("message", "")))
                raise ApiError(
                    int(code or 500), str(raw.get("reason", "Error")), str(raw.get("message", "")), body=raw
                )
            rv = str((raw.get("metadata") or {}).get("resourceVersion") or "")
            if kind == "BOOKMARK":
                if rv:
                    self.resource_version = rv
                continue
            obj = _slim(raw, self.rt, self.keep_managed_fields)
            key = key_of(obj)
            prev = self.store.get(key)
            if kind in ("ADDED", "MODIFIED"):
                self.store[key] = obj
                if rv:
                    self.resource_version = rv
                if self.on_change is not None:
                    self.on_change(self, prev, obj)
            elif kind == "DELETED":
                self.store.pop(key, None)
                if rv:
                    self.resource_version = rv
                if self.on_change is not None and prev is not None:
                    self.on_change(self, prev, None)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


__all__ = ["Expired", "Informer", "Key", "key_of"]
