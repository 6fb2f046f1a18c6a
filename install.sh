#!/usr/bin/env bash
# telepi installer for Raspberry Pi OS Bookworm/Trixie: Node.js, build tools, I2C and camera, the
# `telepi` system user, the app in /opt/telepi, /etc/telepi/telepi.env and the systemd service.
# Run it again after `git pull` to upgrade in place; it changes only what is out of date.
set -euo pipefail
umask 022

readonly NODE_MIN=20.18.1
readonly NODESOURCE_MAJOR=22
readonly NODESOURCE_KEY_URL=https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key
readonly STAMP_NAME=.telepi-install-stamp
readonly GROUPS_NEEDED=(i2c video gpio)
# The device classes named by the unit's DeviceAllow= exist only once these are loaded (i2c-dev: char-i2c,
# videodev: char-video4linux, mc: char-media), and systemd resolves them when the service starts.
readonly KERNEL_MODULES=(i2c-dev videodev mc)
# Peak memory of the app's build (npm ci --omit=dev, addons, esbuild), measured by `npm run bench:install`,
# with a margin: below this much free memory plus swap, the installer adds swap first.
readonly BUILD_MEMORY_MB=320
# Every variable of the README's configuration table, the one list: these (and only these) are taken from
# the environment into the env file; usage and the no-terminal help print it.
readonly CONFIG_KEYS=(TELEGRAM_BOT_TOKEN TELEPI_OWNERS TELEGRAM_API_ROOT TELEPI_USERS TELEPI_HARDWARE
  TELEPI_STATE_DIR BME280_BUS BME280_ADDRESS STREAM_PORT STREAM_EXTERNAL_PORT STREAM_TTL PHOTO_SIZE
  CAMERA_IN_GROUPS PIR_GPIO LED_GPIO MOTION_COOLDOWN HISTORY_EVERY HISTORY_KEEP REPORT_STYLE MQTT_URL
  MQTT_USERNAME MQTT_PASSWORD MQTT_CA MQTT_DISCOVERY_PREFIX MQTT_NODE_ID MQTT_EVERY TELEPI_LOG_LEVEL)
# Values never printed, never on a command line, redacted from curl's errors.
readonly SECRET_KEYS=(TELEGRAM_BOT_TOKEN MQTT_PASSWORD)
# The same build for every run: stamp, copy and hash must agree on what the app's source is.
readonly SOURCE_EXCLUDES=(--exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./coverage
  --exclude=./.telepi-demo --exclude=./test --exclude=./bench --exclude='*.log')

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=''
DRY_RUN=0
FORCE=0
VERIFY=1
UNINSTALL=0
BUILD_INTO=''
PURGE=0
CHANGED=0
REBOOT_FOR=()
NEW_DIR=''
declare -A GIVEN=() CONF=()

# Taken out of the environment at once: npm's install scripts and the other children must not see the token.
for key in "${CONFIG_KEYS[@]}"; do
  if [ -n "${!key+x}" ]; then GIVEN[$key]=${!key}; unset "$key"; fi
done

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [--dry-run] [--force] [--no-verify]
       sudo ./install.sh --uninstall [--purge] [--dry-run]

Installs telepi on Raspberry Pi OS Bookworm or Trixie, or upgrades it in place after `git pull`.

  --dry-run     print every action without doing it
  --force       continue on a system that is not Raspberry Pi OS Bookworm/Trixie on a Raspberry Pi
  --no-verify   do not check the bot token with Telegram's getMe
  --uninstall   stop and remove the service, the app and the user; keep /var/lib/telepi and
                /etc/telepi/telepi.env
  --purge       with --uninstall, also remove /var/lib/telepi and /etc/telepi
  --root DIR    treat DIR as the target system's / for every file read or written (tests)
  --build-into DIR  only copy the app's source to the new folder DIR and build it there, as the
                install would; changes nothing else (`npm run bench:install` measures this step)

Configuration comes from prompts, or from these variables in the environment (keep them out of the
command line, e.g. `export TELEGRAM_BOT_TOKEN; sudo --preserve-env=TELEGRAM_BOT_TOKEN,TELEPI_OWNERS ./install.sh`):
EOF
  config_keys_list "${CONFIG_KEYS[@]}"
  printf '%s\n' "A variable given empty (PIR_GPIO=) removes it from /etc/telepi/telepi.env."
}

# Variable names, six to a line, indented.
config_keys_list() { printf '%s\n' "$@" | xargs -n 6 echo | sed 's/^/  /'; }

is_secret() {
  local key
  for key in "${SECRET_KEYS[@]}"; do [ "$key" = "$1" ] && return 0; done
  return 1
}

section() { printf '==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
# A path as it is on the target system, without the --root prefix.
show() { printf '%s' "${1#"$ROOT"}"; }

# Runs a command that changes the system, printing it first; under --dry-run only prints it.
run() {
  if ((DRY_RUN)); then printf '    would run: %s\n' "$*"; return 0; fi
  printf '    + %s\n' "$*"
  CHANGED=1
  "$@"
}

# Like run, in a directory.
run_in() {
  local dir=$1; shift
  if ((DRY_RUN)); then printf '    would run in %s: %s\n' "$(show "$dir")" "$*"; return 0; fi
  printf '    + (in %s) %s\n' "$(show "$dir")" "$*"
  CHANGED=1
  (cd "$dir" && "$@")
}

# Writes CONTENT to FILE with MODE (owned by root) unless it is already so; returns 1 when unchanged.
write_file() {
  local file=$1 mode=$2 content=$3 tmp
  if [ -f "$file" ] && [ "$(<"$file")" = "$content" ] && [ "$(stat -c %a "$file")" = "${mode#0}" ]; then
    say "$(show "$file"): unchanged"
    return 1
  fi
  if ((DRY_RUN)); then say "would write $(show "$file") (mode $mode)"; return 0; fi
  mkdir -p "$(dirname "$file")"
  tmp=$(mktemp "$file.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  if [ "$(id -u)" -eq 0 ]; then chown root:root "$tmp"; fi
  mv -f "$tmp" "$file"
  say "wrote $(show "$file") (mode $mode)"
  CHANGED=1
}

remove_path() {
  if [ -e "$1" ] || [ -L "$1" ]; then run rm -rf "$1"; return 0; fi
  return 1
}

cleanup() {
  if [ -n "$NEW_DIR" ] && [ -d "$NEW_DIR" ]; then rm -rf "$NEW_DIR"; fi
  remove_build_swap
}
trap cleanup EXIT

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      --force) FORCE=1 ;;
      --no-verify) VERIFY=0 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) PURGE=1 ;;
      --root)
        [ $# -ge 2 ] || die "--root needs a directory"
        ROOT=$2; shift ;;
      --root=*) ROOT=${1#--root=} ;;
      --build-into)
        [ $# -ge 2 ] || die "--build-into needs a directory"
        BUILD_INTO=$2; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; printf '\ninstall.sh: error: unknown option %s\n' "$1" >&2; exit 2 ;;
    esac
    shift
  done
  if ((PURGE)) && ! ((UNINSTALL)); then die "--purge goes with --uninstall"; fi
  if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
  fi
  if [ -z "$ROOT" ] && [ -z "$BUILD_INTO" ] && ! ((DRY_RUN)) && [ "$(id -u)" -ne 0 ]; then
    die "run it as root: sudo ./install.sh"
  fi
  ENV_FILE=$ROOT/etc/telepi/telepi.env
  UNIT_DIR=$ROOT/etc/systemd/system
  APP_DIR=$ROOT/opt/telepi
  LINK=$ROOT/usr/local/bin/telepi
  STATE_DIR=$ROOT/var/lib/telepi
  # useradd and friends write under --prefix instead of / (shadow 4.9 and later).
  PREFIX_OPT=()
  if [ -n "$ROOT" ]; then PREFIX_OPT=(--prefix "$ROOT"); fi
}

# ---- checks ---------------------------------------------------------------------------------------

# Prints the value of KEY in an os-release style file (quotes removed).
read_kv() {
  local file=$1 key=$2 line value=''
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in "$key="*) value=${line#*=} ;; esac
  done <"$file"
  value=${value#[\"\']}
  value=${value%[\"\']}
  printf '%s' "$value"
}

# True when version $1 (v20.19.2 or 20.19.2) is at least $2.
version_ge() {
  local a b i
  IFS=. read -r -a a <<<"${1#v}"
  IFS=. read -r -a b <<<"${2#v}"
  for i in 0 1 2; do
    local x=${a[i]:-0} y=${b[i]:-0}
    x=${x%%[!0-9]*}
    y=${y%%[!0-9]*}
    if ((${x:-0} > ${y:-0})); then return 0; fi
    if ((${x:-0} < ${y:-0})); then return 1; fi
  done
  return 0
}

check_system() {
  local os_release=$ROOT/etc/os-release model_file=$ROOT/proc/device-tree/model model='' problems=()
  OS_ID=$(read_kv "$os_release" ID)
  OS_VERSION=$(read_kv "$os_release" VERSION_ID)
  OS_CODENAME=$(read_kv "$os_release" VERSION_CODENAME)
  local pretty
  pretty=$(read_kv "$os_release" PRETTY_NAME)
  ARCH=$(dpkg --print-architecture 2>/dev/null || echo unknown)
  if [ -f "$model_file" ]; then model=$(tr -d '\0' <"$model_file"); fi
  section "System: ${pretty:-unknown OS}, $ARCH, ${model:-unknown machine}"
  if [ "$(uname -m)" = armv6l ]; then
    die "this is an ARMv6 Raspberry Pi (Pi 1, Zero, Zero W): Node.js 20 does not run on it. Use a Pi Zero 2, 3, 4 or 5."
  fi
  case "$OS_ID:$OS_CODENAME" in
    debian:bookworm | debian:trixie | raspbian:bookworm | raspbian:trixie) ;;
    *) problems+=("the OS is ${pretty:-unknown}, not Raspberry Pi OS Bookworm or Trixie") ;;
  esac
  case $ARCH in arm64 | armhf) ;; *) problems+=("the architecture is $ARCH, not arm64 or armhf") ;; esac
  case $model in *"Raspberry Pi"*) ;; *) problems+=("this is not a Raspberry Pi ($(show "$model_file") does not say so)") ;; esac
  if [ ${#problems[@]} -gt 0 ]; then
    if ((FORCE)); then
      local p
      for p in "${problems[@]}"; do warn "$p; continuing because of --force"; done
    else
      printf 'install.sh: error: telepi installs on Raspberry Pi OS Bookworm or Trixie (Debian 12/13, arm64 or armhf) on a Raspberry Pi:\n' >&2
      printf '  - %s\n' "${problems[@]}" >&2
      printf 'Run it with --force to try anyway.\n' >&2
      exit 1
    fi
  fi
}

# Fails early when another apt or dpkg holds the package manager's lock.
check_apt_lock() {
  command -v lslocks >/dev/null 2>&1 || return 0
  local holder
  holder=$(lslocks --noheadings --raw --output COMMAND,PID,PATH 2>/dev/null |
    awk '$3 ~ /\/var\/lib\/dpkg\/lock(-frontend)?$|\/var\/lib\/apt\/lists\/lock$|\/var\/cache\/apt\/archives\/lock$/ { print $1 " (pid " $2 ")"; exit }') || true
  if [ -n "$holder" ]; then
    die "apt is busy: $holder holds its lock. Wait until it finishes (after a first boot, updates may run for a few minutes), then run this again."
  fi
}

check_network() {
  local err
  if ! err=$(curl --silent --show-error --output /dev/null --max-time 15 "$API_ROOT" 2>&1); then
    die "no network: cannot reach $API_ROOT (${err:-curl failed}). Check Wi-Fi or Ethernet and DNS, then run this again."
  fi
}

# ---- configuration --------------------------------------------------------------------------------

valid_token() { [[ $1 =~ ^[0-9]{5,}:[A-Za-z0-9_-]{30,}$ ]]; }
valid_ids() { [[ $1 =~ ^[0-9]+(,[0-9]+)*$ ]]; }

load_config() {
  local line key value
  if [ -f "$ENV_FILE" ]; then
    [ -r "$ENV_FILE" ] || die "cannot read /etc/telepi/telepi.env: run this with sudo"
    while IFS= read -r line || [ -n "$line" ]; do
      [[ $line =~ ^([A-Z0-9_]+)=(.*)$ ]] || continue
      key=${BASH_REMATCH[1]}
      value=${BASH_REMATCH[2]}
      value=${value#[\"\']}
      value=${value%[\"\']}
      CONF[$key]=$value
    done <"$ENV_FILE"
  fi
  for key in "${!GIVEN[@]}"; do
    value=${GIVEN[$key]}
    case $key in TELEPI_OWNERS | TELEPI_USERS) value=${value//[[:space:]]/} ;; esac
    if [ -z "$value" ]; then unset 'CONF[$key]'; continue; fi
    case $key in
      TELEGRAM_BOT_TOKEN) valid_token "$value" || die "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then letters, digits, - or _)" ;;
      TELEPI_OWNERS | TELEPI_USERS) valid_ids "$value" || die "$key must be Telegram user ids separated by commas, e.g. 123456789,987654321" ;;
      TELEGRAM_API_ROOT) [[ $value =~ ^https?://[A-Za-z0-9.:/_-]+$ ]] || die "TELEGRAM_API_ROOT must be an http(s) URL" ;;
      MQTT_URL) [[ $value =~ ^[a-z]+://[A-Za-z0-9._~%:@/?=\&+,-]+$ ]] ||
        die "MQTT_URL must be a URL such as mqtt://192.168.1.10:1883 or mqtts://broker.lan:8883" ;;
      # Any printable character but a single quote: the env file holds it single-quoted, literally.
      MQTT_PASSWORD) [[ $value =~ ^[^\'[:cntrl:]]+$ ]] ||
        die "MQTT_PASSWORD may not hold a single quote, a line break or a control character: choose another password" ;;
      *) [[ $value =~ ^[A-Za-z0-9._:/,@+\ -]+$ ]] ||
        die "$key has characters the env file cannot hold: $value (letters, digits, spaces and . _ : / , @ + - only)" ;;
    esac
    CONF[$key]=$value
  done
  API_ROOT=${CONF[TELEGRAM_API_ROOT]:-https://api.telegram.org}
  API_ROOT=${API_ROOT%/}
}

# Prints the env file: the existing one with the managed keys updated, or a commented template.
render_env() {
  local line key
  declare -A seen=()
  if [ -f "$ENV_FILE" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      if [[ $line =~ ^([A-Z0-9_]+)= ]]; then
        key=${BASH_REMATCH[1]}
        if [ -n "${seen[$key]+x}" ]; then continue; fi
        seen[$key]=1
        if [ -n "${CONF[$key]+x}" ]; then env_line "$key"; fi
      else
        printf '%s\n' "$line"
      fi
    done <"$ENV_FILE"
  else
    printf '%s\n' "# telepi configuration, read by systemd for telepi.service. Mode 0600: it holds the bot token." \
      "# After an edit: sudo systemctl restart telepi (rerun install.sh after setting PIR_GPIO or LED_GPIO)."
  fi
  for key in "${CONFIG_KEYS[@]}"; do
    if [ -z "${seen[$key]+x}" ] && [ -n "${CONF[$key]+x}" ]; then env_line "$key"; fi
  done
  if [ ! -f "$ENV_FILE" ]; then
    printf '%s\n' "# Optional (defaults shown):" "# TELEPI_USERS=" "# TELEPI_HARDWARE=real" "# BME280_BUS=1" \
      "# BME280_ADDRESS=0x76" "# STREAM_PORT=8080" "# STREAM_EXTERNAL_PORT=54321" "# STREAM_TTL=60m" \
      "# PIR_GPIO=17" "# LED_GPIO=27" "# Every setting and its default: the Configuration table in /opt/telepi/README.md"
  fi
}

# One KEY=value line of the env file; a value with a space or a character systemd would unescape is
# single-quoted, which systemd and `telepi doctor` read literally.
env_line() {
  local key=$1 value=${CONF[$1]}
  if [[ $value =~ ^[A-Za-z0-9._:/,@+=%~?\&-]*$ ]]; then printf '%s=%s\n' "$key" "$value"
  else printf "%s='%s'\n" "$key" "$value"; fi
}

# ---- the Bot API ----------------------------------------------------------------------------------

# Calls METHOD and prints the JSON reply. The URL holds the token, so it goes to curl on stdin (-K -),
# never on a command line; extra curl config lines (data-urlencode = "...") may follow as arguments.
bot_api() {
  local method=$1 query=$2 max_time=$3 err out rc=0
  shift 3
  err=$(mktemp)
  out=$({
    printf 'url = "%s/bot%s/%s%s"\n' "$API_ROOT" "${CONF[TELEGRAM_BOT_TOKEN]}" "$method" "${query:+?$query}"
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
  } | curl --silent --show-error --globoff --max-time "$max_time" -K - 2>"$err") || rc=$?
  if ((rc != 0)); then
    local msg
    msg=$(<"$err")
    rm -f "$err"
    msg=${msg//"${CONF[TELEGRAM_BOT_TOKEN]}"/<token>}
    die "cannot reach the Bot API at $API_ROOT ($method): ${msg:-curl exit $rc}"
  fi
  rm -f "$err"
  printf '%s' "$out"
}

json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }

verify_token() {
  local reply
  reply=$(bot_api getMe '' 20)
  if [[ $reply != *'"ok":true'* ]]; then
    die "Telegram rejected the token ($(printf '%s' "$reply" | json_field description)): copy it again from @BotFather."
  fi
  BOT_USERNAME=$(printf '%s' "$reply" | json_field username)
  say "the token belongs to @$BOT_USERNAME"
}

# Turns a getUpdates reply into lines: update_id, sender id, sender name, text (tab-separated).
read -r -d '' PARSE_UPDATES <<'EOF' || true
import json, sys
def clean(s, n):
    return ''.join(c for c in str(s) if c.isprintable() and c != '\t')[:n]
reply = json.load(sys.stdin)
if not reply.get('ok'):
    sys.exit('Telegram said: ' + clean(reply.get('description', 'not ok'), 200))
for update in reply.get('result', []):
    message = update.get('message') or {}
    sender = message.get('from') or {}
    name = (str(sender.get('first_name', '')) + ' ' + str(sender.get('last_name', ''))).strip()
    if sender.get('username'):
        name += ' (@' + str(sender['username']) + ')'
    text = message.get('text') or '(not text)'
    print('%d\t%s\t%s\t%s' % (update['update_id'], sender.get('id', ''), clean(name, 80), clean(text, 60)))
EOF

parse_updates() { python3 -c "$PARSE_UPDATES"; }

# Asks the owner to message the bot, reads the sender's id with getUpdates and confirms it.
pair_owner() {
  section "Pairing: who owns this telepi?"
  if ! command -v python3 >/dev/null 2>&1; then
    say "python3 reads Telegram's replies while pairing: installing it first"
    apt_install python3
  fi
  if systemctl is-active --quiet telepi 2>/dev/null; then
    say "stopping telepi so that it does not take the message first"
    run systemctl stop telepi
  fi
  local lines offset=0 deadline=$((SECONDS + 300)) line id sender name text answer updates=()
  # Forget older updates: only a message sent from now on counts.
  lines=$(bot_api getUpdates 'offset=-1&timeout=0' 20 | parse_updates) || die "getUpdates failed (see above)"
  if [ -n "$lines" ]; then offset=$(($(tail -n1 <<<"$lines" | cut -f1) + 1)); fi
  say "Now send any message to @${BOT_USERNAME:-your bot} from your own Telegram account (waiting up to 5 minutes)."
  while ((SECONDS < deadline)); do
    lines=$(bot_api getUpdates "offset=$offset&timeout=25" 40 | parse_updates) || die "getUpdates failed (see above)"
    # A long poll returns empty after 25 s; a server that ignores timeout= must not be hammered.
    if [ -z "$lines" ]; then sleep 1; continue; fi
    mapfile -t updates <<<"$lines"
    for line in "${updates[@]}"; do
      IFS=$'\t' read -r id sender name text <<<"$line"
      offset=$((id + 1))
      [ -n "$sender" ] || continue
      read -r -p "    Message from $name, user id $sender: \"$text\". Make this user the owner? [Y/n] " answer
      case $answer in
        '' | [yY] | [yY][eE][sS])
          CONF[TELEPI_OWNERS]=$sender
          # Confirm the update so that the service does not answer the pairing message.
          bot_api getUpdates "offset=$offset&timeout=0" 20 >/dev/null
          bot_api sendMessage '' 20 "data-urlencode = \"chat_id=$sender\"" \
            'data-urlencode = "text=You are now the owner of this telepi. The installation goes on; send /now when it is done."' >/dev/null
          say "owner: user id $sender"
          return 0
          ;;
      esac
      say "waiting for another message"
    done
  done
  die "no message reached the bot within 5 minutes. Run this again, or pass TELEPI_OWNERS=<your user id>."
}

no_tty_help() {
  die "$1, and stdin is not a terminal, so I cannot ask. Pass the configuration in the environment:
    TELEGRAM_BOT_TOKEN   the token from @BotFather (required)
    TELEPI_OWNERS        your Telegram user id; several ids separated by commas (required)
  optional (the README's configuration table says what each means):
$(config_keys_list "${CONFIG_KEYS[@]:2}")
  for example: export TELEGRAM_BOT_TOKEN TELEPI_OWNERS; sudo --preserve-env=TELEGRAM_BOT_TOKEN,TELEPI_OWNERS ./install.sh"
}

configure() {
  section "Bot"
  local value tries=0
  if [ -z "${CONF[TELEGRAM_BOT_TOKEN]:-}" ]; then
    if ((DRY_RUN)); then
      say "would ask for the bot token"
    elif [ -t 0 ]; then
      while :; do
        read -r -s -p "    Bot token from @BotFather (hidden as you type or paste): " value
        printf '\n'
        value=${value//[[:space:]]/}
        if valid_token "$value"; then CONF[TELEGRAM_BOT_TOKEN]=$value; break; fi
        tries=$((tries + 1))
        ((tries < 3)) || die "that does not look like a bot token (digits, a colon, then letters, digits, - or _)"
        say "That does not look like a bot token (123456789:AA...). Try again."
      done
    else
      no_tty_help "TELEGRAM_BOT_TOKEN is not set"
    fi
  fi
  if [ -n "${CONF[TELEGRAM_BOT_TOKEN]:-}" ]; then
    if ((VERIFY)); then verify_token; else say "not checking the token (--no-verify)"; fi
  fi
  if [ -z "${CONF[TELEPI_OWNERS]:-}" ]; then
    if ((DRY_RUN)); then
      say "would pair the owner: ask you to message the bot and read your user id with getUpdates"
    elif [ -t 0 ]; then
      read -r -p "    Your Telegram user id (press Enter to pair instead, by sending the bot a message): " value
      value=${value//[[:space:]]/}
      if [ -z "$value" ]; then
        pair_owner
      else
        valid_ids "$value" || die "a user id is a number, e.g. 123456789"
        CONF[TELEPI_OWNERS]=$value
      fi
    else
      no_tty_help "TELEPI_OWNERS is not set"
    fi
  else
    say "owners: ${CONF[TELEPI_OWNERS]}"
  fi
}

# ---- packages and Node.js -------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  if ! ((APT_UPDATED)); then
    run apt-get -q -o DPkg::Lock::Timeout=60 update || die "apt-get update failed (see above): check the network and the apt sources"
    APT_UPDATED=1
  fi
  run apt-get -q -o DPkg::Lock::Timeout=60 install -y --no-install-recommends "$@" ||
    die "apt-get install $* failed (see above)"
}

# Prints those of the given packages that are installed.
installed_packages() {
  # shellcheck disable=SC2016 # ${Package} is dpkg-query's format, not the shell's
  dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 == "ii" { print $1 }' || true
}

# Decides where Node.js comes from and which packages are missing, without changing anything.
plan_packages() {
  local node_path node_version=''
  NODE_PLAN='' NODE_WHY=''
  node_path=$(command -v node 2>/dev/null || true)
  if [ -n "$node_path" ]; then node_version=$(node --version 2>/dev/null || true); fi
  NODE_VERSION=$node_version
  case $node_path in
    /home/* | /root/*)
      say "ignoring Node.js at $node_path: the service (ProtectHome=yes) cannot use it"
      node_version='' ;;
  esac
  if [ -n "$node_version" ] && version_ge "$node_version" "$NODE_MIN"; then
    NODE_PLAN=present
    NODE_WHY="Node.js $node_version is already installed at $node_path (telepi needs $NODE_MIN or newer): using it"
  elif [[ $OS_ID =~ ^(debian|raspbian)$ ]] && [ "${OS_VERSION%%.*}" -ge 13 ] 2>/dev/null; then
    NODE_PLAN=debian
    NODE_WHY="Debian ${OS_CODENAME:-$OS_VERSION} ships Node.js 20 in apt: installing nodejs and npm from Debian"
  else
    NODE_PLAN=nodesource
    NODE_WHY="${OS_CODENAME:-this system}'s apt has only Node.js 18${node_version:+ (found $node_version)}, too old for undici 7 (needs $NODE_MIN): using NodeSource's apt repository for Node.js $NODESOURCE_MAJOR"
  fi
  APT_MISSING=()
  # fonts-dejavu-core: the charts' text (resvg finds no font otherwise).
  local pkg wanted=(build-essential python3 miniupnpc fonts-dejavu-core)
  case $NODE_PLAN in
    debian) wanted=(nodejs npm "${wanted[@]}") ;;
    nodesource) APT_MISSING+=(nodejs) ;;
    present)
      if ! command -v npm >/dev/null 2>&1; then
        if [[ $OS_ID =~ ^(debian|raspbian)$ ]] && [ "${OS_VERSION%%.*}" -ge 13 ] 2>/dev/null; then
          wanted=(npm "${wanted[@]}")
        else
          die "npm is missing next to $node_path: install the npm that belongs to that Node.js, then run this again"
        fi
      fi ;;
  esac
  local present
  present=" $(installed_packages "${wanted[@]}" | tr '\n' ' ') "
  for pkg in "${wanted[@]}"; do [[ $present == *" $pkg "* ]] || APT_MISSING+=("$pkg"); done
}

add_nodesource_repo() {
  local key=$ROOT/etc/apt/keyrings/nodesource.asc
  if [ ! -s "$key" ]; then
    run mkdir -p "$(dirname "$key")"
    run curl -fsSL --max-time 60 -o "$key" "$NODESOURCE_KEY_URL" || die "could not download NodeSource's signing key"
  fi
  if write_file "$ROOT/etc/apt/sources.list.d/nodesource.sources" 0644 "$(printf '%s\n' \
    "# Node.js $NODESOURCE_MAJOR from NodeSource, added by telepi's install.sh: Bookworm's own nodejs is 18." \
    'Types: deb' "URIs: https://deb.nodesource.com/node_$NODESOURCE_MAJOR.x" 'Suites: nodistro' \
    'Components: main' 'Signed-By: /etc/apt/keyrings/nodesource.asc')"; then
    APT_UPDATED=0
  fi
  # Prefer NodeSource's nodejs to Debian's, whatever the version numbers say.
  write_file "$ROOT/etc/apt/preferences.d/nodesource" 0644 "$(printf '%s\n' \
    'Package: nodejs' 'Pin: origin deb.nodesource.com' 'Pin-Priority: 600')" || true
}

install_packages() {
  section "Node.js and packages"
  say "$NODE_WHY"
  if [ "$NODE_PLAN" = nodesource ]; then add_nodesource_repo; fi
  if [ ${#APT_MISSING[@]} -eq 0 ]; then
    say "build-essential, python3, miniupnpc, fonts-dejavu-core and Node.js are installed: unchanged"
  else
    apt_install "${APT_MISSING[@]}"
  fi
  if ((DRY_RUN)); then return 0; fi
  if [ ${#APT_MISSING[@]} -gt 0 ]; then NODE_VERSION=$(node --version 2>/dev/null || true); fi
  [ -n "$NODE_VERSION" ] || die "node is not on the PATH after the installation"
  version_ge "$NODE_VERSION" "$NODE_MIN" ||
    die "Node.js $NODE_VERSION is too old: telepi needs $NODE_MIN or newer (undici 7). Install a newer Node.js, then run this again."
  command -v npm >/dev/null 2>&1 || die "npm is not on the PATH after the installation"
  say "Node.js $NODE_VERSION"
}

# ---- I2C, camera, user ----------------------------------------------------------------------------

boot_config() {
  if [ -f "$ROOT/boot/firmware/config.txt" ]; then printf '%s' "$ROOT/boot/firmware/config.txt"
  else printf '%s' "$ROOT/boot/config.txt"; fi
}

enable_interfaces() {
  section "I2C and camera"
  if ! command -v raspi-config >/dev/null 2>&1; then
    say "raspi-config not found: skipping (enable I2C and the camera yourself)"
    return 0
  fi
  local cfg
  cfg=$(boot_config)
  if grep -Eqs '^dtparam=([^,]*,)*i2c(_arm)?(=(on|true|yes|1))?(,.*)?$' "$cfg"; then
    say "I2C is enabled: unchanged"
  else
    run raspi-config nonint do_i2c 0 || die "raspi-config could not enable I2C"
    REBOOT_FOR+=(I2C)
  fi
  # A camera named by an explicit overlay counts as configured too.
  if grep -Eqs '^(camera_auto_detect=1|dtoverlay=(imx|ov)[0-9])' "$cfg"; then
    say "the camera is enabled: unchanged"
  elif run raspi-config nonint do_camera 0; then
    REBOOT_FOR+=(camera)
  else
    warn "raspi-config could not enable the camera: add camera_auto_detect=1 to $(show "$cfg") and reboot"
  fi
}

load_modules() {
  section "Kernel modules ${KERNEL_MODULES[*]}"
  write_file "$ROOT/etc/modules-load.d/telepi.conf" 0644 "$(printf '%s\n' \
    "# Written by telepi's install.sh: the device classes telepi.service's DeviceAllow= names, loaded before it starts." \
    "${KERNEL_MODULES[@]}")" || true
  local module
  for module in "${KERNEL_MODULES[@]}"; do
    if [ -d "$ROOT/sys/module/${module//-/_}" ]; then continue; fi
    # Loading is not an installation change: a container (or a kernel without the module) says no every time.
    if ((DRY_RUN)); then say "would load $module now"
    elif command -v modprobe >/dev/null 2>&1 && modprobe "$module" 2>/dev/null; then say "loaded $module"
    else say "$module is not loaded (not available here): it loads at boot where the kernel has it"; fi
  done
}

user_exists() { grep -qs "^$1:" "$ROOT/etc/passwd"; }
group_exists() { grep -qs "^$1:" "$ROOT/etc/group"; }
in_group() { grep -Eqs "^$2:[^:]*:[^:]*:(.*,)?$1(,|$)" "$ROOT/etc/group"; }

ensure_user() {
  section "System user telepi (groups ${GROUPS_NEEDED[*]})"
  local group missing=()
  for group in "${GROUPS_NEEDED[@]}"; do
    group_exists "$group" || run groupadd "${PREFIX_OPT[@]}" --system "$group"
  done
  if ! user_exists telepi; then
    run useradd "${PREFIX_OPT[@]}" --system --user-group --home-dir /var/lib/telepi --no-create-home \
      --shell /usr/sbin/nologin --comment "telepi Telegram bot" --groups "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" telepi
    return 0
  fi
  for group in "${GROUPS_NEEDED[@]}"; do in_group telepi "$group" || missing+=("$group"); done
  if [ ${#missing[@]} -gt 0 ]; then
    run usermod "${PREFIX_OPT[@]}" --append --groups "$(IFS=,; echo "${missing[*]}")" telepi
  else
    say "telepi exists with its groups: unchanged"
  fi
}

# ---- the app --------------------------------------------------------------------------------------

source_tar() {
  tar -C "$SRC_DIR" "${SOURCE_EXCLUDES[@]}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf - .
}

APP_CHANGED=0
install_app() {
  section "App in /opt/telepi"
  local want have='' old=$ROOT/opt/telepi.old
  # Native addons (i2c-bus, epoll) are rebuilt when Node's major version, hence its ABI, changes.
  want="$(source_tar | sha256sum | cut -c1-16) node ${NODE_VERSION%%.*}"
  if [ -f "$APP_DIR/$STAMP_NAME" ]; then have=$(<"$APP_DIR/$STAMP_NAME"); fi
  if [ "$have" = "$want" ]; then
    say "up to date (source ${want%% *}): unchanged"
    return 0
  fi
  say "${have:+upgrading }from $SRC_DIR (source ${want%% *})"
  APP_CHANGED=1
  if ((DRY_RUN)); then
    say "would copy the source (without .git, node_modules, dist, test, bench) to /opt/telepi.new"
    ensure_build_memory
    build_app "$ROOT/opt/telepi.new" "$SRC_DIR"
    say "would replace /opt/telepi with /opt/telepi.new"
    return 0
  fi
  # Built beside the running version, which stays untouched if the build fails.
  NEW_DIR=$ROOT/opt/telepi.new
  rm -rf "$NEW_DIR"
  mkdir -p "$NEW_DIR"
  say "+ copy $SRC_DIR to $(show "$NEW_DIR")"
  source_tar | tar -C "$NEW_DIR" --no-same-owner -xf -
  chmod -R u+rwX,go+rX,go-w "$NEW_DIR"
  ensure_build_memory
  if ! build_app "$NEW_DIR" "$NEW_DIR"; then
    die "the build failed (see above); the installed version is unchanged"
  fi
  remove_build_swap
  chmod 0755 "$NEW_DIR/bin/telepi.js"
  printf '%s\n' "$want" >"$NEW_DIR/$STAMP_NAME"
  rm -rf "$old"
  if [ -d "$APP_DIR" ]; then run mv "$APP_DIR" "$old"; fi
  run mv "$NEW_DIR" "$APP_DIR"
  NEW_DIR=''
  rm -rf "$old"
}

# Packages of the lock file (in DIR) with an install script that production needs: the native addons.
native_addons() {
  awk '/^    "(.*\/)?node_modules\/[^"]+": \{$/ { name = $1; gsub(/^"|":$/, "", name); script = 0; dev = 0; next }
    /^    }/ { if (name != "" && script && !dev) { sub(/.*node_modules\//, "", name); print name } name = ""; next }
    /^      "hasInstallScript": true/ { script = 1 }
    /^      "dev": true/ { dev = 1 }' "$1/package-lock.json"
}

# The version of package NAME that the lock file in DIR pins.
lock_version() {
  awk -v key="\"node_modules/$2\": {" 'index($0, key) == 5 { found = 1; next }
    found && /"version":/ { gsub(/[",]/, "", $2); print $2; exit }' "$1/package-lock.json"
}

# Builds the app in DIR (its lock file read from LOCK_DIR): production dependencies only, each native addon
# built on its own, and esbuild, the one build tool, pinned to the lock's version in a folder of its own
# that is removed afterwards. The dev toolchain (TypeScript, eslint, the bench's peers) never comes to the Pi.
build_app() {
  local dir=$1 lock_dir=$2 addon esbuild
  esbuild=$(lock_version "$lock_dir" esbuild)
  [ -n "$esbuild" ] || { warn "package-lock.json pins no esbuild"; return 1; }
  # --ignore-scripts: the package's own `prepare` would build with the dev toolchain; addons come next.
  run_in "$dir" npm ci --omit=dev --ignore-scripts --no-audit --no-fund || return 1
  for addon in $(native_addons "$lock_dir"); do
    run_in "$dir" npm rebuild --foreground-scripts "$addon" || return 1
  done
  run_in "$dir" npm install --prefix .build-tools --no-save --no-package-lock --no-audit --no-fund "esbuild@$esbuild" ||
    return 1
  run_in "$dir" ln -s ../.build-tools/node_modules/esbuild node_modules/esbuild
  run_in "$dir" npm run build || return 1
  run_in "$dir" rm -rf node_modules/esbuild .build-tools
}

# MB of memory and swap free now.
free_memory_mb() { awk '/^(MemAvailable|SwapFree):/ { kb += $2 } END { print int(kb / 1024) }' "$ROOT/proc/meminfo"; }

BUILD_SWAP=''
# A Pi Zero 2 has 512 MB, of which the GPU takes some: with too little memory and swap free, the build
# would be killed. Raspberry Pi OS Bookworm's dphys-swapfile is enlarged (that stays); elsewhere (Trixie's
# rpi-swap sizes its swap only at boot) a swap file serves the build and is removed after it.
ensure_build_memory() {
  [ -r "$ROOT/proc/meminfo" ] || return 0
  local free more conf=$ROOT/etc/dphys-swapfile size
  free=$(free_memory_mb)
  if ((free >= BUILD_MEMORY_MB)); then
    say "memory: $free MB free with swap; the build needs about $BUILD_MEMORY_MB MB"
    return 0
  fi
  more=$(((BUILD_MEMORY_MB - free + 127) / 128 * 128))
  say "memory: only $free MB free with swap; the build needs about $BUILD_MEMORY_MB MB: adding $more MB of swap"
  if [ -f "$conf" ] && command -v dphys-swapfile >/dev/null 2>&1; then
    size=$(read_kv "$conf" CONF_SWAPSIZE)
    size=$((${size:-100} + more))
    write_file "$conf" 0644 "$(sed -e '/^CONF_SWAPSIZE=/d' "$conf"; printf 'CONF_SWAPSIZE=%s\n' "$size")" || true
    if run dphys-swapfile swapoff && run dphys-swapfile setup && run dphys-swapfile swapon; then return 0; fi
  else
    BUILD_SWAP=$ROOT/var/tmp/telepi-build.swap
    if run fallocate -l "${more}M" "$BUILD_SWAP" && run chmod 0600 "$BUILD_SWAP" && run mkswap "$BUILD_SWAP" &&
      run swapon "$BUILD_SWAP"; then
      return 0
    fi
    remove_build_swap
  fi
  warn "could not add swap: the build may run out of memory. Stop other programs, or add swap yourself, then run this again"
}

remove_build_swap() {
  [ -n "$BUILD_SWAP" ] || return 0
  if ! ((DRY_RUN)); then
    swapoff "$BUILD_SWAP" 2>/dev/null || true
    rm -f "$BUILD_SWAP"
  fi
  BUILD_SWAP=''
}

# --build-into: the install's build step alone, in a folder of its own.
build_only() {
  [ ! -e "$1" ] || die "--build-into $1: it exists already; give a new folder"
  mkdir -p "$1"
  source_tar | tar -C "$1" --no-same-owner -xf -
  build_app "$1" "$1" || die "the build failed (see above)"
  say "built in $1"
}

link_command() {
  section "The telepi command"
  if [ "$(readlink "$LINK" 2>/dev/null || true)" = /opt/telepi/bin/telepi.js ]; then
    say "/usr/local/bin/telepi: unchanged"
    return 0
  fi
  run mkdir -p "$(dirname "$LINK")"
  run ln -sfn /opt/telepi/bin/telepi.js "$LINK"
}

ENV_CHANGED=0
write_config() {
  section "Configuration /etc/telepi/telepi.env"
  if ((DRY_RUN)) && [ -z "${CONF[TELEGRAM_BOT_TOKEN]:-}" ]; then
    say "would write /etc/telepi/telepi.env (mode 0600) with the token and the owner"
    return 0
  fi
  if [ ! -d "$(dirname "$ENV_FILE")" ]; then run mkdir -p -m 0755 "$(dirname "$ENV_FILE")"; fi
  if write_file "$ENV_FILE" 0600 "$(render_env)"; then ENV_CHANGED=1; fi
}

UNIT_CHANGED=0
install_unit() {
  section "systemd unit"
  if write_file "$UNIT_DIR/telepi.service" 0644 "$(<"$SRC_DIR/systemd/telepi.service")"; then UNIT_CHANGED=1; fi
  local dropin=$UNIT_DIR/telepi.service.d/gpio.conf
  if [ -n "${CONF[PIR_GPIO]:-}" ] || [ -n "${CONF[LED_GPIO]:-}" ]; then
    if write_file "$dropin" 0644 "$(printf '%s\n' \
      '# Written by install.sh because PIR_GPIO or LED_GPIO is set: sysfs GPIO (onoff) writes /sys/class/gpio,' \
      '# whose gpioN entries are links into /sys/devices, so /sys as a whole must stay writable.' \
      '[Service]' 'ProtectKernelTunables=no')"; then UNIT_CHANGED=1; fi
  else
    if remove_path "$dropin"; then UNIT_CHANGED=1; fi
    if [ -d "$(dirname "$dropin")" ] && [ -z "$(ls -A "$(dirname "$dropin")")" ]; then run rmdir "$(dirname "$dropin")"; fi
  fi
  if ((UNIT_CHANGED)); then run systemctl daemon-reload; fi
}

start_service() {
  section "Service"
  if systemctl is-enabled --quiet telepi 2>/dev/null; then
    say "enabled at boot: unchanged"
  else
    run systemctl enable telepi
  fi
  if ((APP_CHANGED || ENV_CHANGED || UNIT_CHANGED)) || ! systemctl is-active --quiet telepi 2>/dev/null; then
    # Type=notify: this waits until the app reports READY=1, or fails.
    if ! run systemctl restart telepi; then
      journalctl -u telepi -n 20 --no-pager 2>/dev/null || true
      die "telepi did not start (the log is above). Fix /etc/telepi/telepi.env if it names a variable, then: sudo systemctl restart telepi"
    fi
  else
    say "running: unchanged"
  fi
  if ! ((DRY_RUN)); then systemctl --no-pager --lines=0 status telepi 2>/dev/null || true; fi
}

summary() {
  printf '\n'
  if ((DRY_RUN)); then
    say "Dry run: nothing was changed."
  elif ((CHANGED)); then
    say "telepi is installed and running. Send /now to @${BOT_USERNAME:-your bot} in Telegram."
  else
    say "Nothing changed: telepi is installed, up to date and running."
  fi
  say "Follow the logs:     journalctl -u telepi -f"
  say "Check the hardware:  sudo telepi doctor --as-service   (as the service runs, in its sandbox)"
  if [ ${#REBOOT_FOR[@]} -gt 0 ] && ((DRY_RUN)); then
    say "Would need a reboot: $(printf '%s and ' "${REBOOT_FOR[@]}" | sed 's/ and $//') would be enabled."
  elif [ ${#REBOOT_FOR[@]} -gt 0 ]; then
    say "Reboot needed: $(printf '%s and ' "${REBOOT_FOR[@]}" | sed 's/ and $//') just enabled. Run: sudo reboot"
  fi
}

# ---- uninstall ------------------------------------------------------------------------------------

uninstall() {
  section "Uninstalling telepi"
  if systemctl is-active --quiet telepi 2>/dev/null; then run systemctl stop telepi; fi
  if systemctl is-enabled --quiet telepi 2>/dev/null; then run systemctl disable telepi; fi
  local reload=0
  remove_path "$UNIT_DIR/telepi.service" && reload=1
  remove_path "$UNIT_DIR/telepi.service.d" && reload=1
  if ((reload)); then run systemctl daemon-reload; fi
  remove_path "$APP_DIR" || true
  remove_path "$ROOT/opt/telepi.new" || true
  if [ "$(readlink "$LINK" 2>/dev/null || true)" = /opt/telepi/bin/telepi.js ]; then run rm -f "$LINK"; fi
  remove_path "$ROOT/etc/modules-load.d/telepi.conf" || true
  if user_exists telepi; then run userdel "${PREFIX_OPT[@]}" telepi; fi
  if ((PURGE)); then
    remove_path "$STATE_DIR" || true
    remove_path "$(dirname "$ENV_FILE")" || true
  else
    say "kept the state in /var/lib/telepi and the configuration in /etc/telepi/telepi.env (--purge removes them)"
  fi
  say "left in place: the packages (nodejs, build-essential, python3, miniupnpc, fonts-dejavu-core), the NodeSource repository if added, and I2C/camera settings"
  if ((DRY_RUN)); then say "Dry run: nothing was changed."
  elif ((CHANGED)); then say "telepi is uninstalled."
  else say "Nothing to remove: telepi is not installed."; fi
}

main() {
  parse_args "$@"
  if [ -n "$BUILD_INTO" ]; then build_only "$BUILD_INTO"; return 0; fi
  if ((UNINSTALL)); then uninstall; return 0; fi
  check_system
  load_config
  plan_packages
  if [ ${#APT_MISSING[@]} -gt 0 ]; then check_apt_lock; fi
  check_network
  configure
  install_packages
  enable_interfaces
  load_modules
  ensure_user
  install_app
  link_command
  write_config
  install_unit
  start_service
  summary
}

main "$@"
