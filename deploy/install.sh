#!/bin/sh
# install.sh: installs spokesync from this unpacked package, without network.
#
#   sudo ./install.sh                 program in /opt/spokesync, /usr/local/bin/spokesync,
#                                     /etc/spokesync/, the systemd unit, the spokesync user
#   ./install.sh --root DIR           the same files under DIR (a staging or test root);
#                                     no user is created and systemctl is not run
#   --prefix DIR                      the program's directory (default /opt/spokesync)
#
# DESTDIR=DIR works as --root DIR. Running it again upgrades the program; an
# existing config, env file or locally edited unit is never overwritten.
set -eu
umask 022

usage() {
  echo "usage: install.sh [--root DIR] [--prefix DIR]   (see the top of install.sh)" >&2
  exit 2
}
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "  $*"; }

src=$(cd "$(dirname "$0")" && pwd)
root=${DESTDIR:-}
prefix=/opt/spokesync
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path, not $prefix" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || die "--prefix cannot be /"
[ "$root" = / ] && root=
system=yes
if [ -n "$root" ]; then
  mkdir -p "$root" || die "cannot create $root"
  root=$(cd "$root" && pwd)
  system=no
elif [ "$(id -u)" -ne 0 ]; then
  die "installing into / needs root: run sudo ./install.sh (or ./install.sh --root DIR to install under DIR)"
fi

[ "$(uname -m)" = x86_64 ] || die "this package is for Linux x86-64; this machine is $(uname -m)"
runtime=$("$src/node/bin/node" --version 2>/dev/null) ||
  die "the bundled Node.js ($src/node/bin/node) does not run on this machine (it needs glibc 2.28 or later)"
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -n 1)
echo "installing spokesync $version (Node.js $runtime) into ${root:-/}"

dest=$root$prefix
unit=$root/etc/systemd/system/spokesync.service
# the unit as the previous install shipped it: the installed one equal to it was not edited
unit_edited=no
if [ -f "$unit" ] && ! cmp -s "$unit" "$dest/deploy/spokesync.service"; then unit_edited=yes; fi

running=no
if [ "$system" = yes ] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet spokesync 2>/dev/null; then
  running=yes
  say "stopping spokesync for the upgrade"
  systemctl stop spokesync
fi

# the program: copied beside the old one, then swapped in; only a directory that
# holds a spokesync package (or nothing) is ever replaced
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ] && [ ! -f "$dest/dist/agent/main.js" ]; then
  die "$dest exists and is not a spokesync install: choose another --prefix"
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new" "$dest.old"
mkdir "$dest.new"
cp -R "$src/." "$dest.new/"
if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
mv "$dest.new" "$dest"
rm -rf "$dest.old"
say "program: $dest"

mkdir -p "$root/usr/local/bin"
ln -sfn "$prefix/bin/spokesync" "$root/usr/local/bin/spokesync"
say "command: /usr/local/bin/spokesync -> $prefix/bin/spokesync"

# config and secrets: written once, never replaced
mkdir -p "$root/etc/spokesync"
chmod 0755 "$root/etc/spokesync"
keep_or_copy() { # from, to, mode, what to edit
  if [ -e "$2" ] || [ -L "$2" ]; then
    say "kept $2 (exists; the shipped one is $prefix/${1#"$src"/})"
  else
    cp "$1" "$2"
    chmod "$3" "$2"
    say "wrote $2: edit $4"
  fi
}
keep_or_copy "$src/deploy/examples/leaf.yaml" "$root/etc/spokesync/spokesync.yaml" 0644 \
  "it (the example of a site; $prefix/deploy/examples/ has a parent and a middle node)"
keep_or_copy "$src/deploy/spokesync.env.example" "$root/etc/spokesync/spokesync.env" 0600 \
  "the secrets in it (root-only)"

mkdir -p "$(dirname "$unit")"
if [ "$unit_edited" = yes ]; then
  say "kept $unit (edited here; the shipped unit is $prefix/deploy/spokesync.service:"
  say "  compare them; local settings belong in a drop-in: systemctl edit spokesync)"
else
  cp "$src/deploy/spokesync.service" "$unit"
  chmod 0644 "$unit"
  say "unit: $unit"
fi

if [ "$system" = yes ]; then
  if getent passwd spokesync >/dev/null 2>&1; then
    say "user spokesync exists"
  else
    useradd --system --user-group --home-dir /var/lib/spokesync --no-create-home \
      --shell /usr/sbin/nologin spokesync
    say "created the system user spokesync"
  fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    say "systemd reloaded"
  else
    say "skipped systemctl daemon-reload (systemd is not running)"
  fi
else
  say "skipped creating the system user spokesync and systemctl (installing under $root);"
  say "  on the target: useradd --system --user-group --home-dir /var/lib/spokesync --no-create-home --shell /usr/sbin/nologin spokesync"
fi

if [ "$running" = yes ]; then
  systemctl start spokesync
  say "started spokesync again"
else
  echo "next: the database settings and account ($prefix/mysql-conf/), then"
  echo "  set -a; . /etc/spokesync/spokesync.env; set +a"
  echo "  spokesync check --config /etc/spokesync/spokesync.yaml"
  echo "  systemctl enable --now spokesync        ($prefix/deploy/README.md says more)"
fi
