#!/bin/bash
# Scenario c: the mail-spool failback story (seed 000, issue 7) with real Pacemaker moves
# and real fencing.
#
#   c-mail-failback.sh        (the lab must be up: tests/lab/lab up; bulwark's agents built)
#   C_KEEP=1                  leave the group, its constraints and the Maildirs in place
#   C_PULL=1 (= reject) | drop  the variant in which A's resync-gate must pull (below)
#
# A group "mail": ocf:bulwark:resync-gate -> ocf:bulwark:file-mirror (transport=ssh between
# the nodes, the lab's root key) -> ocf:bulwark:floating-ip -> ocf:pacemaker:Dummy (the
# stand-in mail service). The Maildir and the set's state live under /var/lib/heartbeat,
# which is private to each node. node1 (A) is preferred, node2 (B) takes over, no other
# node may run it; resource-stickiness=1000 makes failback the admin's choice (seed 004).
#   1. A delivers mail and mirrors it to B (a forced pass, the path's interval is 1h).
#   2. More mail arrives on A and is not mirrored; A crashes and is fenced through its BMC.
#   3. The group starts on B; more mail arrives there, one message is read (new -> cur)
#      and one is expunged.
#   4. A comes back; the admin moves the group back to A (crm_resource --move, which is
#      what `pcs resource move` does), then clears the move.
# Asserts: A was fenced (BMC power_off); the group runs on A; the service never ran on two
# nodes (Pacemaker's logs: stops on B before the gate's start on A, the gate's start before
# the service's); every message on B is on A with the same folder and content, no message
# is duplicated, the expunged one is gone; A's unmirrored messages are in A's Maildir or
# kept as conflict copies that `bulwark conflicts --set mail` lists. Prints a timeline.
#
# Without C_PULL, B's mirror pushes its changes to A itself (when A is back, or when it stops
# during the move), so the gate on A finds A up to date. With C_PULL, B's sending path to A
# fails asymmetrically from A's crash until the group runs on A again: an nft table in node
# B's own network namespace rejects (C_PULL=drop: drops) B's outgoing TCP to A's ssh port,
# while A still reaches B. B's mirror can neither push nor flush to A, its stop must still
# succeed (a failed stop would get B fenced), and the gate on A pulls B's changes over ssh
# (A -> B). Asserted on top: the asymmetry before the move; B's stop succeeded and B was not
# fenced; the gate's start on A logged "pulled from B" with at least the 11 entries B wrote
# during the outage installed (10 new messages, m006 under its new name in cur/); the rule is
# gone afterwards. The table is removed by name (and with the namespace at `lab down`).
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/../lib.sh"
LAB=$LAB_DIR/lab
X() { "$LAB" exec "$@"; }
[ "$(id -u)" = 0 ] || lab_die "must run as root"
lab_is_up || lab_die "the lab is not up (tests/lab/lab up)"
A=node1 B=node2
case ${C_PULL:-0} in
    0) PULL= ;;
    1 | reject) PULL=reject ;;
    drop) PULL=drop ;;
    *) lab_die "C_PULL=${C_PULL}: 1 (= reject), reject or drop" ;;
esac
BASE=/var/lib/heartbeat/bwmail     # /var/lib/heartbeat is one of the lab's per-node private dirs
SPOOL=$BASE/spool
MD=$SPOOL/user                     # the user's Maildir
STATE=$BASE/state
IP=${C_IP:-10.213.0.60}
TIMEOUT=${C_TIMEOUT:-90}
OUT=$LAB_STATE/scenario-c
mkdir -p "$OUT"
LOG=$OUT/run.$(date +%H%M%S)

for agent in resync-gate file-mirror floating-ip; do
    X $A crm_resource --show-metadata ocf:bulwark:$agent 2>/dev/null | grep -c '<resource-agent' >/dev/null ||
        lab_die "ocf:bulwark:$agent is not installed in the lab (cargo build --release --bins; tests/lab/lab agents)"
done

mon_xml() { X "$1" crm_mon -1 --output-as=xml 2>/dev/null; }
all_online() { [ "$(mon_xml "$1" | lab_count_online)" = "$LAB_NODES" ]; }
# the node the stand-in service runs on (none when stopped)
# (its state file is in the node's /run, as a real service's would be: gone after a reboot)
svc_node() {
    mon_xml "$1" | awk '/<resource id="mail-svc" / { if ($0 !~ /role="Started"/ || $0 ~ /\/>[[:space:]]*$/) exit; f = 1; next }
        f && /<node name=/ { match($0, /name="[^"]*"/); print substr($0, RSTART + 6, RLENGTH - 7); exit }
        f { exit }'
}
svc_started_on() { [ "$(svc_node "$2")" = "$1" ]; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2 i; shift 2
    for ((i = 0; i < t * 5; i++)); do "$@" && return 0; sleep 0.2; done
    lab_log "timeout: $what"; return 1
}
# deliver NODE NAME BODY: Maildir delivery (write in tmp/, rename into new/)
deliver() { X "$1" env MD="$MD" N="$2" BODY="$3" sh -c 'printf "%s\n" "$BODY" >"$MD/tmp/$N" && mv "$MD/tmp/$N" "$MD/new/$N"'; }
# NODE: "folder/name md5" of every message
listing() { X "$1" env MD="$MD" sh -c 'cd "$MD" && find new cur -type f -exec md5sum {} + | awk "{print \$2, \$1}" | sort'; }
count_new() { X "$1" sh -c "ls '$MD/new' 2>/dev/null | wc -l"; }
has_new() { [ "$(count_new "$1")" -ge "$2" ]; }
group_stopped() { ! mon_xml "$1" | grep -A1 '<resource id="mail-' | grep -c 'role="Started"' >/dev/null; }

# The variant's fault: node B's own firewall (a table in B's network namespace, never the
# host's) rejects or drops B's outgoing TCP to A's ssh port on all of A's addresses.
NFT_TABLE=${LAB_PREFIX}_c_pull
b_nft() { ip netns exec "$(lab_ns $B)" nft "$@"; }
block_b_to_a() {
    local verdict="reject with tcp reset"
    [ "$PULL" = drop ] && verdict=drop
    b_nft -f - <<NFT
table inet $NFT_TABLE {
    chain out {
        type filter hook output priority 0; policy accept;
        ip daddr { $(lab_lan_ip $A), $(lab_hb_ip $A), $(lab_mgmt_ip $A) } tcp dport 22 $verdict
    }
}
NFT
}
b_blocked() { b_nft list table inet "$NFT_TABLE" >/dev/null 2>&1; }
unblock_b_to_a() { ! b_blocked || b_nft delete table inet "$NFT_TABLE"; }
# ssh_ok FROM TO: FROM reaches TO's sshd (the lab's key)
ssh_ok() { X "$1" ssh -o BatchMode=yes -o ConnectTimeout=3 "$2" true >/dev/null 2>&1; }

EPOCH_AWK='function ep(mon, d, hms,   m, t, y) {
    m = (index("JanFebMarAprMayJunJulAugSepOctNovDec", mon) + 2) / 3
    split(hms, t, ":"); y = strftime("%Y")
    return mktime(y " " m " " d " " t[1] " " t[2] " " int(t[3])) + (t[3] - int(t[3]))
}'
first_log() {  # first_log T0 PATTERN FILES...: epoch of the first matching line after T0
    local t0=$1 pat=$2; shift 2
    cat "$@" 2>/dev/null | awk -v t0="$t0" -v pat="$pat" "$EPOCH_AWK"'
        $0 ~ pat { e = ep($1, $2, $3); if (e >= t0 && (best == "" || e < best)) best = e }
        END { if (best != "") printf "%.3f", best }'
}
plog() { echo "$LAB_STATE/$1/var-log-pacemaker/pacemaker.log"; }
# agent_log T0 NODE PATTERN: the agents' own lines (HA_LOGFILE, ISO time stamps) after T0
agent_log() {
    awk -v t="$(date -d "@$1" +%Y-%m-%dT%H:%M:%S.%6N)" -v pat="$3" \
        '$1 ~ /^[0-9]{4}-[0-9]{2}-[0-9]{2}T/ && $1 >= t && $0 ~ pat' "$(plog "$2")" 2>/dev/null
}
op_ok() { first_log "$1" "Result of $2 operation for $3 on $4: ok" "$(plog "$4")"; }
rel() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%+7.2f s", b-a}' || echo "      n/a"; }
before() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }

remove_group() {  # stop and delete the group and its constraints, wipe the Maildirs
    local obs=$1 n
    if X "$obs" cibadmin -Q --xpath "//group[@id='mail']" >/dev/null 2>&1; then
        X "$obs" crm_resource -r mail --meta --set-parameter target-role --parameter-value Stopped >/dev/null 2>&1
        wait_for 60 "mail stopped" group_stopped "$obs"
        X "$obs" crm_resource --clear -r mail >/dev/null 2>&1
        for c in mail-prefers-a mail-may-b mail-only-ab; do
            X "$obs" cibadmin -D -o constraints -X "<rsc_location id=\"$c\"/>" >/dev/null 2>&1
        done
        X "$obs" cibadmin -D -o resources -X '<group id="mail"/>' >/dev/null 2>&1
        X "$obs" crm_resource --cleanup >/dev/null 2>&1
    fi
    for n in $(lab_nodes); do [ -n "$(lab_init_pid "$n")" ] && X "$n" rm -rf "$BASE"; done
    return 0
}

params() {  # params PREFIX: the set's common parameters
    local p=$1
    cat <<XML
        <nvpair id="$p-set" name="set" value="mail"/>
        <nvpair id="$p-paths" name="paths" value="$SPOOL:1h"/>
        <nvpair id="$p-peers" name="peers" value="$A $B"/>
        <nvpair id="$p-state" name="state_dir" value="$STATE"/>
        <nvpair id="$p-ssh" name="ssh_options" value="-o ConnectTimeout=2"/>
XML
}

obs=$A
if [ -n "$PULL" ]; then
    unblock_b_to_a || lab_die "cannot remove the table $NFT_TABLE left in $(lab_ns $B)"  # an interrupted run's
    trap 'unblock_b_to_a' EXIT
fi
all_online $obs || wait_for 60 "all nodes online" all_online $obs || lab_die "not all nodes are online"
remove_group $obs
for n in $(lab_nodes); do X "$n" mkdir -p "$MD/tmp" "$MD/new" "$MD/cur" "$STATE"; done
fencing=$(X $obs cibadmin -Q --xpath "//primitive[@id='fence-$A']" 2>/dev/null | sed -n 's/.*type="\([^"]*\)".*/\1/p' | head -1)
variant=""
[ -n "$PULL" ] && variant=" where the gate on A must pull ($PULL B -> A ssh in $(lab_ns $B))"
echo "== scenario c: mail-spool failback$variant; $LAB_NODES nodes, A=$A B=$B, fencing stonith:$fencing, Maildir $MD"

X $obs cibadmin -C -o resources -X "<group id=\"mail\">
  <meta_attributes id=\"mail-meta\"><nvpair id=\"mail-stick\" name=\"resource-stickiness\" value=\"1000\"/></meta_attributes>
  <primitive id=\"mail-gate\" class=\"ocf\" provider=\"bulwark\" type=\"resync-gate\">
    <instance_attributes id=\"mail-gate-ia\">$(params mail-gate)</instance_attributes>
    <operations>
      <op id=\"mail-gate-start\" name=\"start\" interval=\"0\" timeout=\"120s\"/>
      <op id=\"mail-gate-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/>
    </operations>
  </primitive>
  <primitive id=\"mail-mirror\" class=\"ocf\" provider=\"bulwark\" type=\"file-mirror\">
    <instance_attributes id=\"mail-mirror-ia\">$(params mail-mirror)</instance_attributes>
    <operations>
      <op id=\"mail-mirror-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>
      <op id=\"mail-mirror-stop\" name=\"stop\" interval=\"0\" timeout=\"120s\"/>
      <op id=\"mail-mirror-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/>
    </operations>
  </primitive>
  <primitive id=\"mail-ip\" class=\"ocf\" provider=\"bulwark\" type=\"floating-ip\">
    <instance_attributes id=\"mail-ip-ia\">
      <nvpair id=\"mail-ip-ip\" name=\"ip\" value=\"$IP\"/>
      <nvpair id=\"mail-ip-mask\" name=\"cidr_netmask\" value=\"24\"/>
      <nvpair id=\"mail-ip-nic\" name=\"nic\" value=\"eth0\"/>
    </instance_attributes>
    <operations><op id=\"mail-ip-monitor\" name=\"monitor\" interval=\"5s\" timeout=\"20s\"/></operations>
  </primitive>
  <primitive id=\"mail-svc\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">
    <operations><op id=\"mail-svc-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/></operations>
  </primitive>
</group>" || lab_die "cannot create the group"
X $obs cibadmin -C -o constraints -X "<rsc_location id=\"mail-prefers-a\" rsc=\"mail\" node=\"$A\" score=\"100\"/>"
X $obs cibadmin -C -o constraints -X "<rsc_location id=\"mail-may-b\" rsc=\"mail\" node=\"$B\" score=\"50\"/>"
X $obs cibadmin -C -o constraints -X "<rsc_location id=\"mail-only-ab\" rsc=\"mail\">
    <rule id=\"mail-only-ab-rule\" score=\"-INFINITY\" boolean-op=\"and\">
      <expression id=\"mail-only-ab-a\" attribute=\"#uname\" operation=\"ne\" value=\"$A\"/>
      <expression id=\"mail-only-ab-b\" attribute=\"#uname\" operation=\"ne\" value=\"$B\"/>
    </rule></rsc_location>"
T_BEGIN=$EPOCHREALTIME
wait_for "$TIMEOUT" "mail started on $A" svc_started_on $A $obs || { X $obs crm_mon -1; lab_die "the group did not start on $A"; }

fails=0
why=""
fail() { fails=$((fails + 1)); why+=" $1"; echo "  FAIL: $1"; }

# 1. mail on A, mirrored to B
for i in $(seq 1 20); do deliver $A "m$(printf %03d "$i")" "message $i delivered on $A"; done
sleep 0.3
X $A sh -c "kill -USR1 \$(cat '$STATE/daemon.pid')" || fail "no mirror daemon on $A"
wait_for 30 "20 messages on $B" has_new $B 20 || fail "A's mail did not reach B"
T_MIRRORED=$EPOCHREALTIME
# 2. A's last messages are not mirrored (1h interval) when it crashes
for i in $(seq 21 25); do deliver $A "m$(printf %03d "$i")" "late message $i delivered on $A"; done
sleep 0.3
listing $A >"$LOG.a-before-crash"
[ "$(count_new $B)" = 20 ] || fail "B got A's late messages before the crash ($(count_new $B))"
t0=$EPOCHREALTIME
"$LAB" node crash $A 2>/dev/null
lab_log "crashed $A (the mail service's node)"
if [ -n "$PULL" ]; then
    block_b_to_a || fail "cannot add the table $NFT_TABLE in $(lab_ns $B)"
    T_BLOCK=$EPOCHREALTIME
    lab_log "$B's firewall: outgoing TCP to $A's ssh port: $PULL"
fi
obs=$B
# 3. B takes over; more mail arrives there
wait_for "$TIMEOUT" "mail started on $B" svc_started_on $B $obs || { X $obs crm_mon -1; fail "the group did not start on $B"; }
T_ON_B=$EPOCHREALTIME
for i in $(seq 1 10); do deliver $B "b$(printf %03d "$i")" "message $i delivered on $B during the outage"; done
X $B mv "$MD/new/m006" "$MD/cur/m006:2,S" || fail "m006 not on B"
X $B rm "$MD/new/m005" || fail "m005 not on B"
T_MAIL_B=$EPOCHREALTIME
wait_for "$TIMEOUT" "$A back online" all_online $obs || fail "$A did not rejoin"
T_BACK=$EPOCHREALTIME
[ "$(svc_node $obs)" = $B ] || fail "the group left $B when $A came back (stickiness)"
if [ -n "$PULL" ]; then
    if ssh_ok $B $A; then b_to_a=open; else b_to_a=blocked; fi
    if ssh_ok $A $B; then a_to_b=open; else a_to_b=blocked; fi
fi
# 4. failback chosen by the admin
T_MOVE=$EPOCHREALTIME
X $obs crm_resource --move -r mail -N $A >/dev/null 2>&1 || fail "crm_resource --move failed"
wait_for "$TIMEOUT" "mail started on $A" svc_started_on $A $obs || { X $obs crm_mon -1; fail "the group did not move back to $A"; }
T_ON_A=$EPOCHREALTIME
if [ -n "$PULL" ]; then
    unblock_b_to_a || fail "cannot delete the table $NFT_TABLE in $(lab_ns $B)"
    T_UNBLOCK=$EPOCHREALTIME
fi
X $obs crm_resource --clear -r mail >/dev/null 2>&1
X $obs crm_resource --wait --timeout=60s >/dev/null 2>&1

# timeline from the BMC and Pacemaker's logs
t_off=$(awk -v t="$t0" '$2 == "power_off" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$A/events.log")
t_on=$(awk -v t="$t0" '$2 == "power_on" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$A/events.log")
t_fenced=$(first_log "$t0" "Operation 'reboot' targeting $A by .*: OK" "$(plog $B)" "$(plog node3)")
declare -A T
for r in mail-gate mail-mirror mail-ip mail-svc; do
    T[start,$r,$B]=$(op_ok "$t0" start $r $B)
    T[stop,$r,$B]=$(op_ok "$T_MOVE" stop $r $B)
    T[start,$r,$A]=$(op_ok "$T_MOVE" start $r $A)
done
echo "---- scenario c timeline (0 = crash of $A; in time order)"
ev() { printf '%s\t%s\n' "${1:-99999999999}" "$2"; }  # ev EPOCH TEXT (no time: last)
{
    ev "$T_BEGIN" "group started on $A"
    ev "$T_MIRRORED" "20 messages delivered on $A, mirrored to $B (forced pass)"
    ev "$t0" "5 more on $A, not mirrored; $A crashes"
    [ -n "$PULL" ] && ev "$T_BLOCK" "$B's firewall ($(lab_ns $B)): TCP to $A's ssh port: $PULL"
    ev "$t_off" "BMC of $A: power_off"
    ev "$t_on" "BMC of $A: power_on (the node boots after LAB_BOOT_DELAY)"
    ev "$t_fenced" "fencing (reboot) of $A confirmed"
    for r in mail-gate mail-mirror mail-ip mail-svc; do ev "${T[start,$r,$B]}" "$r started on $B"; done
    ev "$T_MAIL_B" "10 messages delivered on $B, m006 read, m005 expunged"
    ev "$T_BACK" "$A back online; the group stays on $B (stickiness 1000)"
    ev "$T_MOVE" "admin: crm_resource --move -r mail -N $A"
    for r in mail-svc mail-ip mail-mirror mail-gate; do ev "${T[stop,$r,$B]}" "$r stopped on $B"; done
    for r in mail-gate mail-mirror mail-ip mail-svc; do ev "${T[start,$r,$A]}" "$r started on $A"; done
    [ -n "$PULL" ] && ev "$T_UNBLOCK" "$B's firewall rule removed (table $NFT_TABLE deleted)"
} | sort -t$'\t' -k1,1n | while IFS=$'\t' read -r t what; do
    [ "$t" = 99999999999 ] && t=""
    printf '  %s  %s\n' "$(rel "$t0" "$t")" "$what"
done
echo "  (failback: move -> service on $A in $(awk -v a="$T_MOVE" -v b="${T[start,mail-svc,$A]:-$T_ON_A}" 'BEGIN{printf "%.2f", b-a}') s)"
[ -n "$PULL" ] && agent_log "$T_MOVE" $B "mail-mirror: .*(stopping|stopped)" | sed "s/^[^ ]* /  $B: /"
pull=$(grep -h "pulled from\|receiver kept\|never mirrored: kept" "$(plog $A)" 2>/dev/null | awk -v t0="$T_MOVE" "$EPOCH_AWK"'{ if (ep($1,$2,$3) >= t0) print }' | sed 's/^.*\(resync-gate\|file-mirror\|bulwark-mirror\)/  \1/; s/^.*error output \[ /  '"$A"': /; s/ \]$//' | tail -3)
[ -n "$pull" ] && echo "$pull"

echo "---- scenario c assertions"
check() { if eval "$2"; then echo "  ok: $1"; else fail "$1"; fi; }
check "$A was fenced through its BMC (power_off logged)" '[ -n "$t_off" ]'
check "fencing of $A confirmed before the group started on $B" 'before "$t_fenced" "${T[start,mail-gate,$B]}"'
check "the group runs on $A at the end" '[ "$(svc_node $obs)" = $A ]'
check "B stopped the service before the gate started on A" 'before "${T[stop,mail-svc,$B]}" "${T[start,mail-gate,$A]}"'
check "B's mirror stopped$([ -z "$PULL" ] && echo " (flushed)") before the gate started on A" 'before "${T[stop,mail-mirror,$B]}" "${T[start,mail-gate,$A]}"'
check "the gate's start on A finished before the mirror, IP and service started there" \
    'before "${T[start,mail-gate,$A]}" "${T[start,mail-mirror,$A]}" && before "${T[start,mail-mirror,$A]}" "${T[start,mail-svc,$A]}"'
listing $A >"$LOG.a-after"
listing $B >"$LOG.b-after"
missing=$(comm -23 "$LOG.b-after" "$LOG.a-after")
check "every message on $B is on $A in the same folder with the same content ($(wc -l <"$LOG.b-after") messages)" '[ -z "$missing" ]'
[ -n "$missing" ] && echo "$missing" | sed 's/^/    missing on A: /'
dups=$(awk '{print $1}' "$LOG.a-after" | sed 's#.*/##; s/:2,.*//' | sort | uniq -d)
check "no message is duplicated on $A" '[ -z "$dups" ]'
check "the 10 messages delivered on $B during the outage are on $A" '[ "$(grep -c "^new/b0" "$LOG.a-after")" = 10 ]'
check "m006 read on $B is in cur/ on $A" 'grep -c "^cur/m006:2,S " "$LOG.a-after" >/dev/null'
check "m005 expunged on $B is gone on $A" '! grep -c "/m005 " "$LOG.a-after" >/dev/null'
conf=$(X $A bulwark conflicts --set mail --state-dir "$STATE" 2>&1)
echo "\$ bulwark conflicts --set mail --state-dir $STATE   (on $A)"; echo "$conf" | sed 's/^/    /'
for i in 21 22 23 24 25; do
    m=m0$i
    if grep -c "/$m " "$LOG.a-after" >/dev/null; then
        check "$A's unmirrored $m is in place, listed by bulwark conflicts as unmirrored" \
            'grep "/$m " <<<"$conf" | grep -c "^ *unmirrored .*in place" >/dev/null'
    else
        copy=$(grep "/$m" <<<"$conf" | grep -o "$STATE/conflicts/[^ ]*" | head -1)
        check "$A's unmirrored $m is kept as a conflict copy listed by bulwark conflicts" \
            '[ -n "$copy" ] && X $A grep -c "late message $i" "$copy" >/dev/null'
    fi
done
if [ -n "$PULL" ]; then
    # the gate's own line, as Pacemaker logged it among the start operation's output
    pull_line=$(grep -h "mail-gate_start_0\[[0-9]*\] error output \[ mail-gate: INFO: set 'mail': pulled from $B in " "$(plog $A)" 2>/dev/null |
        awk -v t0="$T_MOVE" "$EPOCH_AWK"'ep($1, $2, $3) >= t0' | tail -1)
    pulled=$(sed -n 's/.* \([0-9][0-9]*\) installed,.*/\1/p' <<<"$pull_line")
    check "before the move $B could not reach $A's sshd while $A reached $B's ($B -> $A: $b_to_a, $A -> $B: $a_to_b)" \
        '[ "$b_to_a" = blocked ] && [ "$a_to_b" = open ]'
    check "B's mirror stop succeeded although A was unreachable (changes left unmirrored)" \
        '[ -n "${T[stop,mail-mirror,$B]}" ] && agent_log "$T_MOVE" $B "mail-mirror: .*stopped with [0-9]+ changes not mirrored" | grep -c . >/dev/null'
    check "$B was not fenced (no power_off in its BMC log)" \
        '! awk -v t="$t0" "\$2 == \"power_off\" && \$1 > t" "$LAB_STATE/bmc/$B/events.log" | grep -c . >/dev/null'
    check "the gate's start on A pulled from B (its output in A's pacemaker log)" '[ -n "$pull_line" ]'
    check "the pull installed the 11 entries B wrote during the outage, or more (${pulled:-0} installed)" '[ "${pulled:-0}" -ge 11 ]'
    check "the firewall table in $B's namespace is gone" '! b_blocked'
fi
kind=push
[ -n "$PULL" ] && kind="pull-$PULL pulled=${pulled:-0}"
summary="RESULT scenario=c variant=$kind fenced=$([ -n "$t_off" ] && echo yes || echo no) failback_s=$(awk -v a="$T_MOVE" -v b="$T_ON_A" 'BEGIN{printf "%.2f", b-a}') messages_b=$(wc -l <"$LOG.b-after") messages_a=$(wc -l <"$LOG.a-after")"
[ "${C_KEEP:-0}" = 1 ] || remove_group $obs
if [ $fails = 0 ]; then echo "$summary PASS"; echo "== scenario c: PASS"
else echo "$summary FAIL:$why"; echo "== scenario c: $fails check(s) FAILED"; exit 1; fi
