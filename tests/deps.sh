#!/usr/bin/env bash
# Installs the system programs the tests start, when they are missing:
#  - slapd + ldap-utils: a throw-away OpenLDAP on a loopback port (plugins' LDAP
#    capability, the identity workflows);
#  - openssl: a throw-away CA, so that OpenLDAP can offer StartTLS;
#  - chromium + chromium-driver: the console's browser tests (headless, WebDriver);
#  - postgresql: the PostgreSQL store's contract and e2e tests (a throw-away cluster,
#    `initdb` + `pg_ctl` as `nobody` on a loopback port; the Debian service is not used).
# Debian's packages, with apt-get (needs root or sudo). Does nothing when all are there.
set -euo pipefail

if [ -x /usr/sbin/slapd ] && command -v ldapadd >/dev/null && command -v openssl >/dev/null \
  && [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
echo "tests: installing slapd ldap-utils openssl chromium chromium-driver postgresql" >&2
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
# slapd's package script would ask for an admin password; the tests use their own config.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slapd ldap-utils openssl chromium chromium-driver postgresql >/dev/null
