#!/usr/bin/env bash
# Local RabbitMQ nodes of a test's own, clustered: N nodes (default 3) under the one Erlang install,
# with distinct node names and ports on 127.0.0.1, a cookie of their own and a folder of their own,
# so that nothing they do (a restart, a kill) touches another broker on the machine. About ten seconds
# a node. Stopped by the pids they started (epmd, shared with any other node, is left alone).
#   scripts/rabbitmq-cluster.sh start DIR [N]    prints the nodes' AMQP URLs, one a line; DIR holds
#                                                `urls`, `nodes` (Erlang node names) and `pids`
#   scripts/rabbitmq-cluster.sh ctl DIR NODE ARGS...  rabbitmqctl on one of them (stop_app, ...)
#   scripts/rabbitmq-cluster.sh restart DIR NODE      starts a killed node again
#   scripts/rabbitmq-cluster.sh stop DIR          kills the pids in DIR/pids and removes DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/redis-local.sh
. "$here/redis-local.sh"
bin=/usr/lib/rabbitmq/bin
[ -x "$bin/rabbitmq-server" ] || bin="$(dirname "$(readlink -f "$(command -v rabbitmq-server)")")"

ctl() {
  local dir="$1" node="$2"
  shift 2
  HOME="$dir" "$bin/rabbitmqctl" -n "$node" "$@"
}

# start_node DIR NAME PORT: one detached node, its pid appended to DIR/pids once it has started.
start_node() {
  local dir="$1" name="$2" port="$3" node="$2@localhost"
  mkdir -p "$dir/$name"
  echo "listeners.tcp.local = 127.0.0.1:$port" >"$dir/$name/rabbitmq.conf"
  echo "[]." >"$dir/$name/enabled_plugins"
  echo "ERL_EPMD_ADDRESS=127.0.0.1" >"$dir/$name/env.conf"
  HOME="$dir" RABBITMQ_NODENAME="$node" RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 10000)) \
    RABBITMQ_CONFIG_FILE="$dir/$name/rabbitmq.conf" RABBITMQ_MNESIA_BASE="$dir/$name/mnesia" \
    RABBITMQ_LOG_BASE="$dir/$name/log" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/$name/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$dir/$name/env.conf" ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    "$bin/rabbitmq-server" -detached </dev/null >/dev/null 2>&1
  for _ in $(seq 1 120); do
    ctl "$dir" "$node" -q await_startup >/dev/null 2>&1 && break
    sleep 0.5
  done
  ctl "$dir" "$node" -q await_startup >/dev/null
  ctl "$dir" "$node" -q eval 'os:getpid().' | tr -d '"' >>"$dir/pids"
}

case "${1:-}" in
  start)
    dir="${2:?usage: $0 start DIR [N]}"
    count="${3:-3}"
    mkdir -p "$dir"
    # A cookie of their own: rabbitmqctl with this HOME reaches these nodes only.
    head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/.erlang.cookie"
    chmod 400 "$dir/.erlang.cookie"
    tag="jsq$RANDOM"
    ports=()
    for i in $(seq 1 "$count"); do
      ports+=("$(free_port "${ports[@]}")")
      start_node "$dir" "$tag$i" "${ports[$((i - 1))]}" &
    done
    wait
    first="${tag}1@localhost"
    for i in $(seq 2 "$count"); do
      node="$tag$i@localhost"
      ctl "$dir" "$node" -q stop_app
      ctl "$dir" "$node" -q join_cluster "$first"
      ctl "$dir" "$node" -q start_app
    done
    : >"$dir/urls"
    : >"$dir/nodes"
    for i in $(seq 1 "$count"); do
      echo "amqp://guest:guest@127.0.0.1:${ports[$((i - 1))]}" >>"$dir/urls"
      echo "$tag$i@localhost ${ports[$((i - 1))]}" >>"$dir/nodes"
    done
    cat "$dir/urls"
    ;;
  ctl)
    ctl "${2:?}" "${3:?}" "${@:4}"
    ;;
  restart)
    dir="${2:?}"
    read -r name port < <(grep "^${3:?} " "$dir/nodes")
    start_node "$dir" "${name%@localhost}" "$port"
    ;;
  stop)
    stop_pids "${2:?usage: $0 stop DIR}"
    ;;
  *)
    echo "usage: $0 start DIR [N] | ctl DIR NODE ARGS... | restart DIR NODE | stop DIR" >&2
    exit 2
    ;;
esac
