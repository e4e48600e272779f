#!/usr/bin/env bash
# The chart tests (tests/chart/test_*.py): charts/zygote linted and
# rendered by Helm's engine (PyPI helm-sdkpy), every object validated against
# the Kubernetes schemas (PyPI kubernetes-validate; the Prometheus operator's
# kinds against PyPI cloudcoil-models-prometheus-operator), the content checked
# (config.toml through `zygotectl profiles check`), the installer image built.
#
# Usage: tests/chart/run.sh [PYTEST_ARGS...]   (as root: the image test runs
#        hack/build-installer-image.sh, i.e. umoci)
# Environment:
#   ZYGOTE_BIN_DIR   where zygotectl and the two other binaries of the installer
#                    image are (default <repo>/target/release); or ZYGOTECTL for zygotectl
#   ZYGOTE_CACHE_DIR the venv lives in <dir>/chart-venv (default /var/tmp/zygote-cache)
#   ZYGOTE_PYTHON    a Python >= 3.12 (helm-sdkpy requires it); default: the
#                    first of python3.13, python3.12, pyenv's 3.12/3.13, python3
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
cache="${ZYGOTE_CACHE_DIR:-/var/tmp/zygote-cache}"
venv="${cache}/chart-venv"
# Pinned: the tests read helm-sdkpy's install result and Helm's lint result.
readonly REQUIREMENTS=(helm-sdkpy==0.1.32 kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator==0.80.1.0
	pyyaml pytest)

die() {
	echo "tests/chart/run.sh: error: $*" >&2
	exit 1
}

py_ok() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

python="${ZYGOTE_PYTHON:-}"
if [[ -z ${python} ]]; then
	for p in python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python3 /root/.pyenv/versions/3.12*/bin/python3 python3; do
		if command -v "${p}" >/dev/null 2>&1 && py_ok "${p}"; then
			python="${p}"
			break
		fi
	done
fi
[[ -n ${python} ]] || die "no Python >= 3.12 with venv found (helm-sdkpy needs 3.12+); set ZYGOTE_PYTHON"
py_ok "${python}" || die "${python} is not a Python >= 3.12 with the venv module"

zygotectl="${ZYGOTECTL:-${ZYGOTE_BIN_DIR:-${repo}/target/release}/zygotectl}"
[[ -x ${zygotectl} ]] || die "zygotectl not found at ${zygotectl} (cargo build --release, or set ZYGOTE_BIN_DIR)"
export ZYGOTECTL="${zygotectl}"

stamp="$("${python}" --version) ${REQUIREMENTS[*]}"
if [[ ! -x ${venv}/bin/python || "$(cat "${venv}/.stamp" 2>/dev/null)" != "${stamp}" ]]; then
	echo "tests/chart/run.sh: making ${venv} with ${python} ($("${python}" --version))"
	rm -rf "${venv}"
	mkdir -p "${cache}"
	"${python}" -m venv "${venv}"
	"${venv}/bin/pip" install --quiet "${REQUIREMENTS[@]}" || die "pip install ${REQUIREMENTS[*]} failed"
	echo "${stamp}" >"${venv}/.stamp"
fi

cd "${here}"
# Helm's Go runtime reads its environment at load: the in-memory release
# store (see helm_render.py).
export HELM_DRIVER=memory
# No __pycache__ in the work tree.
export PYTHONDONTWRITEBYTECODE=1
# (-p no:cloudcoil: cloudcoil's pytest plugin, for tests against clusters, is not used.)
# pytest's temporary dirs (the image test's layouts among them) go with the run.
tmp="$(mktemp -d /var/tmp/zygote-chart-tests.XXXXXX)"
trap 'rm -rf "${tmp}"' EXIT
"${venv}/bin/python" -m pytest -p no:cacheprovider -p no:cloudcoil -q --basetemp "${tmp}/pytest" "$@" test_chart.py test_installer_image.py
