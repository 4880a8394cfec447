#!/usr/bin/env bash
# Brings up what kernelgate needs on this machine, skipping what is already there; shared by `make run`,
# `make test` and `.ci/run`.
#   images/setup.sh          a Docker engine that answers, and the kernel image (images/build.sh)
#   images/setup.sh test     the same, and a Chromium for the playground's browser test
# As root it installs and starts what is missing (Debian's docker.io and debootstrap, chromium); as
# another user it says exactly what to run instead.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'kernelgate setup: %s\n' "$*" >&2; exit 1; }
as_root() { [[ $(id -u) -eq 0 ]]; }

apt_install() {
  step "installing Debian's $* (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then
    return
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    as_root || fail "no Docker engine here. Install and start one: sudo apt-get install -y docker.io && sudo systemctl start docker (or: sudo dockerd &), then let yourself use it: sudo usermod -aG docker \$USER and log in again."
    apt_install docker.io
  fi
  if ! as_root; then
    if [[ -S /var/run/docker.sock ]]; then
      fail "Docker runs but this user may not use it: sudo usermod -aG docker \$USER, then log in again (or set DOCKER_HOST)."
    fi
    fail "the Docker engine is not running: sudo systemctl start docker (or: sudo dockerd &)."
  fi
  step "starting dockerd in the background (log: /tmp/kernelgate-dockerd.log)"
  (nohup dockerd >/tmp/kernelgate-dockerd.log 2>&1 &)
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { step "Docker $(docker version --format '{{.Server.Version}}') is up"; return; }
    sleep 1
  done
  tail -20 /tmp/kernelgate-dockerd.log >&2
  fail "dockerd did not come up within 60 s; its log is above."
}

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return
  fi
  if as_root; then
    apt_install chromium
  else
    step "no chromium: the playground's browser test will be skipped (sudo apt-get install -y chromium)"
  fi
}

ensure_docker
# build.sh installs debootstrap itself (as root) when no registry can give it a base image.
bash build.sh image
if [[ "${1:-}" == "test" ]]; then
  ensure_chromium
fi
