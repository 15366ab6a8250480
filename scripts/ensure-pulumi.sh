#!/usr/bin/env bash
# Makes the real Pulumi toolchain available and prints the folder that holds it (the only line on
# stdout):
#
#   export PATH="$(scripts/ensure-pulumi.sh):$PATH"
#
# The folder holds what a user with the official CLI has:
#   pulumi                          the CLI, v$VERSION
#   pulumi-language-nodejs          runs `pulumi up` on a Pulumi.yaml folder (runtime: nodejs)
#   pulumi-resource-command         the plugin behind the @pulumi/command npm package, v$COMMAND_VERSION
#   pulumi-resource-pulumi-nodejs   the dynamic-provider host shipped inside @pulumi/pulumi
#
# Order of preference:
#   1. the cached toolchain in $LBHOSTING_CACHE (default ~/.cache/lbhosting)/pulumi-v$VERSION/bin;
#   2. a `pulumi` already on PATH whose version is at least $VERSION (linked into that folder);
#   3. a build of the CLI from the Go modules of the release (needs Go; several minutes cold).
# The two plugins come from the module registry when it serves them, else from their release
# sources in ../shared/toolchain (or $LBHOSTING_TOOLCHAIN) through its build.sh.
# `npm install` must have run first (for the dynamic-provider host).
set -euo pipefail

VERSION="3.248.0"
COMMAND_VERSION="1.2.1"
# Commits tagged v3.248.0 in pulumi/pulumi and v1.2.1 in pulumi/pulumi-command, for modules that
# have no tag of their own.
LANGUAGE_HOST_PSEUDO="v3.0.0-20260624120734-a88168d865b7"
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

cli_version() { PULUMI_SKIP_UPDATE_CHECK=true "$bin/pulumi" version 2>/dev/null | sed 's/^v//' || true; }

# Sets ready_version to the cached CLI's version when the whole toolchain is there.
toolchain_ready() {
  [ -x "$bin/pulumi" ] && [ -x "$bin/pulumi-language-nodejs" ] && [ -x "$bin/pulumi-resource-command" ] &&
    ready_version="$(cli_version)" && version_at_least "$ready_version" "$VERSION"
}

finish() {
  install_dynamic_provider_host
  printf '%s\n' "$bin"
  exit 0
}

# 1. Warm cache.
if toolchain_ready; then
  say "using the cached Pulumi toolchain v$ready_version in $bin"
  finish
fi

mkdir -p "$bin" "$build"
started=$SECONDS

# 2. A recent enough CLI on PATH (the official install brings the language host too).
if [ ! -x "$bin/pulumi" ] && existing="$(command -v pulumi 2>/dev/null)"; then
  existing_version="$("$existing" version 2>/dev/null | sed 's/^v//')"
  if [ -n "$existing_version" ] && version_at_least "$existing_version" "$VERSION"; then
    say "using pulumi v$existing_version from $existing"
    for tool in "$(dirname "$existing")"/pulumi*; do
      ln -sf "$tool" "$bin/$(basename "$tool")"
    done
  else
    say "pulumi on PATH is v${existing_version:-unknown}, older than v$VERSION: building v$VERSION instead"
  fi
fi

command -v go >/dev/null 2>&1 || toolchain_ready ||
  fail "Go is needed to build what is missing from $bin. Install Go (1.25+), or put the official Pulumi CLI >= v$VERSION on PATH and install the command plugin with 'pulumi plugin install resource command $COMMAND_VERSION'."
export CGO_ENABLED=0 GOFLAGS="-mod=mod"
build_flags=(-trimpath -tags osusergo,grpcnotrace)

# 3. The CLI from the Go modules of the release, inside a wrapper module (`go install` refuses
# modules with replace directives).
if [ ! -x "$bin/pulumi" ]; then
  cd "$build"
  printf 'module lbhosting.local/pulumi-build\n\ngo 1.24\n' >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
  say "building the Pulumi CLI v$VERSION from Go modules (a cold build takes several minutes)..."
  go get "github.com/pulumi/pulumi/pkg/v3@v$VERSION" "github.com/pulumi/pulumi/sdk/v3@v$VERSION" 2>"$build/go-get.log" ||
    fail "go get of pkg/v3 and sdk/v3 v$VERSION failed (see $build/go-get.log)"
  go build "${build_flags[@]}" -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION" \
    -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2 || fail "building pulumi failed"
  mv "$bin/pulumi.tmp" "$bin/pulumi"
  say "built pulumi $("$bin/pulumi" version) in $((SECONDS - started)) s"
fi

# The plugins: from the module registry when it serves them (it did not, on our machines).
from_registry() { # name module@version package ldflags
  local name=$1 module=$2 package=$3 ldflags=$4 work="$build/$1"
  [ -x "$bin/$name" ] && return 0
  mkdir -p "$work" && cd "$work"
  printf 'module lbhosting.local/%s-build\n\ngo 1.24\n' "$name" >go.mod
  go get "$module" >"$work/go-get.log" 2>&1 &&
    go build "${build_flags[@]}" -ldflags "$ldflags" -o "$bin/$name" "$package" >&2
}
from_registry pulumi-language-nodejs \
  "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$LANGUAGE_HOST_PSEUDO" \
  github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION" || true
from_registry pulumi-resource-command "github.com/pulumi/pulumi-command/provider@$COMMAND_PSEUDO" \
  github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command \
  "-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" || true

# Else from their release sources, kept outside the repository.
if [ ! -x "$bin/pulumi-language-nodejs" ] || [ ! -x "$bin/pulumi-resource-command" ]; then
  toolchain=""
  for candidate in "${LBHOSTING_TOOLCHAIN:-}" "$repo_root/../shared/toolchain" /work/shared/toolchain; do
    if [ -n "$candidate" ] && [ -x "$candidate/build.sh" ]; then
      toolchain="$(cd "$candidate" && pwd)"
      break
    fi
  done
  [ -n "$toolchain" ] ||
    fail "the module registry does not serve pulumi-language-nodejs or pulumi-resource-command, and no release sources were found (set LBHOSTING_TOOLCHAIN to the folder holding build.sh)"
  say "building pulumi-language-nodejs and pulumi-resource-command v$COMMAND_VERSION from $toolchain"
  "$toolchain/build.sh" "$bin" || fail "$toolchain/build.sh failed"
fi

toolchain_ready || fail "the toolchain in $bin is incomplete after the build"
say "toolchain ready in $((SECONDS - started)) s: $bin ($(du -sh "$prefix" | cut -f1) on disk)"
finish
