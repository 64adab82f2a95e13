#!/bin/bash
# Builds bulwark_<ver>_amd64.deb and bulwark-<ver>-1.x86_64.rpm from ONE staged tree,
# so both packages install exactly the same files. Tools: dpkg-deb and rpmbuild (a
# binary-only spec), no make. Man pages are rendered at build time by the binaries
# themselves, from the same parameter declarations as their meta-data.
#
# Usage: packaging/build.sh [--bin-dir DIR] [--out DIR]
#   --bin-dir  take already built binaries from DIR (default: cargo build --release,
#              then target/release)
#   --out      where the packages go (default: target/packages)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=
OUT=$ROOT/target/packages
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--bin-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$BIN_DIR" ]; then
  (cd "$ROOT" && cargo build --release --bins)
  BIN_DIR=$ROOT/target/release
fi
BIN_DIR=$(cd "$BIN_DIR" && pwd)
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
[ -n "$VERSION" ] || { echo "cannot read the workspace version" >&2; exit 1; }

# What goes where. A name is shipped when its binary was built.
OCF_AGENTS=(floating-ip arp-refresh ping-arbiter file-mirror resync-gate)
FENCE_AGENTS=(fence_bulwark_ipmi fence_bulwark_redfish)
SBIN_TOOLS=(bulwark)
LIBEXEC_TOOLS=(bulwark-mirror)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
mkdir -p "$STAGE" "$OUT"

put() { # src dest mode
  install -D -m "$3" "$1" "$STAGE$2"
  strip --strip-unneeded "$STAGE$2" 2>/dev/null || true
}
man_gz() { # text dest
  install -d "$(dirname "$STAGE$2")"
  printf '%s' "$1" | gzip -9n >"$STAGE$2"
  chmod 644 "$STAGE$2"
}

shipped=()
for a in "${OCF_AGENTS[@]}"; do
  [ -x "$BIN_DIR/$a" ] || continue
  put "$BIN_DIR/$a" "/usr/lib/ocf/resource.d/bulwark/$a" 755
  man_gz "$("$BIN_DIR/$a" manpage)" "/usr/share/man/man7/ocf_bulwark_$a.7.gz"
  shipped+=("ocf:bulwark:$a")
done
for f in "${FENCE_AGENTS[@]}"; do
  [ -x "$BIN_DIR/$f" ] || continue
  put "$BIN_DIR/$f" "/usr/sbin/$f" 755
  man_gz "$("$BIN_DIR/$f" -o manpage </dev/null)" "/usr/share/man/man8/$f.8.gz"
  shipped+=("stonith:$f")
done
for t in "${SBIN_TOOLS[@]}"; do
  [ -x "$BIN_DIR/$t" ] || continue
  put "$BIN_DIR/$t" "/usr/sbin/$t" 755
  shipped+=("$t")
done
for t in "${LIBEXEC_TOOLS[@]}"; do
  [ -x "$BIN_DIR/$t" ] || continue
  put "$BIN_DIR/$t" "/usr/libexec/bulwark/$t" 755
done
man_gz "$(sed "s/@VERSION@/$VERSION/" "$ROOT/packaging/man/bulwark.8")" /usr/share/man/man8/bulwark.8.gz
[ ${#shipped[@]} -gt 0 ] || { echo "no binaries found in $BIN_DIR" >&2; exit 1; }

DOC=/usr/share/doc/bulwark
install -D -m 644 "$ROOT/packaging/debian/copyright" "$STAGE$DOC/copyright"
install -D -m 644 "$ROOT/packaging/debian/lintian-overrides" "$STAGE/usr/share/lintian/overrides/bulwark"
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
DATE=$(date -R -d "@$EPOCH")
printf 'bulwark (%s-1) unstable; urgency=medium\n\n  * Build of bulwark %s.\n\n -- bulwark maintainers <maintainers@bulwark.invalid>  %s\n' \
  "$VERSION" "$VERSION" "$DATE" | gzip -9n >"$STAGE$DOC/changelog.Debian.gz"
chmod 644 "$STAGE$DOC/changelog.Debian.gz"
find "$STAGE" -type d -exec chmod 755 {} +

# ---- shared-library dependencies, read from the ELF files ----
glibc_min=$(find "$STAGE" -type f -perm -u+x -exec objdump -T {} + 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
needs_gcc=$(find "$STAGE" -type f -perm -u+x -exec objdump -p {} + 2>/dev/null | grep -c 'NEEDED.*libgcc_s' || true)
DEPENDS="libc6 (>= ${glibc_min:-2.34})"
[ "$needs_gcc" -gt 0 ] && DEPENDS="$DEPENDS, libgcc-s1 (>= 4.2)"

DESC_SHORT="Pacemaker resource and fence agents, native and fast"
# The list of what is shipped grows with every agent: fold it (lintian and rpmlint
# want description lines under 80 columns).
SHIPPED_LINES=$(printf '%s ' "${shipped[@]}" | sed 's/ $/./' | fold -s -w 70 | sed 's/ *$//; s/^/ /')
DESC_LONG=" bulwark provides OCF resource agents and fence agents for Pacemaker
 clusters, written in Rust:
$SHIPPED_LINES
 .
 They take the parameter names of the agents they replace (IPaddr2, ping,
 fence_ipmilan, fence_redfish) and speak netlink, raw sockets, IPMI 2.0
 RMCP+ and Redfish natively, without forking helper programs in their
 monitors."

# ---- .deb ----
DEB_ROOT=$WORK/deb
cp -a "$STAGE" "$DEB_ROOT"
mkdir -p "$DEB_ROOT/DEBIAN"
(cd "$DEB_ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$DEB_ROOT/DEBIAN/md5sums"
SIZE=$(du -sk --exclude=DEBIAN "$DEB_ROOT" | cut -f1)
cat >"$DEB_ROOT/DEBIAN/control" <<CTRL
Package: bulwark
Version: $VERSION-1
Architecture: amd64
Maintainer: bulwark maintainers <maintainers@bulwark.invalid>
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: pacemaker, corosync, openssh-client
Suggests: pcs | crmsh, rsync
Section: admin
Priority: optional
Homepage: https://bulwark.invalid/
Description: $DESC_SHORT
$DESC_LONG
CTRL
chmod 644 "$DEB_ROOT/DEBIAN/control" "$DEB_ROOT/DEBIAN/md5sums"
DEB=$OUT/bulwark_${VERSION}-1_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$DEB_ROOT" "$DEB" >/dev/null
echo "built $DEB"

# ---- .rpm (binary-only spec over the same staged tree) ----
RPMTOP=$WORK/rpmbuild
mkdir -p "$RPMTOP"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,BUILDROOT}
FILELIST=$WORK/files.list
{
  [ -d "$STAGE/usr/lib/ocf/resource.d/bulwark" ] && echo "%dir /usr/lib/ocf/resource.d/bulwark"
  [ -d "$STAGE/usr/libexec/bulwark" ] && echo "%dir /usr/libexec/bulwark"
  echo "%dir $DOC"
  (cd "$STAGE" && find . -type f ! -path ./usr/share/lintian/\* -printf '/%P\n' | sort)
} >"$FILELIST"
printf '%s\n' "$DESC_LONG" | sed 's/^ //; s/^\.$//' >"$WORK/description"
rpmbuild -bb --quiet \
  --define "_topdir $RPMTOP" \
  --define "_stage $STAGE" \
  --define "_filelist $FILELIST" \
  --define "_descfile $WORK/description" \
  --define "_bulwark_version $VERSION" \
  --define "_chdate $(LC_ALL=C date -u -d "@$EPOCH" '+%a %b %d %Y')" \
  --define "_build_id_links none" \
  "$ROOT/packaging/rpm/bulwark.spec" >/dev/null
RPM=$OUT/bulwark-${VERSION}-1.x86_64.rpm
rm -f "$RPM"
cp "$RPMTOP"/RPMS/x86_64/bulwark-"$VERSION"-1.x86_64.rpm "$RPM"
echo "built $RPM"
