"""Render a chart with Helm's own engine (PyPI helm-sdkpy, Helm v4 as a library).

helm-sdkpy exposes Helm's actions (install, upgrade, lint, ...) but not
`helm template`, and its install has no dry-run option. So the chart is
*installed* for real by Helm's install action against a small in-process
HTTP endpoint that speaks the part of the Kubernetes API a client-side
install uses: discovery (/version, /api, /apis and each group version), the
release record (a Secret, Helm's default storage driver) and the creation of
each object. Nothing is checked or defaulted by this endpoint; it only
answers and records. Helm keeps its release record in memory
(HELM_DRIVER=memory: the Secret driver's typed client speaks protobuf), and
the install action returns that record: its `manifest` plus each hook's
`manifest` are exactly what `helm template` would print, hooks included.

The endpoint advertises the API groups the chart uses, and the
monitoring.coreos.com/v1 group only when asked (as a cluster with the
Prometheus operator would), so `.Capabilities` checks in templates behave as
on such a cluster. `/version` reports the Kubernetes version given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import yaml

import helm_sdkpy

# Helm's Go runtime sees the process's environment as it was at exec, so this
# must come from the caller (run.sh sets it), not from os.environ here.
if os.environ.get("HELM_DRIVER") != "memory":
    raise SystemExit("helm_render: run with HELM_DRIVER=memory in the environment (tests/chart/run.sh sets it)")

# (group version, plural, kind, namespaced) the endpoint serves.
_RESOURCES = [
    ("v1", "namespaces", "Namespace", False),
    ("v1", "nodes", "Node", False),
    ("v1", "secrets", "Secret", True),
    ("v1", "configmaps", "ConfigMap", True),
    ("v1", "serviceaccounts", "ServiceAccount", True),
    ("v1", "services", "Service", True),
    ("v1", "pods", "Pod", True),
    ("apps/v1", "daemonsets", "DaemonSet", True),
    ("batch/v1", "jobs", "Job", True),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
    ("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", False),
]
_MONITORING = [
    ("monitoring.coreos.com/v1", "servicemonitors", "ServiceMonitor", True),
    ("monitoring.coreos.com/v1", "podmonitors", "PodMonitor", True),
]
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class _Api:
    def __init__(self, kube_version: str, monitoring: bool) -> None:
        self.kube_version = kube_version
        self.resources = _RESOURCES + (_MONITORING if monitoring else [])
        self.objects: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        # Every write: (method, path, body).
        self.writes: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.counter = 0

    def groups(self) -> dict[str, list[tuple[str, str, bool]]]:
        out: dict[str, list[tuple[str, str, bool]]] = {}
        for gv, plural, kind, namespaced in self.resources:
            out.setdefault(gv, []).append((plural, kind, namespaced))
        return out

    def discovery(self, path: str) -> dict[str, Any] | None:
        major, minor = self.kube_version.split(".")[:2]
        if path == "/version":
            return {"major": major, "minor": minor, "gitVersion": f"v{self.kube_version}", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = []
            for gv in self.groups():
                if "/" not in gv:
                    continue
                g, v = gv.split("/")
                ver = {"groupVersion": gv, "version": v}
                groups.append({"name": g, "versions": [ver], "preferredVersion": ver})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        for gv, res in self.groups().items():
            if path == ("/api/" + gv if gv == "v1" else "/apis/" + gv):
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": [
                        {"name": p, "singularName": k.lower(), "namespaced": n, "kind": k, "verbs": _VERBS}
                        for p, k, n in res
                    ],
                }
        return None


_OBJ_PATH = re.compile(r"^/(?:api|apis/[^/]+)/[^/]+(?:/namespaces/[^/]+)?/([a-z]+)(?:/([^/?]+))?$")


def _handler(api: _Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, name: str) -> None:
            self._send(
                404,
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                 "message": f"{name} not found"},
            )

        def _body(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b"{}"
            body = json.loads(raw or b"{}")
            with api.lock:
                api.writes.append((self.command, self.path.split("?")[0], body))
            return body

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?")[0]
            doc = api.discovery(path)
            if doc is not None:
                return self._send(200, doc)
            m = _OBJ_PATH.match(path)
            if not m:
                return self._not_found(path)
            if m.group(2) is None:  # a list 
                with api.lock:
                    items = [o for k, o in api.objects.items() if k.startswith(path + "/")]
                return self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                        "items": items})
            with api.lock:
                obj = api.objects.get(path)
            return self._send(200, obj) if obj else self._not_found(path)

        def _store(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
            with api.lock:
                api.counter += 1
                meta = obj.setdefault("metadata", {})
                meta["resourceVersion"] = str(api.counter)
                meta.setdefault("uid", f"00000000-0000-0000-0000-{api.counter:012d}")
                meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
                api.objects[key] = obj
            return obj

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            obj = self._body()
            name = obj.get("metadata", {}).get("name", "")
            with api.lock:
                api.created.append(json.loads(json.dumps(obj)))
            self._send(201, self._store(f"{path}/{name}", obj))

        def do_PUT(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            self._send(200, self._store(path, self._body()))

        def do_PATCH(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            self._body()
            with api.lock:
                obj = api.objects.get(path)
            return self._send(200, obj) if obj else self._not_found(path)

        def do_DELETE(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            self._body()
            with api.lock:
                obj = api.objects.pop(path, None)
            return self._send(200, obj) if obj else self._not_found(path)

    return Handler


@contextlib.contextmanager
def _cluster(namespace: str, kube_version: str, monitoring_api: bool) -> Iterator[tuple[_Api, Any]]:
    """The recording endpoint, and a Helm configuration pointing at it."""
    api = _Api(kube_version, monitoring_api)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        kubeconfig = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
                "current-context": "x",
            }
        )
        yield api, helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    finally:
        server.shutdown()
        server.server_close()


def _docs(rel: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    parts = [(rel.get("manifest", ""), False, None)]
    parts += [(h["manifest"], True, h.get("path")) for h in rel.get("hooks") or []]
    for text, hook, source in parts:
        for part in re.split(r"^---\s*$", text, flags=re.M):
            m = re.search(r"^# Source: (.+)$", part, flags=re.M)
            if m:
                source = m.group(1)
            doc = yaml.safe_load(part)
            if doc:
                doc["__source__"] = source
                doc["__hook__"] = hook
                docs.append(doc)
    return docs


def render(
    chart: str,
    values: dict[str, Any] | None,
    *,
    release: str = "zygote",
    namespace: str = "zygote-system",
    kube_version: str = "1.30.0",
    monitoring_api: bool = False,
) -> list[dict[str, Any]]:
    """Install `chart` with `values` through Helm; return every rendered
    object (hooks included), each with `__source__` (template path) and
    `__hook__` (True for hooks) added."""
    with _cluster(namespace, kube_version, monitoring_api) as (api, config):
        rel = asyncio.run(helm_sdkpy.Install(config).run(release, chart, values=values or None, wait=False, timeout=60))
    docs = _docs(rel)
    # Helm created every non-hook object through the API: the same set.
    made = sorted((o.get("kind"), o.get("metadata", {}).get("name")) for o in api.created)
    want = sorted((d.get("kind"), d.get("metadata", {}).get("name")) for d in docs if not d["__hook__"])
    if made != want:
        raise AssertionError(f"Helm created {made}, its manifest lists {want}")
    return docs


def upgrade_writes(
    chart: str,
    first: dict[str, Any] | None,
    second: dict[str, Any] | None,
    *,
    release: str = "zygote",
    namespace: str = "zygote-system",
) -> list[tuple[str, str, Any]]:
    """`helm install` with `first`, then `helm upgrade` with `second`: the
    writes (method, path, body) Helm sent for the upgrade."""
    with _cluster(namespace, "1.30.0", False) as (api, config):
        asyncio.run(helm_sdkpy.Install(config).run(release, chart, values=first or None, wait=False, timeout=60))
        n = len(api.writes)
        asyncio.run(helm_sdkpy.Upgrade(config).run(release, chart, values=second or None, wait=False, timeout=60))
        return api.writes[n:]


def lint(chart: str) -> dict[str, Any]:
    """Helm's lint action on the chart directory (its own values.yaml)."""
    return asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
