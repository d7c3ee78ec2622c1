#!/usr/bin/env bash
# The real contract tier: a kube-apiserver v1.20.2 built from Debian's `kubernetes` source package
# on top of Debian's etcd 3.4, cached per machine and built only when missing.
#
#   realapi.sh build            build into the cache unless both binaries are already there (~4 min)
#   realapi.sh check            exit 0 when the cached binaries exist, 1 otherwise
#   realapi.sh start STATEDIR   start etcd + kube-apiserver on free loopback ports, wait for /readyz,
#                               write STATEDIR/env (KUBE_HOST, KUBE_TOKEN, KUBE_CA, ETCD_URL)
#
# ConfigMaps are served without the watch cache (--watch-cache-sizes=configmaps#0), so that their
# watches read etcd directly: compacting etcd then makes an old resourceVersion answer 410, which
# the contract suite needs (a watch cache would keep serving it from memory).
#   realapi.sh stop STATEDIR    stop what `start` started (by the pids it recorded)
#
# Why from source: no Debian, PyPI or npm package ships a kube-apiserver binary, but the bookworm
# source package carries the whole 1.20.2 tree with vendor/. Nothing under /etc or /usr is touched:
# apt runs with a private source list and private state/cache directories, and the .debs are
# unpacked with `dpkg -x`. The recipe and its measurements are in research/controller-testbed.md §6.
set -euo pipefail

CACHE="${SMI_BRIDGE_KUBE_CACHE:-$HOME/.cache/smi-bridge/kube-apiserver}"
K8S_SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
APISERVER="$CACHE/bin/kube-apiserver"
ETCD="$CACHE/bin/etcd"

log() { printf 'realapi: %s\n' "$*" >&2; }

have_binaries() { [[ -x "$APISERVER" && -x "$ETCD" ]]; }

build() {
    if have_binaries; then
        log "cached binaries present in $CACHE/bin"
        return 0
    fi
    mkdir -p "$CACHE"
    # One builder at a time: two test sessions starting together must not both build.
    exec 9>"$CACHE/.build.lock"
    flock 9
    if have_binaries; then
        return 0
    fi
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/smi-bridge-kube-build.XXXXXX")"
    trap 'rm -rf "$work"' RETURN
    log "building kube-apiserver from Debian's kubernetes source package in $work"
    mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/root" "$work/debs"
    # The machine's own deb822 sources with Types switched to deb-src, in a private list.
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ ! -f "$sources" ]]; then
        log "no $sources: cannot derive deb-src entries"
        return 1
    fi
    sed 's/^Types: deb$/Types: deb-src/' "$sources" >"$work/apt/parts/src.sources"
    cp "$sources" "$work/apt/parts/bin.sources"
    local apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/apt/parts"
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "Debug::NoLocking=1")
    apt-get "${apt_opts[@]}" -qq update
    (cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only "kubernetes=$K8S_SRC_VERSION")
    (cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download golang-1.19-go golang-1.19-src etcd-server \
        rsync libpopt0 golang-github-modern-go-reflect2-dev)
    local deb
    for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
    mkdir -p "$work/src"
    tar -C "$work/src" -xzf "$work"/kubernetes_*.orig.tar.gz
    local tree
    tree="$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    # Vendored reflect2 v1.0.1 segfaults under Go >= 1.18 (json-iterator map encoding on the first
    # CR create); Debian's reflect2 1.0.2 is the fix.
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    cp -r "$work/root/usr/share/gocode/src/github.com/modern-go/reflect2" "$tree/vendor/github.com/modern-go/"
    # The Makefile build needs rsync, which came as a .deb (with libpopt) rather than installed.
    mkdir -p "$work/wrap"
    cat >"$work/wrap/rsync" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$work/root/usr/lib/x86_64-linux-gnu:$work/root/lib/x86_64-linux-gnu" exec "$work/root/usr/bin/rsync" "\$@"
EOF
    chmod +x "$work/wrap/rsync"
    (
        cd "$tree"
        export GOROOT="$work/root/usr/lib/go-1.19"
        export PATH="$GOROOT/bin:$work/wrap:$PATH" CGO_ENABLED=0 GOPATH="$tree/.go" GOCACHE="$work/gocache"
        mkdir -p .go/src/k8s.io
        ln -sfn ../../.. .go/src/k8s.io/kubernetes
        # GOPATH mode through the Makefile, like debian/rules: it generates the openapi code that a
        # bare `go build ./cmd/kube-apiserver` is missing.
        make WHAT=cmd/kube-apiserver KUBE_BUILD_PLATFORMS=linux/amd64 >"$work/build.log" 2>&1 || {
            tail -n 40 "$work/build.log" >&2
            exit 1
        }
    )
    mkdir -p "$CACHE/bin.tmp"
    cp "$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -n1)" "$CACHE/bin.tmp/kube-apiserver"
    cp "$work/root/usr/bin/etcd" "$CACHE/bin.tmp/etcd"
    rm -rf "$CACHE/bin"
    mv "$CACHE/bin.tmp" "$CACHE/bin"
    "$APISERVER" --version >&2
    log "cached in $CACHE/bin"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local state="$1"
    have_binaries || { log "binaries missing in $CACHE/bin; run: $0 build"; return 1; }
    mkdir -p "$state/certs" "$state/etcd"
    local ep kp pp
    ep="$(free_port)"
    kp="$(free_port)"
    pp="$(free_port)"
    # etcd on tmpfs-like scratch, no fsync: it is a throwaway store for one test session.
    "$ETCD" --name default --data-dir "$state/etcd" \
        --listen-client-urls "http://127.0.0.1:$ep" --advertise-client-urls "http://127.0.0.1:$ep" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "default=http://127.0.0.1:$pp" --unsafe-no-fsync >"$state/etcd.log" 2>&1 &
    echo $! >"$state/etcd.pid"
    local token
    token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    echo "$token,admin,admin,system:masters" >"$state/tokens.csv"
    openssl genrsa -out "$state/sa.key" 2048 2>/dev/null
    "$APISERVER" --etcd-servers="http://127.0.0.1:$ep" --bind-address=127.0.0.1 --secure-port="$kp" \
        --cert-dir="$state/certs" --token-auth-file="$state/tokens.csv" --authorization-mode=AlwaysAllow \
        --service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount --allow-privileged=true \
        --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$state/sa.key" \
        --service-account-signing-key-file="$state/sa.key" --watch-cache-sizes=configmaps#0 \
        >"$state/apiserver.log" 2>&1 &
    echo $! >"$state/apiserver.pid"
    local i
    for i in $(seq 1 150); do
        if curl -sk -H "Authorization: Bearer $token" "https://127.0.0.1:$kp/readyz" 2>/dev/null | grep -q '^ok$'; then
            cat >"$state/env" <<EOF
KUBE_HOST=https://127.0.0.1:$kp
KUBE_TOKEN=$token
KUBE_CA=$state/certs/apiserver.crt
ETCD_URL=http://127.0.0.1:$ep
EOF
            log "kube-apiserver ready at https://127.0.0.1:$kp"
            return 0
        fi
        if ! kill -0 "$(cat "$state/apiserver.pid")" 2>/dev/null; then
            tail -n 20 "$state/apiserver.log" >&2
            break
        fi
        sleep 0.2
    done
    log "kube-apiserver did not become ready"
    stop "$state"
    return 1
}

stop() {
    local state="$1" name pid
    for name in apiserver etcd; do
        if [[ -f "$state/$name.pid" ]]; then
            pid="$(cat "$state/$name.pid")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$state/$name.pid"
        fi
    done
}

case "${1:-}" in
build) build ;;
check) have_binaries ;;
start) start "${2:?state directory}" ;;
stop) stop "${2:?state directory}" ;;
*)
    echo "usage: $0 build|check|start STATEDIR|stop STATEDIR" >&2
    exit 2
    ;;
esac
