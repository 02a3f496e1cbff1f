//! Validation of a tenants file: names, keys from the environment, and the policies
//! each tenant may use.

use crate::env::{self, EnvLookup};
use crate::locate::KeyPath;
use crate::raw::{RawAdmin, RawTenant, RawTenants};
use crate::validate::{check_version, values, At, Invalid};

use super::Tenant;

/// A valid file: tenants and admins with their keys, and every policy name a tenant
/// refers to with where it is written.
pub(super) struct Valid {
    pub tenants: Vec<(Tenant, String)>,
    pub admins: Vec<(String, String)>,
    pub policy_refs: Vec<(String, KeyPath)>,
}

/// Who holds a key already read, for the duplicate-key error.
struct KeyOwner {
    who: String,
    var: String,
    key: String,
}

pub(super) fn file(raw: &RawTenants, env: EnvLookup<'_>) -> Result<Valid, Invalid> {
    let root = KeyPath::default();
    check_version(raw.version.0, &root)?;
    let list_path = root.key("tenants");
    let list = match raw.tenants.as_deref() {
        None | Some([]) => {
            return Err("expected at least one tenant, found none".to_owned()).at(&list_path)
        }
        Some(list) => list,
    };
    let mut owners: Vec<KeyOwner> = Vec::new();
    let mut valid = Valid {
        tenants: Vec::with_capacity(list.len()),
        admins: Vec::new(),
        policy_refs: Vec::new(),
    };
    for (i, raw_tenant) in list.iter().enumerate() {
        let path = list_path.index(i);
        let who = format!("tenant {:?}", raw_tenant.name);
        let (t, refs) = tenant(raw_tenant, &path)?;
        if let Some(first) = valid.tenants.iter().position(|(o, _)| o.name == t.name) {
            return Err(format!(
                "expected unique tenant names, found {:?} again (first at {})",
                t.name,
                list_path.index(first).key("name")
            ))
            .at(&path.key("name"));
        }
        let key = unique_key(&raw_tenant.api_key_env, who, &mut owners, env)
            .at(&path.key("api_key_env"))?;
        valid.tenants.push((t, key));
        valid.policy_refs.extend(refs);
    }
    let admins_path = root.key("admins");
    for (i, raw_admin) in raw.admins.iter().flatten().enumerate() {
        let path = admins_path.index(i);
        let name = admin(raw_admin, &path)?;
        if let Some(first) = valid.admins.iter().position(|(n, _)| *n == name) {
            return Err(format!(
                "expected unique admin names, found {name:?} again (first at {})",
                admins_path.index(first).key("name")
            ))
            .at(&path.key("name"));
        }
        let key = unique_key(
            &raw_admin.api_key_env,
            format!("admin {name:?}"),
            &mut owners,
            env,
        )
        .at(&path.key("api_key_env"))?;
        valid.admins.push((name, key));
    }
    Ok(valid)
}

type Refs = Vec<(String, KeyPath)>;

fn tenant(raw: &RawTenant, path: &KeyPath) -> Result<(Tenant, Refs), Invalid> {
    values::check_name(&raw.name).at(&path.key("name"))?;
    let mut refs: Refs = Vec::new();
    let mut policies: Vec<String> = Vec::new();
    if let Some(list) = &raw.policies {
        let list_path = path.key("policies");
        if list.is_empty() {
            return Err(
                "expected at least one policy name (omit `policies` to allow only \
                        the tenant's default policy), found none"
                    .to_owned(),
            )
            .at(&list_path);
        }
        for (i, name) in list.iter().enumerate() {
            let at = list_path.index(i);
            values::check_name(name).at(&at)?;
            if policies.contains(name) {
                return Err(format!("expected each policy once, found {name:?} again")).at(&at);
            }
            policies.push(name.clone());
            refs.push((name.clone(), at));
        }
    }
    if let Some(policy) = &raw.policy {
        let at = path.key("policy");
        values::check_name(policy).at(&at)?;
        if !policies.is_empty() && !policies.contains(policy) {
            return Err(format!(
                "expected one of the tenant's `policies` ({}), found {policy:?}",
                policies.join(", ")
            ))
            .at(&at);
        }
        refs.push((policy.clone(), at));
    }
    let tenant = Tenant {
        name: raw.name.clone(),
        // With `policies` and no `policy`, the first listed is the default.
        default_policy: raw.policy.clone().or_else(|| policies.first().cloned()),
        policies,
    };
    Ok((tenant, refs))
}

fn admin(raw: &RawAdmin, path: &KeyPath) -> Result<String, Invalid> {
    values::check_name(&raw.name).at(&path.key("name"))?;
    Ok(raw.name.clone())
}

/// The key in `var`, refused when another tenant or admin already has it.
fn unique_key(
    var: &str,
    who: String,
    owners: &mut Vec<KeyOwner>,
    env: EnvLookup<'_>,
) -> Result<String, String> {
    let key = api_key(var, &who, env)?;
    if let Some(first) = owners.iter().find(|o| o.key == key) {
        return Err(format!(
            "expected a different API key for each tenant and admin, found the key of {} \
             (in {}) also in {var} for {who}",
            first.who, first.var
        ));
    }
    owners.push(KeyOwner {
        who,
        var: var.to_owned(),
        key: key.clone(),
    });
    Ok(key)
}

/// The key from its variable. Messages name the variable and the owner, never the value.
fn api_key(var: &str, who: &str, env: EnvLookup<'_>) -> Result<String, String> {
    if !env::is_env_name(var) {
        return Err(format!(
            "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found {var:?}"
        ));
    }
    let expected = format!("expected environment variable {var} to hold the API key of {who}");
    match env(var) {
        None => Err(format!("{expected}, found it unset")),
        Some(key) if key.trim().is_empty() => Err(format!("{expected}, found it empty")),
        // Surrounding whitespace is almost always a copy-paste slip that would make
        // every request fail to authenticate.
        Some(key) if key.trim() != key => Err(format!(
            "{expected} without leading or trailing whitespace, found whitespace around it"
        )),
        Some(key) => Ok(key),
    }
}
