#!/usr/bin/env bash
# Builds the corpus of real server images for spec/realworld: Debian 12 packages nobody here wrote,
# installed with debootstrap and apt, written as ONE OCI image layout with one tag per image. Every
# image shares the same base layer (debootstrap --variant=minbase, built once); its own layer holds
# the packages and a few lines of configuration. Each server listens on 127.0.0.1 and takes its
# port at run time (the environment variable PORT, or an argument), so tests pick free ports.
#
#   lighttpd  web server            Entrypoint lighttpd -D -f /etc/lighttpd/corpus.conf, data /var/www/html
#   redis     key-value store       Entrypoint redis-server (a symlink to the multi-call binary
#                                   redis-check-rdb), Cmd /etc/redis/corpus.conf, data /var/lib/redis
#                                   (dump.rdb with the key corpus:greeting)
#   node      JavaScript runtime    Entrypoint node /app/server.js, data /app/data
#   flask     Python web framework  Entrypoint python3 /app/app.py (Flask), data /app/data
#   bash      #!/bin/bash script    Entrypoint /app/serve.sh (socat + a bash handler), data /app/data
#
# Every data directory holds secret.txt; each server answers GET /secret (redis: GET corpus:secret)
# with its content, so a test sees the plaintext come out of an encrypted directory.
#
# Usage: build-corpus.sh [OUTPUT_LAYOUT_DIR]   (default $ENCLAVIFY_CORPUS or /tmp/enclavify-tools/corpus)
# Rebuilds only when the layout is missing or was built by another version of this script.
# Needs root, debootstrap, umoci and Debian's package archive (mirror from /etc/apt sources).
set -euo pipefail
out=${1:-${ENCLAVIFY_CORPUS:-/tmp/enclavify-tools/corpus}}
suite=bookworm
tags=(lighttpd redis node flask bash)
stamp=$(sha256sum "$0" | cut -c1-16)
if [ -f "$out/corpus.stamp" ] && [ "$(cat "$out/corpus.stamp")" = "$stamp" ]; then
  echo "build-corpus: $out is up to date"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-corpus: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
command -v umoci >/dev/null 2>&1 || { echo "build-corpus: umoci is missing (../shared/tools/install-interop-tools)" >&2; exit 1; }
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
start=$(date +%s)
log() { echo "build-corpus: [$(( $(date +%s) - start ))s] $*" >&2; }

work=$(mktemp -d /tmp/enclavify-corpus-build.XXXXXX)
cleanup() {
  # Every mount under the work directory (the per-image jobs' too), innermost first.
  awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; }
# What Debian's -slim images leave out (docs, manuals, translations) and apt's caches (70 MB).
slim() {
  rm -rf "$1/usr/share/doc" "$1/usr/share/man" "$1/usr/share/info" "$1/var/cache/apt/"*.bin "$1/var/log/apt/"* "$1/var/log/dpkg.log" "$1/var/cache/debconf/"*-old
  find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
}

# Packages of each image (the image's own layer).
declare -A packages=([lighttpd]=lighttpd [redis]=redis-server [node]=nodejs [flask]=python3-flask [bash]=socat)
P=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# 1. The base: debootstrap minbase. Its package lists stay outside the image; every package the
# images install is downloaded once here, so the per-image installs run offline and in parallel.
log "debootstrap --variant=minbase $suite from $mirror"
debootstrap --variant=minbase "$suite" "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; echo "build-corpus: debootstrap failed (is $mirror reachable?)" >&2; exit 1; }
mkdir -p "$work/lists" "$work/archives/partial"
mv "$work/base/var/lib/apt/lists/"* "$work/lists/"
mkdir -p "$work/base/var/cache/apt/archives/partial"
log "base installed; downloading ${packages[*]}"
bind "$work/lists" "$work/base/var/lib/apt/lists"
bind "$work/archives" "$work/base/var/cache/apt/archives"
chroot "$work/base" apt-get install -y -q --download-only --no-install-recommends ${packages[*]} >"$work/download.log" 2>&1 \
  || { tail -n 20 "$work/download.log" >&2; echo "build-corpus: downloading ${packages[*]} failed" >&2; exit 1; }
umount "$work/base/var/cache/apt/archives" "$work/base/var/lib/apt/lists"
slim "$work/base"

layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:base"
umoci unpack --image "$layout:base" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs" && mv "$work/base" "$work/bundle/rootfs"
umoci repack --image "$layout:base" "$work/bundle"
rm -rf "$work/bundle"
umoci config --image "$layout:base" --config.env "$P"
log "base layer written"

# 2. One image, in its own copy of the layout (blobs hard-linked): unpack the base, apt-get install
# its packages offline (lists and .deb cache bound from outside, services kept from starting), add
# its files (function add_NAME), repack as one layer, set its config (function cfg_NAME).
image() {
  local name=$1 l="$work/l-$1" b="$work/b-$1" r="$work/b-$1/rootfs"
  mkdir -p "$l" && cp -a "$layout/index.json" "$layout/oci-layout" "$l/" && cp -al "$layout/blobs" "$l/"
  umoci unpack --image "$l:base" "$b" >/dev/null
  bind "$work/lists" "$r/var/lib/apt/lists"
  bind "$work/archives" "$r/var/cache/apt/archives"
  bind /proc "$r/proc"
  printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d" && chmod 755 "$r/usr/sbin/policy-rc.d"
  if ! chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download -o Debug::NoLocking=1 --no-install-recommends ${packages[$name]} >"$work/apt-$name.log" 2>&1; then
    tail -n 20 "$work/apt-$name.log" >&2; echo "build-corpus: $name: apt-get install ${packages[$name]} failed" >&2; return 1
  fi
  "add_$name" "$r"
  rm -f "$r/usr/sbin/policy-rc.d"
  umount "$r/proc" "$r/var/cache/apt/archives" "$r/var/lib/apt/lists"
  slim "$r"
  umoci repack --image "$l:$name" "$b" >/dev/null
  rm -rf "$b"
  "cfg_$name" "$l:$name"
  log "$name: ${packages[$name]} installed"
}
secret() { mkdir -p "$1" && printf 'corpus secret of %s: %s\n' "$2" "$3" > "$1/secret.txt"; }

add_lighttpd() {
  local r=$1
  # lighttpd's configuration takes the port from the environment (env.PORT).
  cat > "$r/etc/lighttpd/corpus.conf" <<'EOF'
server.modules = ( "mod_staticfile" )
server.document-root = "/var/www/html"
server.bind = "127.0.0.1"
server.port = env.PORT
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
EOF
  rm -rf "$r/var/www/html" && mkdir -p "$r/var/www/html"
  printf '<!doctype html><title>corpus</title><p>lighttpd from Debian\n' > "$r/var/www/html/index.html"
  secret "$r/var/www/html" lighttpd "$(printf lighttpd | sha256sum | cut -c1-24)"
  cp "$r/var/www/html/secret.txt" "$r/var/www/html/secret"
}
add_redis() {
  local r=$1
  cat > "$r/etc/redis/corpus.conf" <<'EOF'
bind 127.0.0.1
port 6379
protected-mode yes
daemonize no
supervised no
logfile ""
dir /var/lib/redis
dbfilename dump.rdb
save ""
appendonly no
EOF
  # The data: a dump.rdb written by this redis-server (in the build chroot, on a unix socket).
  local v; v=$(cat <<<"corpus secret of redis: $(printf redis | sha256sum | cut -c1-24)")
  chroot "$r" redis-server /etc/redis/corpus.conf --port 0 --unixsocket /tmp/corpus.sock --daemonize yes --pidfile /tmp/corpus.pid >/dev/null
  local i; for i in $(seq 50); do [ -S "$r/tmp/corpus.sock" ] && break; sleep 0.1; done
  chroot "$r" redis-cli -s /tmp/corpus.sock SET corpus:secret "$v" >/dev/null
  chroot "$r" redis-cli -s /tmp/corpus.sock SET corpus:greeting "hello from redis" >/dev/null
  chroot "$r" redis-cli -s /tmp/corpus.sock SHUTDOWN SAVE >/dev/null 2>&1 || true
  for i in $(seq 50); do [ -f "$r/tmp/corpus.pid" ] || break; sleep 0.1; done
  rm -f "$r/tmp/corpus.sock" "$r/tmp/corpus.pid"
  [ -s "$r/var/lib/redis/dump.rdb" ] || { echo "build-corpus: redis wrote no dump.rdb" >&2; exit 1; }
  chown -R 0:0 "$r/var/lib/redis" && chmod 755 "$r/var/lib/redis"
  printf '%s\n' "$v" > "$r/var/lib/redis/secret.txt"
}
add_node() {
  local r=$1
  mkdir -p "$r/app"
  cat > "$r/app/server.js" <<'EOF'
// A tiny HTTP server: GET /secret answers the content of /app/data/secret.txt, read per request.
const http = require('node:http');
const fs = require('node:fs');
const port = Number(process.env.PORT || 8080);
http.createServer((req, res) => {
  if (req.url === '/secret') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(fs.readFileSync('/app/data/secret.txt'));
  } else {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`node ${process.version}\n`);
  }
}).listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
EOF
  secret "$r/app/data" node "$(printf node | sha256sum | cut -c1-24)"
}
add_flask() {
  local r=$1
  mkdir -p "$r/app"
  cat > "$r/app/app.py" <<'EOF'
"""A Flask application: GET /secret answers the content of /app/data/secret.txt."""
import os
from flask import Flask

app = Flask(__name__)

@app.get("/")
def index():
    return "flask\n"

@app.get("/secret")
def secret():
    with open("/app/data/secret.txt") as f:
        return f.read(), 200, {"content-type": "text/plain"}

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
EOF
  secret "$r/app/data" flask "$(printf flask | sha256sum | cut -c1-24)"
}
add_bash() {
  local r=$1
  mkdir -p "$r/app"
  cat > "$r/app/serve.sh" <<'EOF'
#!/bin/bash
# Serves HTTP on 127.0.0.1:$PORT: socat accepts, a bash handler answers each connection.
set -eu
: "${PORT:=8080}"
echo "serve.sh: listening on 127.0.0.1:$PORT" >&2
socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" EXEC:/app/handle.sh &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
wait $child
EOF
  cat > "$r/app/handle.sh" <<'EOF'
#!/bin/bash
# One HTTP exchange on stdin/stdout: GET /secret answers /app/data/secret.txt.
read -r method target _ || exit 0
while read -r line && [ "${line%$'\r'}" != "" ]; do :; done
if [ "$target" = /secret ]; then body=$(cat /app/data/secret.txt); else body="bash $BASH_VERSION"; fi
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n' "$(( ${#body} + 1 ))" "$body"
EOF
  chmod 755 "$r/app/serve.sh" "$r/app/handle.sh"
  secret "$r/app/data" bash "$(printf bash | sha256sum | cut -c1-24)"
}

cfg() { local ref=$1; shift; umoci config --image "$ref" --config.env "$P" "$@"; }
cfg_lighttpd() { cfg "$1" --config.entrypoint lighttpd --config.entrypoint -D --config.entrypoint -f --config.entrypoint /etc/lighttpd/corpus.conf --config.env PORT=8080 --config.exposedports 8080/tcp; }
cfg_redis() { cfg "$1" --config.entrypoint redis-server --config.cmd /etc/redis/corpus.conf --config.workingdir /var/lib/redis --config.exposedports 6379/tcp; }
cfg_node() { cfg "$1" --config.entrypoint node --config.cmd /app/server.js --config.workingdir /app --config.env PORT=8080 --config.exposedports 8080/tcp; }
cfg_flask() { cfg "$1" --config.entrypoint python3 --config.cmd /app/app.py --config.workingdir /app --config.env PORT=8080 --config.env PYTHONUNBUFFERED=1 --config.exposedports 8080/tcp; }
cfg_bash() { cfg "$1" --config.entrypoint /app/serve.sh --config.workingdir /app --config.env PORT=8080 --config.exposedports 8080/tcp; }

# 3. The images in parallel (apt, redis' dump and umoci's compression use both cores), then one
# layout: every job's blobs hard-linked in, its tag added to index.json.
pids=()
for t in "${tags[@]}"; do image "$t" & pids+=($!); done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { echo "build-corpus: an image failed (see above)" >&2; exit 1; }
for t in "${tags[@]}"; do
  cp -aln "$work/l-$t/blobs/." "$layout/blobs/"
  # The manifest descriptor tagged $t, appended to the layout's index (jq-free: sed on umoci's one-line JSON).
  desc=$(grep -o '{"mediaType":"[^"]*","digest":"[^"]*","size":[0-9]*,"annotations":{"org.opencontainers.image.ref.name":"'"$t"'"}}' "$work/l-$t/index.json")
  [ -n "$desc" ] || { echo "build-corpus: $t: no manifest in its layout" >&2; exit 1; }
  sed -i "s|]}\$|,$desc]}|" "$layout/index.json"
done
umoci gc --layout "$layout"
echo "$stamp" > "$layout/corpus.stamp"
chmod -R a+rX "$layout"
rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$layout" "$out"
log "built $out: ${tags[*]} ($(du -sh "$out" | cut -f1))"
