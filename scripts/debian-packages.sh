# SPDX-License-Identifier: MIT
# Sourced by scripts/setup.sh and scripts/sanitize.sh: install_missing_debian_packages PACKAGE... installs those not
# installed yet (apt-get, as root or with sudo) and says which; needs a say() function of the caller.
install_missing_debian_packages() {
  local missing=() package sudo=""
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
