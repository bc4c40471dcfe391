#!/usr/bin/env bash
# A local Redis Cluster for tests and benchmarks: 3 masters with 1 replica each, on 127.0.0.1, on six
# free ports, in a folder of its own. It starts in seconds and is stopped by the pids it started.
#   scripts/redis-cluster.sh start [DIR]   prints the URL (redis+cluster://127.0.0.1:p1,...); DIR holds
#                                          the nodes' files, `url`, `pids` and `ports` (default: a new temp dir)
#   scripts/redis-cluster.sh restart DIR PORT  starts the node of PORT again (after a kill: it rejoins
#                                          the cluster, as a replica if its master role was taken over)
#   scripts/redis-cluster.sh stop DIR      kills the pids in DIR/pids and removes DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/redis-local.sh
. "$here/redis-local.sh"

# A replica takes over 2 s after its master stops answering (cluster-node-timeout), plus an election.
start_node() {
  start_redis "$1" "$2" --cluster-enabled yes --cluster-config-file "$1/$2/nodes.conf" \
    --cluster-node-timeout 2000 --appendonly no
}

case "${1:-}" in
  start)
    dir="${2:-$(mktemp -d -t jobshell-redis-cluster.XXXXXX)}"
    mkdir -p "$dir"
    ports=()
    for _ in 1 2 3 4 5 6; do ports+=("$(free_port "${ports[@]}")"); done
    for port in "${ports[@]}"; do start_node "$dir" "$port"; done
    for port in "${ports[@]}"; do wait_ping "$port" "$dir"; done
    nodes=()
    for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
      { cat "$dir/create.log" >&2; exit 1; }
    # Ready once every node agrees that all slots are served and each master has its replica in sync.
    for _ in $(seq 1 300); do
      ok=1
      for port in "${ports[@]}"; do
        redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || ok=0
      done
      synced=$(for port in "${ports[@]}"; do redis-cli -p "$port" info replication; done | grep -c 'master_link_status:up' || true)
      [ "$ok" = 1 ] && [ "$synced" = 3 ] && break
      sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "redis cluster in $dir did not come up" >&2; exit 1; }
    echo "${ports[*]}" >"$dir/ports"
    url="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
  restart)
    start_node "${2:?usage: $0 restart DIR PORT}" "${3:?usage: $0 restart DIR PORT}"
    wait_ping "$3" "$2"
    ;;
  stop)
    stop_pids "${2:?usage: $0 stop DIR}"
    ;;
  *)
    echo "usage: $0 start [DIR] | restart DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
