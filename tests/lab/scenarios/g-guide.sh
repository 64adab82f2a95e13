#!/bin/bash
# Scenario g: docs/guide.md, run as written.
#
#   LAB_FENCING=none tests/lab/lab up && tests/lab/scenarios/g-guide.sh
#   GUIDE=<file>   another guide (default docs/guide.md)
#
# The guide's fenced blocks carry a marker in their info string:
#   ```sh guide NODE      run inside NODE (node1..), or on every node (all), or in the
#                         client namespace (client), with bash -euo pipefail, in the guide's order
#   ```sh guide-prepared  done by `lab up` itself (packages, keys, daemons): shown, not run
#   ```text guide-file PATH  must equal PATH on every node (comments and blank lines aside)
# A ```sh block without a marker is an error: every command in the guide must be run here.
# The lab must be fresh and without fence devices (LAB_FENCING=none), as the guide starts
# from an empty cluster. After the last block the final state is asserted: fencing through
# fence_bulwark_ipmi on every node, the arbiter clone, the mail group (gate first) back on
# node1 after the drill, the spool identical on every node, the client on node1's MAC; then
# scenario d.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/../lib.sh"
LAB=$LAB_DIR/lab
X() { "$LAB" exec "$@"; }
[ "$(id -u)" = 0 ] || lab_die "must run as root"
lab_is_up || lab_die "the lab is not up (LAB_FENCING=none tests/lab/lab up)"
[ "$LAB_NODES" = 3 ] || lab_die "the guide is written for three nodes (LAB_NODES=3)"
GUIDE=${GUIDE:-$LAB_ROOT/docs/guide.md}
[ -r "$GUIDE" ] || lab_die "no guide at $GUIDE"
OUT=$LAB_STATE/scenario-g
rm -rf "$OUT"; mkdir -p "$OUT"
T0=$EPOCHREALTIME
if X node1 cibadmin -Q --xpath "//primitive[@class='stonith']" >/dev/null 2>&1; then
    lab_die "the lab already has fence devices: the guide starts from an empty cluster (LAB_FENCING=none tests/lab/lab up)"
fi

# ---- extract: one file per block, NNN.KIND.TARGET, plus an index "NNN KIND TARGET LINE"
awk -v out="$OUT" '
    function fail(msg) { print "g-guide: " FILENAME ":" NR ": " msg > "/dev/stderr"; bad = 1 }
    inblk && /^```[[:space:]]*$/ { inblk = 0; close(f); next }
    inblk { print > f; next }
    /^```/ {
        info = substr($0, 4); n = split(info, w, /[[:space:]]+/)
        lang = w[1]; kind = w[2]; target = w[3]
        if (lang == "sh" || lang == "bash" || lang == "shell" || lang == "console") {
            if (kind == "guide") { if (target !~ /^(node[0-9]+|all|client)$/) fail("guide block needs a target: node1.. | all | client") }
            else if (kind == "guide-prepared") { target = "-" }
            else fail("a " lang " block without a guide marker: every command must be run by g-guide.sh")
        } else if (kind == "guide-file") {
            if (target !~ /^\//) fail("guide-file needs an absolute path")
        } else { kind = "" }
        inblk = 1; f = "/dev/null"
        if (kind != "") {
            k++; name = sprintf("%03d.%s", k, kind)
            f = out "/" name ".block"
            printf "" > f
            print sprintf("%03d", k), kind, target, NR > (out "/index")
        }
        next
    }
    END { if (inblk) fail("unterminated code block"); exit bad }
' "$GUIDE" || lab_die "the guide's blocks are malformed"
[ -s "$OUT/index" ] || lab_die "no marked blocks in $GUIDE"
nrun=$(awk '$2 == "guide"' "$OUT/index" | wc -l)
echo "== scenario g: $GUIDE: $(wc -l <"$OUT/index") marked blocks, $nrun to run; $LAB_NODES nodes, totem.token=$LAB_TOKEN ms"

fails=0
check() { if eval "$2"; then echo "  ok: $1"; else echo "  FAIL: $1"; fails=$((fails + 1)); fi; }
norm() { grep -v '^[[:space:]]*#' | sed -e 's/[[:space:]]*$//' -e '/^$/d'; }

run_block() {  # run_block FILE TARGET LINE -> 0 on success
    local file=$1 where=$2 line=$3 t rc out
    t=$EPOCHREALTIME
    echo "---- docs/guide.md:$line on $where"
    sed "s/^/$where# /" "$file"
    out=$(X "$where" bash -euo pipefail -c "$(cat "$file")" 2>&1 </dev/null); rc=$?
    [ -n "$out" ] && sed 's/^/  | /' <<<"$out"
    printf '  (exit %s, %.1f s)\n' "$rc" "$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')"
    return $rc
}

# ---- run, in the guide's order; the first failing block ends the run
stopped=""; seen=0
while read -r num kind target line; do
    seen=$((seen + 1))
    file=$OUT/$num.$kind.block
    case $kind in
        guide-prepared)
            echo "---- docs/guide.md:$line: prepared by tests/lab/lab up (not run here):"
            sed 's/^/  (prepared) /' "$file" ;;
        guide-file)
            for n in $(lab_nodes); do
                if diff <(norm <"$file") <(X "$n" cat "$target" 2>&1 </dev/null | norm) >"$OUT/$num.diff-$n"; then
                    echo "  ok: docs/guide.md:$line: $target on $n is the file the guide shows"
                else
                    echo "  FAIL: docs/guide.md:$line: $target on $n differs from the guide:"; sed 's/^/    /' "$OUT/$num.diff-$n"
                    fails=$((fails + 1))
                fi
            done ;;
        guide)
            if [ "$target" = all ]; then targets=$(lab_nodes); else targets=$target; fi
            for n in $targets; do
                if ! run_block "$file" "$n" "$line"; then
                    echo "  FAIL: docs/guide.md:$line failed on $n"; fails=$((fails + 1)); stopped=$line; break
                fi
            done ;;
    esac
    [ -n "$stopped" ] && break
done <"$OUT/index"
# (a command reading stdin would eat the index: every block must have been seen)
[ -n "$stopped" ] || [ "$seen" = "$(wc -l <"$OUT/index")" ] || { echo "  FAIL: only $seen of $(wc -l <"$OUT/index") blocks were processed"; stopped=index; }
echo "== guide: blocks processed in $(lab_elapsed "$T0") s${stopped:+ (stopped at line $stopped)}"
[ -n "$stopped" ] && { X node1 crm_mon -1 2>&1; echo "== scenario g: FAILED"; exit 1; }

# ---- the state the guide promises
echo "== final state"
xml=$(X node1 crm_mon -1 --output-as=xml 2>/dev/null)
started_on() {  # started_on RSC -> the nodes where RSC is started ("node1 node2 ")
    awk -v r="$1" '
        /<resource / { inr = index($0, "<resource id=\"" r "\" ") && /role="Started"/ && !/\/>[[:space:]]*$/; next }
        /<\/resource>/ { inr = 0 }
        inr && /<node name=/ { match($0, /name="[^"]*"/); print substr($0, RSTART + 6, RLENGTH - 7) }' <<<"$xml" | sort -u | tr '\n' ' '
}
check "3 nodes online, quorate" '[ "$(lab_count_online <<<"$xml")" = 3 ] && grep -q "with_quorum=\"true\"" <<<"$xml"'
check "stonith-enabled=true" '[ "$(X node1 crm_attribute -t crm_config -n stonith-enabled -G -q 2>/dev/null)" = true ]'
for n in $(lab_nodes); do
    check "fence-$n is stonith:fence_bulwark_ipmi for $n" 'X node1 cibadmin -Q --xpath "//primitive[@id=\"fence-$n\"]" 2>/dev/null | grep -c "type=\"fence_bulwark_ipmi\"" >/dev/null'
    check "fence-$n started, not on $n" 'on=$(started_on fence-$n); [ -n "$on" ] && [ "$on" != "$n " ]'
done
t_run=$(awk -v t="$T0" 'BEGIN{printf "%d", t}')
check "node3's BMC logged the test fencing (power_off during the guide)" 'awk -v t="$t_run" "\$2 == \"power_off\" && \$1 >= t" "$LAB_STATE/bmc/node3/events.log" | grep -c . >/dev/null'
check "arbiter clone started on node1 node2 node3" '[ "$(started_on arbiter)" = "node1 node2 node3 " ]'
for n in $(lab_nodes); do
    check "pingd=3000 on $n (3 LAN devices x 1000)" '[ "$(X node1 attrd_updater -Q -n pingd -N $n 2>/dev/null | sed -n "s/.*value=\"\([^\"]*\)\".*/\1/p")" = 3000 ]'
done
check "resource-stickiness=100 (rsc_defaults)" 'X node1 cibadmin -Q -o rsc_defaults 2>/dev/null | grep -c "name=\"resource-stickiness\" value=\"100\"" >/dev/null'
group=$(X node1 cibadmin -Q --xpath "//group[@id='mail']" 2>/dev/null)
members=$(grep -o '<primitive [^>]*>' <<<"$group" | grep -o ' id="[^"]*"' | cut -d'"' -f2 | tr '\n' ' ')
check "group mail = spool-gate, spool-mirror, vip, vip-arp, mta in this order" '[ "$members" = "spool-gate spool-mirror vip vip-arp mta " ]'
check "spool-mirror is ocf:bulwark:file-mirror transport=ssh" 'grep "<primitive [^>]*id=\"spool-mirror\"" <<<"$group" | grep "provider=\"bulwark\"" | grep -c "type=\"file-mirror\"" >/dev/null && grep -c "name=\"transport\" value=\"ssh\"" <<<"$group" >/dev/null'
for r in spool-gate spool-mirror vip vip-arp mta; do
    check "$r started on node1 (failed over to node2, moved back)" '[ "$(started_on $r)" = "node1 " ]'
done
check "no constraint left by the move (pcs resource move removes its own)" '! X node1 cibadmin -Q -o constraints 2>/dev/null | grep -c "cli-prefer\|cli-ban" >/dev/null'
check "the VIP is on node1's eth0 and nowhere else" '[ "$(for n in $(lab_nodes); do ip -n "$(lab_ns $n)" -4 -o addr show dev eth0 | grep -c " $LAB_VIP/" >/dev/null && echo $n; done | tr "\n" " ")" = "node1 " ]'
ip netns exec "$CLIENT" ping -c 1 -W 1 "$LAB_VIP" >/dev/null 2>&1
check "the client maps the VIP to node1's MAC $(lab_mac node1 0) again" 'ip -n "$CLIENT" neigh show "$LAB_VIP" | grep -c "lladdr $(lab_mac node1 0)" >/dev/null'
sums=$(for n in $(lab_nodes); do X "$n" sha256sum /var/mail/alice 2>/dev/null | cut -d" " -f1; done | sort -u)
check "/var/mail/alice is the same on node1 node2 node3" '[ "$(wc -l <<<"$sums")" = 1 ] && [ -n "$sums" ]'
check "/var/mail/alice holds both messages (before and after the failover)" '[ "$(X node2 grep -c "^Subject: " /var/mail/alice)" = 2 ]'
bw=$(X node1 bulwark status 2>&1)
check "bulwark status on node1: set mail, writer node1" 'grep -qE "^set mail +writer: node1" <<<"$bw"'
check "no failed actions" '! X node1 crm_mon -1 2>&1 | grep -q "Failed Resource Actions"'

"$LAB_DIR/scenarios/d-admin-view.sh" || fails=$((fails + 1))
if [ $fails = 0 ]; then echo "== scenario g: PASS ($(lab_elapsed "$T0") s)"; else echo "== scenario g: $fails check(s) FAILED"; exit 1; fi
