#!/bin/sh
# Install what qscale needs to build and test from Debian's packages.
# As root it installs whatever is missing; otherwise it prints the command.
set -eu

pkgs="gcc make pkg-config libevent-dev libcurl4-openssl-dev libcjson-dev
libconfig-dev libssl-dev libxml2-dev libcmocka-dev shellcheck curl procps jq
mandoc logrotate systemd prometheus chromium openssl"

missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "qscale needs these Debian packages:$missing" >&2
		echo "run as root: apt-get update && apt-get install -y$missing" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The test rig's simulated cloud runs on the image's Python with moto.
if ! command -v moto_server >/dev/null 2>&1 ||
    ! python3 -c 'import moto, boto3' >/dev/null 2>&1; then
	echo "warning: python3 with moto and boto3 (moto_server) not found;" \
	    "the integration tests and the demo need them" >&2
fi
exit 0
