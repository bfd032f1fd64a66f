#!/usr/bin/env bash
# Copy benchmark: regflow copy vs crane copy vs skopeo copy --all, between two loopback
# Distribution registries (Debian docker-registry), same registries for all three tools.
#
# Image: PLATFORMS platform images × LAYERS layers × LAYER_SIZE random (incompressible) bytes
# in gzip streams. With REFERRERS=1 it also gets a signature, an SBOM (OCI subject) and a cosign
# .sig tag, which only regflow copies (so the comparison is then no longer like for like).
# Each timed run starts from a wiped, restarted destination registry and a wiped skopeo
# blob-info cache; the tools run interleaved (the order rotates every run); medians are reported.
#
# MODE=wan puts bench/cmd/wanproxy (LATENCY, default 25ms, added to every request) in front of
# both registries, uses an image of mixed layers (LAYER_SIZES, default 20x100Ki,8x5Mi,2x50Mi per
# platform) and reports the requests each tool sent per blob, counted at the proxies.
#
# Environment: MODE (loopback), RUNS (5), PLATFORMS (2), LAYERS (10 per platform), LAYER_SIZE (10 MiB), REFERRERS (0),
# REGFLOW_COPY (command taking SRC DST; default: bench/cmd/regflow-copy, built here),
# REGFLOW_JOBS (passed as --jobs to the default command), STRICT=1 (exit 1 when a goal is missed).
set -euo pipefail

MODE=${MODE:-loopback}
RUNS=${RUNS:-5}
PLATFORMS=${PLATFORMS:-2}
LAYERS=${LAYERS:-10}
LAYER_SIZE=${LAYER_SIZE:-$((10 * 1024 * 1024))}
LATENCY=${LATENCY:-25ms}
case $MODE in
loopback) LAYER_SIZES=${LAYER_SIZES:-}; GOAL=0.95 ;;
wan) LAYER_SIZES=${LAYER_SIZES:-20x100Ki,8x5Mi,2x50Mi}; GOAL=0.70 ;;
*) echo "bench/copy.sh: MODE must be loopback or wan, not $MODE" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRANE_VERSION=v0.22.1

log() { printf '%s\n' "$*" >&2; }
die() { log "bench/copy.sh: $*"; exit 1; }

WORK=$(mktemp -d /dev/shm/regflow-bench.XXXXXX 2>/dev/null || mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${missing[*]} (Debian packages)"
		apt-get install -y "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
	else
		die "need ${missing[*]}: apt-get install -y ${missing[*]}"
	fi
fi
CRANE=$ROOT/.tools/bin/crane
if [ ! -x "$CRANE" ]; then
	log "installing crane $CRANE_VERSION into .tools/bin"
	GOBIN=$ROOT/.tools/bin go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi
mkdir -p "$WORK/bin"
(cd "$ROOT" && go build -trimpath -o "$WORK/bin/regflow-copy" ./bench/cmd/regflow-copy && go build -o "$WORK/bin/benchimage" ./bench/cmd/benchimage && go build -o "$WORK/bin/wanproxy" ./bench/cmd/wanproxy)
if [ -z "${REGFLOW_COPY:-}" ]; then
	REGFLOW_COPY="$WORK/bin/regflow-copy${REGFLOW_JOBS:+ --jobs $REGFLOW_JOBS}"
fi

# --- registries ----------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SRC_PORT=$(free_port)
DST_PORT=$(free_port)
SRC=127.0.0.1:$SRC_PORT
DST=127.0.0.1:$DST_PORT
# The tools reach the registries at SRC_VIA and DST_VIA: the registries themselves, or the WAN proxies.
SRC_VIA=$SRC
DST_VIA=$DST

registry_config() { # dir port
	cat <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $1
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$2
EOF
}

wait_ready() { # host
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null "http://$1/v2/" 2>/dev/null && return 0
		sleep 0.05
	done
	die "registry $1 did not start"
}

start_registry() { # name port -> sets <name>_PID
	local name=$1 port=$2
	rm -rf "${WORK:?}/$name" && mkdir -p "$WORK/$name/data"
	registry_config "$WORK/$name/data" "$port" >"$WORK/$name/config.yml"
	docker-registry serve "$WORK/$name/config.yml" >>"$WORK/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	printf -v "${name}_PID" '%s' "$pid"
	wait_ready "127.0.0.1:$port"
}

stop_registry() { # pid
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

reset_destination() {
	stop_registry "$dst_PID"
	: >"$WORK/dst.log"
	start_registry dst "$DST_PORT"
	rm -rf /var/lib/containers/cache/* "${HOME:-/root}/.local/share/containers/cache/"* 2>/dev/null || true
}

# Uploads the destination registry saw, from its access log (a PATCH or PUT to an upload sends a blob body).
uploads_seen() { grep -cE '"(PATCH|PUT) /v2/[^ ]*/blobs/uploads/' "$WORK/dst.log" || true; }

digest_of() { # host/repo:tag
	local host=${1%%/*} rest=${1#*/}
	curl -fsSI -H 'Accept: application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json' \
		"http://$host/v2/${rest%%:*}/manifests/${rest##*:}" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

start_registry src "$SRC_PORT"
start_registry dst "$DST_PORT"
if [ "$MODE" = wan ]; then
	SRC_VIA=127.0.0.1:$(free_port)
	DST_VIA=127.0.0.1:$(free_port)
	"$WORK/bin/wanproxy" -listen "$SRC_VIA" -backend "$SRC" -latency "$LATENCY" >>"$WORK/wanproxy.log" 2>&1 &
	PIDS+=("$!")
	"$WORK/bin/wanproxy" -listen "$DST_VIA" -backend "$DST" -latency "$LATENCY" >>"$WORK/wanproxy.log" 2>&1 &
	PIDS+=("$!")
	wait_ready "$SRC_VIA"
	wait_ready "$DST_VIA"
fi

# Requests both proxies saw since the last call, as "<total> <blob requests>" (blob GET/HEAD and uploads).
proxy_counts() {
	[ "$MODE" = wan ] || { echo "- -"; return; }
	{ curl -fsS "http://$SRC_VIA/_wanproxy/counts?reset=1"; echo; curl -fsS "http://$DST_VIA/_wanproxy/counts?reset=1"; echo; } |
		python3 -c 'import json,sys
t=b=0
for line in sys.stdin:
    if not line.strip(): continue
    for k,v in json.loads(line).items():
        t+=v
        if k.endswith(" blob") or k.endswith(" upload"): b+=v
print(t,b)'
}

TAG=$(printf 'regflow-bench-%s' "$LAYERS" | sha1sum | cut -c1-40)
IMAGE=bench/app:$TAG
if [ -n "$LAYER_SIZES" ]; then
	NLAYERS=$(echo "$LAYER_SIZES" | tr ',' '\n' | awk -Fx '{n+=$1} END{print n}')
	SHAPE="$PLATFORMS platforms × ($LAYER_SIZES) layers"
else
	NLAYERS=$LAYERS
	SHAPE="$PLATFORMS platforms × $LAYERS layers × $((LAYER_SIZE / 1024 / 1024)) MiB"
fi
NBLOBS=$((PLATFORMS * (NLAYERS + 1))) # layers and a config per platform image
log "pushing $SHAPE to $SRC"
SRC_DIGEST=$("$WORK/bin/benchimage" -ref "$SRC/$IMAGE" -platforms "$PLATFORMS" -layers "$LAYERS" -layer-size "$LAYER_SIZE" -layer-sizes "$LAYER_SIZES" \
	-referrers="$([ "${REFERRERS:-0}" = 1 ] && echo true || echo false)")

# skopeo 1.9's --preserve-digests refuses this OCI index ("must be converted"), so it is not
# passed; the digest check after every run shows skopeo kept the digest anyway.
SKOPEO_FLAGS=(--all --src-tls-verify=false --dest-tls-verify=false)

# CPU seconds a process has used so far (user + system).
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

run_tool() { # tool -> prints "<seconds> <maxrss KiB> <tool cpu s> <registries cpu s> <requests> <blob requests>"
	local cmd
	case $1 in
	regflow) cmd="$REGFLOW_COPY $SRC_VIA/$IMAGE $DST_VIA/bench/app" ;;
	crane) cmd="$CRANE copy $SRC_VIA/$IMAGE $DST_VIA/$IMAGE" ;;
	skopeo) cmd="skopeo copy ${SKOPEO_FLAGS[*]} docker://$SRC_VIA/$IMAGE docker://$DST_VIA/$IMAGE" ;;
	esac
	local t0 t1 r0 r1
	r0=$(awk -v a="$(proc_cpu "$src_PID")" -v b="$(proc_cpu "$dst_PID")" 'BEGIN{print a+b}')
	proxy_counts >/dev/null
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	/usr/bin/time -f '%M %U %S' -o "$WORK/rss" $cmd >"$WORK/$1.out" 2>"$WORK/$1.err" || { cat "$WORK/$1.err" >&2; die "$1 failed"; }
	t1=$(date +%s%N)
	r1=$(awk -v a="$(proc_cpu "$src_PID")" -v b="$(proc_cpu "$dst_PID")" 'BEGIN{print a+b}')
	local reqs
	reqs=$(proxy_counts)
	local got
	got=$(digest_of "$DST/$IMAGE")
	[ "$got" = "$SRC_DIGEST" ] || die "$1 left $DST/$IMAGE at '$got', want $SRC_DIGEST"
	read -r rss usr sys <"$WORK/rss"
	printf '%s %s %s %s %s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')" "$rss" \
		"$(awk -v u="$usr" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')" "$(awk -v a="$r0" -v b="$r1" 'BEGIN{printf "%.2f", b-a}')" "$reqs"
}

TOOLS=(regflow crane skopeo)
declare -A TIMES RSS CPU REGCPU REQS BLOBREQS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 0; i < RUNS; i++)); do
	for ((k = 0; k < ${#TOOLS[@]}; k++)); do
		tool=${TOOLS[$(((i + k) % ${#TOOLS[@]}))]}
		reset_destination
		read -r secs rss cpu regcpu reqs blobreqs < <(run_tool "$tool")
		[ -n "${regcpu:-}" ] || die "$tool run failed"
		TIMES[$tool]+="$secs "
		RSS[$tool]+="$rss "
		CPU[$tool]+="$cpu "
		REGCPU[$tool]+="$regcpu "
		REQS[$tool]=$reqs
		BLOBREQS[$tool]=$blobreqs
		log "run $((i + 1))/$RUNS $tool: ${secs}s, peak RSS $((rss / 1024)) MiB, CPU ${cpu}s (registries ${regcpu}s), requests $reqs (blob $blobreqs)"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

# Re-promotion: copy onto a destination that already has everything.
reset_destination
run_tool regflow >/dev/null
before=$(uploads_seen)
read -r resecs _ _ _ rereqs _ < <(run_tool regflow)
after=$(uploads_seen)
rebytes=$(awk -F': ' '/"bytesMoved"/{gsub(/,/,"",$2); print $2}' "$WORK/regflow.out")
reuploads=$((after - before))

if [ "$MODE" = wan ]; then
	WHERE="two loopback docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?') behind wanproxy (+$LATENCY per request)"
else
	WHERE="two loopback docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"
fi
printf '\n[%s] Copy of %s (%s, %d blobs%s) between %s, %d runs each, interleaved, fresh destination per run\n' \
	"$MODE" "$SRC_DIGEST" "$SHAPE" "$NBLOBS" \
	"$([ "${REFERRERS:-0}" = 1 ] && echo ', plus signature, SBOM and cosign .sig that only regflow copies')" \
	"$WHERE" "$RUNS"
printf 'machine: %s cores, load average %s before the runs, %s after (other work on the machine slows every tool)\n' \
	"$(nproc)" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %9s %7s %14s %11s %16s %9s %14s   %s\n' tool median_s best_s median_rss_MiB tool_cpu_s registries_cpu_s requests blob_req/blob runs_s
declare -A MED BEST MEDRSS
for tool in "${TOOLS[@]}"; do
	MED[$tool]=$(echo "${TIMES[$tool]}" | median)
	BEST[$tool]=$(echo "${TIMES[$tool]}" | tr ' ' '\n' | grep -v '^$' | sort -g | head -1)
	MEDRSS[$tool]=$(echo "${RSS[$tool]}" | median)
	printf '%-8s %9.3f %7.3f %14.1f %11.2f %16.2f %9s %14s   %s\n' "$tool" "${MED[$tool]}" "${BEST[$tool]}" "$(awk -v k="${MEDRSS[$tool]}" 'BEGIN{print k/1024}')" \
		"$(echo "${CPU[$tool]}" | median)" "$(echo "${REGCPU[$tool]}" | median)" "${REQS[$tool]}" \
		"$(awk -v r="${BLOBREQS[$tool]}" -v n="$NBLOBS" 'BEGIN{ if (r == "-") print "-"; else printf "%.2f", r/n }')" "${TIMES[$tool]}"
done
peak=$(echo "${RSS[regflow]}" | tr ' ' '\n' | sort -n | tail -1)
r_crane=$(awk -v a="${MED[regflow]}" -v b="${MED[crane]}" 'BEGIN{printf "%.2f", a/b}')
r_skopeo=$(awk -v a="${MED[regflow]}" -v b="${MED[skopeo]}" 'BEGIN{printf "%.2f", a/b}')
ok() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
g1=$(awk -v r="$r_crane" -v g="$GOAL" 'BEGIN{print (r <= g)}')
g2=$([ "${rebytes:-x}" = 0 ] && [ "$reuploads" = 0 ] && echo 1 || echo 0)
g3=$(awk -v k="$peak" 'BEGIN{print (k <= 64*1024)}')
printf 'ratio regflow/crane  = %s (goal <= %s: %s)\n' "$r_crane" "$GOAL" "$(ok "$g1")"
printf 'ratio regflow/skopeo = %s\n' "$r_skopeo"
printf 'ratio of best runs (least disturbed by other work): regflow/crane = %s, regflow/skopeo = %s\n' \
	"$(awk -v a="${BEST[regflow]}" -v b="${BEST[crane]}" 'BEGIN{printf "%.2f", a/b}')" "$(awk -v a="${BEST[regflow]}" -v b="${BEST[skopeo]}" 'BEGIN{printf "%.2f", a/b}')"
printf 're-promotion: %s blob bytes moved (Result.BytesMoved), %d blob uploads seen by the target, %ss, %s requests (goal 0 bytes: %s)\n' \
	"${rebytes:-?}" "$reuploads" "$resecs" "${rereqs:--}" "$(ok "$g2")"
printf 'regflow peak RSS (max of %d runs) = %.1f MiB (goal <= 64 MiB: %s)\n' "$RUNS" "$(awk -v k="$peak" 'BEGIN{print k/1024}')" "$(ok "$g3")"
if [ "${STRICT:-0}" = 1 ] && [ "$g1$g2$g3" != 111 ]; then exit 1; fi
