# Sourced by benches/compare.sh and benches/scripts/syscalls.sh: the four
# extra plugins measured in front of ferrymail's default chain (compare.sh's
# `plugins` workload says what each stands for). FM_PLUGINS_CHAIN is a
# top-level line, FM_PLUGINS_TABLES goes after every other table.
# shellcheck disable=SC2034 # used by the scripts that source this file
FM_PLUGINS_CHAIN='chain = ["rate-limit", "rcpt-check", "size-limit", "header-filter", "@tenant", "auth", "local", "relay", "vrfy-expn", "retry"]'
FM_PLUGINS_TABLES='[plugins.rate-limit]
path = "builtin:rate-limit"
config = { max = 1000000000000, window = "1h" }
[plugins.rcpt-check]
path = "builtin:relay"
[plugins.size-limit]
path = "builtin:header-filter"
config = { max_size = 10485760, stamp = "" }
[plugins.header-filter]
path = "builtin:header-filter"
config = { deny = [{ header = "Subject", contains = "bench-never-matches" }], stamp = "X-Bench-Chain" }'
