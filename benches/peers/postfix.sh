#!/usr/bin/env bash
# Postfix peer for benches/compare.sh (adapted from shared/bench/postfix_ctl.sh).
# Usage: postfix.sh setup|start|stop|wait-idle|clean-maildirs|purge-hold|queue-count|maildir-count
# env: BENCH_PF_PORT (2525) BENCH_PF_HOLD_PORT (2527) BENCH_SINK_PORT (2599) BENCH_DOMAIN (bench.test)
# Listeners: 2525 = queue + local(8) Maildir delivery; 2527 = accept, fsync, park in
# hold (pure acceptance). Mail for sink.test is relayed to smtp-sink on BENCH_SINK_PORT;
# everything else non-local bounces (default_transport = error): nothing leaves the box.
set -euo pipefail
PORT=${BENCH_PF_PORT:-2525}; HOLD_PORT=${BENCH_PF_HOLD_PORT:-2527}; SINK_PORT=${BENCH_SINK_PORT:-2599}
DOMAIN=${BENCH_DOMAIN:-bench.test}
USERS="bench1 bench2 bench3 bench4 imap10k"
SPOOL=/var/spool/postfix
qcount() { { find $SPOOL/incoming $SPOOL/active $SPOOL/deferred $SPOOL/maildrop -type f 2>/dev/null || true; } | wc -l; }
running() { postfix status >/dev/null 2>&1; }
case "${1:-}" in
  setup)
    if ! command -v postfix >/dev/null || ! command -v smtp-source >/dev/null; then
      echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
      echo "postfix postfix/mailname string $DOMAIN" | debconf-set-selections
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix
    fi
    # Installed with debconf's "No configuration" there is no main.cf to edit.
    [ -f /etc/postfix/main.cf ] || cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
    for u in $USERS; do id "$u" >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin "$u"; done
    postconf -e "myhostname = mx.$DOMAIN" "mydestination = $DOMAIN, localhost" 'home_mailbox = Maildir/' \
      'smtpd_peername_lookup = no' 'smtp_dns_support_level = disabled' 'inet_protocols = ipv4' \
      'inet_interfaces = loopback-only' 'default_transport = error' 'relay_transport = error' 'relayhost =' \
      'smtpd_tls_security_level = none' 'smtp_tls_security_level = none' 'message_size_limit = 52428800' \
      'mailbox_size_limit = 0' \
      'maillog_file = /var/log/postfix.log' 'bench_hold_restrictions = check_client_access static:HOLD' \
      "transport_maps = inline:{ sink.test=smtp:[127.0.0.1]:$SINK_PORT }" 'mynetworks = 127.0.0.0/8'
    postconf -M# smtp/inet 2>/dev/null || true
    postconf -M "127.0.0.1:$PORT/inet=127.0.0.1:$PORT inet n - n - - smtpd"
    postconf -M "127.0.0.1:$HOLD_PORT/inet=127.0.0.1:$HOLD_PORT inet n - n - - smtpd"
    postconf -P "127.0.0.1:$HOLD_PORT/inet/smtpd_client_restrictions=\$bench_hold_restrictions"
    postconf -F '*/*/chroot = n'
    newaliases; postfix check;;
  start) if running; then postfix reload >/dev/null 2>&1; else postfix start >/dev/null 2>&1; fi
         for _ in $(seq 1 50); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.2; done;;
  stop) if running; then postfix stop >/dev/null 2>&1; fi;;
  pid) tr -d ' ' < $SPOOL/pid/master.pid;;
  queue-count) qcount;;
  wait-idle) for _ in $(seq 1 1200); do [ "$(qcount)" -eq 0 ] && exit 0; sleep 0.5; done; echo "postfix queue not idle" >&2; exit 1;;
  clean-maildirs)
    for u in ${2:-bench1 bench2 bench3 bench4}; do d=$(getent passwd "$u" | cut -d: -f6)/Maildir
      for s in new cur tmp; do if [ -d "$d/$s" ]; then find "$d/$s" -type f -delete; fi; done; done;;
  maildir-count) d=$(getent passwd "$2" | cut -d: -f6)/Maildir; { find "$d/new" "$d/cur" -type f 2>/dev/null || true; } | wc -l;;
  # Messages relayed to smtp-sink so far (monotonic: counted from the log).
  sent-count) grep -c "relay=127.0.0.1\[127.0.0.1\]:$SINK_PORT.*status=sent" /var/log/postfix.log || true;;
  purge-hold) postsuper -d ALL hold 2>&1 | grep -v '^$' || true;;
  *) echo "usage: $0 setup|start|stop|pid|wait-idle|clean-maildirs [users]|maildir-count USER|sent-count|purge-hold|queue-count"; exit 2;;
esac
