#!/usr/bin/env bash
# Ensure the RabbitMQ server binaries are installed (Debian/Ubuntu, run as root).
# The test suite starts its own throwaway node (tests/support/rabbitmq.py), so
# this script only installs the package and never starts the system service.
# Its rabbitmq_mqtt and rabbitmq_web_mqtt plugins (shipped in the same package) are the MQTT
# broker of the MQTT transport's tests; the test node enables them itself.
set -euo pipefail

check_mqtt_plugins() {
    if ! ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_web_mqtt-* >/dev/null 2>&1; then
        echo "install-rabbitmq: rabbitmq-server has no rabbitmq_web_mqtt plugin (MQTT tests need it)" >&2
        exit 1
    fi
}

if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1; then
    check_mqtt_plugins
    echo "install-rabbitmq: rabbitmq-server already installed, nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-rabbitmq: rabbitmq-server is missing and this script must run as root to install it" >&2
    exit 1
fi

# A policy-rc.d that exits 101 tells invoke-rc.d (used by the package's
# postinst) not to start the rabbitmq-server/epmd services. Install a
# temporary one unless the machine already has its own (e.g. Docker images).
policy=/usr/sbin/policy-rc.d
own_policy=""
cleanup() { if [ -n "$own_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    own_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq rabbitmq-server >/dev/null
check_mqtt_plugins

echo "install-rabbitmq: installed rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) (service not started)"
