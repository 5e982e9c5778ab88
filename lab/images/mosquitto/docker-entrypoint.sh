#!/bin/sh
# Same as eclipse-mosquitto:2: as root, hand /mosquitto to the mosquitto user
# (mosquitto itself drops to that user after reading its config).
set -e
if [ "$(id -u)" = "0" ] && [ -d /mosquitto ]; then
  chown -R mosquitto:mosquitto /mosquitto 2>/dev/null || true
fi
exec "$@"
