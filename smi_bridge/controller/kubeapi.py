"""The controller's Kubernetes client: async REST over httpx, watch streams, discovery, backoff.

Why not the official client's typed APIs: they are synchronous, have no first-class server-side apply
(kubernetes-client/python#1430) and their watch helper never relists after a 410. The official
package is still used for what it does well: reading a kubeconfig or the in-cluster service account
(``load_config``), so every auth method it supports (tokens, client certificates, exec plugins with
refresh) works here too.

Error taxonomy (what callers branch on)::

    ApiError                  any answer other than 2xx, or no answer
    ├── status 0              Unreachable: connection refused/reset, timeout (transient)
    ├── 409 reason Conflict   optimistic concurrency lost, or an apply conflict (``causes``)
    ├── 410 Expired/Gone      resourceVersion too old: relist
    ├── 429, 5xx              transient; ``retry_after`` carries the server's Retry-After
    └── 4xx others            permanent for this request (NotFound, Invalid, Forbidden, ...)

``KubeClient.request`` retries transient failures itself (a few times, exponential backoff with
jitter, never shorter than Retry-After) and then raises; callers decide what a permanent failure
means.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from smi_bridge import __version__

Obj = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class ClusterConfig:
    """Where the API server is and how to authenticate (from a kubeconfig or in-cluster)."""

    host: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    token: str | None = None  # a fixed bearer token (tests); kubeconfig tokens come through ``auth``
    auth: Any = field(default=None, compare=False, repr=False)  # kubernetes.client.Configuration
    namespace: str | None = None  # the context's namespace (in-cluster: the Pod's), as kubectl uses it

    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.auth is not None:
            value = self.auth.auth_settings().get("BearerToken", {}).get("value")
            return str(value) if value else None
        return None


class ConfigError(Exception):
    """No usable kubeconfig or in-cluster configuration."""


def load_config(kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """A kubeconfig (the given file, $KUBECONFIG or ~/.kube/config), else the in-cluster account."""
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig and not os.path.isfile(kubeconfig):
        raise ConfigError(f"kubeconfig {kubeconfig}: no such file")
    named = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if named and os.path.isfile(named):
        _check_kubeconfig(named)
    cfg = client.Configuration()
    loader: Any = config  # the package has no type information
    namespace: str | None = None
    try:
        if kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(os.path.expanduser("~/.kube/config")):
            loader.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
            contexts, active = loader.list_kube_config_contexts(config_file=kubeconfig)
            chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or None
        else:
            loader.load_incluster_config(client_configuration=cfg)
            with (
                contextlib.suppress(OSError),
                open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh,
            ):
                namespace = fh.read().strip() or None
    except (ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as exc:
        where = f"kubeconfig {named}" if named else "cluster configuration"
        raise ConfigError(f"cannot load {where}: {exc}") from None
    return ClusterConfig(
        host=str(cfg.host).rstrip("/"),
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        verify=bool(cfg.verify_ssl),
        auth=cfg,
        namespace=namespace,
    )


def _check_kubeconfig(path: str) -> None:
    """Refuse a file that is not a kubeconfig before the client library trips over it."""
    import yaml

    try:
        with open(path, "rb") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"kubeconfig {path}{at}: not valid YAML") from None
    if not isinstance(doc, dict) or not any(k in doc for k in ("clusters", "contexts", "users")):
        raise ConfigError(
            f"kubeconfig {path}: not a kubeconfig (a YAML mapping with clusters, users and contexts)"
        )


class ApiError(Exception):
    """An error answer (a ``Status``), or no answer at all (``status == 0``)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        body: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"unreachable: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body: Mapping[str, Any] = body or {}
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in (0, 429, 500, 502, 503, 504)

    @property
    def causes(self) -> list[Mapping[str, Any]]:
        details = self.body.get("details") or {}
        return [c for c in details.get("causes") or [] if isinstance(c, dict)]


class Backoff:
    """Exponential backoff with jitter: ``delay(n)`` for the n-th consecutive failure (n >= 1)."""

    def __init__(self, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()

    def delay(self, failures: int, at_least: float | None = None) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, failures - 1)))
        jittered: float = raw * self._rng.uniform(0.5, 1.0)
        return max(jittered, at_least or 0.0)


@dataclass(frozen=True, order=True)
class ResourceType:
    """A served (group, version, resource) and how to address it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}/{self.version}" if self.group else f"{self.plural}/{self.version}"


@dataclass
class Discovery:
    """What the server serves: (group, version, kind) -> type, and each group's versions in preference order."""

    types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    versions: dict[str, list[str]] = field(default_factory=dict)

    def find(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self.types.get((group, version, kind))

    def kinds_in(self, group: str) -> dict[str, list[ResourceType]]:
        """kind -> its served types in the group's version preference order."""
        out: dict[str, list[ResourceType]] = {}
        for version in self.versions.get(group, []):
            for (g, v, k), rt in self.types.items():
                if g == group and v == version:
                    out.setdefault(k, []).append(rt)
        return out


def _ssl_context(cfg: ClusterConfig) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    if not cfg.verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else ssl.create_default_context()
    if cfg.cert_file and cfg.key_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(body.get("reason") or response.reason_phrase or "Error")
    message = str(body.get("message") or response.text[:300] or reason)
    return ApiError(response.status_code, reason, message, body=body, retry_after=_retry_after(response))


class KubeClient:
    """One connection pool to one API server; every call is a coroutine."""

    def __init__(
        self,
        cfg: ClusterConfig,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: Backoff | None = None,
        max_connections: int = 24,
        user_agent: str = f"smi-bridge/{__version__}",
    ) -> None:
        self.config = cfg
        self.retries = retries
        self.backoff = backoff or Backoff(base=0.1, cap=5.0)
        self._timeout = timeout
        verify = _ssl_context(cfg)
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._http = httpx.AsyncClient(
            base_url=cfg.host,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers=headers,
            trust_env=False,
        )
        # Watches hold a connection for minutes: they get a pool of their own, so that requests never
        # queue behind them (and httpx's pool, which scans every connection per request, stays small).
        self._streams = httpx.AsyncClient(
            base_url=cfg.host,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            headers=headers,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._streams.aclose()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        auth = self.config.authorization()
        if auth:
            headers["Authorization"] = auth
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        retries: int | None = None,
    ) -> Obj:
        """One API call; transient failures are retried with backoff, then raised."""
        content = json.dumps(body).encode() if body is not None else None
        if content is not None and content_type is None:
            content_type = "application/json"
        attempts = 1 + (self.retries if retries is None else retries)
        # a POST that failed after being sent may have happened: only retry it when nothing was sent
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method, path, params=params, content=content, headers=self._headers(content_type)
                )
            except httpx.TransportError as exc:
                error = ApiError(
                    0, "Unreachable", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                )
                if method == "POST" and not isinstance(exc, httpx.ConnectError):
                    raise error from None
            else:
                if response.status_code < 300:
                    if not response.content:
                        return {}
                    data = response.json()
                    return data if isinstance(data, dict) else {"items": data}
                error = _error_from(response)
                if not error.transient or (method == "POST" and error.status >= 500):
                    raise error
            if attempt == attempts:
                raise error
            await asyncio.sleep(self.backoff.delay(attempt, error.retry_after))
        raise AssertionError("unreachable")

    # --- verbs ------------------------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return await self.request("GET", rt.path(namespace, name))

    async def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> Obj:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        return await self.request("GET", rt.path(namespace), params=params)

    async def apply(
        self, rt: ResourceType, obj: Mapping[str, Any], *, manager: str, force: bool = False
    ) -> Obj:
        """Server-side apply (creates when missing)."""
        md = obj.get("metadata") or {}
        params = {"fieldManager": manager}
        if force:
            params["force"] = "true"
        return await self.request(
            "PATCH",
            rt.path(md.get("namespace"), md["name"]),
            params=params,
            body=obj,
            content_type=APPLY_PATCH,
        )

    async def merge_patch(
        self, rt: ResourceType, namespace: str | None, name: str, patch: Mapping[str, Any], *, manager: str
    ) -> Obj:
        return await self.request(
            "PATCH",
            rt.path(namespace, name),
            params={"fieldManager": manager},
            body=patch,
            content_type=MERGE_PATCH,
        )

    async def create(
        self, rt: ResourceType, namespace: str | None, obj: Mapping[str, Any], *, manager: str
    ) -> Obj:
        return await self.request("POST", rt.path(namespace), params={"fieldManager": manager}, body=obj)

    async def replace(
        self, rt: ResourceType, namespace: str | None, name: str, obj: Mapping[str, Any], *, manager: str
    ) -> Obj:
        return await self.request("PUT", rt.path(namespace, name), params={"fieldManager": manager}, body=obj)

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, *, uid: str | None = None
    ) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        return await self.request("DELETE", rt.path(namespace, name), body=options)

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        bookmarks: bool = True,
    ) -> AsyncIterator[Obj]:
        """Watch events as dicts (``type``/``object``) until the server ends the stream.

        An HTTP error before the stream starts raises ``ApiError``; an ERROR event is yielded as is
        (a 410 arrives that way, inside a 200 stream).
        """
        params: dict[str, str] = {"watch": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        timeout = httpx.Timeout(self._timeout, read=timeout_seconds + 30.0)
        try:
            async with self._streams.stream(
                "GET", rt.path(namespace), params=params, headers=self._headers(), timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _error_from(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise ApiError(0, "BadStream", f"undecodable watch line: {line[:100]!r}") from None
                    if isinstance(event, dict):
                        yield event
        except httpx.TransportError as exc:
            raise ApiError(0, "Unreachable", f"{type(exc).__name__}: {exc}") from None

    # --- discovery --------------------------------------------------------------------------------

    async def discover(self, groups: Iterable[str] | None = None) -> Discovery:
        """Served types of the core group and of ``groups`` (every group when None)."""
        wanted = set(groups) if groups is not None else None
        out = Discovery()
        core = await self.request("GET", "/api/v1", retries=0)
        self._add_resources(out, "", "v1", core)
        out.versions[""] = ["v1"]
        listing = await self.request("GET", "/apis", retries=0)
        for g in listing.get("groups") or []:
            name = str(g.get("name", ""))
            if wanted is not None and name not in wanted:
                continue
            preferred = (g.get("preferredVersion") or {}).get("version")
            versions = [str(v.get("version")) for v in g.get("versions") or []]
            versions.sort(key=lambda v: v != preferred)
            served: list[str] = []
            for version in versions:
                try:
                    doc = await self.request("GET", f"/apis/{name}/{version}", retries=0)
                except ApiError as exc:
                    if exc.status in (404, 503):  # vanished between calls, or an unavailable aggregated API
                        continue
                    raise
                self._add_resources(out, name, version, doc)
                served.append(version)
            out.versions[name] = served
        return out

    @staticmethod
    def _add_resources(out: Discovery, group: str, version: str, doc: Mapping[str, Any]) -> None:
        for r in doc.get("resources") or []:
            name = str(r.get("name", ""))
            if "/" in name:
                continue  # subresources
            rt = ResourceType(group, version, name, str(r.get("kind", "")), bool(r.get("namespaced")))
            out.types[(group, version, rt.kind)] = rt


__all__ = [
    "APPLY_PATCH",
    "ApiError",
    "Backoff",
    "ClusterConfig",
    "ConfigError",
    "Discovery",
    "KubeClient",
    "ResourceType",
    "load_config",
]
