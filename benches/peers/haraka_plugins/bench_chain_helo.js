// Chain plugin 2/4 (helo/ehlo): refuse an empty or bare-IP name.
exports.register = function () {
    this.register_hook('helo', 'check')
    this.register_hook('ehlo', 'check')
}
exports.check = function (next, connection, helo) {
    if (!helo || /^\d+\.\d+\.\d+\.\d+$/.test(helo)) return next(DENY, 'bad HELO')
    next()
}
