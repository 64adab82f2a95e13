#!/bin/bash
# Installs the built .deb on THIS machine (CI runs as root on a throw-away machine; a
# clean chroot would need debootstrap and the whole Pacemaker stack inside it), checks
# that Pacemaker, pcs and crmsh describe every agent, that man pages render, that pcs
# accepts our parameters and rejects unknown ones, then removes the package and checks
# that no bulwark file is left. Then installs the .rpm into a temporary root.
# Usage: packaging/install-check.sh DEB RPM
set -euo pipefail
DEB=$(readlink -f "$1"); RPM=$(readlink -f "$2")
[ "$(id -u)" = 0 ] || { echo "install-check: needs root" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
TMP=$(mktemp -d)
installed=0
cleanup() {
  # Never leave the package half-checked on the machine: remove what we installed.
  if [ $installed = 1 ] && dpkg-query -W -f='${Status}' bulwark 2>/dev/null | grep -q "install ok installed"; then
    dpkg -r bulwark >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
# Other tests must not see a half-installed package: hold the system-paths lock.
exec 9>/run/lock/bulwark-system-paths.lock
flock -w 600 9

installed=1
dpkg -i "$DEB" >/dev/null || fail "dpkg -i $DEB"
ok "dpkg -i $(basename "$DEB")"
dpkg -L bulwark | sort >"$TMP/deb-files"

for path in /usr/lib/ocf/resource.d/bulwark/*; do
  [ -e "$path" ] || continue
  a=$(basename "$path")
  crm_resource --show-metadata "ocf:bulwark:$a" >"$TMP/md" || fail "crm_resource --show-metadata ocf:bulwark:$a"
  grep -q "<resource-agent name=\"$a\"" "$TMP/md" || fail "crm_resource metadata of $a"
  ok "crm_resource --show-metadata ocf:bulwark:$a"
  pcs resource describe "ocf:bulwark:$a" >"$TMP/pcs" 2>&1 || { cat "$TMP/pcs"; fail "pcs resource describe ocf:bulwark:$a"; }
  ok "pcs resource describe ocf:bulwark:$a ($(grep -c . "$TMP/pcs") lines)"
  crm ra info "ocf:bulwark:$a" >"$TMP/crm" 2>&1 || { cat "$TMP/crm"; fail "crm ra info ocf:bulwark:$a"; }
  grep -q "ocf:bulwark:$a" "$TMP/crm" || { cat "$TMP/crm"; fail "crm ra info ocf:bulwark:$a names the agent"; }
  ok "crm ra info ocf:bulwark:$a"
done
for path in /usr/sbin/fence_bulwark_*; do
  [ -e "$path" ] || continue
  f=$(basename "$path")
  stonith_admin --metadata -a "$f" >"$TMP/st" 2>&1 || { cat "$TMP/st"; fail "stonith_admin --metadata -a $f"; }
  grep -q "<resource-agent name=\"$f\"" "$TMP/st" || fail "stonith_admin metadata of $f"
  ok "stonith_admin --metadata -a $f"
  pcs stonith describe "$f" >"$TMP/pcs" 2>&1 || { cat "$TMP/pcs"; fail "pcs stonith describe $f"; }
  ok "pcs stonith describe $f"
done
for page in $(grep '/usr/share/man/.*\.gz$' "$TMP/deb-files"); do
  out=$(MANWIDTH=80 man -l "$page" 2>"$TMP/manerr") || { cat "$TMP/manerr"; fail "man -l $page"; }
  [ "$(printf '%s' "$out" | wc -l)" -gt 5 ] || fail "man -l $page rendered almost nothing"
  ok "man -l $page ($(printf '%s\n' "$out" | wc -l) lines)"
done

if [ -e /usr/lib/ocf/resource.d/bulwark/floating-ip ]; then
  cibadmin --empty >"$TMP/cib.xml"
  pcs -f "$TMP/cib.xml" resource create vip ocf:bulwark:floating-ip ip=10.213.0.50 cidr_netmask=24 --force \
    >"$TMP/pcs" 2>&1 || { cat "$TMP/pcs"; fail "pcs -f resource create vip ocf:bulwark:floating-ip"; }
  grep -q 'type="floating-ip"' "$TMP/cib.xml" || fail "vip not in the CIB file"
  ok "pcs -f cib.xml resource create vip ocf:bulwark:floating-ip ip=10.213.0.50 cidr_netmask=24 --force"
  if pcs -f "$TMP/cib.xml" resource create vip2 ocf:bulwark:floating-ip ip=10.213.0.51 no_such_param=1 >"$TMP/pcs" 2>&1; then
    fail "pcs accepted an unknown parameter"
  fi
  grep -qi "no_such_param" "$TMP/pcs" || { cat "$TMP/pcs"; fail "pcs did not name the unknown parameter"; }
  ok "pcs rejects an unknown parameter: $(grep -i no_such_param "$TMP/pcs" | head -n1)"
fi

dpkg -r bulwark >/dev/null || fail "dpkg -r bulwark"
left=()
while read -r f; do
  case $f in /usr|/usr/lib|/usr/lib/ocf|/usr/lib/ocf/resource.d|/usr/sbin|/usr/share|/usr/share/*/|/usr/share/man|/usr/share/man/man?|/usr/share/doc|/usr/share/lintian|/usr/share/lintian/overrides|/usr/libexec|/.) continue ;; esac
  [ -e "$f" ] && left+=("$f")
done <"$TMP/deb-files"
[ ${#left[@]} -eq 0 ] || fail "dpkg -r left: ${left[*]}"
dpkg-query -W -f='${Status}' bulwark 2>/dev/null | grep -q "install ok installed" && fail "still installed"
ok "dpkg -r bulwark left no bulwark file behind ($(wc -l <"$TMP/deb-files") paths checked)"

# The .rpm carries the same files as the .deb (the lintian override is Debian-only).
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | grep -v '^/usr/share/lintian/' | sort >"$TMP/deb-list"
rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$RPM" | awk '$1 !~ /^d/ {print $2}' | sort >"$TMP/rpm-list"
diff -u "$TMP/deb-list" "$TMP/rpm-list" || fail "rpm and deb file lists differ"
ok "rpm -qlp matches the .deb's file list ($(wc -l <"$TMP/rpm-list") files)"
mkdir -p "$TMP/rpmroot"
rpm -i --nodeps --root "$TMP/rpmroot" "$RPM" || fail "rpm -i --nodeps --root"
while read -r f; do [ -e "$TMP/rpmroot$f" ] || fail "rpm did not install $f"; done <"$TMP/rpm-list"
ok "rpm -i --nodeps --root <tmp> installed all $(wc -l <"$TMP/rpm-list") files"
echo "install-check: all passed"
