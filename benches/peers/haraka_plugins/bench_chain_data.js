// Chain plugin 4/4 (data_post): a size limit and a required header, then add one header.
exports.hook_data_post = function (next, connection) {
    const txn = connection.transaction
    if (txn.data_bytes > 10 * 1024 * 1024) return next(DENY, 'too big')
    if (!txn.header.get('From')) return next(DENY, 'no From header')
    txn.add_header('X-Bench-Chain', 'checked')
    next()
}
