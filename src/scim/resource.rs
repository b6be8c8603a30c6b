//! Users and groups as SCIM resources (RFC 7643 §4): core attributes, read-only `groups` and
//! `members`, and `meta` with an absolute `location` and the version as a weak ETag.

use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::etag::etag;
use crate::db::{
    ids::AccountState,
    models::{Group, Member, User},
};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Where the SCIM endpoints live, after the public URL.
pub const BASE_PATH: &str = "/scim/v2";

fn timestamp(at: &OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `user` as a User resource; `groups` are its memberships; `base` is the absolute URL of
/// [`BASE_PATH`].
pub fn user(user: &User, groups: &[Member], base: &str) -> Value {
    let location = format!("{base}/Users/{}", user.id);
    let mut resource = json!({
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.email,
        "groups": groups
            .iter()
            .filter(|m| m.user_id == user.id)
            .map(|m| json!({
                "value": m.group_id,
                "display": m.group_name,
                "$ref": format!("{base}/Groups/{}", m.group_id),
            }))
            .collect::<Vec<_>>(),
        "meta": {
            "resourceType": "User",
            "created": timestamp(&user.created_at),
            "lastModified": timestamp(&user.updated_at),
            "location": location,
            "version": etag(user.version),
        },
    });
    if let Some(name) = name(user) {
        resource["name"] = name;
    }
    let emails = emails(user);
    if !emails.is_empty() {
        resource["emails"] = emails.into();
    }
    if !user.active_unassigned {
        resource["active"] = (user.state == AccountState::Active).into();
    }
    if let Some(id) = &user.external_id {
        resource["externalId"] = id.as_str().into();
    }
    if let Some(name) = &user.display_name {
        resource["displayName"] = name.as_str().into();
    }
    resource
}

/// `name`, without the sub-attributes it has none of (none at all: no `name`). `formatted` is
/// what the IdP set, else the given and family names.
fn name(user: &User) -> Option<Value> {
    let formatted =
        user.name_formatted
            .clone()
            .or_else(|| match (&user.given_name, &user.family_name) {
                (Some(given), Some(family)) => Some(format!("{given} {family}")),
                (one, other) => one.clone().or_else(|| other.clone()),
            });
    let mut name = serde_json::Map::new();
    for (key, value) in [
        ("givenName", &user.given_name),
        ("familyName", &user.family_name),
        ("formatted", &formatted),
    ] {
        if let Some(value) = value {
            name.insert(key.into(), value.as_str().into());
        }
    }
    (!name.is_empty()).then_some(Value::Object(name))
}

/// `emails` as the IdP set them; never set: the `userName`, when it is an email address.
fn emails(user: &User) -> Vec<Value> {
    match &user.emails {
        Some(Value::Array(emails)) => emails.clone(),
        Some(_) => Vec::new(),
        None if is_email(&user.email) => {
            vec![json!({"value": user.email, "primary": true, "type": "work"})]
        }
        None => Vec::new(),
    }
}

/// Whether `text` looks like an email address: one `@`, something on each side, no spaces.
pub fn is_email(text: &str) -> bool {
    !text.chars().any(char::is_whitespace)
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
}

/// `group` as a Group resource, with `members` unless they were excluded (`None`).
pub fn group(group: &Group, members: Option<&[Member]>, base: &str) -> Value {
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": timestamp(&group.created_at),
            "lastModified": timestamp(&group.updated_at),
            "location": format!("{base}/Groups/{}", group.id),
            "version": etag(group.version),
        },
    });
    if let Some(id) = &group.external_id {
        resource["externalId"] = id.as_str().into();
    }
    if let Some(members) = members {
        resource["members"] = members
            .iter()
            .filter(|m| m.group_id == group.id)
            .map(|m| {
                json!({
                    "value": m.user_id,
                    "display": m.display.as_deref().unwrap_or(&m.email),
                    "type": m.member_type.as_deref().unwrap_or("User"),
                    "$ref": format!("{base}/Users/{}", m.user_id),
                })
            })
            .collect();
    }
    resource
}
