#!/usr/bin/env bash
# Builds the lab's kernel and base initramfs for one Debian kernel, or
# reuses them from the cache.
#
#   mkbase.sh CACHE_DIR KERNEL     KERNEL: 6.1 or 6.12 (run from the repository root; GO names the go tool)
#
# Each kernel comes with the userspace of its own Debian release:
#   6.1   bookworm, from the machine's own apt sources and lists
#   6.12  trixie, through a private apt configuration in CACHE_DIR/apt/trixie
#         (its own sources list, lists, and an empty dpkg status)
# Either way packages are only downloaded and unpacked (dpkg -x): the host's
# apt sources and installed packages are never changed.
#
# Layout under CACHE_DIR (keyed by what went in, so a change rebuilds):
#   apt/trixie/                   the private apt configuration and its lists
#   apt/<release>.status          an empty dpkg status: apt resolves every dependency from scratch
#   debs/<release>/               downloaded .debs (kernel and userspace)
#   kernel/<package>_<version>/   the unpacked kernel package with its modules.dep
#   userland/<release>-<hash>/    the unpacked userspace packages of one set of versions
#   image/<key>/kernel            vmlinux (PVH) or, if extraction failed, the bzImage
#   image/<key>/base.cpio.gz      busybox, modules, mkfs tools, nvme-cli, /init, /etc
#   current-<KERNEL> -> image/<key>   what `make lab` boots for that kernel
#   current -> current-6.1        the machine's own kernel, for callers that name no kernel
# <key> hashes the kernel package version, the userspace package versions and
# every input file of the harness.
set -euo pipefail

cache=$(realpath -m "${1:?usage: mkbase.sh CACHE_DIR KERNEL}")
want_kernel=${2:?usage: mkbase.sh CACHE_DIR KERNEL (6.1 or 6.12)}
GO=${GO:-go}
lab=test/lab
image_inputs=("$lab/scripts/mkbase.sh" "$lab/image" "$lab/internal/bzimage" "$lab/cmd/extract-vmlinux"
	"$lab/internal/rootfs" "$lab/cmd/rootcopy")

step() { printf 'lab %s: [%4ds] %s\n' "$want_kernel" "$SECONDS" "$*" >&2; }
die() { echo "lab $want_kernel: $*" >&2; exit 1; }

[[ -d $lab/image ]] || die "run from the repository root"

# apt as whoever runs this: apt drops to its _apt user for downloads, which
# cannot write into a root-owned cache directory.
apt_common=(-o "APT::Sandbox::User=$(id -un)" -o Debug::NoLocking=1 -o APT::Architecture=amd64
	-o "APT::Architectures::=amd64" -o APT::Install-Recommends=0 -o APT::Get::AllowUnauthenticated=0)

case $want_kernel in
6.1)
	release=bookworm
	# The machine's sources and lists, as deps.sh left them.
	apt_conf=()
	apt_update() { step "apt-get update (the machine's lists)"; "$lab/scripts/deps.sh" --update; }
	;;
6.12)
	release=trixie
	aptdir=$cache/apt/trixie
	mkdir -p "$aptdir/etc/sources.list.d" "$aptdir/etc/preferences.d" "$aptdir/etc/apt.conf.d" \
		"$aptdir/lists/partial" "$aptdir/cache"
	# Debian's own archive key ships with every Debian (debian-archive-keyring).
	cat >"$aptdir/etc/sources.list.new" <<-EOF
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-updates main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
	EOF
	mv "$aptdir/etc/sources.list.new" "$aptdir/etc/sources.list"
	apt_conf=(-o "Dir::Etc=$aptdir/etc" -o "Dir::Etc::SourceList=$aptdir/etc/sources.list"
		-o "Dir::Etc::SourceParts=$aptdir/etc/sources.list.d" -o "Dir::Etc::Parts=$aptdir/etc/apt.conf.d"
		-o "Dir::Etc::PreferencesParts=$aptdir/etc/preferences.d" -o "Dir::State::Lists=$aptdir/lists"
		-o "Dir::Cache=$aptdir/cache")
	apt_update() { step "apt-get update (private trixie configuration)"; apt-get -qq "${apt_common[@]}" "${apt_conf[@]}" update >&2; }
	# Lists older than a day are refreshed: trixie's point releases and
	# security updates replace the kernel package, and old lists 404.
	if [[ -z $(find "$aptdir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit) ]]; then
		apt_update
	fi
	;;
*) die "KERNEL must be 6.1 or 6.12, not '$want_kernel'" ;;
esac

debs=$cache/debs/$release
status=$cache/apt/$release.status
mkdir -p "$debs/partial" "$cache/kernel" "$cache/image" "$cache/userland" "$cache/apt"
: >"$status"
apt_opts=("${apt_common[@]}" "${apt_conf[@]}" -o "Dir::State::status=$status" -o "Dir::Cache::archives=$debs")

candidate() { apt-cache "${apt_opts[@]}" policy "$1" | sed -n 's/^ *Candidate: //p'; }

# fetch PACKAGE...: download the packages and every dependency (resolved
# against an empty system, recommends left out) into debs/, and print the
# .debs, one a line. A stale list gives a 404: refresh it once and retry.
fetch() {
	local plan
	plan() { apt-get -qq "${apt_opts[@]}" install -s -y "$@"; }
	plan=$(plan "$@") || { apt_update && plan=$(plan "$@"); } || die "apt cannot resolve $*"
	if ! apt-get -qq "${apt_opts[@]}" install --download-only -y "$@" >&2; then
		apt_update
		apt-get -qq "${apt_opts[@]}" install --download-only -y "$@" >&2 || die "download of $* failed"
	fi
	# "Inst NAME (VERSION SUITE [ARCH])": apt stores NAME_VERSION_ARCH.deb
	# with the epoch's colon as %3a.
	local name
	while read -r name; do
		[[ -f $debs/$name ]] || die "apt left no $name"
		echo "$debs/$name"
	done < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([a-z0-9]*\)\]).*/\1_\2_\3.deb/p' <<<"$plan" | sed 's/:/%3a/g')
}

# The kernel: linux-image-amd64 is a metapackage; its Depends names the
# real package, linux-image-<release>, at the same version.
meta_version=$(candidate linux-image-amd64)
if [[ -z $meta_version || $meta_version == "(none)" ]]; then
	apt_update
	meta_version=$(candidate linux-image-amd64)
fi
[[ -n $meta_version && $meta_version != "(none)" ]] || die "apt knows no linux-image-amd64 for $release (run scripts/deps.sh)"
[[ $meta_version == "$want_kernel".* ]] || die "$release's linux-image-amd64 is $meta_version, not a $want_kernel kernel"
meta_deb=$(apt-get -qq "${apt_opts[@]}" download --print-uris "linux-image-amd64=$meta_version" | awk '{ gsub(/\x27/, "", $2); print $2 }')
if [[ ! -f $debs/$meta_deb ]]; then
	step "download linux-image-amd64 $meta_version"
	(cd "$debs" && apt-get -q "${apt_opts[@]}" download "linux-image-amd64=$meta_version" >&2)
fi
read -r kpkg kver < <(dpkg-deb -f "$debs/$meta_deb" Depends | sed -n 's/.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p')
[[ -n ${kver:-} ]] || die "cannot read the kernel package from $(dpkg-deb -f "$debs/$meta_deb" Depends)"
krelease=${kpkg#linux-image-}
kernel_deb=$(compgen -G "$debs/${kpkg}_${kver//:/%3a}_*.deb" | head -n1 || true)
if [[ -z $kernel_deb ]]; then
	step "download $kpkg $kver"
	(cd "$debs" && apt-get -q "${apt_opts[@]}" download "$kpkg=$kver" >&2)
	kernel_deb=$(compgen -G "$debs/${kpkg}_${kver//:/%3a}_*.deb" | head -n1) || die "download of $kpkg $kver left no .deb"
fi

kdir=$cache/kernel/${kpkg}_$kver
if [[ ! -d $kdir ]]; then
	step "unpack $kpkg $kver"
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg -x "$kernel_deb" "$kdir.tmp/root"
	# trixie's packages install under /usr only (merged /usr); depmod and
	# modprobe -d look in <dir>/lib/modules.
	[[ -e $kdir.tmp/root/lib ]] || ln -s usr/lib "$kdir.tmp/root/lib"
	# The package ships no modules.dep: the lab needs it for --show-depends.
	depmod -b "$kdir.tmp/root" "$krelease"
	mv "$kdir.tmp" "$kdir"
fi
modroot=$kdir/root/lib/modules/$krelease

# The userspace of the same release, resolved from scratch.
mapfile -t packages < <(grep -v -e '^#' -e '^$' "$lab/image/packages")
# apt's resolution takes seconds to tens of seconds: it is kept, keyed by
# the package lists it resolved against and the packages asked for.
lists_dir=$(apt-config "${apt_opts[@]}" shell d Dir::State::Lists/d | sed -n "s/^d='\(.*\)'$/\1/p")
resolve_key=$({
	printf '%s\n' "${packages[@]}"
	find "${lists_dir:-/var/lib/apt/lists}" -maxdepth 1 -name '*_Packages*' -printf '%f %s %T@\n' | LC_ALL=C sort
} | sha256sum | cut -c1-16)
resolved=$debs/resolved-$resolve_key
user_debs=()
if [[ -f $resolved ]]; then
	mapfile -t user_debs <"$resolved"
	for deb in "${user_debs[@]}"; do [[ -f $deb ]] || { user_debs=(); break; }; done
fi
if ((${#user_debs[@]} == 0)); then
	step "userspace packages of $release: ${packages[*]}"
	mapfile -t user_debs < <(fetch "${packages[@]}")
	rm -f "$debs"/resolved-*
	printf '%s\n' "${user_debs[@]}" >"$resolved"
fi
((${#user_debs[@]} > 0)) || die "no userspace packages resolved"
user_key=$(printf '%s\n' "${user_debs[@]##*/}" | LC_ALL=C sort | sha256sum | cut -c1-12)
userland=$cache/userland/$release-$user_key
if [[ ! -d $userland/root ]]; then
	step "unpack ${#user_debs[@]} userspace packages"
	rm -rf "$userland.tmp"
	mkdir -p "$userland.tmp/root"
	# Only what programs can load: the packages named and the libraries
	# (Debian's "libs" section: libc6, zlib1g, ...).
	for deb in "${user_debs[@]}"; do
		read -r pkg section < <(dpkg-deb -f "$deb" Package Section | awk -F': ' '{ printf "%s ", $2 } END { print "" }')
		if [[ $section == libs || $section == */libs ]] || printf '%s\n' "${packages[@]}" | grep -qxF "$pkg"; then
			dpkg -x "$deb" "$userland.tmp/root"
		fi
	done
	# trixie's packages assume a merged /usr (base-files makes the links
	# on a real system): /lib64/ld-linux-x86-64.so.2, the loader every
	# program names, is packaged as /usr/lib64/...
	for d in bin sbin lib lib64; do
		[[ -e $userland.tmp/root/$d || ! -d $userland.tmp/root/usr/$d ]] || ln -s "usr/$d" "$userland.tmp/root/$d"
	done
	printf '%s\n' "${user_debs[@]##*/}" | LC_ALL=C sort >"$userland.tmp/debs"
	mv "$userland.tmp" "$userland"
fi

key=$({
	echo "$kpkg $kver"
	cat "$userland/debs"
	find "${image_inputs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
out=$cache/image/$key

# prune: keep only what the current images of every kernel use.
prune() {
	local keep_images=() keep_kernels=() link target
	for link in "$cache"/current-*; do
		[[ -L $link ]] || continue
		target=$(readlink -f "$link")
		keep_images+=("$(basename "$target")")
		[[ -f $target/kernel-package ]] && keep_kernels+=("$(tr ' ' _ <"$target/kernel-package")")
		[[ -f $target/userland ]] && keep_kernels+=("$(cat "$target/userland")")
	done
	local d
	for d in "$cache"/image/* "$cache"/kernel/* "$cache"/userland/*; do
		[[ -e $d ]] || continue
		local base
		base=$(basename "$d")
		if ! printf '%s\n' "${keep_images[@]}" "${keep_kernels[@]}" | grep -qxF "$base"; then
			rm -rf "$d"
		fi
	done
}

if [[ -f $out/base.cpio.gz && -f $out/kernel ]]; then
	ln -sfn "image/$key" "$cache/current-$want_kernel"
	[[ $want_kernel == 6.1 ]] && ln -sfn "current-6.1" "$cache/current"
	step "base image $key is cached ($kpkg $kver, $release userspace)"
	exit 0
fi

step "build base image $key for $kpkg $kver with $release's userspace"
work=$out.tmp
rm -rf "$work"
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,lib64,etc/nvme,proc,sys,dev,run,tmp,root,boot,lab/bin,lab/share}

step "programs and their libraries"
"$GO" build -o "$work/rootcopy" ./$lab/cmd/rootcopy
# Copied to the path they are packaged at; /init's PATH puts /usr/sbin and
# /usr/bin first, so these win over busybox applets of the same name.
"$work/rootcopy" -tree "$userland/root" -dest "$rootfs" -list "$lab/image/binaries"

step "busybox"
busybox=$(cd "$userland/root" && compgen -G "usr/bin/busybox" || compgen -G "bin/busybox") || die "busybox-static did not unpack a busybox"
cp -L "$userland/root/$busybox" "$rootfs/bin/busybox.new"
mv "$rootfs/bin/busybox.new" "$rootfs/bin/busybox"
# Applets live in bin, sbin, usr/bin and usr/sbin, all made above.
while read -r applet; do
	[[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s /bin/busybox "$rootfs/$applet"
done < <("$rootfs/bin/busybox" --list-full)

# modules FILE > LOADLIST: expand each listed module to its dependencies in
# load order, drop the excluded ones, copy them uncompressed (busybox insmod
# reads plain .ko; 6.12's are .ko.xz), and list them once each. A module
# that this kernel has built in is skipped.
expand_modules() {
	local list=$1 skip=() line m
	while read -r line; do
		[[ $line == -* ]] && skip+=("${line#-}")
	done < <(grep -v -e '^#' -e '^$' "$list")
	while read -r m; do
		[[ $m == -* ]] && continue
		if ! modprobe -d "$kdir/root" -S "$krelease" --show-depends "$m" 2>/dev/null; then
			# Built in (modules.builtin names it with - or _), or missing.
			grep -qE "/${m//[-_]/[-_]}\.ko$" "$modroot/modules.builtin" ||
				die "module $m is neither a module nor built into $krelease"
		fi
	done < <(grep -v -e '^#' -e '^$' "$list") | awk '$1 == "insmod" { print $2 }' | while read -r path; do
		local base rel s
		base=$(basename "$path")
		base=${base%.xz}
		base=${base%.zst}
		for s in "${skip[@]}"; do [[ ${base%.ko} == "$s" ]] && continue 2; done
		rel=${path#"$modroot"/}
		rel=${rel%.xz}
		rel=${rel%.zst}
		mkdir -p "$rootfs/lib/modules/$krelease/$(dirname "$rel")"
		case $path in
		*.xz) xz -dc "$path" >"$rootfs/lib/modules/$krelease/$rel" ;;
		*.zst) zstd -qdc "$path" >"$rootfs/lib/modules/$krelease/$rel" ;;
		*) cp "$path" "$rootfs/lib/modules/$krelease/$rel" ;;
		esac
		echo "$rel"
	done | awk '!seen[$0]++'
}

step "kernel modules ($krelease)"
expand_modules "$lab/image/modules" >"$rootfs/lab/modules.load"
expand_modules "$lab/image/modules-9p" >"$rootfs/lab/modules-9p.load"
cp "$modroot"/modules.{order,builtin,builtin.modinfo} "$rootfs/lib/modules/$krelease/"
# A modules.dep for just these, so a request_module() from the kernel and
# modinfo find them.
depmod -b "$rootfs" "$krelease"
echo "lab $want_kernel: $(wc -l <"$rootfs/lab/modules.load") modules to load" >&2
# The kernel's build configuration, where Debian installs it: the plugin
# reads it to learn what the kernel can do (DH-HMAC-CHAP, TLS).
cp "$kdir/root/boot/config-$krelease" "$rootfs/boot/"

cp -R "$lab/image/etc/." "$rootfs/etc/"
install -m 0755 "$lab/image/init" "$rootfs/init"
printf 'kernel=%s\nrelease=%s\nkernel_package=%s %s\n' "$want_kernel" "$release" "$kpkg" "$kver" >"$rootfs/lab/image-info"

step "initramfs archive"
(cd "$rootfs" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$work/base.cpio.gz"

step "extract vmlinux"
"$GO" build -o "$work/extract-vmlinux" ./$lab/cmd/extract-vmlinux
if ! "$work/extract-vmlinux" -in "$kdir/root/boot/vmlinuz-$krelease" -out "$work/kernel" >&2; then
	echo "lab $want_kernel: vmlinux extraction failed: booting the bzImage (slower: ~7 s instead of ~3 s to /init)" >&2
	cp "$kdir/root/boot/vmlinuz-$krelease" "$work/kernel"
fi

printf '%s %s\n' "$kpkg" "$kver" >"$work/kernel-package"
basename "$userland" >"$work/userland"
rm -rf "$rootfs" "$work/extract-vmlinux" "$work/rootcopy" "$out"
mv "$work" "$out"
ln -sfn "image/$key" "$cache/current-$want_kernel"
[[ $want_kernel == 6.1 ]] && ln -sfn "current-6.1" "$cache/current"

# Keep the cache to what the current images use; downloads of this
# release that no longer serve go too.
prune
keep=$(printf '%s\n' "${user_debs[@]##*/}" "${kernel_deb##*/}" "$meta_deb")
find "$debs" -maxdepth 1 -name '*.deb' -print0 | while IFS= read -r -d '' f; do
	grep -qxF "${f##*/}" <<<"$keep" || rm -f "$f"
done
step "base image $key ready: $(du -h "$out/base.cpio.gz" | cut -f1) compressed"
