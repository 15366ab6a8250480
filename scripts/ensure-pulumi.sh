#!/usr/bin/env bash
# Makes the real Pulumi CLI available and prints the folder that holds it (the only line on stdout).
#
#   export PATH="$(scripts/ensure-pulumi.sh):$PATH"
#
# Order of preference:
#   1. the cached build in $LBHOSTING_CACHE (default ~/.cache/lbhosting)/pulumi-v$VERSION/bin;
#   2. a `pulumi` already on PATH whose version is at least $VERSION (linked into that folder);
#   3. a build from the Go modules of the release (needs Go; a cold build takes several minutes).
# The folder also gets `pulumi-resource-pulumi-nodejs` (the dynamic-provider host shipped inside
# @pulumi/pulumi), so `npm install` must have run first.
set -euo pipefail

VERSION="3.248.0"
# The commit tagged v3.248.0 in pulumi/pulumi, for modules that have no tag of their own.
RELEASE_PSEUDO="v3.0.0-20260624120734-a88168d865b7"
COMMAND_PLUGIN_VERSION="1.2.1"
# The commit tagged v1.2.1 in pulumi/pulumi-command.
COMMAND_PSEUDO="v0.0.0-20260303235922-7f3eb6f3b77c"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${LBHOSTING_CACHE:-$HOME/.cache/lbhosting}"
prefix="$cache_root/pulumi-v$VERSION"
bin="$prefix/bin"
build="$prefix/build"

say() { printf 'ensure-pulumi: %s\n' "$*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

version_at_least() { # $1 >= $2, both x.y.z
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

dynamic_provider_host="$repo_root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
[ -f "$dynamic_provider_host" ] || fail "$dynamic_provider_host is missing: run 'npm install' (or 'npm ci') first."

install_dynamic_provider_host() {
  install -m 0755 "$dynamic_provider_host" "$bin/pulumi-resource-pulumi-nodejs"
}

cached_version() {
  [ -x "$bin/pulumi" ] && "$bin/pulumi" version 2>/dev/null | sed 's/^v//' || true
}

# 1. Warm cache.
if [ "$(cached_version)" = "$VERSION" ]; then
  install_dynamic_provider_host
  say "using cached Pulumi CLI v$VERSION in $bin"
  printf '%s\n' "$bin"
  exit 0
fi

mkdir -p "$bin"

# 2. A recent enough CLI on PATH.
if existing="$(command -v pulumi 2>/dev/null)" && [ "$(dirname "$existing")" != "$bin" ]; then
  existing_version="$("$existing" version 2>/dev/null | sed 's/^v//')"
  if [ -n "$existing_version" ] && version_at_least "$existing_version" "$VERSION"; then
    say "using pulumi v$existing_version from $existing"
    for tool in "$(dirname "$existing")"/pulumi*; do
      ln -sf "$tool" "$bin/$(basename "$tool")"
    done
    install_dynamic_provider_host
    printf '%s\n' "$bin"
    exit 0
  fi
  say "pulumi on PATH is v${existing_version:-unknown}, older than v$VERSION: building v$VERSION instead"
fi

# 3. Build from the Go modules of the release.
command -v go >/dev/null 2>&1 || fail "neither a Pulumi CLI >= v$VERSION nor Go is available. Install Go (1.24+) so this script can build the CLI, or put pulumi >= v$VERSION on PATH."

export CGO_ENABLED=0 GOFLAGS="-mod=mod"
ldflags="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION"
build_flags=(-trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags")

# `go install pkg@version` refuses modules with replace directives, so build inside a wrapper
# module that requires the release's modules explicitly.
mkdir -p "$build"
cd "$build"
cat >go.mod <<'EOF'
module lbhosting.local/pulumi-build

go 1.24
EOF
cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
EOF

started=$SECONDS
say "building the Pulumi CLI v$VERSION from Go modules (a cold build takes several minutes)..."
go get "github.com/pulumi/pulumi/pkg/v3@v$VERSION" "github.com/pulumi/pulumi/sdk/v3@v$VERSION" >&2 2>"$build/go-get.log" ||
  fail "go get of pkg/v3 and sdk/v3 v$VERSION failed (see $build/go-get.log)"
go build "${build_flags[@]}" -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2 ||
  fail "building pulumi failed"
mv "$bin/pulumi.tmp" "$bin/pulumi"
say "built pulumi $("$bin/pulumi" version) in $((SECONDS - started)) s"

# The Node.js language host is only needed to run a program from a folder with `pulumi up`;
# the Automation API's inline programs (used by the tests and the demo) bring their own.
language_host="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
if go get "$language_host@$RELEASE_PSEUDO" "github.com/pulumi/pulumi/pkg/v3@v$VERSION" \
  "github.com/pulumi/pulumi/sdk/v3@v$VERSION" 2>"$build/language-host.log" &&
  go build "${build_flags[@]}" -o "$bin/pulumi-language-nodejs" "$language_host" >&2; then
  say "built pulumi-language-nodejs ($RELEASE_PSEUDO)"
else
  say "warning: the module proxy does not serve $language_host@$RELEASE_PSEUDO (see $build/language-host.log);"
  say "         continuing without pulumi-language-nodejs: programs run through the Automation API."
fi

command_plugin="github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command"
if go get "github.com/pulumi/pulumi-command/provider@$COMMAND_PSEUDO" 2>"$build/command.log" &&
  go build -trimpath -ldflags "-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_PLUGIN_VERSION" \
    -o "$bin/pulumi-resource-command" "$command_plugin" >&2; then
  say "built pulumi-resource-command v$COMMAND_PLUGIN_VERSION"
else
  say "warning: the module proxy does not serve github.com/pulumi/pulumi-command/provider@$COMMAND_PSEUDO"
  say "         (see $build/command.log); the @pulumi/command plugin is not available."
fi

install_dynamic_provider_host
say "toolchain ready in $((SECONDS - started)) s: $bin ($(du -sh "$prefix" | cut -f1) on disk)"
printf '%s\n' "$bin"
