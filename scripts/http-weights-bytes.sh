#!/usr/bin/env bash
# Bytes the coordinator sends per step, with the weights on the WebSockets or over HTTP,
# N workers joining through Debian's nginx as a caching proxy (docs/scaling.md's
# configuration). The default MNIST MLP, 3 epochs of batch 512 (48 steps), no audits.
# Bytes out are the coordinator process's written bytes (/proc/PID/io wchar: every
# socket write, framing included, and its few log lines), from its first step line to
# its done line, divided by the steps in between (the dataset downloads come before).
#
# With PRIME=1 the coordinator primes nginx with each version (--weights-prime-url).
# Also counted: worker requests that took 0.4 s or more at nginx ($request_time), i.e.
# that waited on its cache lock (it looks again every 500 ms).
#
#   npm run build && scripts/http-weights-bytes.sh on 8      # or off; LOCK_TIMEOUT=50ms to tune, PRIME=1 to prime
set -euo pipefail
mode=$1
workers=$2
cli=$(cd "$(dirname "$0")/.." && pwd)/dist/coordinator/cli/bin.js
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/tmp" "$dir/xdg"
port=$((20000 + RANDOM % 10000))
proxy=$((port + 1))
flag=()
[ "$mode" = on ] && flag=(--weights-over-http)
[ "$mode" = on ] && [ "${PRIME:-0}" = 1 ] && flag+=(--weights-prime-url "http://127.0.0.1:$proxy")
XDG_CACHE_HOME=$dir/xdg node "$cli" coordinator --port "$port" --log-format json --min-workers "$workers" \
  --epochs 3 --batch-size 512 --shard-size 64 --probation 0 --audit-rate 0 "${flag[@]}" >"$dir/coordinator.log" 2>&1 &
coordinator=$!
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
pid $dir/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  proxy_cache_path $dir/cache levels=1:2 keys_zone=flocktrain_weights:10m max_size=1g inactive=1h use_temp_path=off;
  log_format flocktrain_cache '\$request_method \$uri \$status \$upstream_cache_status \$body_bytes_sent \$request_time "\$http_user_agent"';
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream flocktrain { server 127.0.0.1:$port; keepalive 16; }
  server {
    listen 127.0.0.1:$proxy;
    location /weights/ {
      proxy_pass http://flocktrain;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache flocktrain_weights;
      proxy_cache_valid 200 1y;
      proxy_cache_lock on;
      proxy_cache_lock_timeout ${LOCK_TIMEOUT:-10s};
      proxy_cache_lock_age 10s;
      access_log $dir/weights.log flocktrain_cache;
    }
    location / {
      proxy_pass http://flocktrain;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
EOF
until grep -q '"msg":"join"' "$dir/coordinator.log"; do sleep 0.2; done
/usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
until (exec 3<>"/dev/tcp/127.0.0.1/$proxy") 2>/dev/null; do sleep 0.1; done
token=$(grep -o '"token":"[0-9a-f]*"' "$dir/coordinator.log" | head -1 | cut -d'"' -f4)
for i in $(seq "$workers"); do
  XDG_CACHE_HOME=$dir/xdg node "$cli" worker --url "ws://127.0.0.1:$proxy" --token "$token" --threads 1 \
    --log-level warn >"$dir/worker-$i.log" 2>&1 &
done
first=""
last=0
while kill -0 "$coordinator" 2>/dev/null && ! grep -q '"msg":"done"' "$dir/coordinator.log"; do
  last=$(awk '/^wchar/ {print $2}' "/proc/$coordinator/io" 2>/dev/null || echo "$last")
  if [ -z "$first" ] && grep -q '"msg":"step"' "$dir/coordinator.log"; then first=$last; fi
  sleep 0.02
done
wait "$coordinator"
steps=$(grep '"msg":"done"' "$dir/coordinator.log" | grep -o '"steps":[0-9]*' | cut -d: -f2)
seconds=$(grep '"msg":"epoch"' "$dir/coordinator.log" | grep -o '"seconds":[0-9.]*' | cut -d: -f2 | tr '\n' ' ')
hits=$(grep -c ' HIT ' "$dir/weights.log" 2>/dev/null || true)
misses=$(grep -c ' MISS ' "$dir/weights.log" 2>/dev/null || true)
primes=$(grep -c 'flocktrain-prime' "$dir/weights.log" 2>/dev/null || true)
waited=$(awk '!/flocktrain-prime/ && $6 >= 0.4' "$dir/weights.log" 2>/dev/null | wc -l)
echo "weights=$mode prime=${PRIME:-0} workers=$workers steps=$steps bytesOutPerStep=$(((last - first) / (steps - 10)))" \
  "epochSeconds=[ $seconds] cacheMiss=${misses:-0} cacheHit=${hits:-0} primes=${primes:-0} workersWaited=$waited"
grep -h '"weights served over HTTP"' "$dir/coordinator.log" | grep -o '"bodies".*"maxBodiesPerVersion":[0-9]*' || true
