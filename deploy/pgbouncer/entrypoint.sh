#!/bin/sh
# The pgbouncer service's entrypoint (docker-compose.yml): write the auth file that pgbouncer.ini names from
# POSTGRES_USER and POSTGRES_PASSWORD, then run PgBouncer in the foreground on that config.
#
#   sh entrypoint.sh [CONFIG]      CONFIG defaults to /etc/pgbouncer/pgbouncer.ini
#
# The password stays out of the repository and out of the image: the file is written at start, mode 0600, on the
# tmpfs the compose file mounts (tests/deploy/test_pgbouncer.py runs this script with Debian's pgbouncer).
set -eu

config="${1:-/etc/pgbouncer/pgbouncer.ini}"
: "${POSTGRES_USER:?POSTGRES_USER is not set}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}"
auth_file="$(sed -n 's/^[[:space:]]*auth_file[[:space:]]*=[[:space:]]*//p' "$config" | tail -n 1)"
[ -n "$auth_file" ] || { echo "no auth_file in $config" >&2; exit 1; }

# The auth file's format: "user" "password", a double quote inside either written twice.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
umask 077
printf '%s %s\n' "$(quote "$POSTGRES_USER")" "$(quote "$POSTGRES_PASSWORD")" > "$auth_file"

exec pgbouncer "$config"
