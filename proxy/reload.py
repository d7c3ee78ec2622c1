"""Hot reload: on SIGHUP or when the config file changes, load, check, compile, swap.

The new config is read, validated against the schema and compiled (``semantics.compile``) in a
worker thread, away from the event loop that serves requests. Only a config that compiled is
swapped in, by one assignment on the loop thread, after its new listeners are bound; requests
already running keep the ``ActiveConfig`` they started with. A config that fails is logged
(file, line, field), counted in ``smi_proxy_config_reloads_total{result="failure"}``, and the
last good one keeps serving.

The file is watched by polling its size, mtime and inode (``--watch-interval``): simple, and it
sees the rename-into-place that editors and ConfigMap volumes do.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from proxy.config import ConfigError, load_config
from proxy.dataplane import DataPlane
from proxy.listener import ListenerSet

log = logging.getLogger("smi-proxy")


def file_signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ConfigReloader:
    def __init__(
        self,
        path: Path,
        plane: DataPlane,
        listeners: ListenerSet,
        interval: float,
        on_swap: Callable[[], None] | None = None,
    ) -> None:
        self.on_swap = on_swap  # called after a new config is in place (the heap is settled)
        self.path = path
        self.plane = plane
        self.listeners = listeners
        self.interval = interval
        self.loaded = 1  # the config served at start is version 1
        self._lock = asyncio.Lock()
        self._signature = file_signature(path)

    async def reload(self, why: str) -> bool:
        async with self._lock:
            self._signature = file_signature(self.path)
            version = str(self.loaded + 1)
            try:
                cfg = await self.plane.loop.run_in_executor(None, load_config, self.path, version)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error(
                        "reload (%s) rejected, keeping version %s: %s",
                        why,
                        self.plane.config.version,
                        problem,
                    )
                self.plane.metrics.reload(False)
                return False
            if cfg.digest == self.plane.config.digest:
                # Same content (a touched or rewritten file): keep the running tables and their
                # round-robin state rather than restarting every split's sequence.
                self.plane.metrics.reload(True)
                log.info("reload (%s): config unchanged (%s)", why, cfg.digest)
                return True
            await self.listeners.reconcile(cfg)
            self.plane.config = cfg
            self.loaded += 1
            if self.on_swap is not None:
                self.on_swap()
            self.plane.metrics.reload(True)
            self.plane.metrics.set_config(cfg.version, cfg.digest)
            for note in cfg.notes:
                log.warning("%s", note)
            log.info("reload (%s): serving version %s (%s)", why, cfg.version, cfg.digest)
            return True

    async def watch(self) -> None:
        if self.interval <= 0:
            return
        while True:
            await asyncio.sleep(self.interval)
            signature = file_signature(self.path)
            if signature is not None and signature != self._signature:
                await self.reload("file changed")
