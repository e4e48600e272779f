#!/usr/bin/env bash
# Gate run by .ci/run: no integration test passes by returning early.
#
# Inside a #[test] function the only early return allowed is the one right
# after `if !require_runtime(..) {`, and require_runtime panics under CI
# (CI runs every runtime), so in CI no test can end without its assertions.
# Tests that only apply to the warm path assert it, and hack/test.sh names
# them in --skip on the cold pass, where they show up as skipped.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
status=0
shopt -s nullglob
for f in "${repo_dir}"/tests/integration/tests/*.rs "${repo_dir}"/tests/cri/tests/*.rs "${repo_dir}"/tests/cri/tests/*/*.rs; do
	if ! awk -v file="${f#"${repo_dir}"/}" '
		/^#\[test\]/ { in_test = 1 }
		in_test && /^}/ { in_test = 0 }
		in_test && /^[[:space:]]+return;/ {
			if (prev !~ /if !require_runtime\(/) {
				printf "%s:%d: early return in a test (only `if !require_runtime(..) { return; }` may return early)\n", file, NR
				bad = 1
			}
		}
		NF { prev = $0 }
		END { exit bad }
	' "${f}"; then
		status=1
	fi
done
if [[ ${status} -ne 0 ]]; then
	echo "check-tests.sh: FAILED: tests that can pass without running their assertions" >&2
	exit 1
fi
echo "check-tests.sh: ok (no test returns early except on an excluded runtime)"
