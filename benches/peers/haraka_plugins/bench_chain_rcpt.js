// Chain plugin 3/4 (rcpt): accept recipients of the local domain, as ferrymail's route-local does.
exports.register = function () { this.domain = (process.env.BENCH_DOMAIN || 'bench.test').toLowerCase() }
exports.hook_rcpt = function (next, connection, params) {
    const host = (params[0].host || '').toLowerCase()
    if (host === this.domain) return next(OK)
    next(DENY, 'relay denied')
}
