# Sourced by the installer's fakes: one line per call in $FAKE_LOG, and a loud line if the token leaked
# into the environment of a child process.
fake_log() {
  local name=${0##*/}
  { printf '%s' "$name"; printf ' %s' "$@"; printf '\n'; } >>"$FAKE_LOG"
  if [ -n "${TELEGRAM_BOT_TOKEN-}" ]; then
    printf '%s: TELEGRAM_BOT_TOKEN is in its environment\n' "$name" >>"$FAKE_LOG"
  fi
}
