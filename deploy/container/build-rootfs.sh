#!/usr/bin/env bash
# build-rootfs.sh ROOTFS [CPU_TARGET]
#
# The image's build steps, as one script: the Dockerfile's build stage runs it,
# and so does the test that checks the recipe where no container engine runs.
# It builds aimind for a portable CPU target (default x86-64-v3, see build.sh)
# and lays out ROOTFS as the runtime image's whole file system: the binary, the
# shared libraries it loads (and nothing else), CA certificates for downloads,
# and /data and /tmp for the non-root user 65532.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 ROOTFS [x86-64-v3|x86-64-v4|sapphirerapids]" >&2; exit 2; }
rootfs=$1
target=${2:-x86-64-v3}
cd "$(dirname "$0")/../.."

die() { echo "build-rootfs.sh: $*" >&2; exit 1; }

mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/data" "$rootfs/tmp"
./build.sh portable "$target" "$rootfs/usr/local/bin/aimind"

# The runtime libraries: exactly what the dynamic loader resolves for the binary.
libs=$(ldd "$rootfs/usr/local/bin/aimind" | awk '/=> \//{print $3} /^\t\//{print $1}') \
  || die "cannot list the binary's shared libraries with ldd"
for lib in $libs; do
  real=$(readlink -f "$lib")
  mkdir -p "$rootfs$(dirname "$lib")"
  cp "$real" "$rootfs$lib"
done
# ldd names the loader by its canonical path; the binary asks for /lib64/...
interp=$(readelf -l "$rootfs/usr/local/bin/aimind" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -e "$rootfs$interp" ] || { mkdir -p "$rootfs$(dirname "$interp")"; cp "$(readlink -f "$interp")" "$rootfs$interp"; }

[ -r /etc/ssl/certs/ca-certificates.crt ] || die "missing /etc/ssl/certs/ca-certificates.crt (Debian: apt-get install ca-certificates)"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\naimind:x:65532:65532:aimind:/data:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\naimind:x:65532:\n' > "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
chown 65532:65532 "$rootfs/data" 2>/dev/null || true
echo "build-rootfs.sh: $rootfs holds aimind ($target) and its runtime libraries"
