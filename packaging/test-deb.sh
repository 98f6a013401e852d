#!/usr/bin/env bash
# Builds the package and tries it as site IT would (issue #14), as root on a Debian machine
# without systemd running: contents, the unit's sandbox score, lintian, install, check-config
# and a short serve as user coi-agent, file modes, remove (journal kept) and purge (gone).
# It installs and purges the package on this machine: never run it where coi-agent is in use.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }

deb=$(bash packaging/build-deb.sh | tail -n 1)
echo "test-deb: built $deb"

echo "test-deb: contents"
contents=$(dpkg-deb -c "$deb")
echo "$contents"
for path in ./usr/bin/coi-agent ./lib/systemd/system/coi-agent.service \
    ./usr/lib/sysusers.d/coi-agent.conf ./lib/udev/rules.d/60-coi-agent.rules \
    ./etc/coi-agent/coi-agent.toml ./usr/share/doc/coi-agent/README.md \
    ./usr/share/man/man1/coi-agent.1.gz ./usr/share/bash-completion/completions/coi-agent \
    ./etc/coi-agent/printers.d/README ./etc/coi-agent/scanners.d/README; do
  grep -q " $path\$" <<<"$contents" || fail "the package lacks $path"
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/coi-agent/coi-agent.toml || fail "the configuration is not a conffile"

echo "test-deb: systemd-analyze security (exposure at most 2.0)"
systemd-analyze security --offline=true --threshold=20 packaging/coi-agent.service | tail -n 1

echo "test-deb: lintian (no errors)"
lintian --fail-on error "$deb"

echo "test-deb: install"
if dpkg-query -W coi-agent >/dev/null 2>&1; then fail "coi-agent is installed here: this test would purge it"; fi
dpkg -i "$deb"
getent passwd coi-agent >/dev/null || fail "no user coi-agent"
# The installed unit loads: every directive known, its commands executable.
systemd-analyze verify /lib/systemd/system/coi-agent.service || fail "systemd-analyze verify"
for page in coi-agent coi-agent-serve coi-agent-check-config coi-agent-journal-backup; do
  [ -f "/usr/share/man/man1/$page.1.gz" ] || fail "no man page $page"
done
zgrep -q 'coi\\-agent\\-serve(1)' /usr/share/man/man1/coi-agent.1.gz || fail "the main page does not name coi-agent-serve(1)"
[ ! -e /usr/share/man/man1/coi-agent-dev.1.gz ] || fail "a man page for the hidden dev commands"
[ "$(stat -c '%a %U %G' /etc/coi-agent/coi-agent.toml)" = "640 root coi-agent" ] || fail "config mode $(stat -c '%a %U %G' /etc/coi-agent/coi-agent.toml)"
[ "$(stat -c '%a %U' /var/lib/coi-agent)" = "700 coi-agent" ] || fail "state directory mode"
# The shipped configuration is refused until the site is set, naming what to set.
if coi-agent check-config >/tmp/coi-check.out 2>&1; then fail "the unconfigured file passed check-config"; fi
grep -q "site.id" /tmp/coi-check.out || fail "check-config does not name site.id: $(cat /tmp/coi-check.out)"

echo "test-deb: configure and serve as coi-agent"
# The demonstration orders, collected today and expiring in a month, so a label may be printed.
sed -E -e "s/\"scheduled_for\": *\"[^\"]*\"/\"scheduled_for\": \"$(date -u +%FT%TZ)\"/" \
       -e "s/\"expires_at\": *\"[^\"]*\"/\"expires_at\": \"$(date -u -d '+30 days' +%FT%TZ)\"/" \
       config/demo-orders.json >/tmp/coi-orders.json
install -m 0640 -o root -g coi-agent /tmp/coi-orders.json /etc/coi-agent/orders.json
sed -i -e 's/^id = ""/id = "site-lab-1"/' \
       -e 's/^listen = "127.0.0.1:7370"/listen = "127.0.0.1:0"/' \
       -e 's/^source = "central"/source = "file"\nfile = "orders.json"/' \
       /etc/coi-agent/coi-agent.toml
cat >> /etc/coi-agent/coi-agent.toml <<'TOML'
[[printers]]
name = "bag-labels"
uri = "spool:///var/lib/coi-agent/spool"
TOML
sed -i -e '/^\[central\]/,/^offline/d' /etc/coi-agent/coi-agent.toml
install -d -m 0700 -o coi-agent -g coi-agent /var/lib/coi-agent/spool
# Root runs a command before the service ever started: the journal is root's, and check-config
# (the unit's ExecStartPre, as coi-agent) says so instead of letting serve fail.
coi-agent orders sync >/dev/null
if runuser -u coi-agent -- coi-agent check-config >/tmp/coi-check.out 2>&1; then
  fail "check-config passed a journal the service cannot write"
fi
grep -q "cannot write it (owned by uid 0)" /tmp/coi-check.out || fail "check-config: $(cat /tmp/coi-check.out)"
chown coi-agent:coi-agent /var/lib/coi-agent/journal.sqlite*
runuser -u coi-agent -- coi-agent check-config || fail "check-config as coi-agent"
# UMask=0077 is the unit's; without systemd the shell's umask applies, and the files must be
# private anyway.
( umask 0022; timeout -s TERM 6 runuser -u coi-agent -- coi-agent serve >/tmp/coi-serve.log 2>&1 ) || true
grep -q "coi-agent ready" /tmp/coi-serve.log || fail "serve did not start: $(cat /tmp/coi-serve.log)"
# A label spooled and a backup made as the service's user, under a permissive umask.
( umask 0022; runuser -u coi-agent -- coi-agent label print --coi CHA999825000044 --bag 1 ) \
  || fail "label print as coi-agent"
( umask 0022; runuser -u coi-agent -- coi-agent journal backup --to /var/lib/coi-agent/backup.sqlite ) \
  || fail "journal backup as coi-agent"
runuser -u coi-agent -- coi-agent audit verify --db /var/lib/coi-agent/backup.sqlite \
  --key /var/lib/coi-agent/journal.sqlite.audit-key || fail "audit verify of the backup, with the key"
[ "$(stat -c '%a %U' /var/lib/coi-agent/journal.sqlite.audit-key)" = "600 coi-agent" ] \
  || fail "the audit key is not private to coi-agent"
# Without its key the copy's keyed entries cannot be checked, and verify says so (exit 1).
if runuser -u coi-agent -- coi-agent audit verify --db /var/lib/coi-agent/backup.sqlite >/tmp/verify.out; then
  fail "a copy without its key passed as wholly checked"
fi
grep -q "NOT WHOLLY CHECKED" /tmp/verify.out || fail "verify without the key: $(cat /tmp/verify.out)"
spooled=$(find /var/lib/coi-agent/spool -name '*.zpl' | head -n 1)
[ -n "$spooled" ] || fail "no label in the spool"
for file in /var/lib/coi-agent/journal.sqlite /var/lib/coi-agent/api.token "$spooled" \
    /var/lib/coi-agent/backup.sqlite; do
  [ "$(stat -c '%a %U' "$file")" = "600 coi-agent" ] || fail "$file mode $(stat -c '%a %U' "$file")"
done

[ "$(stat -c '%a %U' /var/backups/coi-agent)" = "700 coi-agent" ] || fail "backup directory mode"
( umask 0022; runuser -u coi-agent -- coi-agent journal backup --to /var/backups/coi-agent/test.sqlite ) \
  || fail "backup to /var/backups/coi-agent"

echo "test-deb: remove keeps the journal, purge deletes it"
dpkg -r coi-agent
[ -f /var/lib/coi-agent/journal.sqlite ] || fail "remove deleted the journal"
dpkg -P coi-agent
[ ! -e /var/lib/coi-agent ] || fail "purge left /var/lib/coi-agent"
[ ! -e /etc/coi-agent/coi-agent.toml ] || fail "purge left the configuration"
[ -f /var/backups/coi-agent/test.sqlite ] || fail "purge deleted the backups"
rm -rf /var/backups/coi-agent
rm -f /etc/coi-agent/orders.json
rmdir /etc/coi-agent 2>/dev/null || true
echo "test-deb: ok"
