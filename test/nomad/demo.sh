#!/usr/bin/env bash
# make demo: the Nomad story of test/nomad, narrated. Prepares what is
# missing (Debian packages, kernel image, binaries, terraform apply) with
# progress, then boots the lab VM and shows only the story's lines; the
# whole console goes to a log whose tail is shown if anything fails.
#
# With a nomad binary on PATH or in NOMAD, the story runs with that real
# Nomad agent; otherwise (and always in CI) with the project's own
# Nomad-faithful driver. NOMAD= (empty) forces the driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_dir=.cache/nomad-e2e
mkdir -p "$log_dir"
build_log=$log_dir/demo-build.log
console_log=$log_dir/demo-console.log
: >"$build_log"

NOMAD=${NOMAD-$(command -v nomad || true)}
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

echo "nvmeof demo: Nomad's CSI client drives a real NVMe/TCP volume through the nvmeof-csi plugin,"
echo "inside a QEMU VM running Debian's kernel with an nvmet target on loopback."
if [[ -n $NOMAD ]]; then
	mode="a real Nomad agent ($NOMAD)"
	share=(NOMAD="$NOMAD" NOMAD_SHARE_BINARY=1)
	run=(NOMAD_E2E_RUN='^TestRealNomadStory' NOMAD_E2E_MEMORY=3072 NOMAD_E2E_TIMEOUT=12m)
	echo "Nomad: $mode, found on PATH or in NOMAD (NOMAD= make demo runs the driver instead)."
else
	mode="the project's Nomad-faithful driver (test/nomad/nomadclient)"
	share=()
	run=()
	echo "Nomad: no nomad binary here, so $mode plays Nomad 1.11's client:"
	echo "       the same RPCs, fields, paths, ordering and quirks (NOMAD=/path/to/nomad for a real agent)."
fi
echo
# One build configuration for every Go build of the demo (the lab image's
# tool included), so a cold build compiles the standard library once.
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath"
# The kernel and image (downloads, unpacking: disk and network) are made
# while the Go builds use the CPUs.
image_log=$log_dir/demo-image.log
image_start=$SECONDS
(make --no-print-directory lab-deps && make --no-print-directory lab-image LAB_KERNEL=6.1) >"$image_log" 2>&1 &
image_pid=$!
timed "Go: nvmeof-csi, the provider, the lab's tools, the test binary" make --no-print-directory nomad-e2e-binaries
printf '==> %s ... ' "Debian packages, kernel and base image (in parallel)"
if wait "$image_pid"; then
	printf 'done (%ds after they started)\n' $((SECONDS - image_start))
	rows+=("Debian packages, kernel, image (in parallel)|$((SECONDS - image_start))")
else
	printf 'FAILED\n'
	tail -n 40 "$image_log"
	echo "(full log: $image_log)"
	exit 1
fi
timed "terraform apply of the lab's nvme_connection" make --no-print-directory nomad-e2e-share "${share[@]}"
echo "==> booting the lab VM (software emulation)"
echo

start=$SECONDS
set +e
make --no-print-directory nomad-e2e-run "${run[@]}" 2>&1 | tee "$console_log" | while IFS= read -r line; do
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
	echo
fi
echo "Summary (Nomad's part played by $mode)"
# The console once: labrun repeats its tail after a failure.
sed '/^---- last /q' "$console_log" | grep '^DEMO-SUMMARY: ' | sed 's/^DEMO-SUMMARY: /  /'
echo
echo "  host-side step                                      seconds"
for row in "${rows[@]}"; do
	printf '  %-50s %7s\n' "${row%%|*}" "${row##*|}"
done
printf '  %-50s %7s\n' "VM boot + story + power-off" "$vm_seconds"
printf '  %-50s %7s\n' "total" "$SECONDS"
exit "$rc"
