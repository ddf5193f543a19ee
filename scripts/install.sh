#!/usr/bin/env bash
# Installs push-bridge as a systemd service: the binary, the units, the sysusers.d
# entry (and the push-bridge user), the docs, the example config (only if no config
# exists) and the state directory. Idempotent: a second run changes nothing and says
# so. `--uninstall` removes what it installed but keeps the config and any saved
# history; `--purge` removes those too. See docs/operations.md "Install".
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [--binary PATH] [--prefix DIR] [--unitdir DIR] [--uninstall | --purge]

Installs push-bridge (build with `cargo build --release` unless --binary is given).

  --binary PATH   install this binary instead of building one
  --prefix DIR    installation prefix (default /usr/local): DIR/bin/push-bridge,
                  DIR/share/doc/push-bridge/
  --unitdir DIR   where the systemd units go (default DIR/lib/systemd/system when the
                  prefix is /usr or /usr/local, which systemd searches; otherwise
                  /etc/systemd/system). The sysusers.d entry goes to the matching
                  lib/sysusers.d or /etc/sysusers.d.
  --uninstall     remove what an install with the same options put in place; keeps
                  /etc/push-bridge/push-bridge.toml and the saved history
  --purge         --uninstall, and also remove the config file and /var/lib/push-bridge
  -h, --help      this text

Environment: DESTDIR=DIR stages everything under DIR (for packages): no user is
created, no ownership is changed and systemd is not told.

Always in /etc and /var (the binary's default config path): the config
/etc/push-bridge/push-bridge.toml (installed only if absent: an existing config is
never overwritten) and the state directory /var/lib/push-bridge.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
binary=""
prefix=/usr/local
unitdir=""
mode=install
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --unitdir) [ $# -ge 2 ] || die "--unitdir needs a directory"; unitdir=$2; shift 2 ;;
        --unitdir=*) unitdir=${1#*=}; shift ;;
        --uninstall) mode=uninstall; shift ;;
        --purge) mode=purge; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case "$prefix" in
    /*) prefix=${prefix%/} ;;
    *) die "--prefix must be an absolute path, not $prefix" ;;
esac
case "$prefix" in
    /usr | /usr/local)
        : "${unitdir:=$prefix/lib/systemd/system}"
        sysusersdir=$prefix/lib/sysusers.d
        ;;
    *)
        : "${unitdir:=/etc/systemd/system}"
        sysusersdir=/etc/sysusers.d
        ;;
esac
case "$unitdir" in
    /*) ;;
    *) die "--unitdir must be an absolute path, not $unitdir" ;;
esac

destdir=${DESTDIR:-}
destdir=${destdir%/}
if [ -n "$destdir" ]; then
    case "$destdir" in
        /*) ;;
        *) destdir=$(pwd)/$destdir ;;
    esac
fi

user=push-bridge
bin=$prefix/bin/push-bridge
docdir=$prefix/share/doc/push-bridge
confdir=/etc/push-bridge
config=$confdir/push-bridge.toml
statedir=/var/lib/push-bridge
units=(push-bridge.service push-bridge.socket)

# Ownership is set only on a live install by root; a DESTDIR stage is for a package,
# whose own scripts create the user (systemd-sysusers) and set owners.
live=no
if [ -z "$destdir" ]; then
    [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or set DESTDIR=DIR to stage the files)"
    live=yes
fi

# systemd is running as PID 1 (sd_booted(3)) and this is a live install.
systemd_running() {
    [ "$live" = yes ] && [ -d /run/systemd/system ]
}

changed=0

# mode_owner PATH: "MODE OWNER:GROUP" of PATH.
mode_owner() { stat -c '%a %U:%G' "$1"; }

# put_file SRC DEST MODE [OWNER:GROUP]: DEST becomes a copy of SRC, replaced
# atomically (safe for a running binary), unless it already is one.
put_file() {
    local src=$1 dest=$destdir$2 mode=$3 owner=${4:-}
    local want_mode=$mode
    want_mode=${want_mode#0}
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        local have
        have=$(mode_owner "$dest")
        if [ "${have%% *}" = "$want_mode" ] && { [ -z "$owner" ] || [ "${have#* }" = "$owner" ]; }; then
            return 0
        fi
    fi
    local verb=installed
    [ -e "$dest" ] && verb=updated
    mkdir -p "$(dirname "$dest")"
    local tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cp "$src" "$tmp"
    chmod "$mode" "$tmp"
    [ -z "$owner" ] || chown "$owner" "$tmp"
    mv -f "$tmp" "$dest"
    say "$verb $2"
    changed=$((changed + 1))
}

# put_dir DIR MODE [OWNER:GROUP]: DIR exists with this mode (and owner).
put_dir() {
    local dir=$destdir$1 mode=$2 owner=${3:-}
    local want_mode=${mode#0}
    if [ -d "$dir" ]; then
        local have
        have=$(mode_owner "$dir")
        if [ "${have%% *}" = "$want_mode" ] && { [ -z "$owner" ] || [ "${have#* }" = "$owner" ]; }; then
            return 0
        fi
        say "set mode $mode${owner:+ and owner $owner} on $1"
    else
        say "created $1"
    fi
    mkdir -p "$dir"
    chmod "$mode" "$dir"
    [ -z "$owner" ] || chown "$owner" "$dir"
    changed=$((changed + 1))
}

# remove PATH: deletes a file this script installed.
remove() {
    if [ -e "$destdir$1" ] || [ -L "$destdir$1" ]; then
        rm -f "$destdir$1"
        say "removed $1"
        changed=$((changed + 1))
    fi
}

# remove_dir_if_empty DIR
remove_dir_if_empty() {
    if [ -d "$destdir$1" ] && rmdir "$destdir$1" 2>/dev/null; then
        say "removed $1"
        changed=$((changed + 1))
    fi
}

create_user() {
    if getent passwd "$user" >/dev/null; then
        return 0
    fi
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers "$sysusersdir/push-bridge.conf"
    else
        useradd --system --user-group --home-dir "$statedir" --no-create-home \
            --shell /usr/sbin/nologin --comment "push-bridge ZeroMQ to WebSocket bridge" "$user"
    fi
    say "created system user $user"
    changed=$((changed + 1))
}

install_all() {
    if [ -z "$binary" ]; then
        say "building: cargo build --release -p push-bridge"
        (cd "$repo" && cargo build --release --locked -p push-bridge)
        binary=${CARGO_TARGET_DIR:-$repo/target}/release/push-bridge
    fi
    [ -f "$binary" ] && [ -x "$binary" ] || die "no executable binary at $binary"

    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    # The units name /usr/local; point them at the chosen prefix.
    for unit in "${units[@]}"; do
        sed "s|/usr/local/|$prefix/|g" "$repo/systemd/$unit" >"$work/$unit"
    done

    put_file "$binary" "$bin" 0755
    put_file "$repo/systemd/push-bridge.sysusers" "$sysusersdir/push-bridge.conf" 0644
    for unit in "${units[@]}"; do
        put_file "$work/$unit" "$unitdir/$unit" 0644
    done
    for doc in operations configuration protocol; do
        put_file "$repo/docs/$doc.md" "$docdir/$doc.md" 0644
    done
    # The current example, always up to date: diff it against your config on upgrade.
    put_file "$repo/systemd/push-bridge.toml" "$docdir/push-bridge.toml.example" 0644

    local group_owner="" state_owner=""
    if [ "$live" = yes ]; then
        create_user
        group_owner=root:$user
        state_owner=$user:$user
    fi
    if [ -d "$destdir$confdir" ]; then
        : # the sysadmin's directory: leave its mode and owner alone
    else
        put_dir "$confdir" 0750 "$group_owner"
    fi
    if [ -e "$destdir$config" ]; then
        if ! cmp -s "$repo/systemd/push-bridge.toml" "$destdir$config"; then
            say "kept your $config (never overwritten); new keys and defaults: diff -u $config $docdir/push-bridge.toml.example"
        fi
    else
        put_file "$repo/systemd/push-bridge.toml" "$config" 0640 "$group_owner"
    fi
    put_dir "$statedir" 0750 "$state_owner"

    if [ "$changed" -eq 0 ]; then
        say "nothing changed: push-bridge is already installed as it would be"
        return 0
    fi
    if systemd_running; then
        systemctl daemon-reload
        say "ran systemctl daemon-reload"
    fi
    say "$changed change(s). Next steps:"
    say "  edit $config, then check it: $bin check-config --config $config"
    say "  start at boot and now:       systemctl enable --now push-bridge.service"
    say "  (or with socket activation:  systemctl enable --now push-bridge.socket)"
    say "  after an upgrade:            systemctl restart push-bridge.service"
}

uninstall_all() {
    if systemd_running; then
        for unit in push-bridge.socket push-bridge.service; do
            if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
                systemctl disable --now "$unit" || true
                say "stopped and disabled $unit"
            fi
        done
    fi
    for unit in "${units[@]}"; do
        remove "$unitdir/$unit"
    done
    remove "$sysusersdir/push-bridge.conf"
    remove "$bin"
    for doc in operations configuration protocol; do
        remove "$docdir/$doc.md"
    done
    remove "$docdir/push-bridge.toml.example"
    remove_dir_if_empty "$docdir"

    if [ "$mode" = purge ]; then
        remove "$config"
        remove_dir_if_empty "$confdir"
        if [ -d "$destdir$confdir" ]; then
            say "kept $confdir: it holds files this script did not install ($(ls -A "$destdir$confdir" | tr '\n' ' '))"
        fi
        if [ -d "$destdir$statedir" ]; then
            rm -rf -- "$destdir$statedir"
            say "removed $statedir and the history in it"
            changed=$((changed + 1))
        fi
    else
        remove_dir_if_empty "$statedir"
        if [ -e "$destdir$config" ]; then
            say "kept $config (your config; --purge removes it)"
        fi
        if [ -d "$destdir$statedir" ]; then
            say "kept $statedir: it holds saved history (--purge removes it)"
        fi
    fi
    if [ "$live" = yes ] && getent passwd "$user" >/dev/null; then
        say "kept the system user $user (remove it with: userdel $user)"
    fi

    if [ "$changed" -eq 0 ]; then
        say "nothing to remove: push-bridge is not installed here"
        return 0
    fi
    if systemd_running; then
        systemctl daemon-reload
        say "ran systemctl daemon-reload"
    fi
}

case "$mode" in
    install) install_all ;;
    uninstall | purge) uninstall_all ;;
esac
