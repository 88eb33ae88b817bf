#!/usr/bin/env bash
# make bench: run the benchmarks, each beside the baseline measured in the
# same run, and write their figures to BENCH.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bench
raw=.bench/raw.txt
: > "$raw"
# Disk-backed temp dir: write benchmarks fsync, tmpfs would flatter them.
export TMPDIR="$PWD/.bench/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"

run() { # package, benchmark regexp, benchtime
	echo "== go test $1 -bench '$2' -benchtime $3" >&2
	go test -run '^$' -bench "$2" -benchtime "$3" -benchmem "$1" | tee -a "$raw" >&2
}

run ./store 'Do|BoltUpdate|BoltBatch' 3s
run ./store 'Read|EachActiveKey' 1s
run ./app 'UsageIngest10k|DesiredSet10k' 5x
run ./app 'KeyConfig|KeyQR' 1s
run ./app/node 'Startup' 3x
run ./store/cache 'GetHit|GetOrCompute' 1s
run ./web 'MiddlewareOverhead|HandlerInProcess' 1s
run ./app/logging 'Handler|Handle' 1s
run ./app/egress 'Check$|Dial' 1s
run ./store/keyring 'Seal|Open|VerifySecret|Encrypt|Decrypt' 1s
run ./app/backup 'Backup' 1x
run ./web/api 'APILoad' 20000x
# wrk (Debian wrk) against the API and a bare handler, each in its own
# process, taking turns: 5 rounds of 2 s each (skipped without wrk).
run ./web/api 'APIWrk' 5x
run ./app/pay 'PaymentUpdates' 400x
run ./app/bot 'BotUpdates|BotHandler' 400x
run ./app/notify 'BroadcastPlanner' 5x
run ./vpn/outline 'Trial|KeySearch' 1s
# Throughput (32 KiB writes) and connections/s: the servers take turns in
# 10 rounds; a fixed count keeps each round long enough to measure.
run ./vpn/outline 'Throughput' 4000x
run ./vpn/outline 'Connections' 3000x
run ./proxy/mtproto 'Relay|Connect|Search' 1s
# Idle connections: the clients and the DC run in helper processes; one round.
# (mtg, for a side-by-side row, is not served by the module proxy here.)
run ./proxy/mtproto 'IdleMemory' 1x
run ./vpn/wireguard 'TCPDownload|TCPConnect|Install10k' 1x
run ./vpn/wireguard 'TunMode' 500x
run ./vpn/wireguard 'NetstackMode' 640x
# Where the netstack server's time goes: a CPU profile of one long download.
go test -run '^$' -bench 'KernelClient/usipipo' -benchtime 1000x -cpuprofile .bench/netstack.prof -o .bench/wireguard.test ./vpn/wireguard >&2
go tool pprof -top -cum -nodecount=400 .bench/wireguard.test .bench/netstack.prof > .bench/netstack-pprof.txt 2>/dev/null

go run ./scripts/benchreport -pprof .bench/netstack-pprof.txt < "$raw" > BENCH.md
echo "wrote BENCH.md" >&2
