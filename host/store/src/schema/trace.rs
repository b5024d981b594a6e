//! A decision-trace record riding on the change it describes.

/// One trace record (opaque to the store) to write under `key`, kept until
/// `ttl_secs` from the commit. Carried by an [`crate::schema::Incoming`]
/// or a queue commit, it is written in the same atomic, durable change as
/// the message or the delivery attempt it describes: no write of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceWrite {
    pub key: String,
    pub record: Vec<u8>,
    pub ttl_secs: u64,
}
