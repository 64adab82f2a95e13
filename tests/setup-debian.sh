#!/bin/bash
# Installs everything bulwark's build, tests, lab and benchmarks need on Debian 12, as root.
# Idempotent: only missing packages are installed. Never starts cluster services.
set -euo pipefail

PKGS=(
  # build
  gcc libc6-dev pkg-config ca-certificates curl
  # OCF: ocf-tester, the DTD and RNG schemas, Pacemaker's CLI, pcs and crmsh
  resource-agents libxml2-utils pacemaker pacemaker-cli-utils corosync pcs crmsh
  # fencing peers: ipmi_sim, ipmitool, fence_ipmilan and fence_redfish (the references);
  # python3-venv + openssl for the sushy-tools Redfish BMC (venv below) and its test certificates
  openipmi ipmitool fence-agents python3-venv openssl
  # network lab: namespaces, firewall rules, probes, captures
  iproute2 nftables iputils-ping fping tcpdump procps
  # mirroring: the rsync baseline and the ssh transport
  rsync openssh-client openssh-server
  # tests and packaging checks
  strace man-db lintian rpm rpmlint
)

if [ "$(id -u)" != 0 ]; then
  echo "setup-debian.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-debian.sh: installing ${missing[*]}"
  # Keep package scripts from starting corosync/pacemaker/pcsd on this host.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  # Nothing of the cluster stack runs on the host itself: the lab runs it in namespaces.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now corosync pacemaker pcsd 2>/dev/null || true
  fi
fi

# The Redfish test BMC: sushy-tools from PyPI (Debian packages only Redfish clients), in a
# project-owned venv that tests/redfish*.rs and tests/bench/redfish.rs use (override with
# BULWARK_SUSHY_VENV). Created once; a half-made venv is removed and made again.
SUSHY_VENV=${BULWARK_SUSHY_VENV:-/var/lib/bulwark-test/sushy-venv}
SUSHY_VERSION=2.2.0
# .bulwark-complete is written last: without it the venv is half-made (interrupted pip).
if [ "$(cat "$SUSHY_VENV/.bulwark-complete" 2>/dev/null)" != "sushy-tools==$SUSHY_VERSION" ]; then
  echo "setup-debian.sh: creating the sushy-tools $SUSHY_VERSION venv in $SUSHY_VENV"
  rm -rf "$SUSHY_VENV"
  mkdir -p "$(dirname "$SUSHY_VENV")"
  /usr/bin/python3 -m venv "$SUSHY_VENV"
  "$SUSHY_VENV/bin/pip" install -q --disable-pip-version-check "sushy-tools==$SUSHY_VERSION"
  "$SUSHY_VENV/bin/python" -c "import sushy_tools.emulator.main, bcrypt"
  echo "sushy-tools==$SUSHY_VERSION" >"$SUSHY_VENV/.bulwark-complete"
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup-debian.sh: add \$HOME/.cargo/bin to PATH"
  else
    echo "setup-debian.sh: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
fi
echo "setup-debian.sh: ready"
