//! directory: account tasks on on-premises Active Directory (LDAP) and Entra ID
//! (Microsoft Graph) behind one set of actions. Each action takes `target`: `ad`
//! (default) or `entra`.
//!
//! | action | does | idempotent because |
//! |---|---|---|
//! | `find_user` | looks up by sAMAccountName, UPN or mail | read only; `found: false` when absent |
//! | `unlock` | `lockoutTime: 0` (AD) | only when locked |
//! | `disable` / `enable` | `userAccountControl` bit 0x2 / `accountEnabled` | only when different |
//! | `reset_password` | random password, forced change, sent to the secure channel | `deliver: false` (a leaver's scramble) is done once while the account stays disabled |
//! | `add_to_group` / `remove_from_group` | group `member` / Graph `$batch` | "already" counts as done |
//! | `create_user` | disabled account, unknown password | an existing account is returned |
//! | `list_groups`, `get_manager` | reads | read only |
//! | `set_manager` | `manager` / `manager/$ref` | only when different |
//!
//! Config (`PUT /plugins/directory/grants`): `ldap_connection` (default `ad`),
//! `graph_connection` (default `graph`), `password_channel` (an HTTP connection that
//! receives generated passwords; required for delivered resets), `password_channel_path`,
//! `upn_suffix` (for new accounts), `ad_users_ou`, `ad_object_classes`.

pub mod ad;
pub mod entra;
pub mod password;

use ad::Ad;
use msgraph::Graph;
use serde::{Deserialize, Serialize};
use switchboard_sdk::host::{self, Level};
use switchboard_sdk::{json, plugin, Error, Value};

/// Which directory an action works on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// On-premises Active Directory over LDAP.
    #[default]
    Ad,
    /// Entra ID over Microsoft Graph.
    Entra,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Ad => "ad",
            Target::Entra => "entra",
        }
    }
}

/// An account as every action reports it, whichever the directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Account {
    /// Whether the account exists (`find_user` only reports `false`).
    pub found: bool,
    /// `ad` or `entra`.
    pub target: String,
    /// DN (AD) or object id (Entra).
    pub id: String,
    /// sAMAccountName (AD) or mailNickname (Entra).
    pub username: String,
    /// userPrincipalName.
    pub upn: String,
    /// Mail address.
    pub mail: String,
    /// Display name.
    pub display_name: String,
    /// Department.
    pub department: String,
    /// Not disabled.
    pub enabled: bool,
    /// Locked out (AD `lockoutTime` non-zero; always false for Entra).
    pub locked: bool,
    /// The manager's DN (AD), when set.
    pub manager: Option<String>,
    /// Names of the groups the account is a direct member of.
    pub groups: Vec<String>,
    /// SKU ids of the licences assigned (Entra; empty for AD).
    pub licenses: Vec<String>,
}

/// Groups an add or remove changed, and those that were already as asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupChange {
    /// Added (or removed).
    pub changed: Vec<String>,
    /// Already a member (or already not one).
    pub unchanged: Vec<String>,
}

/// Input naming one account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// sAMAccountName, UPN, mail (or DN / object id).
    pub user: String,
    /// `ad` (default) or `entra`.
    #[serde(default)]
    pub target: Target,
}

fn changed(changed: bool) -> Value {
    json!({ "changed": changed })
}

/// `find_user`: the account, or `found: false`.
pub fn find_user(input: UserIn) -> Result<Account, Error> {
    let found = match input.target {
        Target::Ad => Ad::from_config()?.find(&input.user)?.map(|e| Ad::account(&e)),
        Target::Entra => {
            let graph = Graph::from_config()?;
            match graph.find_user(&input.user)? {
                Some(u) => {
                    let groups = entra::group_names(&graph, msgraph::text(&u, "id"))?;
                    Some(entra::account(&u, groups))
                }
                None => None,
            }
        }
    };
    Ok(found.unwrap_or(Account { found: false, target: input.target.name().into(), ..Account::default() }))
}

/// `unlock`: clears an AD lockout; `changed: false` when there was none.
pub fn unlock(input: UserIn) -> Result<Value, Error> {
    match input.target {
        Target::Ad => {
            let done = Ad::from_config()?.unlock(&input.user)?;
            if done {
                host::log(Level::Info, &format!("unlocked {}", input.user));
            }
            Ok(changed(done))
        }
        Target::Entra => Err(Error::new(
            "not_supported",
            "Entra ID smart lockout cannot be cleared through Graph; it expires by itself",
        )),
    }
}

fn set_enabled(input: UserIn, enabled: bool) -> Result<Value, Error> {
    let done = match input.target {
        Target::Ad => Ad::from_config()?.set_enabled(&input.user, enabled)?,
        Target::Entra => entra::set_enabled(&Graph::from_config()?, &input.user, enabled)?,
    };
    if enabled && done {
        // A re-enabled account may be scrambled again later.
        let id = find_user(UserIn { user: input.user, target: input.target })?.id;
        host::kv_set(&scramble_key(input.target, &id), &Value::Null)?;
    }
    Ok(changed(done))
}

/// `disable`.
pub fn disable(input: UserIn) -> Result<Value, Error> {
    set_enabled(input, false)
}

/// `enable`.
pub fn enable(input: UserIn) -> Result<Value, Error> {
    set_enabled(input, true)
}

/// Input of `reset_password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetIn {
    /// The account.
    pub user: String,
    /// `ad` (default) or `entra`.
    #[serde(default)]
    pub target: Target,
    /// Must change it at next logon (default true).
    #[serde(default = "yes")]
    pub force_change: bool,
    /// Send it to the secure channel (default true). `false` scrambles the password so
    /// nobody knows it (offboarding).
    #[serde(default = "yes")]
    pub deliver: bool,
    /// Who the channel should give it to (e.g. the manager), passed along.
    #[serde(default)]
    pub recipient: String,
}

fn yes() -> bool {
    true
}

/// KV key recording that an account's password was scrambled while it was disabled.
fn scramble_key(target: Target, id: &str) -> String {
    format!("scrambled/{}/{}", target.name(), id.to_lowercase())
}

/// `reset_password`: sets a random password. Output says what happened, never the password.
pub fn reset_password(input: ResetIn) -> Result<Value, Error> {
    let channel = if input.deliver { Some(password::channel()?) } else { None };
    let length = host::config("password_length")?.and_then(|l| l.parse().ok()).unwrap_or(16);
    let (id, enabled) = match input.target {
        Target::Ad => {
            let e = Ad::from_config()?.user(&input.user)?;
            let a = Ad::account(&e);
            (a.id, a.enabled)
        }
        Target::Entra => {
            let u = Graph::from_config()?.user(&input.user)?;
            (msgraph::text(&u, "id").to_string(), u.get("accountEnabled").and_then(Value::as_bool).unwrap_or(true))
        }
    };
    let key = scramble_key(input.target, &id);
    if !input.deliver && !enabled && host::kv_get(&key)?.map_or(false, |v| !v.is_null()) {
        return Ok(json!({"reset": false, "delivered": false, "reason": "already scrambled while disabled"}));
    }
    let pw = password::generate(length)?;
    match input.target {
        Target::Ad => Ad::from_config()?.set_password(&id, &pw, input.force_change)?,
        Target::Entra => entra::set_password(&Graph::from_config()?, &id, &pw, input.force_change)?,
    }
    if let Some(channel) = &channel {
        password::deliver(channel, &input.user, input.target.name(), &pw, input.force_change, &input.recipient)?;
    } else if !enabled {
        host::kv_set(&key, &json!(true))?;
    }
    host::log(Level::Info, &format!("password of {} ({}) reset", input.user, input.target.name()));
    Ok(json!({"reset": true, "delivered": channel.is_some(), "force_change": input.force_change,
        "channel": channel.map(|c| c.0)}))
}

/// Input of `add_to_group` / `remove_from_group`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsIn {
    /// The account.
    pub user: String,
    /// `ad` (default) or `entra`.
    #[serde(default)]
    pub target: Target,
    /// One group (name, sAMAccountName, DN or object id)...
    #[serde(default)]
    pub group: Option<String>,
    /// ...or several.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn change_groups(input: GroupsIn, add: bool) -> Result<GroupChange, Error> {
    let mut groups = input.groups;
    groups.extend(input.group);
    groups.retain(|g| !g.trim().is_empty());
    groups.dedup();
    if groups.is_empty() {
        return Ok(GroupChange::default());
    }
    match input.target {
        Target::Ad => Ad::from_config()?.change_groups(&input.user, &groups, add),
        Target::Entra => entra::change_groups(&Graph::from_config()?, &input.user, &groups, add),
    }
}

/// `add_to_group`.
pub fn add_to_group(input: GroupsIn) -> Result<GroupChange, Error> {
    change_groups(input, true)
}

/// `remove_from_group`.
pub fn remove_from_group(input: GroupsIn) -> Result<GroupChange, Error> {
    change_groups(input, false)
}

/// `list_groups`: `{groups: [names], count}`.
pub fn list_groups(input: UserIn) -> Result<Value, Error> {
    let groups = match input.target {
        Target::Ad => Ad::account(&Ad::from_config()?.user(&input.user)?).groups,
        Target::Entra => {
            let graph = Graph::from_config()?;
            let u = graph.user(&input.user)?;
            entra::group_names(&graph, msgraph::text(&u, "id"))?
        }
    };
    Ok(json!({"count": groups.len(), "groups": groups}))
}

/// `get_manager`: `{found, manager}`.
pub fn get_manager(input: UserIn) -> Result<Value, Error> {
    let m = match input.target {
        Target::Ad => Ad::from_config()?.manager(&input.user)?,
        Target::Entra => entra::manager(&Graph::from_config()?, &input.user)?,
    };
    Ok(json!({"found": m.is_some(), "manager": m}))
}

/// Input of `set_manager`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerIn {
    /// The account.
    pub user: String,
    /// The manager's account.
    pub manager: String,
    /// `ad` (default) or `entra`.
    #[serde(default)]
    pub target: Target,
}

/// `set_manager`.
pub fn set_manager(input: ManagerIn) -> Result<Value, Error> {
    let done = match input.target {
        Target::Ad => Ad::from_config()?.set_manager(&input.user, &input.manager)?,
        Target::Entra => entra::set_manager(&Graph::from_config()?, &input.user, &input.manager)?,
    };
    Ok(changed(done))
}

/// Input of `create_user`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// `ad` (default) or `entra`.
    #[serde(default)]
    pub target: Target,
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// sAMAccountName / mailNickname (default: first letter of the given name + surname).
    #[serde(default)]
    pub username: String,
    /// UPN (default: username@`upn_suffix`).
    #[serde(default)]
    pub upn: String,
    /// Department.
    #[serde(default)]
    pub department: String,
    /// Two-letter country for licences (Entra).
    #[serde(default)]
    pub usage_location: String,
    /// Create enabled (Entra; AD accounts start disabled, `enable` them after the password is set).
    #[serde(default)]
    pub enabled: bool,
}

impl NewUser {
    fn display_name(&self) -> String {
        format!("{} {}", self.given_name.trim(), self.surname.trim())
    }
}

/// Latin letters with diacritics to their base letter (`é` -> `e`, `ß` -> `ss`).
fn fold(c: char) -> String {
    let s = match c {
        'à'..='å' | 'À'..='Å' => "a",
        'ç' | 'Ç' => "c",
        'è'..='ë' | 'È'..='Ë' => "e",
        'ì'..='ï' | 'Ì'..='Ï' => "i",
        'ñ' | 'Ñ' => "n",
        'ò'..='ö' | 'ø' | 'Ò'..='Ö' | 'Ø' => "o",
        'ù'..='ü' | 'Ù'..='Ü' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        c => return c.to_string(),
    };
    s.to_string()
}

/// The default username: first letter of the given name and the surname, lower case,
/// ASCII only, diacritics folded (`Zoë O'Neil` -> `zoneil`, `Ana García` -> `agarcia`).
pub fn username(given: &str, surname: &str) -> String {
    let keep = |s: &str| {
        s.chars()
            .map(fold)
            .collect::<String>()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    let mut u = keep(&given.chars().take(1).collect::<String>());
    u.push_str(&keep(surname));
    u.chars().take(20).collect()
}

/// `create_user`.
pub fn create_user(mut input: NewUser) -> Result<Value, Error> {
    if input.given_name.trim().is_empty() || input.surname.trim().is_empty() {
        return Err(Error::new("bad_input", "given_name and surname are required"));
    }
    if input.username.is_empty() {
        input.username = username(&input.given_name, &input.surname);
    }
    if input.username.is_empty() {
        return Err(Error::new("bad_input", "no username could be made from the name; give `username`"));
    }
    let upn = if input.upn.is_empty() {
        let suffix = host::config("upn_suffix")?.unwrap_or_else(|| "example.com".into());
        format!("{}@{}", input.username, suffix)
    } else {
        input.upn.clone()
    };
    let pw = password::generate(24)?;
    let (account, created) = match input.target {
        Target::Ad => Ad::from_config()?.create(&input, &upn, &pw)?,
        Target::Entra => entra::create(&Graph::from_config()?, &input, &upn, &pw)?,
    };
    if !created {
        host::log(Level::Warn, &format!("{} already exists in {}; left as it is", upn, input.target.name()));
    }
    Ok(json!({"created": created, "account": account}))
}

plugin!(manifest = "../manifest.json", actions = {
    "find_user" => find_user,
    "unlock" => unlock,
    "disable" => disable,
    "enable" => enable,
    "reset_password" => reset_password,
    "add_to_group" => add_to_group,
    "remove_from_group" => remove_from_group,
    "list_groups" => list_groups,
    "get_manager" => get_manager,
    "set_manager" => set_manager,
    "create_user" => create_user,
});

#[cfg(test)]
mod tests;
