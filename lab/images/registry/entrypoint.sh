#!/bin/sh
# Same as registry:2: a config file argument means `registry serve <file>`.
set -e
case "$1" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
