#!/usr/bin/env bash
# Registers gVisor's runsc with the local Docker engine as the runtime "runsc", for
# KERNELGATE_RUNTIME=runsc (`make gvisor`; root needed). Installs Debian's runsc package if missing,
# merges the runtime into /etc/docker/daemon.json, and has a running dockerd reload it (SIGHUP).
#   --network=none   sandboxes never get a network from gVisor either
#   --platform=ptrace works without KVM, inside VMs and containers
#   --host-uds=all   the kernel's Jupyter sockets are unix sockets in a bind-mounted host directory
set -euo pipefail

DAEMON_JSON=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
step() { printf '==> %s\n' "$*" >&2; }

if ! command -v runsc >/dev/null 2>&1; then
  step "installing Debian's runsc"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi

mkdir -p "$(dirname "$DAEMON_JSON")"
python3 - "$DAEMON_JSON" "$(command -v runsc)" <<'PY'
import json, sys
from pathlib import Path
path, runsc = Path(sys.argv[1]), sys.argv[2]
config = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
wanted = {"path": runsc, "runtimeArgs": ["--network=none", "--platform=ptrace", "--host-uds=all"]}
if config.get("runtimes", {}).get("runsc") != wanted:
    config.setdefault("runtimes", {})["runsc"] = wanted
    path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"==> registered runsc in {path}", file=sys.stderr)
PY

if pid=$(pidof dockerd); then
  kill -HUP $pid
  for _ in $(seq 50); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && { step "runsc is registered"; exit 0; }
    sleep 0.2
  done
  echo "dockerd did not pick up the runsc runtime from $DAEMON_JSON" >&2
  exit 1
fi
step "no dockerd running: it will read $DAEMON_JSON when it starts"
