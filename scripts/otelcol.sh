#!/usr/bin/env bash
# Builds an OpenTelemetry Collector (OTLP receiver; debug and otlphttp
# exporters) for the agent's tests from Debian's Go source packages: no
# binary Collector exists in Debian.  The sources come from Debian unstable
# ("sid") through a private APT configuration (the system's apt sources are
# never touched), are unpacked with dpkg-deb and built offline with sid's Go
# toolchain.  Cached in /var/cache/pgscope/otelcol; a second run prints the
# binary's path at once.
#   scripts/otelcol.sh          builds if needed, prints the binary's path
set -euo pipefail
mirror=${PGSCOPE_MIRROR:-http://deb.debian.org/debian}
cache=/var/cache/pgscope/otelcol
bin=$cache/otelcol-pgscope
stamp=3					# raised when main.go changes: the cached binary is rebuilt
[ -x "$bin" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && { echo "$bin"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "otelcol.sh: building the Collector needs root (it caches in $cache)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
work=$cache/.build-$$
src=$cache/src				# the unpacked packages, kept: a rebuild needs no download
rm -rf "$cache"/.build-*
mkdir -p "$work"/apt/{etc/none,state/lists/partial,cache/archives/partial} "$work"/debs "$work"/gopath/src/pgscope/otelcol
trap 'rm -rf "$work"' EXIT
if [ ! -e "$src/.complete" ]; then
rm -rf "$src"
mkdir -p "$src/root"

# a private APT: sid's package lists, nothing installed as far as it knows
: >"$work/apt/state/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$work/apt/etc/sources.list"
cat >"$work/apt/etc/apt.conf" <<EOF
Dir::State "$work/apt/state";
Dir::State::status "$work/apt/state/status";
Dir::Cache "$work/apt/cache";
Dir::Etc::SourceList "$work/apt/etc/sources.list";
Dir::Etc::SourceParts "$work/apt/etc/none";
Dir::Etc::Preferences "$work/apt/etc/none";
Dir::Etc::PreferencesParts "$work/apt/etc/none";
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
EOF
export APT_CONFIG=$work/apt/etc/apt.conf
echo "otelcol.sh: fetching the Collector's Go sources and Go from Debian sid (about 120 MB, once)" >&2
apt-get update -qq >/dev/null
roots=(golang-opentelemetry-collector-dev)
gover=$(apt-cache depends golang-go 2>/dev/null | sed -n 's/.*Depends: golang-\(1\.[0-9]*\)-go.*/\1/p' | head -1)
[ -n "$gover" ] || { echo "otelcol.sh: cannot tell sid's Go version" >&2; exit 1; }
roots+=("golang-$gover-go" "golang-$gover-src")
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances "${roots[@]}" | sed -n 's/^\(golang-[a-z0-9.+-]*\)$/\1/p' | sort -u)
(cd "$work/debs" && apt-get download -qq $pkgs >/dev/null)
for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$src/root"; done
echo "$gover" >"$src/.complete"
fi
gover=$(cat "$src/.complete")

# what the Collector's own builder generates, for the components the tests need
cat >"$work/gopath/src/pgscope/otelcol/main.go" <<'EOF'
// otelcol-pgscope: an OpenTelemetry Collector for pgscope's tests (OTLP receiver; debug and otlphttp exporters).
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](debugexporter.NewFactory(), otlphttpexporter.NewFactory())
	return f, err
}

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-pgscope", Description: "pgscope's test Collector", Version: "debian"},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatal(err)
	}
}
EOF
goroot=$src/root/usr/lib/go-$gover
echo "otelcol.sh: building the Collector with Go $gover (a minute or two)" >&2
(cd "$work/gopath/src/pgscope/otelcol" &&
  GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local GOFLAGS= GOROOT="$goroot" HOME="$work" GOCACHE="$cache/gocache" \
  GOPATH="$work/gopath:$src/root/usr/share/gocode" "$goroot/bin/go" build -o "$work/otelcol-pgscope" .) >&2
mv "$work/otelcol-pgscope" "$bin"
echo "$stamp" >"$cache/stamp"
echo "$bin"
