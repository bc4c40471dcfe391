# What scripts/redis-cluster.sh and scripts/redis-sentinel.sh share (sourced, not run).

# A free TCP port on 127.0.0.1 whose cluster bus port (+10000) is free too, and not among the arguments.
# Both stay below 32768, where Linux's ephemeral ports (those of outgoing connections) begin.
free_port() {
  local port taken
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 2700))
    taken=0
    for p in "$@"; do [ "$p" = "$port" ] && taken=1; done
    [ "$taken" = 1 ] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null && continue
    echo "$port"
    return 0
  done
  echo "no free port found" >&2
  return 1
}

# start_redis DIR PORT [redis-server options...]: a redis-server in DIR/PORT, its pid appended to DIR/pids.
start_redis() {
  local dir="$1" port="$2"
  shift 2
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir/$port" --logfile "$dir/$port/log" "$@" </dev/null >/dev/null 2>&1 &
  echo $! >>"$dir/pids"
}

# wait_ping PORT [DIR]: until the server on PORT answers (a loaded machine may take seconds).
wait_ping() {
  for _ in $(seq 1 300); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "redis on port $1 did not start" >&2
  [ -n "${2:-}" ] && tail -5 "$2/$1/log" >&2
  return 1
}

# Kill the pids listed in DIR/pids (and only those), then remove DIR.
stop_pids() {
  local dir="$1"
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$dir/pids"
  fi
  rm -rf "$dir"
}
