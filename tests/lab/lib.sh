# shellcheck shell=bash
# bulwark cluster lab: settings and helpers, sourced by tests/lab/lab and the scenarios.
#
# Every lab object carries the prefix $LAB_PREFIX (default "bwl"): network namespaces
# bwl-node1.. bwl-client bwl-sw bwl-mgmt, namespace handles under /run/bulwark-lab/bwl/.
# Settings chosen at `lab up` are saved in $LAB_STATE/lab.env and read back by every
# later command, so `lab exec`, the scenarios and the BMC hook see the same lab.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_ROOT=$(cd "$LAB_DIR/../.." && pwd)                 # the workspace
LAB_STATE=${LAB_STATE:-$LAB_DIR/run}                  # per-node dirs, logs, keys (gitignored)
# `lab up` takes its settings from the environment; every later command from lab.env
if [ "${LAB_FRESH:-0}" != 1 ] && [ -r "$LAB_STATE/lab.env" ]; then
    # shellcheck source=/dev/null
    . "$LAB_STATE/lab.env"
fi
LAB_PREFIX=${LAB_PREFIX:-bwl}
LAB_NODES=${LAB_NODES:-3}                             # 2 or 3
LAB_TOKEN=${LAB_TOKEN:-1000}                          # corosync totem.token (ms)
LAB_DEVICES=${LAB_DEVICES:-3}                         # LAN devices 10.213.0.201.. (ping arbitration)
LAB_NSDIR=${LAB_NSDIR:-/run/bulwark-lab/$LAB_PREFIX}  # persistent mount/uts namespace handles
LAB_CLUSTER=${LAB_CLUSTER:-bulwark-lab}
LAB_BMC_USER=${LAB_BMC_USER:-admin}
LAB_BMC_PASS=${LAB_BMC_PASS:-fencepass}
# Address plan (all inside the lab's own namespaces; no route out):
#   LAN        10.213.0.0/24  nodes .11-.13, client .100, VIP .50, devices .201-   (bridge "lan" in $SW)
#   heartbeat  10.213.1.0/24  nodes .11-.13                            (bridge "hb"  in $SW)
#   management 10.213.2.0/24  nodes .11-.13, BMCs .101-.103            (bridge "mgmt" in $MGMT)
LAB_LAN=10.213.0
LAB_HB=10.213.1
LAB_MGMT=10.213.2
LAB_VIP=${LAB_VIP:-10.213.0.50}
LAB_CLIENT_IP=$LAB_LAN.100
SW=$LAB_PREFIX-sw
MGMT=$LAB_PREFIX-mgmt
CLIENT=$LAB_PREFIX-client
# Marker in the environment of every process the lab starts (checked by `lab check-clean`).
LAB_MARK="BULWARK_LAB=$LAB_PREFIX"

# Directories each node gets its own copy of (host path -> $LAB_STATE/<node>/<mangled>).
# /var/lib/bulwark (file-mirror's generations) and /var/mail (the mail spool of the guide) are
# per node too: a mirror between nodes that share them would copy onto itself.
LAB_PRIVATE_DIRS="/etc/corosync /var/lib/corosync /var/log/corosync /var/lib/pacemaker /var/log/pacemaker /var/lib/heartbeat /var/log/crmsh /var/lib/pcsd /var/lib/bulwark /var/mail"

lab_nodes()   { local i; for ((i = 1; i <= LAB_NODES; i++)); do echo "node$i"; done; }
lab_idx()     { echo "${1#node}"; }
lab_ns()      { echo "$LAB_PREFIX-$1"; }               # node1 -> bwl-node1
lab_lan_ip()  { echo "$LAB_LAN.1$(lab_idx "$1")"; }
lab_hb_ip()   { echo "$LAB_HB.1$(lab_idx "$1")"; }
lab_mgmt_ip() { echo "$LAB_MGMT.1$(lab_idx "$1")"; }
lab_bmc_ip()  { echo "$LAB_MGMT.10$(lab_idx "$1")"; }
lab_dev_ip()  { echo "$LAB_LAN.20$1"; }
lab_mac()     { printf '02:b0:00:%02x:00:1%s\n' "$2" "$(lab_idx "$1")"; }  # lab_mac node1 0 -> eth0's MAC
# node1 | n1 | 1 | bwl-node1 -> node1 ; client | sw | mgmt unchanged
lab_norm() {
    case "$1" in
        "$LAB_PREFIX"-*) echo "${1#"$LAB_PREFIX"-}" ;;
        node[0-9]*) echo "$1" ;;
        n[0-9]*) echo "node${1#n}" ;;
        [0-9]*) echo "node$1" ;;
        *) echo "$1" ;;
    esac
}
lab_mangle()  { local p=${1#/}; echo "${p//\//-}"; }
lab_die()     { echo "lab: ERROR: $*" >&2; exit 1; }
lab_log()     { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
lab_now()     { echo "$EPOCHREALTIME"; }
lab_elapsed() { awk -v s="$1" -v e="${2:-$EPOCHREALTIME}" 'BEGIN{printf "%.2f", e-s}'; }

# Host PIDs of every process in a network namespace.
lab_ns_pids() { ip netns pids "$1" 2>/dev/null; }
# Host PIDs of processes named COMM inside node N.
lab_node_pid() {
    local p; for p in $(lab_ns_pids "$(lab_ns "$1")"); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ] && echo "$p"; done; return 0
}
# Host PID of node N's PID-namespace init (empty when the node is powered off).
lab_init_pid() {
    local p; p=$(cat "$LAB_STATE/$1/init.pid" 2>/dev/null) || return 0
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(ip netns identify "$p" 2>/dev/null)" = "$(lab_ns "$1")" ] && echo "$p"
    return 0
}
lab_is_up() { ip netns list 2>/dev/null | awk '{print $1}' | grep -cx "$SW" >/dev/null; }

# Debian packages the lab needs; installed when missing (fresh Debian 12 CI).
LAB_PKGS="pacemaker pacemaker-cli-utils corosync resource-agents fence-agents pcs crmsh openipmi ipmitool openssh-server openssh-client nftables iproute2 iputils-ping util-linux procps"
lab_ensure_packages() {
    local missing p made_policy=0
    missing=$(for p in $LAB_PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -c 'install ok installed' >/dev/null || echo "$p"; done)
    [ -n "$missing" ] || return 0
    lab_log "installing Debian packages: $(echo $missing)"
    # never let the maintainer scripts start corosync/pacemaker/pcsd/sshd on the host
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

# number of nodes that are online, joined (not pending) and clean, as crm_mon's XML says
lab_count_online() { grep -cE '<node name=[^>]* online="true"[^>]* pending="false" unclean="false"' || true; }
