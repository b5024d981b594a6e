//! Changes to accounts.

use super::keys::{self, AccountIndex, T};
use super::ops_mailboxes;
use super::txn::Txn;
use crate::schema::{Account, INBOX, INBOX_ID, SpecialUse, normalize_address};
use crate::{Result, StoreError};

/// Creates the mailboxes every account has: INBOX and the special-use
/// folders, with ids 0..=4, all subscribed.
pub(crate) fn create_default_mailboxes(txn: &mut Txn, account: u64) -> Result<()> {
    let defaults =
        std::iter::once((INBOX, None)).chain(SpecialUse::DEFAULT_FOLDERS.iter().map(|(n, u)| (*n, Some(*u))));
    for (id, (name, special_use)) in defaults.enumerate() {
        if ops_mailboxes::lookup(txn, account, name)?.is_none() {
            ops_mailboxes::create_with(txn, account, name, special_use, Some(INBOX_ID + id as u32))?;
        }
        txn.put(T::Subscriptions, &keys::name_key(account, name), &[][..]);
    }
    Ok(())
}

pub(crate) fn add(txn: &mut Txn, address: &str, password_hash: &str) -> Result<Account> {
    let address = normalize_address(address);
    if address.is_empty() {
        return Err(StoreError::NoSuchAccount("an empty address".into()));
    }
    if txn.get(T::Accounts, address.as_bytes())?.is_some() {
        return Err(StoreError::AccountExists(address));
    }
    let account = Account {
        id: txn.new_id()?,
        address: address.clone(),
        password_hash: password_hash.to_string(),
        created: crate::schema::now_secs(),
    };
    txn.put_rec(T::Accounts, address.as_bytes(), &account);
    let next_mailbox = 1 + SpecialUse::DEFAULT_FOLDERS.len() as u32;
    txn.put_rec(T::AccountIds, &keys::u64_key(account.id), &AccountIndex { address, next_mailbox });
    create_default_mailboxes(txn, account.id)?;
    Ok(account)
}

fn load(txn: &Txn, address: &str) -> Result<Account> {
    let address = normalize_address(address);
    txn.get_rec(T::Accounts, address.as_bytes())?.ok_or(StoreError::NoSuchAccount(address))
}

pub(crate) fn set_password(txn: &mut Txn, address: &str, password_hash: &str) -> Result<()> {
    let mut account = load(txn, address)?;
    account.password_hash = password_hash.to_string();
    txn.put_rec(T::Accounts, account.address.as_bytes(), &account);
    Ok(())
}

pub(crate) fn delete(txn: &mut Txn, address: &str) -> Result<()> {
    let account = load(txn, address)?;
    let prefix = keys::u64_key(account.id);
    for (key, _) in txn.scan_prefix(T::Mailboxes, &prefix)? {
        ops_mailboxes::remove(txn, account.id, keys::mailbox_of_key(&key))?;
    }
    for (key, _) in txn.scan_prefix(T::Subscriptions, &prefix)? {
        txn.del(T::Subscriptions, &key);
    }
    txn.del(T::AccountIds, &prefix);
    txn.del(T::Accounts, account.address.as_bytes());
    Ok(())
}
