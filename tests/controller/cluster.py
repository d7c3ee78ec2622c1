"""A handle on one API server under test (the fake or the real kube-apiserver), the same for both tiers.

Scenarios and controller tests only talk to a ``Cluster``: the official ``kubernetes`` client
(``api()``), raw HTTP for what the client hides (``raw``: watch streams, status codes), ``kubectl``
(``kubectl(...)``, with a kubeconfig written for the server), and the controller's own async client
(``kube_client()``). Fake-only controls (faults, compaction) are reached through ``fake``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client as k8s

from smi_bridge.controller.kubeapi import ClusterConfig, KubeClient
from smi_bridge.controller.testing.fakeapi import FakeKubeAPI
from tests.conftest import ANCHORS

Obj = dict[str, Any]


def load_yaml_docs(paths: Iterable[Path]) -> list[Obj]:
    out: list[Obj] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            out.extend(d for d in yaml.load_all(fh, Loader=yaml.CSafeLoader) if isinstance(d, dict))
    return out


_CRD_CACHE: dict[str, list[Obj]] = {}


def crds(*groups: str) -> list[Obj]:
    """Published CRDs from the anchors: ``smi`` (smi-sdk-go main), ``smi-linkerd`` (two served
    TrafficSplit versions), ``istio``, ``linkerd``, ``consul``, ``gateway-api``."""
    out: list[Obj] = []
    for g in groups:
        if g not in _CRD_CACHE:
            if g == "smi":
                files = sorted((ANCHORS / "smi" / "crds" / "smi-sdk-go").glob("*.yaml"))
            elif g == "smi-linkerd":
                files = [ANCHORS / "smi" / "crds" / "linkerd-smi" / "trafficsplit-crd.yaml"]
            elif g == "gateway-api":
                files = [
                    p
                    for p in sorted((ANCHORS / "crds" / "gateway-api").glob("*.yaml"))
                    if "experimental" in p.name
                ]
                files = [p for p in files if "v1.2.1" not in p.name]
            else:
                files = sorted((ANCHORS / "crds" / g).glob("*.yaml"))
            docs = [d for d in load_yaml_docs(files) if d.get("kind") == "CustomResourceDefinition"]
            if g == "linkerd":
                # linkerd-smi's own TrafficSplit CRD would replace the SMI one; it is the "smi-linkerd" set
                docs = [d for d in docs if d["spec"]["group"] != "split.smi-spec.io"]
            _CRD_CACHE[g] = docs
        out.extend(_CRD_CACHE[g])
    return out


@dataclass
class Cluster:
    """One API server: ``kind`` is ``fake`` or ``real``."""

    kind: str
    host: str
    token: str | None = None
    ca_file: str | None = None
    fake: FakeKubeAPI | None = None
    workdir: Path | None = None
    etcd_url: str | None = None
    _api: k8s.ApiClient | None = field(default=None, repr=False)
    _raw: httpx.Client | None = field(default=None, repr=False)

    # --- clients ---------------------------------------------------------------------------------

    def api(self) -> k8s.ApiClient:
        if self._api is None:
            cfg = k8s.Configuration()
            cfg.host = self.host
            if self.token:
                cfg.api_key = {"authorization": f"Bearer {self.token}"}
            if self.ca_file:
                cfg.ssl_ca_cert = self.ca_file
            self._api = k8s.ApiClient(cfg)
        return self._api

    @property
    def raw(self) -> httpx.Client:
        if self._raw is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=self.ca_file) if self.ca_file else False
            )
            self._raw = httpx.Client(base_url=self.host, headers=headers, verify=verify, timeout=30)
        return self._raw

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(self.host, ca_file=self.ca_file, token=self.token)

    def kube_client(self, **kwargs: Any) -> KubeClient:
        return KubeClient(self.cluster_config(), **kwargs)

    def kubeconfig(self) -> Path:
        assert self.workdir is not None
        path = self.workdir / "kubeconfig.yaml"
        if not path.exists():
            cluster: Obj = {"server": self.host}
            if self.ca_file:
                cluster["certificate-authority"] = self.ca_file
            user: Obj = {"token": self.token} if self.token else {}
            doc = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": "test", "user": user}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
            path.write_text(yaml.safe_dump(doc))
        return path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig()), *args]
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._api is not None:
            self._api.close()
            self._api = None

    # --- helpers ---------------------------------------------------------------------------------

    def forget_history(self) -> None:
        """Make every resourceVersion up to now too old to watch from (410).

        The fake compacts its event log; on the real tier etcd is compacted to its current revision
        (ConfigMaps are served without the watch cache there, so their watches see it).
        """
        if self.fake is not None:
            self.fake.compact()
            return
        assert self.etcd_url is not None
        with httpx.Client(base_url=self.etcd_url, timeout=10) as etcd:
            rev = etcd.post("/v3/kv/range", json={"key": "Lw=="}).json()["header"]["revision"]
            resp = etcd.post("/v3/kv/compaction", json={"revision": rev, "physical": True})
            assert resp.status_code == 200, resp.text

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        content = None
        if body is not None:
            content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return self.raw.request(
            method,
            path,
            content=content,
            params=params,
            headers={"Content-Type": content_type} if content is not None else {},
        )

    def watch(self, path: str, params: Mapping[str, str]) -> Iterator[Obj]:
        """A raw watch; yields events until the server ends the stream."""
        with self.raw.stream("GET", path, params={"watch": "true", **params}, timeout=60) as resp:
            assert resp.status_code == 200, resp.read()
            for line in resp.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def namespace(self, prefix: str = "t") -> str:
        """A fresh namespace (the real tier cannot delete one: no namespace controller)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        k8s.CoreV1Api(self.api()).create_namespace({"metadata": {"name": name}})
        return name

    def install_crds(self, docs: Iterable[Obj], timeout: float = 30.0) -> None:
        """Create CRDs (existing ones are left as they are) and wait until every served version is discoverable."""
        ext = k8s.ApiextensionsV1Api(self.api())
        wanted: set[str] = set()
        for doc in docs:
            try:
                ext.create_custom_resource_definition(doc)
            except k8s.ApiException as exc:
                if exc.status != 409:
                    raise
            spec = doc["spec"]
            for v in spec.get("versions") or []:
                if v.get("served", True):
                    wanted.add(f"/apis/{spec['group']}/{v['name']}|{spec['names']['plural']}")
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for w in list(wanted):
                path, plural = w.split("|")
                resp = self.raw.get(path)
                if resp.status_code == 200 and any(
                    r["name"] == plural for r in resp.json().get("resources", [])
                ):
                    wanted.discard(w)
            if wanted:
                time.sleep(0.1)
        assert not wanted, f"CRDs not served after {timeout}s: {sorted(wanted)}"

    def apply_manifest(self, docs: Iterable[Obj], namespace: str | None = None) -> None:
        """Create objects as an administrator would (create, then /status where given)."""
        for doc in docs:
            doc = json.loads(json.dumps(doc))
            if namespace and doc.get("kind") not in ("Namespace", "CustomResourceDefinition"):
                doc.setdefault("metadata", {})["namespace"] = namespace
            self.create(doc)

    def path_for(self, obj: Mapping[str, Any], *, name: bool = False) -> str:
        api = str(obj["apiVersion"])
        kind = str(obj["kind"])
        plural = self.plural(api, kind)
        base = f"/apis/{api}" if "/" in api else f"/api/{api}"
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns and kind not in ("Namespace", "CustomResourceDefinition"):
            base += f"/namespaces/{ns}"
        base += f"/{plural}"
        if name:
            base += f"/{obj['metadata']['name']}"
        return base

    _plurals: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def plural(self, api_version: str, kind: str) -> str:
        key = (api_version, kind)
        if key not in self._plurals:
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            for r in self.raw.get(path).json().get("resources", []):
                if "/" not in r["name"]:
                    self._plurals[(api_version, r["kind"])] = r["name"]
        return self._plurals[key]

    def create(self, obj: Obj) -> Obj:
        """POST (and PUT /status when the object carries a status the server dropped)."""
        resp = self.request("POST", self.path_for(obj), body=obj)
        assert resp.status_code == 201, f"create {obj.get('kind')} {obj['metadata'].get('name')}: {resp.text}"
        created: Obj = resp.json()
        if obj.get("status") and created.get("status") != obj["status"]:
            created["status"] = obj["status"]
            resp = self.request("PUT", self.path_for(created, name=True) + "/status", body=created)
            if resp.status_code == 200:
                created = resp.json()
        return created

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
        resp = self.request("GET", self.path_for(obj, name=True))
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        out: Obj = resp.json()
        return out

    def list(self, api_version: str, kind: str, namespace: str | None = None, **params: str) -> list[Obj]:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": namespace}}
        resp = self.request("GET", self.path_for(obj), params=params)
        assert resp.status_code == 200, resp.text
        items: list[Obj] = resp.json().get("items", [])
        return items

    def wait_for(
        self, predicate: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)
