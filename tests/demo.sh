#!/bin/bash
# The short demo: ocf:bulwark:floating-ip moves a virtual address between two "node"
# namespaces while a "client" namespace keeps pinging it. Everything lives in namespaces
# this script creates (10.213.0.0/24 on a private bridge) and is removed at the end.
# Usage: tests/demo.sh [path/to/floating-ip]   (default: target/release/floating-ip)
set -euo pipefail
cd "$(dirname "$0")/.."
AGENT=${1:-target/release/floating-ip}
[ -x "$AGENT" ] || { echo "demo: $AGENT not built (cargo build --release)" >&2; exit 1; }
AGENT=$(readlink -f "$AGENT")
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 1; }

T=bwdemo$$
SW=$T-sw; N1=$T-n1; N2=$T-n2; CL=$T-client
VIP=10.213.0.50
PINGER=

cleanup() {
  [ -n "$PINGER" ] && kill "$PINGER" 2>/dev/null || true
  for ns in $CL $N2 $N1 $SW; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

now() { date +%s%N; }
T0=$(now)
say() { local ms=$(( ($(now) - T0) / 1000000 )); printf '%4d.%03d s  %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }

for ns in $SW $N1 $N2 $CL; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n $SW link add br0 type bridge stp_state 0; ip -n $SW link set br0 up
i=0
for pair in "$N1 10.213.0.11 02:d5:00:00:00:11" "$N2 10.213.0.12 02:d5:00:00:00:12" "$CL 10.213.0.100 02:d5:00:00:00:64"; do
  set -- $pair; i=$((i + 1))
  ip -n "$1" link add eth0 address "$3" type veth peer name p$i netns $SW
  ip -n $SW link set p$i master br0; ip -n $SW link set p$i up
  ip -n "$1" addr add "$2/24" dev eth0; ip -n "$1" link set eth0 up
done
say "lab up: node1 10.213.0.11, node2 10.213.0.12, client 10.213.0.100 on one bridge"

agent() { # node action
  ip netns exec "$1" env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip \
    OCF_RESKEY_ip=$VIP OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth0 "$AGENT" "$2"
}
client_mac() { ip -n $CL neigh show to $VIP dev eth0 | awk '{for(i=1;i<NF;i++) if($i=="lladdr") print $(i+1)}'; }

agent $N1 start; say "node1: floating-ip start -> $VIP on node1 (rc 0)"
ip netns exec $CL ping -c1 -W1 -q $VIP >/dev/null && say "client: $VIP answers, neighbour entry $(client_mac)"

# The client pings every 20 ms and logs each reply's time; we count what is lost.
ip netns exec $CL ping -n -D -i 0.02 -W 1 $VIP >/tmp/$T.ping 2>&1 & PINGER=$!
sleep 0.5

say "move: node1 stop, node2 start"
t_move=$(now)
agent $N1 stop
set +e; agent $N1 monitor; rc=$?; set -e
say "node1: stop done, monitor rc $rc (7 = not running)"
agent $N2 start
t_started=$(now)
say "node2: start done ($(( (t_started - t_move) / 1000000 )) ms after the move began)"
for _ in $(seq 1 100); do
  [ "$(client_mac)" = 02:d5:00:00:00:12 ] && break; sleep 0.01
done
say "client: neighbour entry now $(client_mac) (node2's MAC), $(( ($(now) - t_started) / 1000000 )) ms after start returned"
sleep 1
kill -INT $PINGER; wait $PINGER 2>/dev/null || true; PINGER=
sent=$(grep -c 'bytes from' /tmp/$T.ping || true)
summary=$(grep 'packets transmitted' /tmp/$T.ping || echo "")
say "client ping during the move: $sent replies; ${summary:-}"
agent $N2 stop
say "node2: stop; demo done, tearing down"
rm -f /tmp/$T.ping
