#!/bin/sh
# How the nginx container starts (the image's ENTRYPOINT, written by `pyserve nginx-entrypoint`),
# in POSIX sh: the official nginx image (Alpine's busybox) and a Debian one both run it.
#
#   1. templates/ are rendered into conf.d/ under the writable prefix, with envsubst for this
#      project's placeholders only: nginx's own $variables are left alone. LOG_FORMAT (json, the
#      default, or text) names the access line's format; WS_CONNECTIONS (0 unless set) sizes the
#      connections each worker may hold; TRUSTED_PROXIES (addresses or CIDR ranges, separated by
#      spaces or commas; none unless set) names the proxies whose X-Forwarded-* nginx believes
#      (templates/forwarded.conf.template); TLS (none, the default; acme or files) says whether
#      nginx itself serves HTTPS: only then are templates/tls/ rendered, the site moves to
#      TLS_LISTEN_ADDRESS with HTTP/2, and LISTEN_ADDRESS answers the ACME challenge and redirects
#      the rest to https (on HTTPS_PORT, the port clients reach, 443 unless set);
#   2. RESOLVER, unless set, is the first nameserver in /etc/resolv.conf: whatever DNS the engine
#      gives this container (Docker's 127.0.0.11, podman's aardvark-dns on the network's gateway,
#      the cluster DNS on Kubernetes), so compose's `app` is found per request on every engine;
#   3. worker_processes is one per CPU of this container's CPU quota (cgroup v2 cpu.max, v1
#      cpu.cfs_quota_us), never more than the CPUs it may run on. nginx's own `auto` counts the
#      host's CPUs, which in a 1-CPU container on a 64-core host means 64 workers fighting over one
#      CPU's time. NGINX_WORKER_PROCESSES, when set, wins;
#   4. the config is checked (nginx -t), then nginx replaces this script (exec), so the stop signal
#      (SIGQUIT: finish the responses being sent) reaches nginx itself. `start.sh check` stops after
#      the check, exiting with its status: `pyserve deploy` asks a new image so before it goes live.
#      `start.sh digest` prints one line that changes when what the image serves does (its config,
#      this script, the static files) and only then: `pyserve deploy` replaces a running nginx only
#      when its line differs, as some builders (podman's) make a new image of the same files.
#
# The image's own entrypoint scripts (/docker-entrypoint.d/) are not used: they render every
# variable into a conf.d/ that must be writable in place, and know neither the quota nor podman's DNS.
set -eu

mode=${1:-serve}
case "$mode" in
    serve | check | digest) ;;
    *)
        echo "nginx-start: '$mode' is not one of serve, check, digest" >&2
        exit 2
        ;;
esac

conf=${NGINX_CONF_DIR:-/etc/nginx}        # nginx.conf and templates/, as the image ships them
prefix=${NGINX_PREFIX:-/var/cache/nginx}  # writable (tmpfs): the rendered config, pid, temp files
if [ "$mode" = digest ]; then
    # The certificates (tls/, a volume) are not the image's; a missing static directory lists nothing.
    find "$conf" "${STATIC_PARENT:-/srv}/static" -path "$conf/tls" -prune -o -type f -exec md5sum {} + 2>/dev/null \
        | sort | md5sum
    exit 0
fi
placeholders='${APP_UPSTREAM} ${APP_TARGET} ${RESOLVER} ${LISTEN_ADDRESS} ${REQUEST_TIMEOUT} ${SERVER_NAMES} ${STATIC_PARENT} ${LOG_FORMAT} ${NGINX_WORKER_CONNECTIONS} ${NGINX_OPEN_FILES} ${NGINX_SET_REAL_IP_FROM} ${NGINX_TRUSTED_PROXY_RANGES} ${NGINX_SITE_LISTEN} ${TLS_LISTEN_ADDRESS} ${TLS_CERTIFICATE_DIR} ${NGINX_HTTPS_PORT_SUFFIX}'

say() { echo "nginx-start: $*" >&2; }

first_nameserver() {
    awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null
}

# The CPU quota in whole CPUs, rounded up; nothing when there is none.
quota_cpus() {
    quota="" period=""
    if [ -r /sys/fs/cgroup/cpu.max ]; then
        read -r quota period </sys/fs/cgroup/cpu.max
    else
        for dir in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do
            if [ -r "$dir/cpu.cfs_quota_us" ]; then
                quota=$(cat "$dir/cpu.cfs_quota_us") period=$(cat "$dir/cpu.cfs_period_us")
                break
            fi
        done
    fi
    case "$quota" in
        "" | max | -1) ;;
        *) echo $(((quota + period - 1) / period)) ;;
    esac
}

worker_processes() {
    if [ -n "${NGINX_WORKER_PROCESSES:-}" ]; then
        echo "$NGINX_WORKER_PROCESSES"
        return
    fi
    cpus=$(nproc)
    quota=$(quota_cpus)
    if [ -n "$quota" ] && [ "$quota" -lt "$cpus" ]; then
        cpus=$quota
    fi
    if [ "$cpus" -lt 1 ]; then
        cpus=1
    fi
    echo "$cpus"
}

# The access line's format (nginx.conf's log_format): json or text.
LOG_FORMAT=${LOG_FORMAT:-json}
case "$LOG_FORMAT" in
    json | text) export LOG_FORMAT ;;
    *)
        say "LOG_FORMAT: '$LOG_FORMAT' is not one of json, text"
        exit 1
        ;;
esac

# Connections per worker (templates/main/connections.conf): the app's and the client's for each
# WebSocket expected (WS_CONNECTIONS, which the app's plan counts too), and a base for the rest.
# The formula is tuning/nginx.py's nginx_connections(), which `pyserve local` renders with; this
# image has no Python, and the template's tests hold the two renders equal.
BASE_CONNECTIONS=4096
WS_CONNECTIONS=${WS_CONNECTIONS:-0}
case "$WS_CONNECTIONS" in
    "" | *[!0-9]*)
        say "WS_CONNECTIONS: '$WS_CONNECTIONS' is not a whole number; unset it or give e.g. 1000"
        exit 1
        ;;
esac
NGINX_WORKER_CONNECTIONS=$((BASE_CONNECTIONS + 2 * WS_CONNECTIONS))
NGINX_OPEN_FILES=$((2 * NGINX_WORKER_CONNECTIONS))
export NGINX_WORKER_CONNECTIONS NGINX_OPEN_FILES

# The proxies in front whose X-Forwarded-* nginx believes: a set_real_ip_from line and a geo entry
# each. Anything but an address or a CIDR range is refused here, in one line, not by nginx -t.
NGINX_SET_REAL_IP_FROM="" NGINX_TRUSTED_PROXY_RANGES=""
set -f # an entry such as * is refused below, not expanded into file names
IFS=', '
for proxy in ${TRUSTED_PROXIES:-}; do
    case "$proxy" in
        "") continue ;;
        *[!0-9A-Fa-f.:/]* | */*/* | /* | */)
            say "TRUSTED_PROXIES: '$proxy' is not an IP address or CIDR range; give e.g. 10.0.0.0/8, or leave it unset"
            exit 1
            ;;
    esac
    NGINX_SET_REAL_IP_FROM="${NGINX_SET_REAL_IP_FROM}${NGINX_SET_REAL_IP_FROM:+
}set_real_ip_from $proxy;"
    NGINX_TRUSTED_PROXY_RANGES="${NGINX_TRUSTED_PROXY_RANGES}${NGINX_TRUSTED_PROXY_RANGES:+
}    $proxy 1;"
done
unset IFS
set +f
export NGINX_SET_REAL_IP_FROM NGINX_TRUSTED_PROXY_RANGES

# Who serves HTTPS: nginx here (acme: the certificate an ACME client keeps in TLS_CERTIFICATE_DIR;
# files: one mounted there), or something in front of it (none: the site is served on LISTEN_ADDRESS).
TLS=${TLS:-none}
case "$TLS" in
    none) NGINX_SITE_LISTEN="listen $LISTEN_ADDRESS;" ;;
    acme | files)
        NGINX_SITE_LISTEN="listen ${TLS_LISTEN_ADDRESS:=8443} ssl;
    http2 on;"
        : "${TLS_CERTIFICATE_DIR:=/etc/nginx/tls}"
        case "${HTTPS_PORT:=443}" in
            443) NGINX_HTTPS_PORT_SUFFIX="" ;;
            "" | *[!0-9]*)
                say "HTTPS_PORT: '$HTTPS_PORT' is not a port number; give the port clients reach HTTPS on, e.g. 443"
                exit 1
                ;;
            *) NGINX_HTTPS_PORT_SUFFIX=":$HTTPS_PORT" ;;
        esac
        export TLS_LISTEN_ADDRESS TLS_CERTIFICATE_DIR NGINX_HTTPS_PORT_SUFFIX
        ;;
    *)
        say "TLS: '$TLS' is not one of none, acme, files"
        exit 1
        ;;
esac
export NGINX_SITE_LISTEN

if [ -z "${RESOLVER:-}" ]; then
    RESOLVER=$(first_nameserver)
    RESOLVER=${RESOLVER:-127.0.0.11}
fi
case "$RESOLVER" in
    *:*:*) RESOLVER="[$RESOLVER]" ;; # an IPv6 address needs brackets in nginx's resolver
esac
export RESOLVER

rm -rf "$prefix/conf.d"
cp "$conf/nginx.conf" "$prefix/nginx.conf"
(cd "$conf/templates" && find . -name '*.template') | while read -r template; do
    case "$TLS:$template" in
        none:./tls/*) continue ;;
    esac
    target="$prefix/conf.d/${template%.template}"
    mkdir -p "$(dirname "$target")"
    envsubst "$placeholders" <"$conf/templates/$template" >"$target"
done

workers=$(worker_processes)
say "worker_processes $workers, worker_connections $NGINX_WORKER_CONNECTIONS, resolver $RESOLVER, app $APP_TARGET ($APP_UPSTREAM), trusted proxies ${TRUSTED_PROXIES:-none}, tls $TLS"
set -- -p "$prefix/" -c "$prefix/nginx.conf" -e stderr -g "daemon off; worker_processes $workers;"
nginx "$@" -t -q
if [ "$mode" = check ]; then
    say "the config is valid"
    exit 0
fi
exec nginx "$@"
