#!/usr/bin/env bash
# Installs the Debian packages the lab needs, only those missing, with one
# `apt-get update` when anything must be fetched (also when apt knows no
# linux-image-amd64 yet: mkbase.sh downloads it). CI runs as root.
#
#   deps.sh            install what is missing
#   deps.sh --update   refresh the machine's package lists (mkbase.sh, on a 404)
set -euo pipefail

force_update=0
[[ ${1:-} == --update ]] && force_update=1

# The image's own programs come from Debian packages that mkbase.sh only
# downloads and unpacks; these are the tools that build and boot it.
packages=(qemu-system-x86 kmod cpio xz-utils zstd debian-archive-keyring)

missing=()
for p in "${packages[@]}"; do
	if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
		missing+=("$p")
	fi
done

if ((force_update == 0 && ${#missing[@]} == 0)) && apt-cache show linux-image-amd64 >/dev/null 2>&1; then
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
