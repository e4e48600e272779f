"""hack/build-installer-image.sh: the installer image of charts/zygote holds
the three binaries from $ZYGOTE_BIN_DIR (default target/release), their
shared libraries and busybox's applets; a missing binary is named.

Run by tests/chart/run.sh (as root: umoci)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent


def bin_dir() -> Path:
    return Path(os.environ.get("ZYGOTE_BIN_DIR") or REPO / "target" / "release")


def test_installer_image_script_names_a_missing_binary(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    for b in ("containerd-shim-zygote-v1", "zygotectl"):
        (tmp_path / "bin" / b).symlink_to(bin_dir() / b)
    out = subprocess.run(
        [str(REPO / "hack" / "build-installer-image.sh"), str(tmp_path / "out")],
        env={**os.environ, "ZYGOTE_BIN_DIR": str(tmp_path / "bin")},
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert f"{tmp_path}/bin/zygote-installer is missing" in out.stderr


def test_installer_image_holds_the_binaries(tmp_path: Path) -> None:
    """hack/build-installer-image.sh on $ZYGOTE_BIN_DIR: the image's layers
    hold the three binaries, their libraries and busybox's applets."""
    out = subprocess.run(
        [str(REPO / "hack" / "build-installer-image.sh"), str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    layout = tmp_path / "layout"

    def blob(digest: str) -> Path:
        algo, hexd = digest.split(":")
        return layout / "blobs" / algo / hexd

    index = json.loads((layout / "index.json").read_text())
    [desc] = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == chart_defaults_app_version()
    manifest = json.loads(blob(desc["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    assert config["config"]["Entrypoint"] == ["/zygote/bin/zygote-installer"]
    names: dict[str, tarfile.TarInfo] = {}
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as t:
            names.update({m.name.lstrip("./"): m for m in t.getmembers()})
    for b in ("zygote-installer", "containerd-shim-zygote-v1", "zygotectl"):
        m = names[f"zygote/bin/{b}"]
        assert m.isfile() and m.mode & 0o111 and m.size == (bin_dir() / b).stat().st_size, b
    for f in ("bin/busybox", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"):
        assert names[f].isfile(), f
    for applet in ("sh", "sleep", "nsenter"):
        assert names[f"bin/{applet}"].issym(), applet
    assert (tmp_path / "zygote-installer-oci.tar").stat().st_size > 0


def chart_defaults_app_version() -> str:
    return yaml.safe_load((REPO / "charts" / "zygote" / "Chart.yaml").read_text())["appVersion"]
