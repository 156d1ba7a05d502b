#!/bin/sh
# One headless locust per "host:port=users" entry of $LOCUST_TARGETS (the balancer, or nodes),
# the container runs until every one of them has stopped.
set -eu
for target in $LOCUST_TARGETS; do
  host=${target%%=*}
  users=${target##*=}
  locust -f /app/demo_fleet/locustfile.py --headless --host "http://$host" \
    --users "$users" --spawn-rate "$users" --only-summary &
done
wait
