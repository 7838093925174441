#!/bin/bash
# SPDX-License-Identifier: MIT
#
# cluster.sh - a real one-node Ceph cluster for tests and benchmarks: one
# monitor, one manager and one OSD (memstore, or bluestore on a file with
# CEPH_OSD_STORE=bluestore), on 127.0.0.1 at free ports, auth none, pool
# size 1, everything in DIR, stopped by pid.
#
#   tests/ceph/cluster.sh start DIR [POOL...]   prints DIR/ceph.conf
#   tests/ceph/cluster.sh stop DIR
#   tests/ceph/cluster.sh pool DIR POOL         create one more pool
#
# Exit 77 only when the Ceph packages are not installed (tools/install-deps
# installs them: ceph-mon ceph-osd ceph-mgr ceph-common); any other failure
# is exit 1 with the daemon logs' tails on stderr.
set -u

STARTING=
die() {
	echo "cluster.sh: $*" >&2
	# a start that failed stops what it started
	[ -n "$STARTING" ] && stop_daemons "$STARTING"
	exit 1
}

# Every daemon of the cluster in DIR: the pid files, and (in case one was
# not written) the processes whose command line names DIR/ceph.conf.
cluster_pids() {
	local d=$1 f p
	for f in "$d"/run/*.pid; do [ -f "$f" ] && cat "$f"; done
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-c $d/ceph.conf " && echo "${p#/proc/}"
	done
}

stop_daemons() {
	local d=$1 pid i pids
	pids=$(cluster_pids "$d" | sort -u)
	for pid in $pids; do kill "$pid" 2>/dev/null; done
	for pid in $pids; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null
	done
}

need() {
	local missing=()
	for b in monmaptool ceph-mon ceph-osd ceph-mgr ceph rados ceph-authtool; do
		command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	if ((${#missing[@]})); then
		echo "cluster.sh: SKIP: ${missing[*]} not installed (apt-get install ceph-mon ceph-osd ceph-mgr ceph-common, or tools/install-deps)" >&2
		exit 77
	fi
}

# A free TCP port on 127.0.0.1 (bound and released: the kernel picks it).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

tails() {
	local d=$1
	for f in "$d"/log/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f" >&2
		tail -n 15 "$f" >&2
	done
}

c() { ceph -c "$DIR/ceph.conf" --connect-timeout 10 "$@"; }

pool_create() {
	c osd pool create "$1" 8 8 >/dev/null 2>&1 || c osd pool create "$1" 8 8 >&2 || return 1
	c osd pool application enable "$1" ckptfs >/dev/null 2>&1 || true
}

# A start can fail for a moment's reason (a daemon's first command racing
# its monitor map, seen as "wrong fsid" in CI with another cluster starting
# beside it): what it started is stopped and it is tried again with a fresh
# port and fsid, three times in all.
start() {
	local try
	[ -e "$1/ceph.conf" ] && die "$1 already holds a cluster (stop it first)"
	for try in 1 2 3; do
		(start_once "$@") && return 0
		[ "$try" -lt 3 ] || exit 1
		echo "cluster.sh: start $try of 3 failed; trying again with a new port and fsid" >&2
		stop "$1"
		sleep 1
	done
}

start_once() {
	need
	DIR=$1
	shift
	mkdir -p "$DIR" || die "cannot create $DIR"
	DIR=$(cd "$DIR" && pwd)
	[ -e "$DIR/ceph.conf" ] && die "$DIR already holds a cluster (stop it first)"
	mkdir -p "$DIR"/{mon,osd,mgr,log,run}
	STARTING=$DIR
	local port fsid store=${CEPH_OSD_STORE:-memstore}
	port=$(free_port)
	fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	cat >"$DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
mon initial members = a
client mount timeout = 20
public network = 127.0.0.1/32
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd objectstore = $store
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-4294967296}
bluestore block create = true
bluestore block size = ${CEPH_BLUESTORE_BYTES:-4294967296}
osd op num shards = 2
osd op num threads per shard = 2
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
ms bind ipv4 = true
ms bind ipv6 = false
run dir = $DIR/run
log file = $DIR/log/\$name.\$pid.log
[client]
admin socket =
[mon]
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
[osd]
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
[mgr]
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
[mon.a]
mon data = $DIR/mon
public addr = v1:127.0.0.1:$port
[osd.0]
osd data = $DIR/osd
osd journal = $DIR/osd/journal
[mgr.x]
mgr data = $DIR/mgr
CONF
	local conf=$DIR/ceph.conf
	monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$port]" "$DIR/monmap" >/dev/null ||
		die "monmaptool failed"
	ceph-mon -c "$conf" -i a 2>>"$DIR/log/daemons.err" --mkfs --monmap "$DIR/monmap" >"$DIR/log/mkfs-mon.out" 2>&1 ||
		{ cat "$DIR/log/mkfs-mon.out" >&2; die "ceph-mon --mkfs failed"; }
	ceph-mon -c "$conf" -i a 2>>"$DIR/log/daemons.err" || { tails "$DIR"; die "ceph-mon did not start"; }
	ceph-mgr -c "$conf" -i x 2>>"$DIR/log/daemons.err" || { tails "$DIR"; die "ceph-mgr did not start"; }
	# a monitor just started may refuse commands for a moment (EPERM)
	local id try
	for try in $(seq 1 50); do
		id=$(c osd create 2>&1) && break
		[ "$try" -lt 50 ] || { tails "$DIR"; die "ceph osd create failed: $id"; }
		sleep 0.2
	done
	ceph-osd -c "$conf" -i 0 2>>"$DIR/log/daemons.err" --mkfs >"$DIR/log/mkfs-osd.out" 2>&1 ||
		{ cat "$DIR/log/mkfs-osd.out" >&2; die "ceph-osd --mkfs failed"; }
	# the OSD's first command can race its monitor map ("wrong fsid"): retry
	for try in $(seq 1 10); do
		ceph-osd -c "$conf" -i 0 2>>"$DIR/log/daemons.err" && break
		[ "$try" -lt 10 ] || { tails "$DIR"; die "ceph-osd did not start"; }
		sleep 1
	done
	local i
	for ((i = 0; i < 600; i++)); do
		c osd stat 2>/dev/null | grep -q '1 up' && break
		sleep 0.1
	done
	((i < 600)) || { tails "$DIR"; die "osd.0 did not come up within 60 s"; }
	for p in "$@"; do
		pool_create "$p" || { tails "$DIR"; die "cannot create pool $p"; }
	done
	STARTING=
	echo "$conf"
}

stop() {
	DIR=$(cd "$1" 2>/dev/null && pwd) || return 0
	stop_daemons "$DIR"
	rm -rf "$DIR"
}

case "${1:-}" in
start) [ $# -ge 2 ] || die "usage: $0 start DIR [POOL...]"; start "${@:2}" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
pool) [ $# -eq 3 ] || die "usage: $0 pool DIR POOL"; need; DIR=$2; pool_create "$3" ;;
*) die "usage: $0 start DIR [POOL...] | stop DIR | pool DIR POOL" ;;
esac
