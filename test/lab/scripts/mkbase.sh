#!/usr/bin/env bash
# Builds the lab's kernel and base initramfs, or reuses them from the cache.
#
#   mkbase.sh CACHE_DIR        (run from the repository root; GO names the go tool)
#
# Layout under CACHE_DIR (keyed by what went in, so a change rebuilds):
#   debs/                         the downloaded Debian kernel packages
#   kernel/<package>_<version>/   the unpacked package with its modules.dep
#   image/<key>/kernel            vmlinux (PVH) or, if extraction failed, the bzImage
#   image/<key>/base.cpio.gz      busybox, modules, mkfs tools, /init, /etc
#   current -> image/<key>        what `make lab` boots
# <key> hashes the kernel package version, the versions of the host packages
# copied into the image, and every input file of the harness.
set -euo pipefail

cache=$(realpath -m "${1:?usage: mkbase.sh CACHE_DIR}")
GO=${GO:-go}
lab=test/lab
image_inputs=("$lab/scripts/mkbase.sh" "$lab/image" "$lab/internal/bzimage" "$lab/cmd/extract-vmlinux")
host_packages=(busybox-static e2fsprogs xfsprogs util-linux mount libc6)

# apt drops to its _apt user for downloads, which cannot write into a
# root-owned cache directory: download as whoever runs this.
apt_opts=(-o "APT::Sandbox::User=$(id -un)")

step() { printf 'lab: [%4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { echo "lab: $*" >&2; exit 1; }

[[ -d $lab/image ]] || die "run from the repository root"
mkdir -p "$cache/debs" "$cache/kernel" "$cache/image"

# download PACKAGE VERSION: the .deb in debs/, fetched once. A stale apt
# list gives a 404: refresh it once and retry.
download() {
	local deb
	deb=$(compgen -G "$cache/debs/${1}_${2}_*.deb" | head -n1 || true)
	if [[ -z $deb ]]; then
		step "download $1 $2"
		(cd "$cache/debs" && { apt-get download -q "${apt_opts[@]}" "$1=$2" || { apt-get update -qq && apt-get download -q "${apt_opts[@]}" "$1=$2"; }; }) >&2
		deb=$(compgen -G "$cache/debs/${1}_${2}_*.deb" | head -n1) || die "download of $1 $2 left no .deb"
	fi
	echo "$deb"
}

# The kernel: linux-image-amd64 is a metapackage; its Depends names the
# real package, linux-image-<release>, at the same version.
meta_version=$(apt-cache policy linux-image-amd64 | sed -n 's/^ *Candidate: //p')
[[ -n $meta_version && $meta_version != "(none)" ]] || die "apt knows no linux-image-amd64 (run scripts/deps.sh)"
meta_deb=$(download linux-image-amd64 "$meta_version")
read -r kpkg kver < <(dpkg-deb -f "$meta_deb" Depends | sed -n 's/.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p')
[[ -n ${kver:-} ]] || die "cannot read the kernel package from $(dpkg-deb -f "$meta_deb" Depends)"
release=${kpkg#linux-image-}
kernel_deb=$(download "$kpkg" "$kver")

kdir=$cache/kernel/${kpkg}_$kver
if [[ ! -d $kdir ]]; then
	step "unpack $kpkg $kver"
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg -x "$kernel_deb" "$kdir.tmp/root"
	# The package ships no modules.dep: the lab needs it for --show-depends.
	depmod -b "$kdir.tmp/root" "$release"
	mv "$kdir.tmp" "$kdir"
fi
modroot=$kdir/root/lib/modules/$release

key=$({
	echo "$kpkg $kver"
	dpkg-query -W -f='${Package} ${Version}\n' "${host_packages[@]}"
	find "${image_inputs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
out=$cache/image/$key
if [[ -f $out/base.cpio.gz && -f $out/kernel ]]; then
	ln -sfn "image/$key" "$cache/current"
	step "base image $key is cached ($kpkg $kver)"
	exit 0
fi

step "build base image $key for $kpkg $kver"
work=$out.tmp
rm -rf "$work"
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,lib64,etc/nvme,proc,sys,dev,run,tmp,root,lab/bin,lab/share}

# copy_with_libs FILE: the file at the same path, plus the shared libraries
# and loader ldd names (a script has none: ldd fails and that is fine).
copy_with_libs() {
	local file=$1 lib
	mkdir -p "$rootfs$(dirname "$file")"
	cp -L "$file" "$rootfs$file"
	while read -r lib; do
		[[ -e $rootfs$lib ]] && continue
		mkdir -p "$rootfs$(dirname "$lib")"
		cp -L "$lib" "$rootfs$lib"
	done < <(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true)
}

step "host programs"
while read -r name; do
	path=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$name") || die "$name not found (run scripts/deps.sh)"
	# Copied to the path found; /init's PATH puts /usr/sbin and /usr/bin
	# first, so these win over busybox applets of the same name.
	copy_with_libs "$path"
done < <(grep -v -e '^#' -e '^$' "$lab/image/binaries")

step "busybox"
[[ $(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null) == installed ]] ||
	die "busybox-static is not installed (run scripts/deps.sh)"
busybox=/bin/busybox
cp -L "$busybox" "$rootfs/bin/busybox"
# Applets live in bin, sbin, usr/bin and usr/sbin, all made above.
while read -r applet; do
	[[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)

# modules FILE > LOADLIST: expand each listed module to its dependencies in
# load order, drop the excluded ones, copy them, and list them once each.
expand_modules() {
	local list=$1 skip=() line m
	while read -r line; do
		[[ $line == -* ]] && skip+=("${line#-}.ko")
	done < <(grep -v -e '^#' -e '^$' "$list")
	while read -r m; do
		[[ $m == -* ]] && continue
		modprobe -d "$kdir/root" -S "$release" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
	done < <(grep -v -e '^#' -e '^$' "$list") | while read -r path; do
		local base rel s
		base=$(basename "$path")
		for s in "${skip[@]}"; do [[ $base == "$s" ]] && continue 2; done
		rel=${path#"$modroot"/}
		mkdir -p "$rootfs/lib/modules/$release/$(dirname "$rel")"
		cp "$path" "$rootfs/lib/modules/$release/$rel"
		echo "$rel"
	done | awk '!seen[$0]++'
}

step "kernel modules ($release)"
expand_modules "$lab/image/modules" >"$rootfs/lab/modules.load"
expand_modules "$lab/image/modules-9p" >"$rootfs/lab/modules-9p.load"
cp "$modroot"/modules.{order,builtin,builtin.modinfo} "$rootfs/lib/modules/$release/"
# A modules.dep for just these, so a request_module() from the kernel finds
# them through busybox modprobe.
depmod -b "$rootfs" "$release"
echo "lab: $(wc -l <"$rootfs/lab/modules.load") modules to load" >&2

cp -R "$lab/image/etc/." "$rootfs/etc/"
install -m 0755 "$lab/image/init" "$rootfs/init"

step "initramfs archive"
(cd "$rootfs" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$work/base.cpio.gz"

step "extract vmlinux"
"$GO" build -o "$work/extract-vmlinux" ./$lab/cmd/extract-vmlinux
if ! "$work/extract-vmlinux" -in "$kdir/root/boot/vmlinuz-$release" -out "$work/kernel" >&2; then
	echo "lab: vmlinux extraction failed: booting the bzImage (slower: ~7 s instead of ~3 s to /init)" >&2
	cp "$kdir/root/boot/vmlinuz-$release" "$work/kernel"
fi

printf '%s %s\n' "$kpkg" "$kver" >"$work/kernel-package"
rm -rf "$rootfs" "$work/extract-vmlinux" "$out"
mv "$work" "$out"
ln -sfn "image/$key" "$cache/current"

# Keep the cache to what this build uses: older kernels and images go.
find "$cache/image" "$cache/kernel" -mindepth 1 -maxdepth 1 \
	! -name "$key" ! -name "${kpkg}_$kver" -exec rm -rf {} +
find "$cache/debs" -name '*.deb' ! -name "${kpkg}_${kver}_*" ! -name "linux-image-amd64_${meta_version}_*" -delete
step "base image $key ready: $(du -h "$out/base.cpio.gz" | cut -f1) compressed"
