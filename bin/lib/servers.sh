# bin/lib/servers.sh: what bin/chroma-server and bin/s3-server share to run throw-away test
# servers on 127.0.0.1: a free port, readiness of a socket owned by the server's own process
# group, stopping a process group, and the watchdog that stops a server once its owner is gone.
#
# Sourced, not run. The sourcing script sets NAME (used in log lines and the watchdog's name).

die() { echo "$NAME: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Poll http://127.0.0.1:PORT/PATH until it answers (with status WANT, or any status when WANT is
# `any`) from a socket owned by the server's process group (so a foreign server that happens to
# hold the port is never mistaken for ours). Exit 0 ready, 1 dead, 2 timeout.
# Usage: wait_ready PYTHON PID PORT PATH WANT TIMEOUT_SECONDS
wait_ready() {
    local py=$1 pid=$2 port=$3 path=$4 want=$5 timeout=$6
    "$py" - "$pid" "$port" "$path" "$want" "$timeout" <<'PYEOF'
import os, sys, time, urllib.error, urllib.request
pid, port, path, want, timeout = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

def listening_inodes():
    want = f"0100007F:{port:04X}"
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want and cols[3] == "0A":
                out.add(cols[9])
    return out

def owned_by_group(inodes):
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                pgid = int(f.read().rsplit(")", 1)[1].split()[2])
            if pgid != pid:
                continue
            for fd in os.listdir(f"/proc/{p}/fd"):
                link = os.readlink(f"/proc/{p}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return False

def status():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None

deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if not alive():
        sys.exit(1)
    s = status()
    if s is not None and (want == "any" or str(s) == want) and owned_by_group(listening_inodes()):
        sys.exit(0)
    time.sleep(0.2)
sys.exit(2)
PYEOF
}

# Kill a process group (or a lone process when PID does not lead a group): TERM, then KILL after
# $2 seconds.
kill_group() {
    local pid=$1 grace=$2 target=$1 i
    if [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then target="-$pid"; fi
    kill -TERM -- "$target" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 -- "$target" 2>/dev/null || return 0
        sleep 0.1
    done
    log "process group $pid ignored SIGTERM for ${grace}s; sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
}

# Detached watchdog: once the owner process is gone, kill the server's process group and remove
# its auto-created dir. It ends on its own when the server goes away first (stop, failed start).
# Usage: start_watchdog OWNER_PID SERVER_PID DIR AUTO(0|1)
start_watchdog() {
    local owner=$1 pid=$2 dir=$3 auto=$4
    setsid bash -c '
        owner=$1 pid=$2 dir=$3 auto=$4
        while kill -0 "$owner" 2>/dev/null; do
            kill -0 "$pid" 2>/dev/null || exit 0
            sleep 1
        done
        # The group, or the lone pid if the owner died before setsid ran.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        if [ "$auto" = 1 ]; then sleep 0.5; rm -rf "$dir"; fi
    ' "$NAME-watchdog" "$owner" "$pid" "$dir" "$auto" </dev/null >/dev/null 2>&1 &
}

# True when /proc/$1/cmdline has an argument whose basename is $2 (followed by $3 when given).
cmdline_has() {
    local args=() i
    [[ -r "/proc/$1/cmdline" ]] || return 1
    mapfile -d '' args <"/proc/$1/cmdline" || return 1
    for ((i = 0; i < ${#args[@]}; i++)); do
        if [[ "${args[i]##*/}" == "$2" && ( -z "${3:-}" || "${args[i + 1]:-}" == "$3" ) ]]; then return 0; fi
    done
    return 1
}
