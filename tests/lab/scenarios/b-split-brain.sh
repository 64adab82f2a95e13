#!/bin/bash
# Scenario b: split brain on a two-node cluster, decided by LAN devices and the fencing delay.
#
#   LAB_NODES=2 tests/lab/lab up && tests/lab/scenarios/b-split-brain.sh
#   AGENTS=reference  ocf:pacemaker:ping clone (default)
#   AGENTS=bulwark    ocf:bulwark:ping-arbiter clone with surrender=standby
#   AGENTS=auto       bulwark when ping-arbiter is built, else reference
#   RUNS=N            repeat (default 1)
#
# The story (seed 001): both nodes ping the LAN devices (10.213.0.201..); the VIP prefers the
# node that reaches more of them (location rule on the "pingd" attribute), and
# priority-fencing-delay delays the fencing of the node that runs the VIP (priority 10).
#   1. The VIP owner L loses two of the three devices (the switch drops its traffic to them):
#      its score falls, the VIP moves to the other node W.
#   2. The heartbeat is cut: L's heartbeat port goes down and the LAN switch drops corosync
#      traffic, so the nodes split while both still see the LAN.
#   3. Both nodes want to fence the other; W's fencing waits priority-fencing-delay, so W
#      fences L first. L reboots, cannot reach W, and waits (two_node: wait_for_all).
#   4. The heartbeat heals; L rejoins. With surrender=standby it stays in standby until an
#      admin runs unstandby.
# Asserts: the VIP is never on two nodes, L's BMC logs the power-off and W's does not, the VIP
# ends on W, both nodes are online at the end (and L in standby with ping-arbiter).
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/../lib.sh"
LAB=$LAB_DIR/lab
X() { "$LAB" exec "$@"; }
[ "$(id -u)" = 0 ] || lab_die "must run as root"
lab_is_up || lab_die "the lab is not up (LAB_NODES=2 tests/lab/lab up)"
[ "$LAB_NODES" = 2 ] || lab_die "scenario b needs a two-node lab (LAB_NODES=2 tests/lab/lab up)"
[ "$LAB_DEVICES" -ge 3 ] || lab_die "scenario b needs 3 LAN devices (LAB_DEVICES=3)"
AGENTS=${AGENTS:-reference}
RUNS=${RUNS:-1}
PRIO_DELAY=${B_PRIORITY_FENCING_DELAY:-5s}
OUT=$LAB_STATE/scenario-b; mkdir -p "$OUT"
HOSTS=$(for ((i = 1; i <= LAB_DEVICES; i++)); do echo -n "$(lab_dev_ip "$i") "; done)
if [ "$AGENTS" = auto ]; then
    if X node1 crm_resource --show-metadata ocf:bulwark:ping-arbiter 2>/dev/null | grep -c '<resource-agent' >/dev/null; then AGENTS=bulwark
    else AGENTS=reference; lab_log "ocf:bulwark:ping-arbiter is not built yet: ocf:pacemaker:ping"; fi
fi
case $AGENTS in
    reference) ARB="ocf:pacemaker:ping"; ARB_EXTRA="" ;;
    bulwark)   ARB="ocf:bulwark:ping-arbiter"; ARB_EXTRA='<nvpair id="arb-surrender" name="surrender" value="standby"/>' ;;
    *) lab_die "AGENTS must be reference, bulwark or auto" ;;
esac
IFS=: read -r ARB_CLASS ARB_PROVIDER ARB_TYPE <<<"$ARB"

vip_owners() { local n; for n in $(lab_nodes); do ip -n "$(lab_ns "$n")" -4 -o addr show dev eth0 2>/dev/null | grep -c " $LAB_VIP/" >/dev/null && echo "$n"; done; }
live_node() { local n; for n in $(lab_nodes); do [ "$n" = "${1:-}" ] && continue; [ -n "$(lab_init_pid "$n")" ] && X "$n" crm_mon -1 >/dev/null 2>&1 && { echo "$n"; return 0; }; done; return 1; }
score() { X "$1" attrd_updater -Q -n pingd -N "$2" 2>/dev/null | sed -n 's/.*value="\([^"]*\)".*/\1/p'; }
other() { [ "$1" = node1 ] && echo node2 || echo node1; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2 i; shift 2
    for ((i = 0; i < t * 5; i++)); do "$@" && return 0; sleep 0.2; done
    lab_log "timeout: $what"; return 1
}
# the LAN switch: drop L's traffic to devices 2..N, and corosync between the nodes
sw_rules() {  # sw_rules add L | sw_rules del
    ip netns exec "$SW" nft delete table bridge bwlab_b 2>/dev/null
    [ "$1" = add ] || return 0
    local l=$2 i devs=""
    for ((i = 2; i <= LAB_DEVICES; i++)); do devs+="\"lan-dev$i\", "; done
    ip netns exec "$SW" nft -f - <<NFT
table bridge bwlab_b {
  chain blockdev {
    type filter hook forward priority 0; policy accept;
    iifname "lan-n${l#node}" oifname { ${devs%, } } counter drop
    oifname "lan-n${l#node}" iifname { ${devs%, } } counter drop
  }
}
NFT
}
sw_block_corosync() {
    ip netns exec "$SW" nft add chain bridge bwlab_b blockhb '{ type filter hook forward priority 1; policy accept; }'
    ip netns exec "$SW" nft add rule bridge bwlab_b blockhb udp dport 5405-5420 counter drop
}

configure() {
    local obs=$1 cur
    command -v nft >/dev/null || lab_die "nft missing (apt-get install nftables)"
    "$LAB" fencing "$([ "$AGENTS" = bulwark ] && echo bulwark || echo reference)" || lab_die "fencing setup failed"
    # ping scores and priority-fencing-delay decide here, not the lab's static 2-node delay
    X "$obs" crm_resource -r fence-node1 --delete-parameter pcmk_delay_base >/dev/null 2>&1
    X "$obs" crm_attribute -t crm_config -n priority-fencing-delay -v "$PRIO_DELAY"
    cur=$(X "$obs" cibadmin -Q --xpath "//clone[@id='arbiter-clone']//primitive" 2>/dev/null | sed -n 's/.*type="\([^"]*\)".*/\1/p' | head -1)
    if [ "$cur" != "$ARB_TYPE" ]; then
        [ -n "$cur" ] && X "$obs" cibadmin -D -o resources -X '<clone id="arbiter-clone"/>'
        X "$obs" cibadmin -C -o resources -X "<clone id=\"arbiter-clone\">
          <primitive id=\"arbiter\" class=\"$ARB_CLASS\" provider=\"$ARB_PROVIDER\" type=\"$ARB_TYPE\">
            <instance_attributes id=\"arb-ia\">
              <nvpair id=\"arb-hosts\" name=\"host_list\" value=\"${HOSTS% }\"/>
              <nvpair id=\"arb-mult\" name=\"multiplier\" value=\"1000\"/>
              <nvpair id=\"arb-dampen\" name=\"dampen\" value=\"2s\"/>
              <nvpair id=\"arb-name\" name=\"name\" value=\"pingd\"/>
              $ARB_EXTRA
            </instance_attributes>
            <operations><op id=\"arb-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/></operations>
          </primitive></clone>" || lab_die "cannot create the arbiter clone"
    fi
    if ! X "$obs" cibadmin -Q --xpath "//primitive[@id='vip']" >/dev/null 2>&1; then
        X "$obs" cibadmin -C -o resources -X "<primitive id=\"vip\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">
          <instance_attributes id=\"vip-ia\">
            <nvpair id=\"vip-ip\" name=\"ip\" value=\"$LAB_VIP\"/>
            <nvpair id=\"vip-mask\" name=\"cidr_netmask\" value=\"24\"/>
            <nvpair id=\"vip-nic\" name=\"nic\" value=\"eth0\"/>
          </instance_attributes>
          <operations><op id=\"vip-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/></operations>
        </primitive>"
    fi
    X "$obs" crm_resource -r vip --meta --set-parameter priority --parameter-value 10 >/dev/null
    if ! X "$obs" cibadmin -Q --xpath "//rsc_location[@id='vip-by-devices']" >/dev/null 2>&1; then
        X "$obs" cibadmin -C -o constraints -X '<rsc_location id="vip-by-devices" rsc="vip">
            <rule id="vip-by-devices-score" score-attribute="pingd"><expression id="vip-by-devices-def" attribute="pingd" operation="defined"/></rule>
          </rsc_location>'
        X "$obs" cibadmin -C -o constraints -X '<rsc_location id="vip-needs-devices" rsc="vip">
            <rule id="vip-needs-devices-rule" score="-INFINITY" boolean-op="or">
              <expression id="vip-needs-devices-undef" attribute="pingd" operation="not_defined"/>
              <expression id="vip-needs-devices-zero" attribute="pingd" operation="lte" value="0"/>
            </rule></rsc_location>'
    fi
}

FAILS=0
run_one() {
    local k=$1 obs l w t0 log i
    obs=$(live_node) || lab_die "no live node"
    configure "$obs"
    for n in $(lab_nodes); do X "$obs" crm_attribute -t nodes -N "$n" -n standby -D >/dev/null 2>&1; done
    wait_for 60 "both scores 3000 and the VIP running" bash -c "[ \"\$($LAB exec $obs attrd_updater -Q -A -n pingd 2>/dev/null | grep -c 'value=\"3000\"')\" = 2 ] && [ -n \"\$($LAB exec $obs crm_resource --locate -r vip 2>/dev/null | grep 'running on')\" ]" || lab_die "setup did not settle"
    X "$obs" crm_resource --wait --timeout=60s >/dev/null 2>&1
    l=$(vip_owners); w=$(other "$l")
    [ -n "$l" ] || lab_die "VIP is not running"
    log=$OUT/$AGENTS-$k.$(date +%H%M%S)
    echo "---- scenario b: $AGENTS ($ARB), run $k: VIP on $l; priority-fencing-delay=$PRIO_DELAY, token=$LAB_TOKEN ms"
    local owners_bad=0
    ( while :; do echo "$EPOCHREALTIME $(vip_owners | tr '\n' ' ')"; sleep 0.1; done ) >"$log.owners" &
    local watcher=$!

    # 1. L loses two of the three devices
    local t1=$EPOCHREALTIME
    sw_rules add "$l"
    wait_for 60 "VIP moves to $w" bash -c "[ \"\$(ip -n $(lab_ns "$w") -4 -o addr show dev eth0 | grep -c ' $LAB_VIP/')\" = 1 ]"
    echo "  $(lab_elapsed "$t1") s  $l reaches 1 of $LAB_DEVICES devices (pingd $l=$(score "$w" "$l") $w=$(score "$w" "$w")); VIP now on $(vip_owners | tr '\n' ' ')"
    if [ "$AGENTS" = bulwark ]; then
        wait_for 30 "$l surrenders (standby)" bash -c "$LAB exec $w crm_attribute -t nodes -N $l -n standby -G -q 2>/dev/null | grep -cx on >/dev/null"
        echo "  $(lab_elapsed "$t1") s  $l put itself in standby: $(X "$w" crm_attribute -t nodes -N "$l" -n standby -G -q 2>/dev/null)"
    fi

    # 2. split: heartbeat port down, corosync dropped on the LAN
    t0=$EPOCHREALTIME
    ip -n "$SW" link set "hb-n${l#node}" down
    sw_block_corosync
    lab_log "[b #$k] heartbeat cut between $l and $w"
    local t_off="" t_offw=""
    for ((i = 0; i < 150; i++)); do
        t_off=$(awk -v t="$t0" '$2 == "power_off" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$l/events.log")
        [ -n "$t_off" ] && break; sleep 0.2
    done
    sleep $(( ${PRIO_DELAY%s} + 3 ))   # past W's own fencing delay: W must still be alive
    t_offw=$(awk -v t="$t0" '$2 == "power_off" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$w/events.log")
    local during; during=$(vip_owners | tr '\n' ' ')

    # 3. heal; L rejoins
    ip -n "$SW" link set "hb-n${l#node}" up
    sw_rules del
    local t_heal=$EPOCHREALTIME t_back=""
    for ((i = 0; i < 300; i++)); do
        [ "$(X "$w" crm_mon -1 --output-as=xml 2>/dev/null | lab_count_online)" = 2 ] && { t_back=$EPOCHREALTIME; break; }
        sleep 0.2
    done
    X "$w" crm_resource --wait --timeout=60s >/dev/null 2>&1
    kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
    owners_bad=$(awk 'NF > 2' "$log.owners" | wc -l)
    local final; final=$(vip_owners | tr '\n' ' ')
    local standby_l; standby_l=$(X "$w" crm_attribute -t nodes -N "$l" -n standby -G -q 2>/dev/null)

    local plogs=("$LAB_STATE"/node*/var-log-pacemaker/pacemaker.log)
    local t_split t_req
    t_split=$(cat "$LAB_STATE"/node*/var-log-corosync/corosync.log | awk -v t0="$t0" '
        function ep(mon, d, hms,   m, t) { m = (index("JanFebMarAprMayJunJulAugSepOctNovDec", mon) + 2) / 3; split(hms, t, ":")
            return mktime(strftime("%Y") " " m " " d " " t[1] " " t[2] " " int(t[3])) + (t[3] - int(t[3])) }
        /A new membership .* was formed/ { e = ep($1, $2, $3); if (e >= t0 && (b == "" || e < b)) b = e } END { if (b != "") printf "%.3f", b }')
    t_req=$(grep -h "Delaying 'reboot' action targeting $w" "${plogs[@]}" | tail -1 | cut -c1-19)
    printf '  %s  heartbeat cut\n' "+0.00 s"
    [ -n "$t_split" ] && printf '  %+.2f s  corosync: the nodes split\n' "$(awk -v a="$t0" -v b="$t_split" 'BEGIN{print b-a}')"
    [ -n "$t_req" ] && echo "  $t_req  $l's fencing of $w waits: priority-fencing-delay (VIP priority on $w)"
    [ -n "$t_off" ] && printf '  %+.2f s  BMC of %s: power_off (fenced by %s)\n' "$(awk -v a="$t0" -v b="$t_off" 'BEGIN{print b-a}')" "$l" "$w"
    echo "  VIP during the split: [$during]; $w's BMC power_off: ${t_offw:-none}"
    printf '  %+.2f s  heartbeat healed; %s online again after %s s\n' "$(awk -v a="$t0" -v b="$t_heal" 'BEGIN{print b-a}')" "$l" "$([ -n "$t_back" ] && lab_elapsed "$t_heal" "$t_back" || echo never)"
    echo "  VIP at the end: [$final]; $l standby=${standby_l:-off}; samples with two VIP owners: $owners_bad"

    local ok=1 why=""
    [ -n "$t_off" ] || { ok=0; why+=" $l-not-fenced"; }
    [ -z "$t_offw" ] || { ok=0; why+=" $w-was-fenced-too"; }
    [ "$owners_bad" = 0 ] || { ok=0; why+=" VIP-on-two-nodes"; }
    [ "$final" = "$w " ] || { ok=0; why+=" VIP-at-end=[$final]"; }
    [ -n "$t_back" ] || { ok=0; why+=" $l-did-not-rejoin"; }
    if [ "$AGENTS" = bulwark ]; then [ "$standby_l" = on ] || { ok=0; why+=" $l-not-in-standby"; }; fi
    local res="RESULT scenario=b set=$AGENTS run=$k loser=$l winner=$w holders_at_end=$(wc -w <<<"$final")"
    if [ $ok = 1 ]; then echo "$res PASS"; else echo "$res FAIL:$why"; FAILS=$((FAILS + 1)); fi
    # admin: lift the surrender
    X "$w" crm_attribute -t nodes -N "$l" -n standby -D >/dev/null 2>&1
}

echo "== scenario b: two-node split brain; devices: $HOSTS; arbiter: $ARB; runs: $RUNS"
trap 'sw_rules del; for n in $(lab_nodes); do ip -n "$SW" link set "hb-n${n#node}" up 2>/dev/null; done' EXIT
for ((k = 1; k <= RUNS; k++)); do run_one "$k"; done
if [ $FAILS = 0 ]; then echo "== scenario b: PASS"; else echo "== scenario b: $FAILS run(s) FAILED"; exit 1; fi
