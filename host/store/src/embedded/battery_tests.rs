//! The behavioural battery against the embedded backend.

crate::store_battery!(|| async {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_embedded(dir.path(), Default::default()).unwrap();
    (dir, store)
});
