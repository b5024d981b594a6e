-- ferrymail's PostgreSQL schema, version 1. Unsigned values of the records
-- (ids, UIDs, modseqs, Unix seconds) are bigint; ids stay below 2^63.

-- Content and queue ids: nodes take blocks of 64 (one round trip per
-- block); ids of a block a node never used are skipped, as allowed.
CREATE SEQUENCE ids INCREMENT BY 64 START WITH 64;
CREATE SEQUENCE account_ids;
-- RFC 3501 2.3.1.1: a UIDVALIDITY is never given twice in this store.
CREATE SEQUENCE uid_validities MAXVALUE 4294967295;
SELECT setval('uid_validities', greatest(1, extract(epoch FROM now())::bigint));

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    address text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created bigint NOT NULL,
    next_mailbox bigint NOT NULL
);

-- The row of a mailbox is its lock: every change to its messages updates
-- it first (UID and modseq allocation, counters), so changes to one
-- mailbox are serialised across nodes and UIDs are never handed out twice.
CREATE TABLE mailboxes (
    account bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id bigint NOT NULL,
    name text NOT NULL,
    special_use text,
    uid_validity bigint NOT NULL,
    uid_next bigint NOT NULL,
    highest_modseq bigint NOT NULL,
    messages bigint NOT NULL DEFAULT 0,
    unseen bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account, id),
    UNIQUE (account, name)
);

CREATE TABLE subscriptions (
    account bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name text NOT NULL,
    PRIMARY KEY (account, name)
);

-- A content is stored once; refs counts the mailbox and queue entries
-- referring to it. Its bytes are in blobs (postgres/blobs.rs).
CREATE TABLE contents (
    id bigint PRIMARY KEY,
    refs bigint NOT NULL,
    len bigint NOT NULL,
    summary bytea
);

-- EXTERNAL: stored uncompressed out of line, so a partial read (IMAP
-- BODY[]<offset.len>) fetches only the chunks it needs.
CREATE TABLE blobs (
    id bigint PRIMARY KEY,
    data bytea NOT NULL
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE mail (
    account bigint NOT NULL,
    mailbox bigint NOT NULL,
    uid bigint NOT NULL,
    content bigint NOT NULL,
    size bigint NOT NULL,
    flags integer NOT NULL,
    keywords text[] NOT NULL,
    internal_date bigint NOT NULL,
    modseq bigint NOT NULL,
    return_path text,
    -- Derived (IMAP SEARCH on headers): kept by keep_search_rows, gone
    -- with the message, never copied (a copy has its own UID).
    search_row bytea,
    PRIMARY KEY (account, mailbox, uid)
);

-- entry is the QueueEntry as JSON (readable with convert_from(entry,
-- 'UTF8')::json); next_attempt and the lease columns are authoritative.
CREATE TABLE queue (
    id bigint PRIMARY KEY,
    content bigint NOT NULL,
    next_attempt bigint NOT NULL,
    lease_owner text,
    lease_until bigint,
    entry bytea NOT NULL
);
CREATE INDEX queue_due ON queue (next_attempt, id);

-- Namespaces and keys are bytes: a NUL or a separator inside one is data.
CREATE TABLE kv (
    namespace bytea NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    expires bigint NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expiring ON kv (expires) WHERE expires <> 0;

CREATE TABLE traces (
    key bytea PRIMARY KEY,
    record bytea NOT NULL,
    expires bigint NOT NULL
);
CREATE INDEX traces_expiring ON traces (expires);

-- kv counters are 8-byte little-endian i64, what a plugin reads back; kv_incr
-- adds to one in a single statement. Shifts on bigint wrap, so byte 7's
-- top bit becomes the sign. (<< and | bind equally in SQL: parenthesised.)
CREATE FUNCTION ferrymail_le8_value(v bytea) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT get_byte(v, 0)::bigint | (get_byte(v, 1)::bigint << 8) | (get_byte(v, 2)::bigint << 16)
         | (get_byte(v, 3)::bigint << 24) | (get_byte(v, 4)::bigint << 32) | (get_byte(v, 5)::bigint << 40)
         | (get_byte(v, 6)::bigint << 48) | (get_byte(v, 7)::bigint << 56)
$$;
CREATE FUNCTION ferrymail_le8(n bigint) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(set_byte(
        '\x0000000000000000'::bytea,
        0, (n & 255)::int), 1, ((n >> 8) & 255)::int), 2, ((n >> 16) & 255)::int), 3, ((n >> 24) & 255)::int),
        4, ((n >> 32) & 255)::int), 5, ((n >> 40) & 255)::int), 6, ((n >> 48) & 255)::int), 7, ((n >> 56) & 255)::int)
$$;
