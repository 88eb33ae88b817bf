#!/bin/sh
# Install, upgrade or remove a uSipipo node on a Linux server with systemd.
#
#   curl -fsSL https://…/install.sh | sh                        install or upgrade
#   curl -fsSL https://…/install.sh | sh -s -- --uninstall      remove the service, keep data
#   curl -fsSL https://…/install.sh | sh -s -- --uninstall --purge   remove data too
#
# It downloads usipipo-linux-<arch>, usipipo.service and SHA256SUMS from
# USIPIPO_BASE_URL, verifies them, and only then changes the system: the
# binary in /usr/local/bin, the system user usipipo, /var/lib/usipipo (0700),
# /etc/usipipo/usipipo.env, the sysctls tun mode needs, and the systemd unit.
# A fresh install runs `usipipo init`, which prints the one-time admin
# password and the backup passphrase on this terminal only. Re-running it
# upgrades in place and keeps the data; a failed step undoes the others.
# It opens no port: it prints the ones to open.
#
# Every system path and command can be overridden (tests run it in a
# throwaway root): USIPIPO_ROOT prefixes every path; SYSTEMCTL, SYSCTL,
# USERADD, USERDEL, GETENT, CHOWN and UNAME name the commands.
set -eu

BASE_URL=${USIPIPO_BASE_URL:-https://github.com/usipipo/usipipo/releases/latest/download}
ROOT=${USIPIPO_ROOT:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
SYSCTL=${SYSCTL:-sysctl}
USERADD=${USERADD:-useradd}
USERDEL=${USERDEL:-userdel}
GETENT=${GETENT:-getent}
CHOWN=${CHOWN:-chown}
UNAME=${UNAME:-uname}

SVC_USER=usipipo
UNIT_NAME=usipipo.service
BIN=$ROOT/usr/local/bin/usipipo
DATA=$ROOT/var/lib/usipipo
ETC=$ROOT/etc/usipipo
ENV_FILE=$ETC/usipipo.env
UNIT=$ROOT/etc/systemd/system/$UNIT_NAME
SYSCTL_FILE=$ROOT/etc/sysctl.d/60-usipipo.conf
LOCK=$ROOT/run/usipipo-install.lock

say() { printf '%s\n' "usipipo-install: $*" >&2; }
die() {
	say "error: $*"
	exit 1
}

usage() {
	cat <<'EOF'
usage: install.sh [--uninstall [--purge]]
  (no flag)    install usipipo, or upgrade it in place keeping its data
  --uninstall  stop and remove the service and the binary; keep data and settings
  --purge      with --uninstall: also delete /var/lib/usipipo, /etc/usipipo and the user
Environment: USIPIPO_BASE_URL (release mirror), USIPIPO_BOT_TOKEN and
USIPIPO_PUBLIC_HOST (written to /etc/usipipo/usipipo.env on a fresh install).
EOF
}

# --- checks that change nothing -------------------------------------------

detect_arch() {
	os=$($UNAME -s)
	[ "$os" = Linux ] || die "unsupported system $os: usipipo runs on Linux with systemd"
	m=$($UNAME -m)
	case $m in
	x86_64 | amd64) ARCH=amd64 ;;
	aarch64 | arm64) ARCH=arm64 ;;
	*) die "unsupported architecture $m: release binaries exist for x86_64 (amd64) and aarch64 (arm64)" ;;
	esac
}

check_system() {
	[ "$(id -u)" = 0 ] || die "run as root (sudo sh install.sh)"
	[ -d "$ROOT/run/systemd/system" ] || die "systemd is not running here: usipipo installs as a systemd service"
	for c in sha256sum mktemp awk; do
		command -v "$c" >/dev/null 2>&1 || die "$c is missing (install coreutils/gawk)"
	done
	if command -v curl >/dev/null 2>&1; then
		FETCH=curl
	elif command -v wget >/dev/null 2>&1; then
		FETCH=wget
	else
		die "neither curl nor wget is installed"
	fi
}

fetch() { # url file
	if [ "$FETCH" = curl ]; then
		curl -fsSL --retry 3 -o "$2" "$1"
	else
		wget -q -O "$2" "$1"
	fi || die "cannot download $1"
}

# verify FILE NAME: FILE's SHA-256 must be the one SHA256SUMS lists for NAME.
verify() {
	want=$(awk -v f="$2" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP/SHA256SUMS")
	[ -n "$want" ] || die "SHA256SUMS from $BASE_URL does not list $2"
	got=$(sha256sum "$1" | awk '{ print $1 }')
	[ "$got" = "$want" ] || die "checksum mismatch for $2 (got $got, SHA256SUMS says $want): nothing was installed"
}

download() {
	TMP=$(mktemp -d)
	say "downloading usipipo-linux-$ARCH from $BASE_URL"
	fetch "$BASE_URL/SHA256SUMS" "$TMP/SHA256SUMS"
	fetch "$BASE_URL/usipipo-linux-$ARCH" "$TMP/usipipo"
	fetch "$BASE_URL/$UNIT_NAME" "$TMP/$UNIT_NAME"
	verify "$TMP/usipipo" "usipipo-linux-$ARCH"
	verify "$TMP/$UNIT_NAME" "$UNIT_NAME"
	chmod 0755 "$TMP/usipipo"
	NEW_VERSION=$("$TMP/usipipo" version 2>/dev/null) || die "the downloaded binary does not run on this machine"
	say "verified $NEW_VERSION"
}

# --- changes, each undone by rollback if a later one fails -----------------

DONE="" # what this run changed, for rollback

rollback() {
	say "undoing this run's changes"
	case " $DONE " in *" started "*) $SYSTEMCTL stop "$UNIT_NAME" >/dev/null 2>&1 || : ;; esac
	case " $DONE " in *" enabled "*) $SYSTEMCTL disable "$UNIT_NAME" >/dev/null 2>&1 || : ;; esac
	case " $DONE " in *" unit "*)
		if [ -f "$UNIT.old" ]; then mv -f "$UNIT.old" "$UNIT"; else rm -f "$UNIT"; fi
		$SYSTEMCTL daemon-reload >/dev/null 2>&1 || :
		;;
	esac
	case " $DONE " in *" sysctl "*) rm -f "$SYSCTL_FILE" ;; esac
	case " $DONE " in *" init "*) rm -f "$DATA/usipipo.db" "$DATA/node.key" "$DATA/initial-credentials.txt" ;; esac
	case " $DONE " in *" binary "*) if [ -f "$BIN.old" ]; then mv -f "$BIN.old" "$BIN"; else rm -f "$BIN"; fi ;; esac
	case " $DONE " in *" envfile "*) rm -f "$ENV_FILE" ;; esac
	case " $DONE " in *" etc "*) rmdir "$ETC" 2>/dev/null || : ;; esac
	case " $DONE " in *" datadir "*) rm -rf "$DATA" ;; esac
	case " $DONE " in *" user "*) $USERDEL "$SVC_USER" >/dev/null 2>&1 || : ;; esac
	# An upgrade whose new binary failed: the old one serves again.
	case " $DONE " in *" restarted "*) $SYSTEMCTL restart "$UNIT_NAME" >/dev/null 2>&1 || : ;; esac
}

cleanup() {
	status=$?
	trap - EXIT INT TERM HUP
	set +e # undo as much as possible, whatever fails
	if [ "$status" != 0 ] && [ -n "$DONE" ]; then rollback; fi
	[ -z "${TMP:-}" ] || rm -rf "$TMP"
	[ -z "${LOCKED:-}" ] || rmdir "$LOCK" 2>/dev/null || :
	exit "$status"
}

lock() {
	mkdir -p "$ROOT/run"
	mkdir "$LOCK" 2>/dev/null || die "another install is running (remove $LOCK if not)"
	LOCKED=1
}

ensure_user() {
	if $GETENT passwd "$SVC_USER" >/dev/null 2>&1; then return; fi
	$USERADD --system --user-group --home-dir /var/lib/usipipo --no-create-home \
		--shell /usr/sbin/nologin --comment "uSipipo node" "$SVC_USER" || die "cannot create user $SVC_USER"
	DONE="$DONE user"
}

ensure_dirs() {
	if [ ! -d "$DATA" ]; then
		mkdir -p "$DATA"
		DONE="$DONE datadir"
	fi
	chmod 0700 "$DATA"
	if [ ! -d "$ETC" ]; then
		mkdir -p "$ETC"
		DONE="$DONE etc"
	fi
	chmod 0755 "$ETC"
	[ ! -f "$ENV_FILE" ] || return 0
	umask 077
	{
		echo "# uSipipo settings, one USIPIPO_<NAME>=value a line (see: usipipo serve -h)."
		echo "# After a change: systemctl restart usipipo"
		echo "USIPIPO_MTPROTO_LISTEN=:443"
		if [ -n "${USIPIPO_BOT_TOKEN:-}" ]; then echo "USIPIPO_BOT_TOKEN=$USIPIPO_BOT_TOKEN"; else echo "#USIPIPO_BOT_TOKEN="; fi
		if [ -n "${USIPIPO_PUBLIC_HOST:-}" ]; then echo "USIPIPO_PUBLIC_HOST=$USIPIPO_PUBLIC_HOST"; else echo "#USIPIPO_PUBLIC_HOST="; fi
	} >"$ENV_FILE.tmp"
	umask 022
	chmod 0600 "$ENV_FILE.tmp"
	mv -f "$ENV_FILE.tmp" "$ENV_FILE"
	DONE="$DONE envfile"
}

install_binary() {
	mkdir -p "$(dirname "$BIN")"
	rm -f "$BIN.old"
	[ ! -f "$BIN" ] || cp -p "$BIN" "$BIN.old"
	cp "$TMP/usipipo" "$BIN.new"
	chmod 0755 "$BIN.new"
	mv -f "$BIN.new" "$BIN"
	DONE="$DONE binary"
}

# init_data runs `usipipo init` on a data dir without a database. Its
# secrets go to this terminal, never to a log or a file.
init_data() {
	if [ -f "$DATA/usipipo.db" ]; then
		say "keeping the existing node in $DATA"
	else
		say "initialising $DATA: write down what follows, it is shown once"
		"$BIN" init --data "$DATA" </dev/null || die "usipipo init failed"
		DONE="$DONE init"
	fi
	$CHOWN -R "$SVC_USER:$SVC_USER" "$DATA" || die "cannot give $DATA to $SVC_USER"
}

install_sysctl() {
	mkdir -p "$(dirname "$SYSCTL_FILE")"
	if [ ! -f "$SYSCTL_FILE" ]; then DONE="$DONE sysctl"; fi
	cat >"$SYSCTL_FILE" <<'EOF'
# uSipipo: WireGuard in tun mode forwards the peers' traffic.
net.ipv4.ip_forward = 1
net.ipv6.conf.all.forwarding = 1
EOF
	$SYSCTL -p "$SYSCTL_FILE" >/dev/null || say "warning: could not apply $SYSCTL_FILE now; it applies at boot"
}

install_unit() {
	mkdir -p "$(dirname "$UNIT")"
	rm -f "$UNIT.old"
	[ ! -f "$UNIT" ] || cp -p "$UNIT" "$UNIT.old"
	cp "$TMP/$UNIT_NAME" "$UNIT.new"
	chmod 0644 "$UNIT.new"
	mv -f "$UNIT.new" "$UNIT"
	DONE="$DONE unit"
	$SYSTEMCTL daemon-reload || die "systemctl daemon-reload failed"
}

start_service() {
	if ! $SYSTEMCTL is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then
		$SYSTEMCTL enable "$UNIT_NAME" || die "cannot enable $UNIT_NAME"
		DONE="$DONE enabled"
	fi
	if [ "$UPGRADE" = 1 ] && $SYSTEMCTL is-active --quiet "$UNIT_NAME"; then
		if upgrade_in_place; then return 0; fi
		DONE="$DONE restarted"
		$SYSTEMCTL restart "$UNIT_NAME" || die "the new version failed to start; the previous one is restored (journalctl -u usipipo)"
	else
		DONE="$DONE started"
		$SYSTEMCTL start "$UNIT_NAME" || die "usipipo failed to start (journalctl -u usipipo)"
	fi
	$SYSTEMCTL is-active --quiet "$UNIT_NAME" || die "usipipo is not running after start (journalctl -u usipipo)"
}

# upgrade_in_place hands a running node over to the new binary with
# `usipipo upgrade`: its sockets, store and systemd's main pid move to the new
# process and established connections are kept. It returns 1 when a restart
# is needed instead: no node answers on the admin socket, the unit changed
# (its settings apply only to a process systemd starts), or the node refuses
# to hand over (exit status 3: nothing was started). A new
# binary that fails to take over leaves the old process serving; the
# rollback then puts the old binary back, and nothing restarts.
upgrade_in_place() {
	if [ -f "$UNIT.old" ] && ! cmp -s "$UNIT.old" "$UNIT"; then
		say "the systemd unit changed: restarting the service to apply it"
		return 1
	fi
	if ! "$BIN" status --data "$DATA" >/dev/null 2>&1; then
		say "no node answers on $DATA/admin.sock: restarting the service"
		return 1
	fi
	say "handing the running node over to $NEW_VERSION without a restart"
	rc=0
	"$BIN" upgrade --data "$DATA" --binary "$BIN" || rc=$?
	case $rc in
	0) say "upgraded in place: open connections are kept" ;;
	3)
		# Refused before anything started (say, an upgrade in progress).
		say "the node cannot be upgraded in place: restarting the service"
		return 1
		;;
	*) die "the new version failed to take over; the previous one keeps serving (journalctl -u usipipo)" ;;
	esac
}

next_steps() {
	http=$(sed -n 's/^USIPIPO_HTTP=//p' "$ENV_FILE" | tail -n 1)
	http=${http:-127.0.0.1:8080}
	port=${http##*:}
	host=$(hostname -I 2>/dev/null | awk '{ print $1 }') || :
	host=${host:-YOUR_SERVER}
	cat >&2 <<EOF

uSipipo $NEW_VERSION is running (systemctl status usipipo, journalctl -u usipipo).

The panel and API listen on $http only. From your computer:
    ssh -N -L $port:127.0.0.1:$port root@$host
then open http://127.0.0.1:$port/ and sign in as admin with the one-time password above.

Next steps:
  1. Telegram bot: set USIPIPO_BOT_TOKEN=<token from @BotFather> in $ENV_FILE
  2. Public host: set USIPIPO_PUBLIC_HOST=<this server's name or IP> there too,
     then: systemctl restart usipipo
  3. Open in your firewall (this installer opened nothing):
     51820/udp (WireGuard), 8388/tcp+udp (Outline), 443/tcp (MTProto)
  4. Check the node with the settings the service reads (EnvironmentFile=):
     (set -a; . $ENV_FILE; usipipo doctor --data /var/lib/usipipo)
Re-run this installer to upgrade; add "--uninstall" to remove the service.
EOF
}

do_install() {
	detect_arch
	check_system
	lock
	download
	UPGRADE=0
	if [ -f "$BIN" ] || [ -f "$UNIT" ]; then
		UPGRADE=1
		old=$("$BIN" version 2>/dev/null) || old="the existing install"
		say "upgrading $old to $NEW_VERSION in place; $DATA is kept"
	fi
	ensure_user
	ensure_dirs
	install_binary
	init_data
	install_sysctl
	install_unit
	start_service
	DONE=""
	rm -f "$BIN.old" "$UNIT.old"
	next_steps
}

do_uninstall() {
	[ "$(id -u)" = 0 ] || die "run as root"
	lock
	say "removing the usipipo service"
	if [ -f "$UNIT" ]; then
		$SYSTEMCTL stop "$UNIT_NAME" || :
		$SYSTEMCTL disable "$UNIT_NAME" || :
	fi
	rm -f "$UNIT" "$UNIT.old" "$BIN" "$BIN.old" "$SYSCTL_FILE"
	$SYSTEMCTL daemon-reload || :
	if [ "$PURGE" = 1 ]; then
		say "purging $DATA, $ETC and the user $SVC_USER"
		rm -rf "$DATA" "$ETC"
		if $GETENT passwd "$SVC_USER" >/dev/null 2>&1; then $USERDEL "$SVC_USER" || :; fi
	else
		say "kept $DATA (the node's data and backups) and $ETC; --purge deletes them"
	fi
	say "done (the forwarding sysctls stay in effect until reboot)"
}

MODE=install
PURGE=0
for arg in "$@"; do
	case $arg in
	--uninstall) MODE=uninstall ;;
	--purge) PURGE=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
if [ "$MODE" = uninstall ]; then do_uninstall; else do_install; fi
