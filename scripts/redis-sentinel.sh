#!/usr/bin/env bash
# A local Redis Sentinel set for tests and benchmarks: 1 master, 2 replicas and 3 sentinels watching
# them as `mymaster`, on 127.0.0.1, on free ports, in a folder of its own. It starts in seconds and
# is stopped by the pids it started. Sentinels run as `redis-server --sentinel`.
#   scripts/redis-sentinel.sh start [DIR]   prints the URL (redis+sentinel://127.0.0.1:s1,.../mymaster);
#                                           DIR holds the files, `url`, `pids` and `ports` (master first)
#   scripts/redis-sentinel.sh stop DIR      kills the pids in DIR/pids and removes DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/redis-local.sh
. "$here/redis-local.sh"
name=mymaster

case "${1:-}" in
  start)
    dir="${2:-$(mktemp -d -t jobshell-redis-sentinel.XXXXXX)}"
    mkdir -p "$dir"
    ports=()
    for _ in 1 2 3; do ports+=("$(free_port "${ports[@]}")"); done
    master="${ports[0]}"
    start_redis "$dir" "$master" --appendonly no
    wait_ping "$master" "$dir"
    for port in "${ports[@]:1}"; do
      start_redis "$dir" "$port" --appendonly no --replicaof 127.0.0.1 "$master"
    done
    sentinels=()
    for _ in 1 2 3; do sentinels+=("$(free_port "${ports[@]}" "${sentinels[@]}")"); done
    for port in "${sentinels[@]}"; do
      mkdir -p "$dir/$port"
      # A sentinel rewrites its config file: each has its own.
      cat >"$dir/$port/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir/$port
logfile $dir/$port/log
sentinel monitor $name 127.0.0.1 $master 2
sentinel down-after-milliseconds $name 2000
sentinel failover-timeout $name 10000
sentinel parallel-syncs $name 2
CONF
      redis-server "$dir/$port/sentinel.conf" --sentinel </dev/null >/dev/null 2>&1 &
      echo $! >>"$dir/pids"
    done
    for port in "${ports[@]:1}" "${sentinels[@]}"; do wait_ping "$port" "$dir"; done
    # Ready once both replicas are in sync and every sentinel knows the other two and both replicas.
    for _ in $(seq 1 400); do
      synced=$(redis-cli -p "$master" info replication | grep -c 'state=online' || true)
      known=0
      for port in "${sentinels[@]}"; do
        line=$(redis-cli -p "$port" sentinel master "$name" | paste -sd' ')
        [[ "$line" == *"num-other-sentinels 2"* && "$line" == *"num-slaves 2"* ]] && known=$((known + 1))
      done
      [ "$synced" = 2 ] && [ "$known" = 3 ] && break
      sleep 0.1
    done
    [ "$synced" = 2 ] && [ "$known" = 3 ] || { echo "redis sentinel set in $dir did not come up" >&2; exit 1; }
    echo "${ports[*]} ${sentinels[*]}" >"$dir/ports"
    url="redis+sentinel://$(for p in "${sentinels[@]}"; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')/$name"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  stop)
    stop_pids "${2:?usage: $0 stop DIR}"
    ;;
  *)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
