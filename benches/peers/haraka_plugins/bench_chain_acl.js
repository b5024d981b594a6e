// Chain plugin 1/4 (connect): relay ACL, as ferrymail's relay-acl plugin does.
exports.register = function () { this.register_hook('connect', 'acl') }
exports.acl = function (next, connection) {
    const ip = connection.remote.ip || ''
    if (ip.startsWith('127.') || ip === '::1') return next()
    next(DENY, 'not allowed')
}
