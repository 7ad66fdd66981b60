#!/bin/sh
# The ACME client's loop: the entrypoint of compose's acme service (tls=acme), written by
# `pyserve acme-entrypoint`, in POSIX sh for the lego image (Alpine's busybox).
#
#   1. A certificate for SERVER_NAMES (the names nginx serves) from the CA at ACME_DIRECTORY (Let's
#      Encrypt's unless set), by the http-01 challenge: lego writes a token into ACME_WEBROOT, which
#      nginx serves on port 80, and the CA fetches it from there. The account (ACME_EMAIL its
#      contact, if set) and the certificates stay in LEGO_PATH, a volume: after a restart the one
#      kept there is renewed when due, never asked for again;
#   2. then every ACME_CHECK_INTERVAL seconds (12 hours unless set), `lego renew`: it asks the CA
#      when to renew (ACME Renewal Information, RFC 9773), else renews with a third of the lifetime
#      left (--dynamic). lego's random delay before a renewal is off: it spreads cron jobs that all
#      start on the hour, and this loop starts whenever its container did. ACME_PROFILE asks for
#      one of the CA's certificate profiles (Let's Encrypt's: classic, the default; tlsserver;
#      shortlived, 6 days); a certificate of another profile than the one asked is replaced at once;
#   3. a new certificate is copied into TLS_CERTIFICATE_DIR as tls.key and tls.crt (its chain after
#      it), each written beside its place and renamed into it, readable by nginx's group: nginx
#      serves it within 30 s (templates/tls/policy.conf), with no reload.
#
# A failure (DNS not pointing here yet, the CA out of reach) is logged and tried again after
# ACME_RETRY_INTERVAL seconds (10 minutes unless set: Let's Encrypt allows 5 failed validations of
# a name an hour). lego reads settings of its own: LEGO_CA_CERTIFICATES, the root of a private CA's
# directory; LEGO_EAB, LEGO_EAB_KID and LEGO_EAB_HMAC, for a CA that asks for external account binding.
# https://go-acme.github.io/lego/usage/cli/
set -eu

say() { echo "acme: $*" >&2; }

directory=${ACME_DIRECTORY:-https://acme-v02.api.letsencrypt.org/directory}
webroot=${ACME_WEBROOT:-/srv/acme}
live=${TLS_CERTIFICATE_DIR:-/etc/nginx/tls}
LEGO_PATH=${LEGO_PATH:-/var/lib/lego}
export LEGO_PATH
profile=${ACME_PROFILE:-}
profile_kept="$LEGO_PATH/profile"
check_interval=${ACME_CHECK_INTERVAL:-43200}
retry_interval=${ACME_RETRY_INTERVAL:-600}

for setting in "ACME_CHECK_INTERVAL=$check_interval" "ACME_RETRY_INTERVAL=$retry_interval"; do
    case "${setting#*=}" in
        "" | *[!0-9]* | 0)
            say "${setting%%=*}: '${setting#*=}' is not a whole number of seconds > 0; unset it or give e.g. 600"
            exit 1
            ;;
    esac
done

# The names, as lego's --domains; the certificate is kept under the first one's name.
set --
first=""
set -f
IFS=', '
for name in ${SERVER_NAMES:-}; do
    case "$name" in
        localhost | *.localhost | *[!A-Za-z0-9.-]* | .* | *.)
            say "SERVER_NAMES: '$name' cannot have a certificate from a public CA; give the site's domain names, e.g. SERVER_NAMES=example.com"
            exit 1
            ;;
    esac
    set -- "$@" --domains "$name"
    first=${first:-$name}
done
unset IFS
set +f
if [ -z "$first" ]; then
    say "SERVER_NAMES: not set; give the site's domain names, e.g. SERVER_NAMES=example.com"
    exit 1
fi
if [ -n "${ACME_EMAIL:-}" ]; then
    set -- "$@" --email "$ACME_EMAIL"
fi

lego_with() {
    lego --accept-tos --server "$directory" --http --http.webroot "$webroot" "$@"
}

# The first certificate is obtained; one kept from before is renewed when due, or at once if
# SERVER_NAMES (--force-cert-domains) or ACME_PROFILE has changed since (--days beyond any lifetime).
obtain_or_renew() {
    if [ ! -s "$LEGO_PATH/certificates/$first.crt" ]; then
        lego_with "$@" run ${profile:+--profile "$profile"} || return
    elif [ "$(cat "$profile_kept" 2>/dev/null)" = "$profile" ]; then
        lego_with "$@" renew --dynamic --no-random-sleep --force-cert-domains ${profile:+--profile "$profile"} || return
    else
        lego_with "$@" renew --days 36500 --no-random-sleep --force-cert-domains ${profile:+--profile "$profile"} || return
    fi
    printf '%s' "$profile" >"$profile_kept"
}

install_certificate() {
    kept="$LEGO_PATH/certificates/$first"
    if cmp -s "$kept.crt" "$live/tls.crt"; then
        return
    fi
    umask 027 # 0640: this user's, and nginx's group's to read
    cat "$kept.key" >"$live/.tls.key.new"
    mv -f "$live/.tls.key.new" "$live/tls.key"
    cat "$kept.crt" >"$live/.tls.crt.new"
    mv -f "$live/.tls.crt.new" "$live/tls.crt"
    say "a certificate for ${SERVER_NAMES} is in $live, for nginx"
}

say "names ${SERVER_NAMES}, CA $directory, profile ${profile:-the CA's default}, checked every ${check_interval} s"
while :; do
    if obtain_or_renew "$@"; then
        install_certificate
        sleep "$check_interval"
    else
        say "no certificate this time (lego's lines above say why); trying again in ${retry_interval} s"
        sleep "$retry_interval"
    fi
done
