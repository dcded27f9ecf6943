#!/usr/bin/env bash
# How long `make run` takes on a fresh Debian 12 machine until the UI answers.
#
#   sudo bench/first_run.sh [WORKDIR]
#
# Builds (once, in WORKDIR, default /var/tmp/tradewind-first-run) a Debian 12 root file
# system with mmdebstrap: the "standard" variant a server install has, plus make, git,
# curl and python3 — no python3-venv, no pip cache, nothing of Tradewind's. Then, in a
# fresh copy of it, clones this checkout and runs `make run` in a chroot (its own /proc,
# /dev, /sys; the host's network and CA bundle), prints the seconds until
# http://127.0.0.1:8080/health answers, and stops standalone with Ctrl-C (SIGINT).
# Port 8080 must be free. Prints a figure; asserts nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/tradewind-first-run}
base=$work/debian12
mkdir -p "$work"
if [ ! -e "$base/etc/os-release" ]; then
    echo "first_run: building a Debian 12 root file system in $base (a few minutes)" >&2
    mmdebstrap --variant=standard --include=make,git,curl,ca-certificates,python3 \
        bookworm "$base.partial" http://deb.debian.org/debian > "$work/mmdebstrap.log" 2>&1
    mv "$base.partial" "$base"
fi
root=$work/run
rm -rf "$root"
cp -a "$base" "$root"
git clone -q "$repo" "$root/root/tradewind"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# a network behind a TLS proxy needs its CA: the host's bundle stands in for it
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

start=$(date +%s.%N)
unshare -m --propagation private bash -c "
    mount -t proc proc '$root/proc' && mount --rbind /dev '$root/dev' && mount --rbind /sys '$root/sys' &&
    exec chroot '$root' /usr/bin/env -i HOME=/root PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin bash -c 'cd /root/tradewind && exec make run'
" > "$work/make-run.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null http://127.0.0.1:8080/health; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "first_run: make run exited before the UI answered; see $work/make-run.log" >&2
        exit 1
    fi
    sleep 0.5
done
printf 'make run on a fresh Debian 12: the UI answered after %.1f s\n' \
    "$(echo "$(date +%s.%N) - $start" | bc)"
# standalone is the chroot's process whose command line names it: Ctrl-C stops it cleanly
for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ] || continue
    { tr '\0' ' ' < "$proc/cmdline"; } 2>/dev/null | grep -q "tradewind standalone" \
        && kill -INT "${proc#/proc/}" || true
done
wait "$pid" || true
