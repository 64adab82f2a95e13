#!/bin/bash
# Scenario d: the admin's view of the lab cluster.
#
#   d-admin-view.sh        (the lab must be up, with scenario a's resource "vip" or without)
#
# Shows what an admin sees on a node -- `crm_mon -1`, `pcs status`, `crm status`,
# `stonith_admin --list-registered`, and `bulwark status` (generations and lag of the file-mirror sets) -- and
# asserts that every node is online, every fence device is started on a node other than
# the one it fences, and vip (when configured) runs on exactly one node.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/../lib.sh"
LAB=$LAB_DIR/lab
X() { "$LAB" exec "$@"; }
[ "$(id -u)" = 0 ] || lab_die "must run as root"
lab_is_up || lab_die "the lab is not up (tests/lab/lab up)"
fails=0
check() { if eval "$2"; then echo "  ok: $1"; else echo "  FAIL: $1"; fails=$((fails + 1)); fi; }
n=node1
X $n crm_resource --wait --timeout=60s >/dev/null 2>&1 || echo "(the cluster did not settle within 60 s)"
echo "== scenario d: admin view on $n"
echo "\$ crm_mon -1"; mon=$(X $n crm_mon -1 2>&1); echo "$mon"
echo "\$ pcs status"; pcs=$(X $n pcs status 2>&1); echo "$pcs"
echo "\$ crm status"; X $n crm status 2>&1 | sed -n '1,40p'
echo "\$ stonith_admin --list-registered"; X $n stonith_admin --list-registered 2>&1
bw=""; bw_rc=0
if X $n test -x /usr/sbin/bulwark; then echo "\$ bulwark status"; bw=$(X $n bulwark status 2>&1) || bw_rc=$?; echo "$bw"
else echo "(bulwark status: the bulwark CLI is not built yet)"; fi

all=$(lab_nodes | tr '\n' ' ')
check "crm_mon: Online: [ ${all}]" 'grep -qF "Online: [ ${all}]" <<<"$mon"'
check "pcs status: Online: [ ${all}]" 'grep -qF "Online: [ ${all}]" <<<"$pcs"'
check "crm_mon: partition with quorum" 'grep -q "partition with quorum" <<<"$mon"'
for m in $(lab_nodes); do
    check "fence-$m started on a node other than $m" 'grep -E "fence-$m[[:space:]].*Started node[0-9]+" <<<"$mon" | grep -cv "Started $m\$" >/dev/null'
    check "pcs status lists fence-$m as Started" 'grep -qE "fence-$m[[:space:]].*Started" <<<"$pcs"'
done
if grep -q ' vip' <<<"$mon"; then
    check "vip started on exactly one node" '[ "$(grep -cE "vip[[:space:]].*Started node[0-9]+" <<<"$mon")" = 1 ]'
fi
if X $n test -x /usr/sbin/bulwark; then
    check "bulwark status exits 0" '[ "$bw_rc" = 0 ]'
    # a node that runs or receives a file-mirror set shows it with generations; else it says so
    if X $n cibadmin -Q --xpath "//primitive[@type='file-mirror']" >/dev/null 2>&1; then
        check "bulwark status shows the file-mirror set(s) with their generations" 'grep -qE "^set [^ ]+ +writer:" <<<"$bw" && grep -qE "GENERATION" <<<"$bw"'
    else
        check "bulwark status: no mirrored sets (no file-mirror configured)" 'grep -qi "no mirrored sets found" <<<"$bw"'
    fi
fi
check "no failed actions" '! grep -q "Failed Resource Actions" <<<"$mon"'
if [ $fails = 0 ]; then echo "== scenario d: PASS"; else echo "== scenario d: $fails check(s) FAILED"; exit 1; fi
