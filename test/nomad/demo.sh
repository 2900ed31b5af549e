#!/usr/bin/env bash
# make demo: the Nomad story of test/nomad, narrated. Prepares what is
# missing (Debian packages, kernel image, Nomad, binaries) with progress,
# then boots the lab VM and shows only the story's lines; the whole console
# goes to a log whose tail is shown if anything fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_dir=.cache/nomad-e2e
mkdir -p "$log_dir"
build_log=$log_dir/demo-build.log
console_log=$log_dir/demo-console.log
: >"$build_log"

declare -a rows
timed() { # timed LABEL command...: run with its output in the build log
	local label=$1 start=$SECONDS
	shift
	printf '==> %s ... ' "$label"
	if "$@" >>"$build_log" 2>&1; then
		printf 'done (%ds)\n' $((SECONDS - start))
		rows+=("$label|$((SECONDS - start))")
	else
		printf 'FAILED\n'
		tail -n 40 "$build_log"
		echo "(full log: $build_log)"
		exit 1
	fi
}

echo "nvmeof demo: Nomad drives a real NVMe/TCP volume through the nvmeof-csi plugin,"
echo "inside a QEMU VM running Debian's kernel with an nvmet target on loopback."
echo
timed "Debian packages for the lab (apt, first run only)" make --no-print-directory lab-deps
timed "kernel and base image (cached after the first run)" make --no-print-directory lab-image
[[ -x ${NOMAD_BIN:-} ]] || echo "    (Nomad is built from source once: about 10 minutes on 2 cores)"
timed "Nomad binary (cached after the first run)" make --no-print-directory nomad-bin
timed "nvmeof-csi, provider and test binaries" make --no-print-directory nomad-e2e-binaries
timed "terraform apply of the lab's nvme_connection" make --no-print-directory nomad-e2e-share
echo "==> booting the lab VM (2 vCPU, 3 GiB, software emulation: a few minutes)"
echo

start=$SECONDS
set +e
make --no-print-directory nomad-e2e-run 2>&1 | tee "$console_log" | while IFS= read -r line; do
	case $line in
	"DEMO-STEP: "*) printf '    %s\n' "${line#DEMO-STEP: }" ;;
	"DEMO-DONE: "*) printf '  ✓ %s\n' "${line#DEMO-DONE: }" ;;
	esac
done
rc=${PIPESTATUS[0]}
set -e
vm_seconds=$((SECONDS - start))

echo
if [[ $rc -ne 0 ]]; then
	echo "The demo failed. The end of the VM's console:"
	tail -n 60 "$console_log"
	echo "(full console: $console_log)"
	exit "$rc"
fi
echo "Summary"
grep '^DEMO-SUMMARY: ' "$console_log" | sed 's/^DEMO-SUMMARY: /  /'
echo
echo "  host-side step                                      seconds"
for row in "${rows[@]}"; do
	printf '  %-50s %7s\n' "${row%%|*}" "${row##*|}"
done
printf '  %-50s %7s\n' "VM boot + story + power-off" "$vm_seconds"
