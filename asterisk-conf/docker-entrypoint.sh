#!/bin/sh
# The container's start: the same configuration `ivr asterisk up` writes into the chroot.
# /config/asterisk-conf and /config/dialplan are the repository's folders (mounted read-only);
# the generated/ files come from the IVR_* environment, byte for byte as
# ivr/provision/asterisk.py writes them (keep the two in step).
set -eu
CONF_SRC=${CONF_SRC:-/config/asterisk-conf}
DIALPLAN_SRC=${DIALPLAN_SRC:-/config/dialplan}
ETC=${ASTERISK_ETC:-/etc/asterisk}

need() { eval "v=\${$1:-}"; [ -n "$v" ] || { echo "docker-entrypoint: set $1" >&2; exit 64; }; }
for var in IVR_ARI_USER IVR_ARI_PASSWORD IVR_SOFTPHONE_USER IVR_SOFTPHONE_PASSWORD; do need $var; done
# The address settings (docs/deploy.md) are written by ivr/provision/asterisk_conf.py only, for
# now: refuse them rather than start on loopback while the operator expects otherwise.
for var in IVR_SIP_BIND IVR_SIP_EXTERNAL_ADDRESS IVR_RTP_ADDRESS IVR_RTP_EXTERNAL_ADDRESS \
    IVR_LOCAL_NET IVR_RTP_PORTS IVR_ARI_BIND IVR_ARI_TLS_BIND IVR_ARI_TLS_CERT IVR_ARI_TLS_KEY; do
  eval "v=\${$var:-}"
  [ -z "$v" ] || { echo "docker-entrypoint: $var is not supported in the container yet (docs/deploy.md)" >&2; exit 64; }
done
ARI_URL=${IVR_ARI_URL:-http://127.0.0.1:8088}
APP=${IVR_ARI_APP:-ivr}
SIP_PORT=${IVR_SIP_PORT:-5060}
HTTP=${IVR_PUBLIC_URL:-http://127.0.0.1:8080}
hostport=${ARI_URL#*://}; hostport=${hostport%%/*}
case $hostport in *:*) ARI_PORT=${hostport##*:} ;; *) ARI_PORT=8088 ;; esac
esc() { printf '%s' "$1" | sed 's/;/\\;/g'; }  # ';' starts a comment in Asterisk's files

umask 027
rm -rf "$ETC/generated" "$ETC/dialplan"
mkdir -p "$ETC/generated" "$ETC/dialplan"
cp "$CONF_SRC"/*.conf "$ETC/"
if ls "$DIALPLAN_SRC"/*.conf >/dev/null 2>&1; then cp "$DIALPLAN_SRC"/*.conf "$ETC/dialplan/"; fi

G="$ETC/generated"
HEAD="; Generated from the IVR_* settings; not kept in git."
printf '%s\nbindaddr = 127.0.0.1\nbindport = %s\n' "$HEAD" "$ARI_PORT" > "$G/http_bind.conf"
printf '%s\n[%s]\ntype = user\nread_only = no\npassword_format = plain\npassword = %s\n' \
  "$HEAD" "$IVR_ARI_USER" "$(esc "$IVR_ARI_PASSWORD")" > "$G/ari_users.conf"
printf '%s\n[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:%s\n\n; The loopback trunk and the load generator call this very Asterisk.\n[ivr-loopback]\ntype = aor\ncontact = sip:127.0.0.1:%s\n\n[loadgen-out]\ntype = aor\ncontact = sip:127.0.0.1:%s\n' \
  "$HEAD" "$SIP_PORT" "$SIP_PORT" "$SIP_PORT" > "$G/pjsip_local.conf"
U=$IVR_SOFTPHONE_USER
printf '%s\n[%s](softphone-endpoint)\nauth = %s\naors = %s\n\n[%s]\ntype = auth\nauth_type = userpass\nusername = %s\npassword = %s\n\n[%s](softphone-aor)\n' \
  "$HEAD" "$U" "$U" "$U" "$U" "$U" "$(esc "$IVR_SOFTPHONE_PASSWORD")" "$U" > "$G/pjsip_accounts.conf"
printf '%s\nIVR_APP = %s\nIVR_SHARDS = 1\nIVR_HTTP = %s\n' "$HEAD" "$APP" "$(esc "$HTTP")" > "$G/extensions_globals.conf"
chown -R root:asterisk "$ETC" 2>/dev/null || true

[ "${IVR_RENDER_ONLY:-}" = "1" ] && exit 0
mkdir -p /var/spool/asterisk/recording /var/run/asterisk
chown -R asterisk:asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk \
  /var/run/asterisk /var/cache/asterisk
exec asterisk -f -U asterisk -G asterisk "$@"
