#!/bin/sh
# First start: put the default targets.toml into the volume, where the user can edit it
# (the daemon reloads it when saved).
set -e
if [ ! -f "$MONITOR_CONFIG" ]; then
    cp /app/targets.default.toml "$MONITOR_CONFIG"
fi
exec monitor "$@"
