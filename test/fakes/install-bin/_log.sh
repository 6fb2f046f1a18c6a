# Sourced by the installer's fakes: one line per call in $FAKE_LOG, and a loud line if a secret (the token,
# the MQTT password) leaked into the environment of a child process.
fake_log() {
  local name=${0##*/}
  { printf '%s' "$name"; printf ' %s' "$@"; printf '\n'; } >>"$FAKE_LOG"
  local secret
  for secret in TELEGRAM_BOT_TOKEN MQTT_PASSWORD; do
    if [ -n "${!secret-}" ]; then printf '%s: %s is in its environment\n' "$name" "$secret" >>"$FAKE_LOG"; fi
  done
}
