"""A deterministic corpus of SMI manifests for the load, lint and translate benchmarks.

``write_corpus(dir, n, seed)`` writes the same ``n`` documents twice: as one multi-document stream
(``one/corpus.yaml``) and as one file per document (``many/NNNNN-kind-name.yaml``). The mix covers every
SMI kind and version the tool reads: TrafficSplit v1alpha1-v1alpha4 (v1alpha1 with quantity weights such
as ``500m``), TrafficTarget v1alpha1-v1alpha3 (top-level fields in v1alpha1, ``spec.rules`` later),
HTTPRouteGroup v1alpha1-v1alpha4 with headers in both wire forms (list of single-key maps and map),
TCPRoute and UDPRoute. Sizes follow real manifests (labels, annotations, a few routes, several backends).

A few percent of the documents are deliberately wrong in ways a linter must catch (negative or fractional
weights, a missing ``spec.service``, ``matches`` on split v1alpha2, ports out of range, an unquoted
integer header value, a look-around regex); all of them stay well-formed YAML, so both layouts always hold
exactly ``n`` documents. The text is produced by a small block-style emitter rather than ``yaml.dump``,
which keeps generation fast and lets the corpus mix quoting and flow styles the way hand-written files do.

Run as a script to write a corpus: ``python benchmarks/corpus.py OUT_DIR [--n N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INVALID_FRACTION = 0.03

_WORDS = (
    "books",
    "bookstore",
    "bookbuyer",
    "bookthief",
    "bookwarehouse",
    "payments",
    "checkout",
    "cart",
    "catalog",
    "search",
    "reviews",
    "ratings",
    "details",
    "productpage",
    "inventory",
    "shipping",
    "orders",
    "users",
    "auth",
    "gateway",
    "frontend",
    "backend",
    "api",
    "web",
    "mysql",
    "redis",
    "kafka",
    "ledger",
    "billing",
    "profile",
    "notifications",
    "recommendations",
    "media",
    "upload",
)
_NAMESPACES = ("default", "bookstore", "bookbuyer", "payments", "shop", "prod", "staging", "team-a")
_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_HEADER_PATTERNS = (
    ("user-agent", ".*Android.*"),
    ("user-agent", ".*Firefox.*"),
    ("user-agent", ".*iPhone.*"),
    ("cookie", "^(.*?;)?(type=insider)(;.*)?$"),
    ("x-canary", "^true$"),
    ("x-tenant", "^(acme|globex)$"),
    ("accept-language", "^de(-.*)?$"),
)
_QUANTITIES = ("1", "0m", "500m", "10m", "100m", "1500m", "900m", "250m", "2", "750m", "1k")


@dataclass(frozen=True)
class CorpusInfo:
    """Where a corpus was written and what it holds."""

    one_file: Path  # the n documents as one multi-document stream
    many_dir: Path  # the same documents, one file each
    documents: int
    invalid: int  # how many documents carry a deliberate mistake
    bytes: int  # size of ``one_file``


@dataclass(frozen=True)
class CorpusDocument:
    kind: str
    name: str
    text: str  # YAML text of the document, without the ``---`` separator
    invalid: str  # "" for a valid document, otherwise what is wrong with it


def write_corpus(dir: str | Path, n: int = 10_000, seed: int = 0) -> CorpusInfo:
    """Write ``n`` documents as ``dir/one/corpus.yaml`` and as ``dir/many/*.yaml``; same seed, same bytes."""
    root = Path(dir)
    one_dir = root / "one"
    many_dir = root / "many"
    one_dir.mkdir(parents=True, exist_ok=True)
    many_dir.mkdir(parents=True, exist_ok=True)
    one_file = one_dir / "corpus.yaml"
    invalid = 0
    width = max(5, len(str(n - 1)))
    with one_file.open("w", encoding="utf-8", newline="\n") as stream:
        for i, doc in enumerate(corpus_documents(n, seed)):
            invalid += bool(doc.invalid)
            stream.write("---\n")
            stream.write(doc.text)
            name = f"{i:0{width}d}-{doc.kind.lower()}-{doc.name}.yaml"
            (many_dir / name).write_text(doc.text, encoding="utf-8", newline="\n")
    return CorpusInfo(one_file, many_dir, n, invalid, one_file.stat().st_size)


def corpus_documents(n: int = 10_000, seed: int = 0) -> Iterator[CorpusDocument]:
    """The corpus documents in order, without touching the disk."""
    rng = random.Random(seed)
    makers: tuple[tuple[Callable[[random.Random, str, str, bool], tuple[dict[str, Any], str]], int], ...] = (
        (_traffic_split, 35),
        (_traffic_target, 25),
        (_http_route_group, 25),
        (_tcp_route, 10),
        (_udp_route, 5),
    )
    choices = [maker for maker, _ in makers]
    weights = [weight for _, weight in makers]
    for i in range(n):
        maker = rng.choices(choices, weights)[0]
        name = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{i}"
        namespace = rng.choice(_NAMESPACES)
        broken = rng.random() < INVALID_FRACTION
        obj, invalid = maker(rng, name, namespace, broken)
        yield CorpusDocument(obj["kind"], name, _emit(obj, rng), invalid)


def _metadata(rng: random.Random, name: str, namespace: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if rng.random() < 0.6:
        meta["labels"] = {
            "app.kubernetes.io/name": name.rsplit("-", 1)[0],
            "app.kubernetes.io/part-of": rng.choice(_WORDS),
            "app.kubernetes.io/managed-by": rng.choice(("helm", "kustomize", "flagger", "argocd")),
        }
    if rng.random() < 0.3:
        meta["annotations"] = {
            "smi-bridge.io/owner": f"team-{rng.choice(_WORDS)}",
            "kubernetes.io/change-cause": f"rollout of {rng.choice(_WORDS)} build {rng.randrange(1000, 99999)}",
        }
    return meta


def _traffic_split(rng: random.Random, name: str, namespace: str, broken: bool) -> tuple[dict[str, Any], str]:
    version = rng.choice(("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"))
    root = name.rsplit("-", 1)[0]
    backends: list[dict[str, Any]] = []
    for j in range(rng.choice((2, 2, 2, 3, 4))):
        weight: Any
        if version == "v1alpha1":
            quantity = rng.choice(_QUANTITIES)
            weight = int(quantity) if quantity.isdigit() else quantity
        else:
            weight = rng.choice((0, 10, 50, 90, 100, 500, 1000))
        backends.append({"service": f"{root}-v{j + 1}", "weight": weight})
    spec: dict[str, Any] = {"service": rng.choice((root, f"{root}.{namespace}", f"{root}.{namespace}.svc"))}
    spec["backends"] = backends
    if version in ("v1alpha3", "v1alpha4") and rng.random() < 0.4:
        spec["matches"] = [{"kind": "HTTPRouteGroup", "name": f"{root}-routes"}]
    invalid = ""
    if broken:
        mistake = rng.randrange(4)
        if mistake == 0:
            backends[-1]["weight"] = -200
            invalid = "negative weight"
        elif mistake == 1:
            del spec["service"]
            invalid = "missing spec.service"
        elif mistake == 2 and version != "v1alpha1":
            backends[0]["weight"] = 0.5
            invalid = "fractional weight"
        else:
            version = "v1alpha2"
            spec["matches"] = [{"kind": "HTTPRouteGroup", "name": f"{root}-routes"}]
            invalid = "matches on split v1alpha2"
    obj = {
        "apiVersion": f"split.smi-spec.io/{version}",
        "kind": "TrafficSplit",
        "metadata": _metadata(rng, name, namespace),
        "spec": spec,
    }
    return obj, invalid


def _subject(rng: random.Random, namespace: str) -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": "ServiceAccount", "name": rng.choice(_WORDS)}
    if rng.random() < 0.7:
        subject["namespace"] = namespace if rng.random() < 0.8 else rng.choice(_NAMESPACES)
    return subject


def _traffic_target(
    rng: random.Random, name: str, namespace: str, broken: bool
) -> tuple[dict[str, Any], str]:
    version = rng.choice(("v1alpha1", "v1alpha2", "v1alpha3"))
    destination = _subject(rng, namespace)
    rules: list[dict[str, Any]] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(("HTTPRouteGroup", "HTTPRouteGroup", "TCPRoute"))
        rule: dict[str, Any] = {"kind": kind, "name": f"{rng.choice(_WORDS)}-routes"}
        if kind == "HTTPRouteGroup" and rng.random() < 0.6:
            rule["matches"] = rng.sample(("api", "metrics", "health", "admin", "static"), rng.randint(1, 3))
        rules.append(rule)
    sources = [_subject(rng, namespace) for _ in range(rng.choice((1, 1, 2, 3, 5)))]
    if version in ("v1alpha1", "v1alpha2") and rng.random() < 0.5:
        destination["port"] = rng.choice((8080, 9090, 80, 443, 15000))
    invalid = ""
    if broken:
        mistake = rng.randrange(3)
        if mistake == 0:
            sources = []
            version = "v1alpha3"
            destination.pop("port", None)
            invalid = "no sources on access v1alpha3"
        elif mistake == 1:
            version = "v1alpha3"
            destination["port"] = 8080
            invalid = "destination.port on access v1alpha3"
        else:
            destination["port"] = 70000
            version = "v1alpha2"
            invalid = "port out of range"
    obj: dict[str, Any] = {
        "apiVersion": f"access.smi-spec.io/{version}",
        "kind": "TrafficTarget",
        "metadata": _metadata(rng, name, namespace),
    }
    if version == "v1alpha1":
        obj.update({"destination": destination, "specs": rules, "sources": sources})
    else:
        obj["spec"] = {"destination": destination, "rules": rules, "sources": sources}
    return obj, invalid


def _route(rng: random.Random, index: int, version: str, map_headers: bool) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": rng.choice(("api", "metrics", "health", "admin", "static")) + f"-{index}"
    }
    if version == "v1alpha1" or rng.random() < 0.85:
        route["pathRegex"] = rng.choice(
            ("/api/.*", "/metrics", "/ping", "/admin(/.*)?", "/static/.*\\.css", ".*")
        )
    if version == "v1alpha1" or rng.random() < 0.8:
        route["methods"] = ["*"] if rng.random() < 0.25 else sorted(rng.sample(_METHODS, rng.randint(1, 3)))
    if version != "v1alpha1" and rng.random() < 0.35:
        pairs = rng.sample(_HEADER_PATTERNS, rng.randint(1, 2))
        headers: Any = dict(pairs) if map_headers else [{key: value} for key, value in pairs]
        route["headers"] = headers
    return route


def _http_route_group(
    rng: random.Random, name: str, namespace: str, broken: bool
) -> tuple[dict[str, Any], str]:
    version = rng.choice(("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"))
    map_headers = rng.random() < 0.5
    routes = [_route(rng, j, version, map_headers) for j in range(rng.choice((1, 2, 2, 3, 4, 6)))]
    invalid = ""
    if broken:
        version = rng.choice(("v1alpha3", "v1alpha4"))
        if rng.random() < 0.5:
            routes[0]["headers"] = {"x-debug": 1}
            invalid = "unquoted integer header value"
        else:
            routes[0]["pathRegex"] = "/api/(?!internal).*"
            invalid = "look-around regex (not RE2)"
    obj: dict[str, Any] = {
        "apiVersion": f"specs.smi-spec.io/{version}",
        "kind": "HTTPRouteGroup",
        "metadata": _metadata(rng, name, namespace),
    }
    if version in ("v1alpha1", "v1alpha2"):
        obj["matches"] = routes
    else:
        obj["spec"] = {"matches": routes}
    return obj, invalid


def _port_route(
    kind: str, rng: random.Random, name: str, namespace: str, broken: bool
) -> tuple[dict[str, Any], str]:
    ports = sorted(rng.sample((80, 443, 3306, 5432, 6379, 6446, 8080, 8301, 8302, 9092), rng.randint(0, 3)))
    invalid = ""
    if broken:
        ports.append(rng.choice((0, 65536, 99999)))
        invalid = "port out of range"
    obj: dict[str, Any] = {
        "apiVersion": "specs.smi-spec.io/v1alpha4",
        "kind": kind,
        "metadata": _metadata(rng, name, namespace),
        "spec": {"matches": {"ports": ports}},
    }
    return obj, invalid


def _tcp_route(rng: random.Random, name: str, namespace: str, broken: bool) -> tuple[dict[str, Any], str]:
    return _port_route("TCPRoute", rng, name, namespace, broken)


def _udp_route(rng: random.Random, name: str, namespace: str, broken: bool) -> tuple[dict[str, Any], str]:
    return _port_route("UDPRoute", rng, name, namespace, broken)


# Plain scalars that YAML would read as something other than a string must be quoted.
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./()*?-]*")
_NUMBER_LIKE = re.compile(r"[-+]?(\.?[0-9][0-9_]*)(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+")
_YAML_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _scalar(value: Any, rng: random.Random, plain_odds: float = 0.85) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    plain = _PLAIN_SAFE.fullmatch(text) and not _NUMBER_LIKE.fullmatch(text)
    if plain and text.lower() not in _YAML_SPECIAL and rng.random() < plain_odds:
        return text
    if "'" not in text and rng.random() < 0.3:
        return f"'{text}'"
    return json.dumps(text)


def _emit(obj: dict[str, Any], rng: random.Random) -> str:
    lines: list[str] = []
    _emit_mapping(obj, 0, lines, rng)
    return "\n".join(lines) + "\n"


def _emit_mapping(obj: dict[str, Any], indent: int, lines: list[str], rng: random.Random) -> None:
    pad = " " * indent
    for key, value in obj.items():
        label = _scalar(key, rng, plain_odds=0.98)
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{label}:")
            _emit_mapping(value, indent + 2, lines, rng)
        elif isinstance(value, list) and value and not _is_flat(value):
            lines.append(f"{pad}{label}:")
            _emit_sequence(value, indent + 2 if rng.random() < 0.5 else indent, lines, rng)
        elif isinstance(value, list) and value and rng.random() < 0.5:
            lines.append(f"{pad}{label}:")
            lines.extend(f"{pad}- {_scalar(item, rng)}" for item in value)
        elif isinstance(value, list | dict):
            lines.append(f"{pad}{label}: {_flow(value, rng)}")
        else:
            lines.append(f"{pad}{label}: {_scalar(value, rng)}")


def _emit_sequence(items: list[Any], indent: int, lines: list[str], rng: random.Random) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            start = len(lines)
            _emit_mapping(item, indent + 2, lines, rng)
            lines[start] = f"{pad}- {lines[start][indent + 2 :]}"
        else:
            lines.append(
                f"{pad}- {_scalar(item, rng) if not isinstance(item, list | dict) else _flow(item, rng)}"
            )


def _is_flat(items: list[Any]) -> bool:
    return not any(isinstance(item, list | dict) for item in items)


def _flow(value: list[Any] | dict[str, Any], rng: random.Random) -> str:
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_scalar(k, rng, plain_odds=0.98)}: {_scalar(v, rng)}" for k, v in value.items())
            + "}"
        )
    return "[" + ", ".join(json.dumps(item) if isinstance(item, str) else repr(item) for item in value) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a deterministic SMI corpus (one file and many files)."
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = write_corpus(args.out, args.n, args.seed)
    print(
        f"{info.documents} documents ({info.invalid} invalid), {info.bytes} bytes: {info.one_file}, {info.many_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
