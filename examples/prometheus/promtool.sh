#!/usr/bin/env bash
# Puts Debian's promtool at DIR/promtool, the way the lab fetches its
# kernel: `apt-get download` of the prometheus package and `dpkg-deb -x`,
# with no install. Installing the package would add a system user and
# start a Prometheus server listening on every address; only its promtool
# is wanted. The version is apt's candidate; DIR/promtool.version records
# it, and a new candidate is fetched on the next run.
set -euo pipefail

dir=$(realpath -m "${1:?usage: promtool.sh DIR}")
mkdir -p "$dir"
# apt drops to its _apt user for downloads, which cannot write into a
# directory of another user: download as whoever runs this.
apt_opts=(-o "APT::Sandbox::User=$(id -un)")

candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p'; }
version=$(candidate)
if [[ -z $version || $version == "(none)" ]]; then
	sudo=()
	((EUID == 0)) || sudo=(sudo)
	echo "promtool: apt-get update" >&2
	"${sudo[@]}" apt-get update -qq
	version=$(candidate)
fi
[[ -n $version && $version != "(none)" ]] || { echo "promtool: apt knows no prometheus package" >&2; exit 1; }

if [[ -x $dir/promtool && "$(cat "$dir/promtool.version" 2>/dev/null)" == "$version" ]]; then
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "promtool: download prometheus $version" >&2
(cd "$work" && { apt-get download -q "${apt_opts[@]}" "prometheus=$version" || { apt-get update -qq && apt-get download -q "${apt_opts[@]}" "prometheus=$version"; }; }) >&2
deb=$(compgen -G "$work/prometheus_*.deb" | head -n1) || { echo "promtool: the download left no .deb" >&2; exit 1; }
dpkg-deb -x "$deb" "$work/root"
install -m 0755 "$work/root/usr/bin/promtool" "$dir/promtool"
echo "$version" >"$dir/promtool.version"
"$dir/promtool" --version >&2
