#!/usr/bin/env bash
# An emulated cluster on one machine: K hosts as network namespaces on one bridge, each host's
# link rate-limited with tc in both directions, and mpirun launched across them over TCP.
# Everything is torn down on exit, Ctrl-C and failure.
#
#   benchmarks/cluster/cluster.sh [--hosts K] [--slots S] [--rate RATE] [--unreachable I] -- MPIRUN_ARGS...
#   benchmarks/cluster/cluster.sh --check
#
#   --hosts K    hosts (namespaces), 1..200 (default 4)
#   --slots S    MPI slots per host (default 4); -np above K*S is refused by mpirun
#   --rate RATE  each link's rate per direction, in tc units (100mbit, 1gbit, 10gbit) or
#                'unlimited' (default 1gbit)
#   --unreachable I  host I's link stays down (to see what a dead host does to a launch)
#   --check      exit 0 if network namespaces can be created here, 3 (with the reason) if not
#
# MPIRUN_ARGS are mpirun's own arguments (-np N PROGRAM ARGS...); the script adds the hostfile,
# the rsh agent that enters each host's namespace, TCP between hosts (shared memory within one),
# interface selection, and the settings ranks sharing few cores need. Host i is 10.213.0.(i+1).
# mpirun's exit status is the script's. Needs root (network namespaces) and iproute2.
set -euo pipefail

hosts=4
slots=4
rate=1gbit
unreachable=-1
check_only=0
usage() { sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
fail() { echo "cluster: $*" >&2; exit 2; }

while (($# > 0)); do
    case "$1" in
        --hosts) hosts=${2:?--hosts needs a value}; shift 2 ;;
        --slots) slots=${2:?--slots needs a value}; shift 2 ;;
        --rate) rate=${2:?--rate needs a value}; shift 2 ;;
        --unreachable) unreachable=${2:?--unreachable needs a host index}; shift 2 ;;
        --check) check_only=1; shift ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) fail "unknown option '$1' (options come before '--', mpirun's arguments after it)" ;;
    esac
done
[[ $hosts =~ ^[0-9]+$ ]] && ((hosts >= 1 && hosts <= 200)) || fail "--hosts must be 1..200, got '$hosts'"
[[ $slots =~ ^[0-9]+$ ]] && ((slots >= 1)) || fail "--slots must be a positive integer, got '$slots'"
if ((check_only == 0 && $# == 0)); then fail "no mpirun arguments after '--' (e.g. -- -np 8 PROGRAM)"; fi

command -v ip >/dev/null && command -v tc >/dev/null ||
    fail "needs 'ip' and 'tc' (Debian package iproute2; ci/setup.sh installs it)"

# Names carry this script's pid, so concurrent clusters do not collide and the namespaces of a
# cluster whose script was killed with SIGKILL can be recognized and removed by the next run.
prefix="dlion$$-"
workdir=$(mktemp -d)
namespaces=()
launcher=""

teardown() {
    local status=$? namespace pids
    trap - EXIT INT TERM
    if [[ -n $launcher ]] && kill -TERM "$launcher" 2>/dev/null; then
        # mpirun forwards SIGTERM to every rank; give them five seconds before SIGKILL.
        for _ in $(seq 50); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
    fi
    for namespace in "${namespaces[@]}"; do
        pids=$(ip netns pids "$namespace" 2>/dev/null || true)
        if [[ -n $pids ]]; then kill -9 $pids 2>/dev/null || true; fi
    done
    for namespace in "${namespaces[@]}"; do ip netns del "$namespace" 2>/dev/null || true; done
    rm -rf "$workdir"
    exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

remove_stale_clusters() {
    local namespace owner
    for namespace in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^dlion[0-9]+-' || true); do
        owner=${namespace#dlion}
        owner=${owner%%-*}
        if ! kill -0 "$owner" 2>/dev/null; then
            echo "cluster: removing namespace $namespace left by a cluster that was killed" >&2
            pids=$(ip netns pids "$namespace" 2>/dev/null || true)
            if [[ -n $pids ]]; then kill -9 $pids 2>/dev/null || true; fi
            ip netns del "$namespace" 2>/dev/null || true
        fi
    done
}

# new_namespace NAME: creates it and records it for teardown.
new_namespace() {
    ip netns add "$1"
    namespaces+=("$1")
    ip -n "$1" link set lo up
}

# shape NAMESPACE DEVICE: the link rate on the device's egress.
shape() {
    if [[ $rate != unlimited ]]; then
        ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$rate" burst "$burst" latency 50ms
    fi
}

# The token bucket's depth: what a link may send faster than its rate after idling. A real link
# has none; 1 ms at the rate (32 KiB at least) is what lets TCP reach the rate here (942 of 1000
# Mbit/s with 32 KiB between two namespaces) without letting a short call through at full speed.
burst_for() {
    local number unit
    [[ $1 =~ ^([0-9]+(\.[0-9]+)?)(bit|kbit|mbit|gbit)$ ]] ||
        fail "--rate must be a number with bit, kbit, mbit or gbit (100mbit, 1gbit, 10gbit) or 'unlimited', got '$1'"
    number=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[3]}
    case $unit in bit) scale=1 ;; kbit) scale=1000 ;; mbit) scale=1000000 ;; gbit) scale=1000000000 ;; esac
    awk -v bits="$number" -v scale="$scale" 'BEGIN { b = bits * scale / 8 / 1000; if (b < 32768) b = 32768; printf "%d", b }'
}
if [[ $rate != unlimited ]]; then burst=$(burst_for "$rate"); fi

if ((check_only == 1)); then
    if ! reason=$(ip netns add "${prefix}probe" 2>&1); then
        echo "cluster: cannot create network namespaces here ($reason); needs root and CAP_SYS_ADMIN" >&2
        exit 3
    fi
    namespaces+=("${prefix}probe")
    echo "cluster: network namespaces can be created"
    exit 0
fi

remove_stale_clusters
switch="${prefix}switch"
new_namespace "$switch"
ip -n "$switch" link add br0 type bridge
ip -n "$switch" link set br0 up
addresses=()
for ((i = 0; i < hosts; i++)); do
    host="${prefix}h$i"
    address="10.213.0.$((i + 1))"
    new_namespace "$host"
    ip link add eth0 netns "$host" type veth peer name port$i netns "$switch"
    ip -n "$switch" link set port$i master br0
    ip -n "$switch" link set port$i up
    ip -n "$host" addr add "$address/24" dev eth0
    if ((i != unreachable)); then ip -n "$host" link set eth0 up; fi
    shape "$host" eth0        # host -> switch
    shape "$switch" port$i    # switch -> host
    addresses+=("$address")
    echo "$address slots=$slots" >>"$workdir/hostfile"
done

# Open MPI starts its daemon on each host through this agent, as it would through ssh. Each host
# also gets its own hostname (a UTS namespace): Open MPI tells hosts apart by hostname, and with
# one name for all it treats every rank as local and sets up shared memory between "hosts".
cat >"$workdir/agent" <<EOF
#!/bin/sh
# Called by Open MPI as: agent [ssh options] HOST COMMAND...; runs COMMAND in HOST's namespace.
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
    10.213.0.*) index=\$((\${host##*.} - 1)) ;;
    *) echo "cluster agent: unknown host '\$host' (hosts are 10.213.0.1..10.213.0.$hosts)" >&2; exit 255 ;;
esac
if ! ip netns pids "${prefix}h\$index" >/dev/null 2>&1; then
    echo "cluster agent: host \$host is not up" >&2; exit 255
fi
exec ip netns exec "${prefix}h\$index" unshare --uts /bin/sh -c 'hostname "\$0" && exec /bin/sh -c "\$1"' "host\$index" "\$*"
EOF
chmod +x "$workdir/agent"

echo "cluster: $hosts hosts x $slots slots (${addresses[0]}..${addresses[-1]}), links $rate" >&2

if [[ "$(id -u)" -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if [[ -t 1 ]]; then export DLION_PROGRESS=line; else export DLION_PROGRESS=plain; fi
subnet=10.213.0.0/24
status=0
ip netns exec "${prefix}h0" unshare --uts /bin/sh -c 'hostname host0 && exec "$@"' sh mpirun \
    --hostfile "$workdir/hostfile" \
    --mca plm_rsh_agent "$workdir/agent" \
    --mca pml ob1 --mca btl tcp,vader,self \
    --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet" \
    --mca btl_vader_single_copy_mechanism none \
    --mca mpi_yield_when_idle 1 --bind-to none \
    -x DLION_PROGRESS \
    "$@" &
# mpirun runs in the background so that a signal to this script is handled at once (bash
# defers traps until a foreground child exits); teardown stops it.
launcher=$!
wait "$launcher" || status=$?
launcher=""
exit "$status"
