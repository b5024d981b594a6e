//! Accounts: who has a mailbox here. Passwords arrive already hashed; the
//! store never sees a plaintext password.

use crate::schema::{self, INBOX, INBOX_ID, MailboxMeta};
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::Transactional;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Internal id; keys of the account's mailboxes start with it.
    pub id: u64,
    /// The address, lowercased.
    pub address: String,
    /// PHC-format hash (argon2id).
    pub password_hash: String,
    pub created: u64,
}

/// Addresses are case-insensitive here: RFC 5321 2.4 lets the local part be
/// case-sensitive, but every deployed mail system treats it otherwise.
pub fn normalize(address: &str) -> String {
    address.trim().to_lowercase()
}

impl Store {
    pub fn add_account(&self, address: &str, password_hash: &str) -> Result<Account> {
        let address = normalize(address);
        let t = self.trees()?;
        let account = Account {
            id: self.new_id()?,
            address: address.clone(),
            password_hash: password_hash.to_string(),
            created: crate::now_secs(),
        };
        let inbox = MailboxMeta {
            id: INBOX_ID,
            // Distinct per account incarnation: a deleted and re-created
            // account must not reuse UIDs a client cached (RFC 3501 2.3.1.1).
            uid_validity: (account.id as u32) ^ (account.created as u32),
            uid_next: 1,
        };
        (&t.accounts, &t.mailboxes).transaction(|(accounts, mailboxes)| {
            if accounts.get(address.as_bytes())?.is_some() {
                return sled::transaction::abort(StoreError::AccountExists(address.clone()));
            }
            accounts.insert(address.as_bytes(), schema::encode(&account))?;
            mailboxes.insert(schema::mailbox_key(account.id, INBOX), schema::encode(&inbox))?;
            Ok(())
        })?;
        Ok(account)
    }

    pub fn account(&self, address: &str) -> Result<Option<Account>> {
        match self.trees()?.accounts.get(normalize(address).as_bytes())? {
            Some(v) => Ok(Some(schema::decode("accounts", &v)?)),
            None => Ok(None),
        }
    }

    pub fn account_exists(&self, address: &str) -> Result<bool> {
        Ok(self.trees()?.accounts.contains_key(normalize(address).as_bytes())?)
    }

    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.trees()?
            .accounts
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                schema::decode("accounts", &v)
            })
            .collect()
    }

    pub fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let address = normalize(address);
        let mut account = self.account(&address)?.ok_or_else(|| StoreError::NoSuchAccount(address.clone()))?;
        account.password_hash = password_hash.to_string();
        self.trees()?.accounts.insert(address.as_bytes(), schema::encode(&account))?;
        Ok(())
    }

    /// Removes the account and all its mail.
    pub fn delete_account(&self, address: &str) -> Result<()> {
        let address = normalize(address);
        let account = self.account(&address)?.ok_or_else(|| StoreError::NoSuchAccount(address.clone()))?;
        let uids: Vec<u32> = self.mailbox_entries(account.id, INBOX_ID)?.iter().map(|e| e.uid).collect();
        self.expunge(account.id, INBOX_ID, &uids)?;
        let t = self.trees()?;
        for k in t.mailboxes.scan_prefix(account.id.to_be_bytes()).keys() {
            t.mailboxes.remove(k?)?;
        }
        t.accounts.remove(address.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::store;

    #[test]
    fn add_find_list_delete() {
        let (_d, s) = store();
        s.add_account("Alice@Example.Test", "hash").unwrap();
        assert!(s.account_exists("alice@example.test").unwrap());
        assert!(matches!(s.add_account("alice@example.test", "h"), Err(crate::StoreError::AccountExists(_))));
        s.set_password("alice@example.test", "h2").unwrap();
        assert_eq!(s.account("ALICE@example.test").unwrap().unwrap().password_hash, "h2");
        assert_eq!(s.accounts().unwrap().len(), 1);
        s.delete_account("alice@example.test").unwrap();
        assert!(!s.account_exists("alice@example.test").unwrap());
        assert!(s.delete_account("alice@example.test").is_err());
    }
}
