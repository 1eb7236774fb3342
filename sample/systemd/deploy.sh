#!/usr/bin/env bash
# Deploys a new build to whichever of blue/green is not running, then stops the other.
#   sudo sample/systemd/deploy.sh /path/to/publish/output
set -euo pipefail
build=${1:?usage: $0 PUBLISH_DIR}
if systemctl is-active --quiet webapp@blue; then old=blue new=green; else old=green new=blue; fi
rsync -a --delete "$build"/ "/opt/webapp/$new"/
systemctl start "webapp@$new"      # Type=notify: returns once the new instance is warm and accepts (READY=1)
if systemctl is-active --quiet "webapp@$old"; then systemctl stop "webapp@$old"; fi   # drains, within TimeoutStopSec
echo "webapp@$new serves port 8080; webapp@$old stopped"
