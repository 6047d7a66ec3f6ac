#!/usr/bin/env bash
# Install Mesa's lavapipe (software Vulkan on the CPU) from Debian bookworm-backports.
# Mesa 25 from backports runs our compute shaders 3-8x faster than bookworm's 22.3.
#
# The backports mirror is taken from the machine's own apt sources (whatever host
# serves `bookworm` here serves `bookworm-backports` too), so no host name is written
# in this repository. Needs root and apt; does nothing if Mesa >= 25 is already there.
set -euo pipefail

have_mesa25() {
  local v
  v="$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)"
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25
}

if have_mesa25; then
  echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "lavapipe: needs root and apt-get to install mesa-vulkan-drivers from bookworm-backports" >&2
  exit 1
fi

# The URI and keyring of the entry that serves plain `bookworm`, from deb822 or one-line sources.
uri=""; keyring=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  u="$(awk '/^URIs:/{u=$2} /^Suites:/{ for (i=2;i<=NF;i++) if ($i=="bookworm") s=1 } /^$/{ if (s&&u) {print u; done=1; exit} s=0; u="" } END{ if (!done&&s&&u) print u }' "$f")"
  if [ -n "$u" ]; then
    uri="$u"
    keyring="$(awk '/^Signed-By:/{print $2; exit}' "$f")"
    break
  fi
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri="$(awk '$1=="deb" && $0 ~ / bookworm / { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit} }' /etc/apt/sources.list)"
fi
if [ -z "$uri" ]; then
  echo "lavapipe: no apt source for bookworm found in /etc/apt" >&2
  exit 1
fi

list=/etc/apt/sources.list.d/lanterna-bookworm-backports.sources
{
  echo "Types: deb"
  echo "URIs: $uri"
  echo "Suites: bookworm-backports"
  echo "Components: main"
  [ -n "$keyring" ] && echo "Signed-By: $keyring"
} > "$list"
echo "lavapipe: using bookworm-backports from the machine's own mirror ($list)"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
have_mesa25 || { echo "lavapipe: installed Mesa is older than 25" >&2; exit 1; }
echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) installed"
