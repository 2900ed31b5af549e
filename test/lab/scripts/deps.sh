#!/usr/bin/env bash
# Installs the Debian packages the lab needs, only those missing, with one
# `apt-get update` when anything must be fetched (also when apt knows no
# linux-image-amd64 yet: mkbase.sh downloads it). CI runs as root.
set -euo pipefail

packages=(qemu-system-x86 busybox-static e2fsprogs xfsprogs util-linux mount kmod cpio xz-utils zstd)

missing=()
for p in "${packages[@]}"; do
	if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)) && apt-cache show linux-image-amd64 >/dev/null 2>&1; then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || { echo "lab: need root (or sudo) to install: ${missing[*]:-package lists}" >&2; exit 1; }
	sudo=(sudo)
fi
echo "lab: apt-get update" >&2
"${sudo[@]}" apt-get update -qq
if ((${#missing[@]} > 0)); then
	echo "lab: installing ${missing[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
