"""Tests of charts/zygote: linted and rendered by Helm's engine (helm-sdkpy,
see helm_render.py), every rendered object validated against the Kubernetes
schemas of the supported versions (kubernetes-validate, strict: unknown
fields refused), and the content checked: one RuntimeClass per profile, a
config.toml the daemon accepts (`zygotectl profiles check`), RBAC limited to
get/patch on nodes, the installer's command lines as its CLI defines them.

Run by tests/chart/run.sh (which makes the venv and sets HELM_DRIVER=memory).
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import helm_render

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = str(REPO / "charts" / "zygote")
VALUES_DIR = HERE / "values"
# Kubernetes versions the chart supports (Chart.yaml kubeVersion >=1.28) and
# kubernetes-validate ships schemas for.
KUBE_VERSIONS = ["1.28.0", "1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0"]
# The Prometheus operator's kinds are CRDs: kubernetes-validate has no schema
# for them (it knows only the core API). They are validated against the
# models PyPI cloudcoil-models-prometheus-operator generates from the
# operator's CRDs (v0.80): parsed, then dumped back, which must give the same
# object (the models ignore unknown fields, so a dropped field is one).
CRD_KINDS = {"ServiceMonitor", "PodMonitor"}


def validate_crd(obj: dict[str, Any]) -> None:
    from cloudcoil.models.prometheus_operator import v1

    model = getattr(v1, obj["kind"]).model_validate(obj)
    back = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert back == obj, f"{obj['kind']} has fields its CRD lacks (or wrong types):\n{obj}\nread as\n{back}"
CASES = ["default", "profiles", "monitoring", "k3s"]
NS = "zygote-system"


def values_of(case: str) -> dict[str, Any] | None:
    if case == "default":
        return None
    return yaml.safe_load((VALUES_DIR / f"{case}.yaml").read_text())


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((Path(CHART) / "values.yaml").read_text())


def merged(case: str) -> dict[str, Any]:
    """The chart's values with the case's file over them (Helm's rules:
    maps merge, null deletes)."""

    def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for k, v in top.items():
            if v is None:
                out.pop(k, None)
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out

    return merge(chart_defaults(), values_of(case) or {})


def zygotectl() -> str:
    """The freshly built zygotectl: $ZYGOTECTL, else $ZYGOTE_BIN_DIR/zygotectl,
    else target/release/zygotectl of this repo. Missing = failure."""
    path = os.environ.get("ZYGOTECTL") or str(
        Path(os.environ.get("ZYGOTE_BIN_DIR") or REPO / "target" / "release") / "zygotectl"
    )
    assert os.access(path, os.X_OK), f"zygotectl not found at {path} (build it, or set ZYGOTECTL/ZYGOTE_BIN_DIR)"
    return path


_cache: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}


def render(case: str, kube_version: str = "1.30.0", monitoring_api: bool = True) -> list[dict[str, Any]]:
    key = (case, kube_version, monitoring_api)
    if key not in _cache:
        _cache[key] = helm_render.render(
            CHART, values_of(case), namespace=NS, kube_version=kube_version, monitoring_api=monitoring_api
        )
    return copy.deepcopy(_cache[key])


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, hook: bool = False) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if d["__hook__"] == hook]
    assert len(found) == 1, f"expected one {kind} (hook={hook}), found {len(found)}"
    return found[0]


def config_toml(docs: list[dict[str, Any]]) -> str:
    return one(docs, "ConfigMap")["data"]["config.toml"]


def test_lint_has_no_warnings_or_errors() -> None:
    result = helm_render.lint(CHART)
    assert result["TotalChartsLinted"] == 1
    bad = [m for m in result.get("Messages") or [] if m["Severity"] >= 2]  # 2 = warning, 3 = error
    assert not bad and not result.get("Errors"), result


@pytest.mark.parametrize("case", [c for c in CASES if c != "default"])
def test_lint_with_each_values_file(case: str, tmp_path: Path) -> None:
    """Helm's lint reads the chart's own values.yaml: lint a copy whose
    values.yaml is the case's merged values."""
    import shutil

    chart = tmp_path / "zygote"
    shutil.copytree(CHART, chart)
    (chart / "values.yaml").write_text(yaml.safe_dump(merged(case)))
    result = helm_render.lint(str(chart))
    bad = [m for m in result.get("Messages") or [] if m["Severity"] >= 2]
    assert not bad and not result.get("Errors"), result


def test_kubernetes_older_than_1_28_is_refused() -> None:
    with pytest.raises(helm_render.helm_sdkpy.HelmError, match="kubeVersion"):
        helm_render.render(CHART, None, namespace=NS, kube_version="1.27.0")


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_every_object_is_valid_for_kubernetes(case: str, kube_version: str) -> None:
    docs = render(case, kube_version)
    assert docs
    for d in docs:
        obj = {k: v for k, v in d.items() if not k.startswith("__")}
        if d["kind"] in CRD_KINDS:
            validate_crd(obj)
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{case} on {kube_version}: {d['kind']} {obj['metadata'].get('name')} ({d['__source__']}): {e}")


def test_the_validator_refuses_an_unknown_field() -> None:
    ds = {k: v for k, v in one(render("default"), "DaemonSet").items() if not k.startswith("__")}
    ds["spec"]["template"]["spec"]["hostPIDs"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, "1.30.0", strict=True)


def test_the_crd_check_refuses_an_unknown_field() -> None:
    sm = {k: v for k, v in one(render("monitoring"), "ServiceMonitor").items() if not k.startswith("__")}
    validate_crd(copy.deepcopy(sm))
    sm["spec"]["endpoints"][0]["intervall"] = "10s"
    with pytest.raises(AssertionError, match="fields its CRD lacks"):
        validate_crd(sm)


@pytest.mark.parametrize("case", CASES)
def test_config_toml_is_accepted_by_the_daemon(case: str, tmp_path: Path) -> None:
    text = config_toml(render(case))
    f = tmp_path / "config.toml"
    f.write_text(text)
    out = subprocess.run([zygotectl(), "profiles", "check", str(f)], capture_output=True, text=True)
    assert out.returncode == 0, f"zygotectl refused the rendered config:\n{text}\n{out.stdout}{out.stderr}"
    values = merged(case)
    doc = tomllib.loads(text)
    assert doc["default_profile"] == values["defaultProfile"]
    assert sorted(doc["profiles"]) == sorted(values["profiles"])
    for name, p in values["profiles"].items():
        assert doc["profiles"][name] == (p.get("config") or {}), name
    assert doc.get("wasm", {}) == values["wasm"]
    assert doc["metrics"]["enabled"] == values["metrics"]["enabled"]


def test_a_key_the_daemon_does_not_know_is_refused(tmp_path: Path) -> None:
    """The check above can fail: a typo in a profile reaches config.toml and
    zygotectl refuses it, naming the field."""
    docs = helm_render.render(CHART, {"profiles": {"default": {"config": {"pool": {"maxx": 3}}}}}, namespace=NS)
    f = tmp_path / "config.toml"
    f.write_text(config_toml(docs))
    out = subprocess.run([zygotectl(), "profiles", "check", str(f)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "maxx" in out.stdout + out.stderr


@pytest.mark.parametrize(
    "case,listen",
    [("default", "127.0.0.1:9464"), ("monitoring", "0.0.0.0:9555"), ("profiles", "127.0.0.1:9464")],
)
def test_metrics_listen_follows_monitoring(case: str, listen: str) -> None:
    docs = render(case)
    assert tomllib.loads(config_toml(docs))["metrics"]["listen"] == listen
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    assert pod.get("hostNetwork", False) == (case == "monitoring")


@pytest.mark.parametrize("case", CASES)
def test_one_runtime_class_per_profile(case: str) -> None:
    values = merged(case)
    classes = {rc["handler"]: rc for rc in of_kind(render(case), "RuntimeClass")}
    want = {}
    for name, p in values["profiles"].items():
        rc = p.get("runtimeClass") or {}
        if rc.get("create", True):
            handler = "zygote" if name == values["defaultProfile"] else f"zygote-{name}"
            want[handler] = (name, rc)
    assert sorted(classes) == sorted(want)
    for handler, (name, rc) in want.items():
        got = classes[handler]
        assert got["metadata"]["name"] == (rc.get("name") or handler)
        assert got["metadata"]["labels"]["zygote.dev/profile"] == name
        assert got["scheduling"] == {"nodeSelector": {"zygote.dev/ready": "true"}}
        if rc.get("overhead"):
            assert got["overhead"] == {"podFixed": rc["overhead"]}
        else:
            assert "overhead" not in got


@pytest.mark.parametrize("case", CASES)
def test_rbac_is_get_and_patch_on_nodes_only(case: str) -> None:
    docs = render(case)
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    role = one(docs, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NS}]
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def host_paths(pod: dict[str, Any]) -> dict[str, str]:
    """mountPath -> host path of the pod's hostPath volumes (init container)."""
    vols = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    return {m["mountPath"]: vols[m["name"]] for m in pod["initContainers"][0]["volumeMounts"] if m["name"] in vols}


@pytest.mark.parametrize("case", CASES)
def test_installer_daemonset_runs_the_cli(case: str) -> None:
    values = merged(case)
    inst = values["installer"]
    ds = one(render(case), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    [init] = pod["initContainers"]
    assert init["command"] == ["/zygote/bin/zygote-installer"]
    assert init["args"] == [
        "install", "--host-root", "/host", "--install-dir", inst["installDir"], "--source-dir", "/zygote/bin",
        "--zygote-config", "/etc/zygote-config/config.toml", "--containerd-config", inst["containerdConfig"],
        "--restart", inst["restart"], "--node-name", "$(NODE_NAME)", "--label", "zygote.dev/ready=true",
        *inst["extraArgs"],
    ]  # fmt: skip
    assert inst["restart"] in ("systemd", "signal", "none")
    assert init["env"] == [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    assert init["securityContext"] == {"privileged": True}
    assert host_paths(pod) == {
        "/host": "/",
        "/host" + os.path.dirname(inst["containerdConfig"]): os.path.dirname(inst["containerdConfig"]),
        "/host" + inst["containerdRunDir"]: inst["containerdRunDir"],
        "/host" + inst["installDir"]: inst["installDir"],
        "/host" + inst["zygoteConfigDir"]: inst["zygoteConfigDir"],
    }
    cfg = [m for m in init["volumeMounts"] if m["mountPath"] == "/etc/zygote-config"]
    assert cfg and cfg[0]["readOnly"] is True
    [main] = pod["containers"]
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("case", CASES)
def test_config_checksum_rolls_the_daemonset(case: str) -> None:
    docs = render(case)
    annotation = one(docs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert annotation == hashlib.sha256(config_toml(docs).encode()).hexdigest()


def test_changed_values_change_the_checksum() -> None:
    a = one(render("default"), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = one(render("profiles"), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert a != b


def test_uninstall_hook_can_be_disabled() -> None:
    assert not merged("k3s")["uninstallHook"]["enabled"]
    assert [d for d in render("k3s") if d["__hook__"]] == []


@pytest.mark.parametrize("case", [c for c in CASES if c != "k3s"])
def test_uninstall_hook(case: str) -> None:
    values = merged(case)
    inst = values["installer"]
    assert values["uninstallHook"]["enabled"]
    docs = render(case)
    hooks = {d["kind"]: d for d in docs if d["__hook__"]}
    assert sorted(hooks) == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"]
    hook = hooks["DaemonSet"]
    for d in hooks.values():
        ann = d["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-delete"
        # Kept until the README's clean-up: Helm does not wait for a DaemonSet,
        # so hook-succeeded would delete the identity under the running pods.
        assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation"
    # Its identity exists before it: Helm creates hooks by ascending weight.
    weight = {k: int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) for k, d in hooks.items()}
    assert max(weight[k] for k in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")) < weight["DaemonSet"]
    # Its own ServiceAccount (the release's is deleted while the hook runs),
    # bound to get/patch on nodes, nothing else.
    sa = hooks["ServiceAccount"]["metadata"]
    release_sa = one(docs, "ServiceAccount")["metadata"]["name"]
    assert sa["name"] != release_sa
    pod = hook["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["name"] and pod.get("automountServiceAccountToken", True)
    assert hooks["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]
    binding = hooks["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == hooks["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
    [init] = pod["initContainers"]
    assert init["args"] == [
        "uninstall", "--host-root", "/host", "--install-dir", inst["installDir"],
        "--containerd-config", inst["containerdConfig"], "--restart", inst["restart"],
        "--node-name", "$(NODE_NAME)", "--label", "zygote.dev/ready=true", *inst["extraArgs"],
    ]  # fmt: skip
    assert init["env"] == [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    # The same host paths, the same nodes as the installer.
    installer = one(render(case), "DaemonSet")["spec"]["template"]["spec"]
    assert host_paths(pod) == host_paths(installer)
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert pod.get(key) == installer.get(key)


def test_monitors_need_the_operator_api() -> None:
    with_api = render("monitoring", monitoring_api=True)
    sm = one(with_api, "ServiceMonitor")
    pm = one(with_api, "PodMonitor")
    svc = one(with_api, "Service")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"][0]["port"] == 9555
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    for sel in (sm["spec"]["selector"]["matchLabels"], svc["spec"]["selector"]):
        assert sel.items() >= {"app.kubernetes.io/instance": "zygote"}.items()
    ports = one(with_api, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"name": "metrics", "containerPort": 9555, "protocol": "TCP"}]
    without = render("monitoring", monitoring_api=False)
    assert not of_kind(without, "ServiceMonitor") and not of_kind(without, "PodMonitor")
    assert not of_kind(without, "Service")


@pytest.mark.parametrize(
    "values,message",
    [
        ({"profiles": {"Bad_Name": {"config": {}}}}, "must be a DNS label"),
        ({"defaultProfile": "missing"}, "is not a key of profiles"),
    ],
)
def test_bad_values_are_refused_at_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_render.helm_sdkpy.HelmError, match=message):
        helm_render.render(CHART, values, namespace=NS)


def test_helm_upgrade_with_new_values_rolls_the_installer() -> None:
    """`helm upgrade` (Helm's upgrade action after its install) patches the
    ConfigMap and the DaemonSet's pod template checksum: the DaemonSet rolls
    and every node re-runs the installer. The same values patch neither."""
    second = {"profiles": {"default": {"config": {"pool": {"max": 9}}}}}
    writes = helm_render.upgrade_writes(CHART, None, second, namespace=NS)
    ds_path = f"/apis/apps/v1/namespaces/{NS}/daemonsets/zygote"
    cm_path = f"/api/v1/namespaces/{NS}/configmaps/zygote-config"
    patches = {path: body for method, path, body in writes if method == "PATCH"}
    new_toml = patches[cm_path]["data"]["config.toml"]
    assert tomllib.loads(new_toml)["profiles"]["default"]["pool"]["max"] == 9
    checksum = patches[ds_path]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum == hashlib.sha256(new_toml.encode()).hexdigest()
    same = helm_render.upgrade_writes(CHART, None, None, namespace=NS)
    assert not [p for m, p, _ in same if m == "PATCH" and p in (ds_path, cm_path)], same
