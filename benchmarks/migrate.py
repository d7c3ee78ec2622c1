"""Benchmark: an Istio mesh of 1,000 Services, 5,000 routes and 2,000 access rules migrated to Linkerd,
with the equivalence check deciding at least 100,000 requests. Target: under 30 s in total.

The mesh is generated deterministically, as an Istio team would write it:

- ``apps`` applications in ``namespaces`` namespaces; each has a root Service and one Service per
  version (``versions``), so 200 apps x (1 + 4) = 1,000 Services, with a Deployment per version
  running as the app's ServiceAccount;
- one VirtualService per app: ``routes_per_app`` HTTPMatchRequests (path prefix or regex, method,
  sometimes a header) splitting the matching requests over the versions by weight, and a catch-all to
  the root: 200 x 25 = 5,000 routes, each one SMI route match;
- one ALLOW AuthorizationPolicy per app with ``rules_per_app`` rules, each admitting another app's
  ServiceAccount to a few operations: 200 x 10 = 2,000 access rules; and an allow-nothing policy per
  namespace, so identities without a policy are denied as SMI's enforce mode says.

Run: ``python benchmarks/migrate.py [--apps 200] [--max-requests 150000] [--keep DIR]``. It prints the
size of the input, the time of each phase (read, emit, read back, generate, decide, plan), the total,
the requests decided per second, and whether the total met the target.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.base import Options
from smi_bridge.migrate import migrate

TARGET_SECONDS = 30.0
PORT = 8080
_VERBS = ("books", "orders", "users", "carts", "items", "reviews", "prices", "stock", "search", "auth")
_METHODS = ("GET", "POST", "PUT", "DELETE")


def _app(i: int) -> str:
    return f"app{i:04d}"


def _ns(i: int, namespaces: int) -> str:
    return f"team{i % namespaces:02d}"


def generate_mesh(
    apps: int = 200,
    versions: int = 4,
    routes_per_app: int = 25,
    rules_per_app: int = 10,
    namespaces: int = 20,
    seed: int = 7,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inventory objects, Istio objects) of the benchmark mesh."""
    rng = random.Random(seed)
    inventory: list[dict[str, Any]] = []
    istio: list[dict[str, Any]] = []
    for i in range(apps):
        app, ns = _app(i), _ns(i, namespaces)
        names = [app, *(f"{app}-v{v}" for v in range(1, versions + 1))]
        for name in names:
            selector = {"app": app} if name == app else {"app": app, "version": name.rsplit("-", 1)[1]}
            inventory.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {
                        "selector": selector,
                        "ports": [{"name": "http", "port": PORT, "targetPort": PORT}],
                    },
                }
            )
        for v in range(1, versions + 1):
            labels = {"app": app, "version": f"v{v}"}
            inventory.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": f"{app}-v{v}", "namespace": ns},
                    "spec": {
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "serviceAccountName": app,
                                "containers": [{"name": app, "image": f"{app}:v{v}"}],
                            },
                        },
                    },
                }
            )
        matches = []
        for r in range(routes_per_app):
            verb = _VERBS[r % len(_VERBS)]
            match: dict[str, Any] = {"name": f"r{r}", "method": {"exact": _METHODS[r % len(_METHODS)]}}
            match["uri"] = {"prefix": f"/{verb}/{r}"} if r % 3 else {"regex": f"/{verb}/[0-9]+/v{r}"}
            if r % 5 == 0:
                match["headers"] = {"x-tenant": {"exact": f"tenant-{r}"}}
            matches.append(match)
        weights = [rng.randint(1, 100) for _ in range(versions)]
        total = sum(weights)
        percents = [w * 100 // total for w in weights]
        percents[0] += 100 - sum(percents)
        istio.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": app, "namespace": ns},
                "spec": {
                    "hosts": [f"{app}.{ns}.svc.cluster.local"],
                    "http": [
                        {
                            "match": matches,
                            "route": [
                                {"destination": {"host": f"{app}-v{v}.{ns}.svc.cluster.local"}, "weight": p}
                                for v, p in zip(range(1, versions + 1), percents, strict=True)
                            ],
                        },
                        {"route": [{"destination": {"host": f"{app}.{ns}.svc.cluster.local"}}]},
                    ],
                },
            }
        )
        rules = []
        for k in range(rules_per_app):
            caller = (i + 1 + k * 7) % apps
            rules.append(
                {
                    "from": [
                        {
                            "source": {
                                "principals": [
                                    f"cluster.local/ns/{_ns(caller, namespaces)}/sa/{_app(caller)}"
                                ]
                            }
                        }
                    ],
                    "to": [
                        {
                            "operation": {
                                "methods": [_METHODS[k % len(_METHODS)]],
                                "paths": [f"/{_VERBS[k % len(_VERBS)]}/*", f"/{_VERBS[k % len(_VERBS)]}"],
                            }
                        }
                    ],
                }
            )
        istio.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": f"{app}-callers", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": app}}, "action": "ALLOW", "rules": rules},
            }
        )
    for n in range(namespaces):
        istio.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-by-default", "namespace": f"team{n:02d}"},
                "spec": {},
            }
        )
    return inventory, istio


def write_mesh(directory: Path, **sizes: int) -> dict[str, int]:
    inventory, istio = generate_mesh(**sizes)
    directory.mkdir(parents=True, exist_ok=True)
    for name, objects in (("inventory.yaml", inventory), ("istio.yaml", istio)):
        (directory / name).write_text(yaml.dump_all(objects, Dumper=yaml.CSafeDumper, sort_keys=False))
    return {
        "services": sum(1 for o in inventory if o["kind"] == "Service"),
        "routes": sum(
            len(e.get("match", [])) for o in istio if o["kind"] == "VirtualService" for e in o["spec"]["http"]
        ),
        "access rules": sum(
            len(o["spec"].get("rules", [])) for o in istio if o["kind"] == "AuthorizationPolicy"
        ),
        "documents": len(inventory) + len(istio),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--apps", type=int, default=200)
    p.add_argument("--versions", type=int, default=4)
    p.add_argument("--routes-per-app", type=int, default=25)
    p.add_argument("--rules-per-app", type=int, default=10)
    p.add_argument("--max-requests", type=int, default=150_000)
    p.add_argument("--keep", type=Path, help="write the generated mesh here and keep it")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        sizes = write_mesh(
            directory,
            apps=args.apps,
            versions=args.versions,
            routes_per_app=args.routes_per_app,
            rules_per_app=args.rules_per_app,
        )
        start = time.perf_counter()
        m = migrate("istio", "linkerd", [directory], Options(), max_requests=args.max_requests)
        total = time.perf_counter() - start
    eq = m.equivalence
    print("input: " + ", ".join(f"{v:,} {k}" for k, v in sizes.items()))
    print(
        f"read: {len(m.source.ir.splits):,} splits, {len(m.source.ir.targets):,} TrafficTargets; "
        f"linkerd objects: {len(m.output.objects):,}"
    )
    print(
        f"equivalence: {eq.requests:,} requests decided (of {eq.generated:,} generated), {eq.differing:,} differ "
        f"in {len(eq.groups)} way(s), {len(eq.unexplained())} unexplained"
    )
    for phase, seconds in m.timings.items():
        print(f"  {phase:<10} {seconds:7.2f} s")
    decide = m.timings.get("decide", 0.0)
    print(
        f"total: {total:.2f} s (target {TARGET_SECONDS:.0f} s: {'met' if total < TARGET_SECONDS else 'MISSED'}); "
        f"{eq.requests / decide:,.0f} requests decided per second in the check "
        f"({eq.requests / total:,.0f} per second of the whole run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
