//! DKIM signing keys on disk, one directory per domain under
//! `data_dir/dkim/`:
//!
//! ```text
//! dkim/example.com/fm202612.pem   PKCS#8 private key (mode 0600)
//! dkim/example.com/active         the selector signing now
//! ```
//!
//! Keys rotate by selector (RFC 6376 3.1): `keygen` writes a new selector
//! beside the old ones, the operator publishes its TXT record, then
//! `activate` switches signing to it while the old record stays published
//! for mail still in flight. The server re-reads a domain's key when its
//! `active` file changes, so neither step needs a restart.

use anyhow::{Context, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// ed25519-sha256 (RFC 8463): short keys, not yet verified everywhere.
    Ed25519,
    /// rsa-sha256 with a 2048-bit key (RFC 8301 3.2), verified everywhere.
    Rsa2048,
}

impl Algorithm {
    /// The `k=` tag of the key record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa2048 => "rsa",
        }
    }
}

/// A private key ready to sign with.
pub enum Key {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

/// One stored key, as `dkim list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    pub active: bool,
    pub created: SystemTime,
    /// The record to publish at `SELECTOR._domainkey.DOMAIN`.
    pub txt: String,
}

impl KeyInfo {
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The record as a zone-file line; TXT strings are at most 255 octets
    /// (RFC 1035 3.3.14), so a 2048-bit RSA key takes several.
    pub fn zone_line(&self) -> String {
        let strings: Vec<String> =
            self.txt.as_bytes().chunks(250).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
        format!("{}. IN TXT ( {} )", self.record_name(), strings.join(" "))
    }
}

/// A domain name as a directory name: lower-case LDH labels only, so a
/// name can never climb out of `dkim/`.
pub fn check_domain(domain: &str) -> anyhow::Result<String> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    ensure!(
        !d.is_empty()
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }),
        "{domain:?} is not a domain name"
    );
    Ok(d)
}

/// A selector: one or more labels (RFC 6376 3.1), same rules as a domain.
pub fn check_selector(selector: &str) -> anyhow::Result<String> {
    check_domain(selector).map_err(|_| anyhow!("{selector:?} is not a selector (letters, digits, '-', '.')"))
}

/// `fmYYYYMM`: a new selector each month, so a rotation never reuses one.
pub fn default_selector() -> String {
    format!("fm{}", chrono::Utc::now().format("%Y%m"))
}

fn domain_dir(root: &Path, domain: &str) -> PathBuf {
    root.join(domain)
}

/// Generates a key for `domain` under `selector` and stores it; the first
/// key of a domain becomes active at once.
pub fn generate(root: &Path, domain: &str, selector: &str, algorithm: Algorithm) -> anyhow::Result<KeyInfo> {
    let domain = check_domain(domain)?;
    let selector = check_selector(selector)?;
    let dir = domain_dir(root, &domain);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{selector}.pem"));
    ensure!(!path.exists(), "{} exists: choose another --selector (keys rotate by selector)", path.display());
    let pkcs8 = match algorithm {
        Algorithm::Ed25519 => Ed25519Key::generate_pkcs8().map_err(|e| anyhow!("generating an ed25519 key: {e}"))?,
        Algorithm::Rsa2048 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).context("generating an RSA key")?;
            key.to_pkcs8_der().context("encoding the RSA key")?.as_bytes().to_vec()
        }
    };
    write_private(&path, &pem("PRIVATE KEY", &pkcs8))?;
    let first = !dir.join("active").exists();
    if first {
        write_active(&dir, &selector)?;
    }
    info(root, &domain, &selector)
}

/// Makes `selector` the key `domain` signs with from now on.
pub fn activate(root: &Path, domain: &str, selector: &str) -> anyhow::Result<KeyInfo> {
    let domain = check_domain(domain)?;
    let selector = check_selector(selector)?;
    let dir = domain_dir(root, &domain);
    ensure!(
        dir.join(format!("{selector}.pem")).is_file(),
        "no key {selector} for {domain} (see `ferrymail dkim list`)"
    );
    write_active(&dir, &selector)?;
    info(root, &domain, &selector)
}

/// Every stored key, by domain then selector.
pub fn list(root: &Path) -> anyhow::Result<Vec<KeyInfo>> {
    let mut out = Vec::new();
    let Ok(domains) = std::fs::read_dir(root) else { return Ok(out) };
    let mut domains: Vec<String> = domains.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    domains.sort();
    for domain in domains {
        let Ok(files) = std::fs::read_dir(root.join(&domain)) else { continue };
        let mut selectors: Vec<String> = files
            .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".pem").map(str::to_string))
            .collect();
        selectors.sort();
        for selector in selectors {
            out.push(info(root, &domain, &selector)?);
        }
    }
    Ok(out)
}

fn info(root: &Path, domain: &str, selector: &str) -> anyhow::Result<KeyInfo> {
    let dir = domain_dir(root, domain);
    let path = dir.join(format!("{selector}.pem"));
    let der = read_pkcs8(&path)?;
    let (algorithm, public) = public_key(&der).with_context(|| path.display().to_string())?;
    let active = std::fs::read_to_string(dir.join("active")).is_ok_and(|s| s.trim() == selector);
    let created = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    let txt = format!("v=DKIM1; k={}; p={}", algorithm.key_type(), B64.encode(public));
    Ok(KeyInfo { domain: domain.into(), selector: selector.into(), algorithm, active, created, txt })
}

/// The algorithm and the `p=` bytes: the raw 32-byte key for ed25519 (RFC
/// 8463 4.2), SubjectPublicKeyInfo DER for RSA (what every verifier reads).
fn public_key(pkcs8: &[u8]) -> anyhow::Result<(Algorithm, Vec<u8>)> {
    if let Ok(key) = Ed25519Key::from_pkcs8_der(pkcs8) {
        return Ok((Algorithm::Ed25519, key.public_key()));
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).map_err(|e| anyhow!("not an ed25519 or RSA key: {e}"))?;
    let spki = key.to_public_key().to_public_key_der().context("encoding the public key")?;
    Ok((Algorithm::Rsa2048, spki.as_bytes().to_vec()))
}

fn load(pkcs8: &[u8]) -> anyhow::Result<Key> {
    if let Ok(key) = Ed25519Key::from_pkcs8_der(pkcs8) {
        return Ok(Key::Ed25519(key));
    }
    RsaKey::<Sha256>::from_pkcs8_der(pkcs8).map(Key::Rsa).map_err(|e| anyhow!("not an ed25519 or RSA key: {e}"))
}

fn read_pkcs8(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match rustls_pemfile::read_one(&mut text.as_slice()) {
        Ok(Some(rustls_pemfile::Item::Pkcs8Key(key))) => Ok(key.secret_pkcs8_der().to_vec()),
        _ => bail!("{}: no PKCS#8 private key in it", path.display()),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Written to a temporary file and renamed, so the server never reads half a name.
fn write_active(dir: &Path, selector: &str) -> anyhow::Result<()> {
    let tmp = dir.join(".active.tmp");
    std::fs::write(&tmp, format!("{selector}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("active")).with_context(|| format!("activating {selector}"))?;
    Ok(())
}

/// The key a domain signs with now.
pub struct ActiveKey {
    pub domain: String,
    pub selector: String,
    pub key: Key,
}

/// The active keys, read from disk when first needed and again whenever a
/// domain's `active` file changes (one `stat` per signed message).
pub struct Keys {
    root: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

/// The `active` file's mtime when read, and the key it named.
type Cached = (Option<SystemTime>, Option<Arc<ActiveKey>>);

impl Keys {
    pub fn new(root: PathBuf) -> Self {
        Keys { root, cache: Mutex::new(HashMap::new()) }
    }

    /// The active key of `domain`, if it has one. A key that cannot be read
    /// is logged and treated as absent: the mail goes out unsigned rather
    /// than not at all.
    pub fn active(&self, domain: &str) -> Option<Arc<ActiveKey>> {
        let domain = check_domain(domain).ok()?;
        let dir = domain_dir(&self.root, &domain);
        let stamp = std::fs::metadata(dir.join("active")).and_then(|m| m.modified()).ok();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, key)) = cache.get(&domain)
            && *seen == stamp
        {
            return key.clone();
        }
        let key = stamp.and_then(|_| match read_active(&dir, &domain) {
            Ok(key) => Some(Arc::new(key)),
            Err(e) => {
                tracing::error!(domain = %domain, error = %format!("{e:#}"), "DKIM key unusable; signing nothing for this domain");
                None
            }
        });
        cache.insert(domain, (stamp, key.clone()));
        key
    }
}

fn read_active(dir: &Path, domain: &str) -> anyhow::Result<ActiveKey> {
    let selector = std::fs::read_to_string(dir.join("active"))?.trim().to_string();
    let selector = check_selector(&selector)?;
    let key = load(&read_pkcs8(&dir.join(format!("{selector}.pem")))?)?;
    Ok(ActiveKey { domain: domain.to_string(), selector, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_key_directory_are_refused() {
        for bad in ["../etc", "a/b", "", ".", "a..b", "-a.example", "a b"] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
        assert_eq!(check_domain("Example.COM.").unwrap(), "example.com");
    }

    #[test]
    fn keygen_activate_and_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(dir.path(), "a.example", "s1", Algorithm::Ed25519).unwrap();
        assert!(first.active, "the first key of a domain signs at once");
        assert!(first.txt.starts_with("v=DKIM1; k=ed25519; p="));
        let second = generate(dir.path(), "a.example", "s2", Algorithm::Ed25519).unwrap();
        assert!(!second.active, "a new selector waits until its record is published");
        assert!(generate(dir.path(), "a.example", "s2", Algorithm::Ed25519).is_err(), "selectors are not reused");
        let keys = Keys::new(dir.path().into());
        assert_eq!(keys.active("a.example").unwrap().selector, "s1");
        activate(dir.path(), "a.example", "s2").unwrap();
        // The cache keys on the active file's mtime; make sure it moved.
        let f = std::fs::File::options().write(true).open(dir.path().join("a.example/active")).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(keys.active("a.example").unwrap().selector, "s2");
        let listed: Vec<_> = list(dir.path()).unwrap().into_iter().map(|k| (k.selector, k.active)).collect();
        assert_eq!(listed, [("s1".to_string(), false), ("s2".to_string(), true)]);
        assert!(keys.active("b.example").is_none());
    }

    #[test]
    fn an_rsa_record_is_split_into_strings_of_at_most_255_octets() {
        let dir = tempfile::tempdir().unwrap();
        let k = generate(dir.path(), "a.example", "r", Algorithm::Rsa2048).unwrap();
        assert!(k.txt.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"), "SubjectPublicKeyInfo: {}", k.txt);
        let line = k.zone_line();
        assert!(line.split('"').skip(1).step_by(2).all(|s| s.len() <= 255), "{line}");
        assert!(matches!(Keys::new(dir.path().into()).active("a.example").unwrap().key, Key::Rsa(_)));
    }
}
