//! On-premises Active Directory over LDAP, through the host's directory connection
//! (plugin config `ldap_connection`, default `ad`). The host binds; this code never
//! sees the bind password.
//!
//! AD facts this relies on: `userAccountControl` bit 0x2 is "disabled"; `lockoutTime`
//! non-zero is "locked" and 0 is the only value that may be written; `unicodePwd` is
//! replaced (the host encodes it as AD wants) and `pwdLastSet: 0` forces a change at
//! next logon; group membership is the *group's* `member` attribute (`memberOf` is
//! computed). Result codes: 20 (OpenLDAP) / 68 (AD) "already a member", 16 (OpenLDAP) /
//! 53 (AD) "not a member" both count as success.

use crate::{Account, GroupChange};
use switchboard_sdk::host;
use switchboard_sdk::{Error, LdapChange, LdapEntry, LdapRequest, LdapResponse};

const DISABLED: u64 = 0x2;
const NORMAL_ACCOUNT: u64 = 0x200;
const ATTRS: &[&str] = &[
    "cn",
    "displayName",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "userAccountControl",
    "lockoutTime",
    "memberOf",
    "manager",
    "department",
];

/// The LDAP side.
pub struct Ad {
    connection: String,
}

/// Escapes a value for an RFC 4515 filter.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for an RDN (RFC 4514).
pub fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c)
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c)
            }
            c => out.push(c),
        }
    }
    out
}

/// The value of the first RDN of a DN (`cn=Sales,ou=Groups,...` -> `Sales`).
pub fn rdn_value(dn: &str) -> String {
    let value = match dn.split_once('=') {
        Some((_, v)) => v,
        None => return String::new(),
    };
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            ',' | '+' => break,
            c => out.push(c),
        }
    }
    out
}

/// An LDAP result code as an error, or `Ok` for success.
pub fn check(resp: &LdapResponse, what: &str) -> Result<(), Error> {
    let detail = format!("{}: LDAP {} {}", what, resp.code, resp.message);
    match resp.code {
        0 => Ok(()),
        32 => Err(Error::new("not_found", detail)),
        49 => Err(Error::new("bind_failed", detail)),
        50 => Err(Error::new("access_denied", detail)),
        19 => Err(Error::new("password_policy", detail)),
        53 => Err(Error::new(
            "unwilling",
            format!("{} (AD refuses password changes over plain LDAP: use LDAPS/StartTLS)", detail),
        )),
        51 | 52 => Err(Error::retryable("directory_unavailable", detail)),
        _ => Err(Error::new("ldap_error", detail)),
    }
}

fn first<'a>(e: &'a LdapEntry, attr: &str) -> &'a str {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
        .unwrap_or("")
}

fn all<'a>(e: &'a LdapEntry, attr: &str) -> Vec<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

fn uac(e: &LdapEntry) -> u64 {
    first(e, "userAccountControl").parse().unwrap_or(NORMAL_ACCOUNT)
}

fn change(op: &str, attr: &str, values: Vec<String>) -> LdapChange {
    LdapChange { op: op.to_string(), attr: attr.to_string(), values }
}

impl Ad {
    /// From plugin config `ldap_connection` (default `ad`).
    pub fn from_config() -> Result<Ad, Error> {
        Ok(Ad { connection: host::config("ldap_connection")?.unwrap_or_else(|| "ad".to_string()) })
    }

    fn search(&self, base: &str, filter: &str) -> Result<Vec<LdapEntry>, Error> {
        let resp = host::ldap(&LdapRequest::Search {
            connection: self.connection.clone(),
            base: base.to_string(),
            filter: filter.to_string(),
            attrs: ATTRS.iter().map(|s| s.to_string()).collect(),
        })?;
        if resp.code == 32 {
            return Ok(Vec::new());
        }
        check(&resp, "search")?;
        Ok(resp.entries)
    }

    fn modify(&self, dn: &str, changes: Vec<LdapChange>) -> Result<LdapResponse, Error> {
        host::ldap(&LdapRequest::Modify { connection: self.connection.clone(), dn: dn.to_string(), changes })
    }

    /// A user by sAMAccountName, userPrincipalName or mail.
    pub fn find(&self, key: &str) -> Result<Option<LdapEntry>, Error> {
        if key.trim().is_empty() {
            return Err(Error::new("bad_input", "user is empty"));
        }
        let k = escape(key.trim());
        let filter = if key.contains('@') {
            format!("(&(objectClass=user)(|(userPrincipalName={})(mail={})))", k, k)
        } else if key.contains('=') {
            return Ok(self.search(key, "(objectClass=user)")?.into_iter().next());
        } else {
            format!("(&(objectClass=user)(sAMAccountName={}))", k)
        };
        let mut hits = self.search("", &filter)?;
        if hits.len() > 1 {
            return Err(Error::new("ambiguous", format!("{} accounts match `{}`", hits.len(), key)));
        }
        Ok(hits.pop())
    }

    /// Like [`Ad::find`], but a missing user is `not_found`.
    pub fn user(&self, key: &str) -> Result<LdapEntry, Error> {
        self.find(key)?.ok_or_else(|| Error::new("not_found", format!("no AD account `{}`", key)))
    }

    /// The account as the plugin reports it.
    pub fn account(e: &LdapEntry) -> Account {
        let lockout: u64 = first(e, "lockoutTime").parse().unwrap_or(0);
        let display = if first(e, "displayName").is_empty() { first(e, "cn") } else { first(e, "displayName") };
        Account {
            found: true,
            target: "ad".into(),
            id: e.dn.clone(),
            username: first(e, "sAMAccountName").to_string(),
            upn: first(e, "userPrincipalName").to_string(),
            mail: first(e, "mail").to_string(),
            display_name: display.to_string(),
            department: first(e, "department").to_string(),
            enabled: uac(e) & DISABLED == 0,
            locked: lockout != 0,
            manager: Some(first(e, "manager").to_string()).filter(|m| !m.is_empty()),
            groups: all(e, "memberOf").into_iter().map(rdn_value).collect(),
            licenses: Vec::new(),
        }
    }

    /// Writes `lockoutTime: 0` if the account is locked; whether it was.
    pub fn unlock(&self, key: &str) -> Result<bool, Error> {
        let e = self.user(key)?;
        if !Ad::account(&e).locked {
            return Ok(false);
        }
        check(&self.modify(&e.dn, vec![change("replace", "lockoutTime", vec!["0".into()])])?, "unlock")?;
        Ok(true)
    }

    /// Sets or clears the disabled bit; whether anything changed.
    pub fn set_enabled(&self, key: &str, enabled: bool) -> Result<bool, Error> {
        let e = self.user(key)?;
        let old = uac(&e);
        let new = if enabled { old & !DISABLED } else { old | DISABLED };
        if new == old {
            return Ok(false);
        }
        check(
            &self.modify(&e.dn, vec![change("replace", "userAccountControl", vec![new.to_string()])])?,
            "userAccountControl",
        )?;
        Ok(true)
    }

    /// Replaces the password; `force_change` sets `pwdLastSet: 0`.
    pub fn set_password(&self, dn: &str, password: &str, force_change: bool) -> Result<(), Error> {
        let mut changes = vec![change("replace", "unicodePwd", vec![password.to_string()])];
        if force_change {
            changes.push(change("replace", "pwdLastSet", vec!["0".into()]));
        }
        check(&self.modify(dn, changes)?, "unicodePwd")
    }

    /// A group's DN from its DN, cn or sAMAccountName.
    pub fn group_dn(&self, name: &str) -> Result<String, Error> {
        let filter = format!("(&(objectClass=group)(|(cn={})(sAMAccountName={})))", escape(name), escape(name));
        let hits =
            if name.contains('=') { self.search(name, "(objectClass=group)")? } else { self.search("", &filter)? };
        match hits.len() {
            1 => Ok(hits[0].dn.clone()),
            0 => Err(Error::new("not_found", format!("no AD group `{}`", name))),
            n => Err(Error::new("ambiguous", format!("{} AD groups match `{}`", n, name))),
        }
    }

    /// Adds to or removes from each group; "already a member" / "not a member" count as done.
    pub fn change_groups(&self, key: &str, groups: &[String], add: bool) -> Result<GroupChange, Error> {
        let user = self.user(key)?;
        let mut out = GroupChange::default();
        for name in groups {
            let dn = self.group_dn(name)?;
            let op = if add { "add" } else { "delete" };
            let resp = self.modify(&dn, vec![change(op, "member", vec![user.dn.clone()])])?;
            match (add, resp.code) {
                (_, 0) => out.changed.push(name.clone()),
                (true, 20) | (true, 68) | (false, 16) | (false, 53) => out.unchanged.push(name.clone()),
                _ => check(&resp, &format!("member of {}", name))?,
            }
        }
        Ok(out)
    }

    /// The user's manager, if set.
    pub fn manager(&self, key: &str) -> Result<Option<Account>, Error> {
        let user = self.user(key)?;
        let dn = first(&user, "manager");
        if dn.is_empty() {
            return Ok(None);
        }
        Ok(self.search(dn, "(objectClass=user)")?.first().map(Ad::account))
    }

    /// Points the user's `manager` at another account.
    pub fn set_manager(&self, key: &str, manager: &str) -> Result<bool, Error> {
        let user = self.user(key)?;
        let manager = self.user(manager)?;
        if first(&user, "manager").eq_ignore_ascii_case(&manager.dn) {
            return Ok(false);
        }
        check(&self.modify(&user.dn, vec![change("replace", "manager", vec![manager.dn])])?, "manager")?;
        Ok(true)
    }

    /// Creates a disabled account with an unknown random password (set a known one with
    /// `reset_password`); an existing account with that sAMAccountName is left alone.
    pub fn create(&self, new: &crate::NewUser, upn: &str, password: &str) -> Result<(Account, bool), Error> {
        if let Some(existing) = self.find(&new.username)? {
            return Ok((Ad::account(&existing), false));
        }
        let ou = match host::config("ad_users_ou")? {
            Some(ou) => ou,
            None => {
                return Err(Error::new("not_configured", "set plugin config `ad_users_ou` (where new accounts go)"))
            }
        };
        let classes =
            host::config("ad_object_classes")?.unwrap_or_else(|| "top,person,organizationalPerson,user".to_string());
        let display = new.display_name();
        let dn = format!("cn={},{}", escape_rdn(&display), ou);
        let mut attrs = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                attrs.insert(k.to_string(), vec![v.to_string()]);
            }
        };
        put("cn", &display);
        put("sn", &new.surname);
        put("givenName", &new.given_name);
        put("displayName", &display);
        put("sAMAccountName", &new.username);
        put("userPrincipalName", upn);
        put("mail", upn);
        put("department", &new.department);
        put("userAccountControl", &(NORMAL_ACCOUNT | DISABLED).to_string());
        put("unicodePwd", password);
        put("pwdLastSet", "0");
        attrs.insert("objectClass".into(), classes.split(',').map(|s| s.trim().to_string()).collect());
        let resp = host::ldap(&LdapRequest::Add { connection: self.connection.clone(), dn: dn.clone(), attrs })?;
        if resp.code == 68 {
            return Ok((Ad::account(&self.user(&new.username)?), false));
        }
        check(&resp, "add account")?;
        Ok((Ad::account(&self.user(&new.username)?), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_rdn_values_are_escaped() {
        assert_eq!(escape("a*)(uid=*"), "a\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_rdn("Doe, Jane"), "Doe\\, Jane");
        assert_eq!(rdn_value("cn=VPN Users,ou=Groups,dc=example,dc=com"), "VPN Users");
        assert_eq!(rdn_value("cn=Doe\\, Jane,ou=Users"), "Doe, Jane");
    }

    #[test]
    fn ad_only_result_codes_map_to_clear_errors() {
        let r = |code: u32| LdapResponse { code, message: "x".into(), ..Default::default() };
        assert_eq!(check(&r(53), "pw").unwrap_err().code, "unwilling");
        assert_eq!(check(&r(19), "pw").unwrap_err().code, "password_policy");
        assert_eq!(check(&r(50), "pw").unwrap_err().code, "access_denied");
        assert_eq!(check(&r(49), "bind").unwrap_err().code, "bind_failed");
        assert!(check(&r(51), "busy").unwrap_err().retryable);
        assert!(check(&r(0), "ok").is_ok());
    }
}
