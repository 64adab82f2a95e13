#!/bin/bash
# Scenario a: VIP failover with real fencing.
#
#   a-vip-failover.sh [MODE...]        (the lab must be up: tests/lab/lab up)
#   MODE: crash     the VIP owner dies: links down, every process killed (BMC still "on")
#         linkcut   the owner's LAN and heartbeat links are cut (it still runs, mgmt link up)
#         corokill  corosync is SIGKILLed on the owner (the VIP stays configured there)
#   default: crash linkcut corokill
#   AGENTS=reference   ocf:heartbeat:IPaddr2 + stonith:fence_ipmilan        (default)
#   AGENTS=bulwark     ocf:bulwark:floating-ip + ocf:bulwark:arp-refresh (group vip-group:
#                      the address, then its announcements) + stonith:fence_bulwark_ipmi
#   AGENTS=bulwark-vip  floating-ip + fence_ipmilan;  AGENTS=bulwark-fence  IPaddr2 + fence_bulwark_ipmi
#   AGENTS=both        each mode with reference and bulwark in the same run, side by side
#   AGENTS=auto        reference plus whichever bulwark agents are built (side by side)
#   RUNS=N             repeat the list of modes N times (default 1)
#
# Each run: the client pings the VIP every 50 ms; the failure is injected on the VIP
# owner; the cluster must fence that node through its BMC (the BMC log shows the
# power-off), start the VIP on another node, and the client must get replies again
# from the new owner's MAC. The fenced node must come back (BMC power-on) and rejoin.
# Prints a timeline per run and a RESULT line; exits non-zero if any run failed.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/../lib.sh"
LAB=$LAB_DIR/lab
X() { "$LAB" exec "$@"; }
[ "$(id -u)" = 0 ] || lab_die "must run as root"
lab_is_up || lab_die "the lab is not up (tests/lab/lab up)"
MODES=${*:-crash linkcut corokill}
RUNS=${RUNS:-1}
AGENTS=${AGENTS:-reference}
TIMEOUT=${A_TIMEOUT:-60}
OUT=$LAB_STATE/scenario-a
mkdir -p "$OUT"
vip_agent()   { case $1 in reference|bulwark-fence) echo "ocf:heartbeat:IPaddr2" ;; bulwark|bulwark-vip) echo "ocf:bulwark:floating-ip" ;; esac; }
fence_agent() { case $1 in reference|bulwark-vip) echo "fence_ipmilan" ;; bulwark|bulwark-fence) echo "fence_bulwark_ipmi" ;; esac; }
fence_set()   { case $(fence_agent "$1") in fence_ipmilan) echo reference ;; *) echo bulwark ;; esac; }
have_vip()    { X node1 crm_resource --show-metadata ocf:bulwark:floating-ip 2>/dev/null | grep -c '<resource-agent' >/dev/null; }
have_fence()  { X node1 stonith_admin --metadata -a fence_bulwark_ipmi 2>/dev/null | grep -c '<resource-agent' >/dev/null; }
case $AGENTS in
    reference|bulwark|bulwark-vip|bulwark-fence) SETS=$AGENTS ;;
    both) SETS="reference bulwark" ;;
    auto)  # every bulwark agent that is built and answers meta-data, next to the reference
        if have_vip && have_fence; then SETS="reference bulwark"
        elif have_vip; then SETS="reference bulwark-vip"
        elif have_fence; then SETS="reference bulwark-fence"
        else SETS=reference; lab_log "no bulwark agent built yet (floating-ip, fence_bulwark_ipmi): reference agents only"; fi ;;
    *) lab_die "AGENTS must be reference, bulwark, bulwark-vip, bulwark-fence, both or auto" ;;
esac

live_node() {  # a powered-on node that answers crm_mon, other than $1
    local n; for n in $(lab_nodes); do
        [ "$n" = "${1:-}" ] && continue
        [ -n "$(lab_init_pid "$n")" ] && X "$n" crm_mon -1 >/dev/null 2>&1 && { echo "$n"; return 0; }
    done; return 1
}
vip_owners() { local n; for n in $(lab_nodes); do ip -n "$(lab_ns "$n")" -4 -o addr show dev eth0 2>/dev/null | grep -c " $LAB_VIP/" >/dev/null && echo "$n"; done; }
client_mac() { ip -n "$CLIENT" neigh show "$LAB_VIP" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i+1)}'; }
mon_xml() { X "$1" crm_mon -1 --output-as=xml 2>/dev/null; }
all_online() { [ "$(mon_xml "$1" | lab_count_online)" = "$LAB_NODES" ]; }
settle() { X "$1" crm_resource --wait --timeout=60s >/dev/null 2>&1 || lab_log "WARNING: cluster did not settle in 60 s"; }
vip_started() { mon_xml "$1" | grep -A1 '<resource id="vip" ' | grep -c 'role="Started"' >/dev/null; }

# floating-ip comes with ocf:bulwark:arp-refresh, colocated and ordered after it: a group
# vip-group = vip, vip-arp (the reference set is IPaddr2 alone, as admins run it)
with_arp() { [ "$(vip_agent "$1")" = ocf:bulwark:floating-ip ]; }
vip_arp_started() { mon_xml "$1" | grep -A1 '<resource id="vip-arp" ' | grep -c 'role="Started"' >/dev/null; }
ensure_vip() {  # ensure_vip SET OBS: resource "vip" of the set's agent, started, one owner
    local set=$1 obs=$2 agent class provider type cur i want_group=0 have_group=0
    agent=$(vip_agent "$set"); IFS=: read -r class provider type <<<"$agent"
    with_arp "$set" && want_group=1
    cur=$(X "$obs" cibadmin -Q --xpath "//primitive[@id='vip']" 2>/dev/null | sed -n 's/.*provider="\([^"]*\)" type="\([^"]*\)".*/ocf:\1:\2/p' | head -1)
    X "$obs" cibadmin -Q --xpath "//group[@id='vip-group']" >/dev/null 2>&1 && have_group=1
    if [ "$cur" != "$agent" ] || [ "$have_group" != "$want_group" ]; then
        if [ "$want_group" = 1 ] && ! X "$obs" crm_resource --show-metadata ocf:bulwark:arp-refresh 2>&1 | grep -c '<resource-agent' >/dev/null; then
            lab_die "ocf:bulwark:arp-refresh is not installed on $obs (build it, then tests/lab/lab agents)"
        fi
        if [ "$class" = ocf ] && [ "$provider" = bulwark ] && ! X "$obs" crm_resource --show-metadata "$agent" 2>&1 | grep -c '<resource-agent' >/dev/null; then
            X "$obs" crm_resource --show-metadata "$agent" 2>&1 | head -5
            X "$obs" ls -l /usr/lib/ocf/resource.d/bulwark/
            lab_die "$agent is not installed or gives no meta-data on $obs (build it, then tests/lab/lab agents)"
        fi
        if [ "$have_group" = 1 ]; then
            X "$obs" crm_resource -r vip-group --set-parameter target-role --meta --parameter-value Stopped >/dev/null 2>&1
            for ((i = 0; i < 100; i++)); do [ -z "$(vip_owners)" ] && break; sleep 0.2; done
            X "$obs" cibadmin -D -o resources -X '<group id="vip-group"/>' || lab_die "cannot delete vip-group"
        elif [ -n "$cur" ]; then
            X "$obs" crm_resource -r vip --set-parameter target-role --meta --parameter-value Stopped >/dev/null 2>&1
            for ((i = 0; i < 100; i++)); do [ -z "$(vip_owners)" ] && break; sleep 0.2; done
            X "$obs" cibadmin -D -o resources -X '<primitive id="vip"/>' || lab_die "cannot delete vip"
        fi
        local arp_xml="" open="" close=""
        if [ "$want_group" = 1 ]; then
            open='<group id="vip-group">'; close='</group>'
            arp_xml="<primitive id=\"vip-arp\" class=\"ocf\" provider=\"bulwark\" type=\"arp-refresh\">
          <instance_attributes id=\"vip-arp-ia\">
            <nvpair id=\"vip-arp-ip\" name=\"ip\" value=\"$LAB_VIP\"/>
            <nvpair id=\"vip-arp-nic\" name=\"nic\" value=\"eth0\"/>
            <nvpair id=\"vip-arp-refresh\" name=\"refresh\" value=\"both\"/>
          </instance_attributes>
          <operations><op id=\"vip-arp-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/></operations>
        </primitive>"
        fi
        X "$obs" cibadmin -C -o resources -X "$open<primitive id=\"vip\" class=\"$class\" provider=\"$provider\" type=\"$type\">
          <instance_attributes id=\"vip-ia\">
            <nvpair id=\"vip-ip\" name=\"ip\" value=\"$LAB_VIP\"/>
            <nvpair id=\"vip-mask\" name=\"cidr_netmask\" value=\"24\"/>
            <nvpair id=\"vip-nic\" name=\"nic\" value=\"eth0\"/>
          </instance_attributes>
          <operations><op id=\"vip-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/></operations>
        </primitive>$arp_xml$close" || lab_die "cannot create vip"
        if [ "$want_group" = 1 ]; then
            lab_log "group vip-group = vip ($agent ip=$LAB_VIP/24 nic=eth0), vip-arp (ocf:bulwark:arp-refresh refresh=both)"
        else
            lab_log "resource vip = $agent ip=$LAB_VIP/24 nic=eth0"
        fi
    fi
    for ((i = 0; i < 300; i++)); do
        vip_started "$obs" && [ "$(vip_owners | wc -l)" = 1 ] && { [ "$want_group" = 0 ] || vip_arp_started "$obs"; } && return 0
        sleep 0.2
    done
    X "$obs" crm_mon -1; lab_die "vip did not start"
}

# epoch of a "Nov 26 21:17:58.231 ..." log line (pacemaker and corosync hires format)
EPOCH_AWK='function ep(mon, d, hms,   m, t, y) {
    m = (index("JanFebMarAprMayJunJulAugSepOctNovDec", mon) + 2) / 3
    split(hms, t, ":"); y = strftime("%Y")
    return mktime(y " " m " " d " " t[1] " " t[2] " " int(t[3])) + (t[3] - int(t[3]))
}'
# first_log T0 PATTERN FILES...: epoch of the first line after T0 matching PATTERN
first_log() {
    local t0=$1 pat=$2; shift 2
    cat "$@" 2>/dev/null | awk -v t0="$t0" -v pat="$pat" "$EPOCH_AWK"'
        $0 ~ pat { e = ep($1, $2, $3); if (e >= t0 && (best == "" || e < best)) best = e }
        END { if (best != "") printf "%.3f", best }'
}
first_ping_after() {  # first reply in the ping log with timestamp > $2
    awk -v t="$2" '/bytes from/ { ts = substr($1, 2, length($1) - 2); if (ts > t) { printf "%.3f", ts; exit } }' "$1"
}
rel() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%+7.2f s", b-a}' || echo "      n/a"; }
dur() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}' || echo ""; }

FAILS=0
declare -A SUMMARY
run_one() {
    local set=$1 mode=$2 k=$3 obs owner new log t0 i
    obs=$(live_node) || lab_die "no live node"
    "$LAB" fencing "$(fence_set "$set")" || lab_die "fencing setup failed"
    ensure_vip "$set" "$obs"
    for ((i = 0; i < 300; i++)); do all_online "$obs" && break; sleep 0.2; done
    all_online "$obs" || lab_die "not all nodes online before the run"
    settle "$obs"
    owner=$(vip_owners)
    obs=$(live_node "$owner")
    ip netns exec "$CLIENT" ping -c1 -W1 "$LAB_VIP" >/dev/null || lab_log "WARNING: VIP not answering before the run"
    log=$OUT/$set-$mode-$k.$(date +%H%M%S)
    local mac_before; mac_before=$(client_mac)

    # samplers: client ping every 50 ms, address events on the other nodes, client neighbour events
    local pids=()
    # (no -w: with a deadline, ping quits at the first "Destination Host Unreachable")
    timeout $((2 * TIMEOUT + 30)) ip netns exec "$CLIENT" ping -D -O -n -i 0.05 "$LAB_VIP" >"$log.ping" 2>&1 &
    pids+=($!)
    for n in $(lab_nodes); do
        [ "$n" = "$owner" ] && continue
        ip -n "$(lab_ns "$n")" -ts monitor address >"$log.addr-$n" 2>&1 & pids+=($!)
    done
    ip -n "$CLIENT" -ts monitor neigh >"$log.neigh" 2>&1 & pids+=($!)
    sleep 1

    t0=$EPOCHREALTIME
    case $mode in
        crash)    "$LAB" node crash "$owner" 2>/dev/null ;;
        linkcut)  "$LAB" node linkcut "$owner" 2>/dev/null ;;
        corokill) "$LAB" node corokill "$owner" 2>/dev/null ;;
        *) lab_die "unknown mode $mode" ;;
    esac
    lab_log "[$set/$mode #$k] injected on $owner (VIP owner)"

    # wait: VIP on another node and a reply after that
    local t_vip="" t_reply="" deadline=$(( EPOCHSECONDS + TIMEOUT )) f
    while [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        if [ -z "$t_vip" ]; then
            for n in $(lab_nodes); do
                [ "$n" = "$owner" ] && continue
                f=$(awk -v vip="$LAB_VIP/" '$0 ~ vip && $0 !~ /Deleted/ { s = substr($1, 2, length($1) - 2); print s; exit }' "$log.addr-$n" 2>/dev/null)
                [ -n "$f" ] && { t_vip=$(date -d "$f" +%s.%N); new=$n; break; }
            done
        fi
        [ -n "$t_vip" ] && t_reply=$(first_ping_after "$log.ping" "$t_vip")
        [ -n "$t_reply" ] && break
        sleep 0.2
    done
    # wait for the fenced node to come back (BMC power-on) and rejoin
    local t_back="" ok=1 why=""
    deadline=$(( EPOCHSECONDS + TIMEOUT ))
    while [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        all_online "$obs" && { t_back=$EPOCHREALTIME; break; }
        sleep 0.3
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait "${pids[@]}" 2>/dev/null
    local mac_after; mac_after=$(client_mac)

    # timeline from the logs of the survivors, the BMC and the samplers
    local plogs=() clogs=()
    for n in $(lab_nodes); do
        [ "$n" = "$owner" ] && continue
        plogs+=("$LAB_STATE/$n/var-log-pacemaker/pacemaker.log"); clogs+=("$LAB_STATE/$n/var-log-corosync/corosync.log")
    done
    local t_tok t_memb t_freq t_fdisp t_fagent t_fdone t_off t_on t_sreq t_sdone t_mac
    t_tok=$(first_log "$t0" "A processor failed|Token has not been received" "${clogs[@]}")
    t_memb=$(first_log "$t0" "A new membership .* was formed" "${clogs[@]}")
    t_freq=$(first_log "$t0" "Requesting peer fencing [(]reboot[)] targeting $owner" "${plogs[@]}")
    t_fdisp=$(first_log "$t0" "Requesting that .* perform 'reboot' action targeting $owner" "${plogs[@]}")
    # a configured fencing delay (pcmk_delay_base/max) is not the agent's time
    local t_delay fdelay=""
    t_delay=$(first_log "$t0" "Delaying 'reboot' action targeting $owner using fence-$owner for" "${plogs[@]}")
    if [ -n "$t_delay" ]; then
        fdelay=$(cat "${plogs[@]}" | grep -o "Delaying 'reboot' action targeting $owner using fence-$owner for [0-9.]*s" | tail -1 | sed 's/.* for \([0-9.]*\)s/\1/')
        t_fdisp=$(awk -v a="$t_delay" -v d="${fdelay:-0}" 'BEGIN{printf "%.3f", a + d}')
    fi
    t_fagent=$(first_log "$t0" "Operation 'reboot' [[][0-9]+[]] targeting $owner using fence-$owner returned 0" "${plogs[@]}")
    t_fdone=$(first_log "$t0" "Operation 'reboot' targeting $owner by .*: OK" "${plogs[@]}")
    t_off=$(awk -v t="$t0" '$2 == "power_off" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$owner/events.log")
    t_on=$(awk -v t="$t0" '$2 == "power_on" && $1 > t { print $1; exit }' "$LAB_STATE/bmc/$owner/events.log")
    t_sreq=$(first_log "$t0" "Requesting local execution of start operation for vip on ${new:-none}" "$LAB_STATE/${new:-none}/var-log-pacemaker/pacemaker.log")
    t_sdone=$(first_log "$t0" "Result of start operation for vip on ${new:-none}: ok" "$LAB_STATE/${new:-none}/var-log-pacemaker/pacemaker.log")
    local t_areq="" t_adone="" arp_s=""
    if with_arp "$set"; then
        t_areq=$(first_log "$t0" "Requesting local execution of start operation for vip-arp on ${new:-none}" "$LAB_STATE/${new:-none}/var-log-pacemaker/pacemaker.log")
        t_adone=$(first_log "$t0" "Result of start operation for vip-arp on ${new:-none}: ok" "$LAB_STATE/${new:-none}/var-log-pacemaker/pacemaker.log")
        arp_s=$(dur "$t_areq" "$t_adone")
    fi
    if [ -n "${new:-}" ]; then
        local newmac; newmac=$(lab_mac "$new" 0)
        f=$(awk -v m="$newmac" -v vip="$LAB_VIP " 'index($0, vip) && index($0, m) { s = substr($1, 2, length($1) - 2); print s; exit }' "$log.neigh")
        [ -n "$f" ] && t_mac=$(date -d "$f" +%s.%N)
    fi
    local fence_s vip_s total
    fence_s=$(dur "$t_fdisp" "$t_fagent"); vip_s=$(dur "$t_sreq" "$t_sdone"); total=$(dur "$t0" "$t_reply")

    # assertions
    [ -n "${new:-}" ] || { ok=0; why+=" VIP-not-moved"; }
    [ -n "$t_reply" ] || { ok=0; why+=" no-reply-from-new-owner"; }
    [ -n "$t_off" ] || { ok=0; why+=" BMC-of-$owner-logged-no-power-off"; }
    [ -n "$t_fdone" ] || { ok=0; why+=" fencing-not-confirmed"; }
    [ -n "$t_off" ] && [ -n "$t_vip" ] && awk -v a="$t_off" -v b="$t_vip" 'BEGIN{exit !(a < b)}' || { ok=0; why+=" VIP-started-before-power-off"; }
    [ "$(vip_owners | tr '\n' ' ')" = "${new:-x} " ] || { ok=0; why+=" VIP-owners=[$(vip_owners | tr '\n' ' ')]"; }
    [ -n "${new:-}" ] && [ "$mac_after" = "$(lab_mac "$new" 0)" ] || { ok=0; why+=" client-MAC=$mac_after"; }
    [ -n "$t_back" ] || { ok=0; why+=" $owner-did-not-rejoin"; }
    if with_arp "$set"; then
        [ -n "$t_adone" ] || { ok=0; why+=" vip-arp-not-started-on-${new:-none}"; }
        [ -n "$t_adone" ] && [ -n "$t_sdone" ] && awk -v a="$t_sdone" -v b="$t_adone" 'BEGIN{exit !(a <= b)}' || { ok=0; why+=" vip-arp-not-after-vip"; }
    fi

    echo "---- scenario a: $set ($(vip_agent "$set")$(with_arp "$set" && echo ' + ocf:bulwark:arp-refresh') + stonith:$(fence_agent "$set")), mode=$mode, run $k, token=${LAB_TOKEN} ms, $LAB_NODES nodes"
    printf '  %s  failure injected: %s on %s (VIP owner, MAC %s)\n' "$(rel "$t0" "$t0")" "$mode" "$owner" "$mac_before"
    printf '  %s  corosync: token lost on a survivor\n' "$(rel "$t0" "$t_tok")"
    printf '  %s  corosync: new membership without %s\n' "$(rel "$t0" "$t_memb")" "$owner"
    printf '  %s  pacemaker-fenced: fencing (reboot) of %s requested\n' "$(rel "$t0" "$t_freq")" "$owner"
    [ -n "$fdelay" ] && printf '  %s  fencing delay of %s s begins (pcmk_delay_base)\n' "$(rel "$t0" "$t_delay")" "$fdelay"
    printf '  %s  fence agent %s started\n' "$(rel "$t0" "$t_fdisp")" "$(fence_agent "$set")"
    printf '  %s  BMC of %s: power_off\n' "$(rel "$t0" "$t_off")" "$owner"
    printf '  %s  BMC of %s: power_on\n' "$(rel "$t0" "$t_on")" "$owner"
    printf '  %s  fence agent returned 0 (took %s s)\n' "$(rel "$t0" "$t_fagent")" "${fence_s:-?}"
    printf '  %s  fencing of %s confirmed\n' "$(rel "$t0" "$t_fdone")" "$owner"
    printf '  %s  start of vip requested on %s\n' "$(rel "$t0" "$t_sreq")" "${new:-?}"
    printf '  %s  start of vip done (%s took %s s)\n' "$(rel "$t0" "$t_sdone")" "$(vip_agent "$set")" "${vip_s:-?}"
    printf '  %s  %s on %s eth0\n' "$(rel "$t0" "$t_vip")" "$LAB_VIP" "${new:-?}"
    if with_arp "$set"; then
        printf '  %s  start of vip-arp requested on %s\n' "$(rel "$t0" "$t_areq")" "${new:-?}"
        printf '  %s  start of vip-arp done (ocf:bulwark:arp-refresh took %s s)\n' "$(rel "$t0" "$t_adone")" "${arp_s:-?}"
    fi
    printf '  %s  client neighbour entry -> %s\n' "$(rel "$t0" "$t_mac")" "${new:+$(lab_mac "$new" 0)}"
    printf '  %s  client: first reply from the new owner\n' "$(rel "$t0" "$t_reply")"
    printf '  %s  %s back online (BMC power-on, rejoined)\n' "$(rel "$t0" "$t_back")" "$owner"
    local share; share=$(awk -v f="${fence_s:-0}" -v v="${vip_s:-0}" -v t="${total:-0}" 'BEGIN{ if (t > 0) printf "%.0f%%", 100*(f+v)/t; else print "n/a" }')
    echo "  failure -> first reply: ${total:-n/a} s; agents' share: fence ${fence_s:-?} s + vip start ${vip_s:-?} s = $share${arp_s:+ (then arp-refresh start ${arp_s} s)}"
    local res="RESULT set=$set mode=$mode run=$k from=$owner to=${new:-none} t_reply=${total:-none} fence_agent_s=${fence_s:-none} vip_agent_s=${vip_s:-none}${arp_s:+ arp_agent_s=$arp_s} t_detect=$(dur "$t0" "$t_memb") t_fenced=$(dur "$t0" "$t_fdone")"
    if [ $ok = 1 ]; then echo "$res PASS"; else echo "$res FAIL:$why"; FAILS=$((FAILS + 1)); fi
    SUMMARY[$mode,$k,$set]="${total:-n/a} s (fence ${fence_s:-?} s, vip ${vip_s:-?} s)"
    if [ -z "$t_back" ]; then  # leave the lab usable: boot the node if it stayed down
        "$LAB" power-off "$owner" >/dev/null 2>&1; "$LAB" power-on "$owner" --now >/dev/null 2>&1
        for ((i = 0; i < 300; i++)); do all_online "$obs" && break; sleep 0.2; done
    fi
    settle "$obs"
}

echo "== scenario a: VIP failover with fencing; $LAB_NODES nodes, totem.token=$LAB_TOKEN ms, modes: $MODES, runs: $RUNS, agents: $SETS"
for ((k = 1; k <= RUNS; k++)); do
    for mode in $MODES; do
        for set in $SETS; do run_one "$set" "$mode" "$k"; done
    done
done
if [ "$(wc -w <<<"$SETS")" -gt 1 ]; then
    echo "== side by side: failure -> first client reply (agents' shares)"
    printf '  %-10s %-4s' mode run; for set in $SETS; do printf ' %-42s' "$set"; done; echo
    for ((k = 1; k <= RUNS; k++)); do for mode in $MODES; do
        printf '  %-10s %-4s' "$mode" "$k"; for set in $SETS; do printf ' %-42s' "${SUMMARY[$mode,$k,$set]}"; done; echo
    done; done
fi
if [ $FAILS = 0 ]; then echo "== scenario a: PASS"; else echo "== scenario a: $FAILS run(s) FAILED"; exit 1; fi
