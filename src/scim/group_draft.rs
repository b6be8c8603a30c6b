//! A group as a SCIM request leaves it: built from a POST or PUT body, or changed by PATCH
//! operations (members added, removed, replaced; renamed). Member ids are only parsed here; the
//! route checks they are users of the same org.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{
    error::ScimError,
    limits::MAX_MEMBERS,
    patch::{Op, Operation, Path, field, optional_text, required_text},
};
use crate::db::{ids::UserId, models::MemberDetails};

/// What a SCIM client sets on a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupDraft {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Members, each once, in the order first named.
    pub members: Vec<UserId>,
    /// `type` and `display` of the members this request named, as given.
    pub details: HashMap<UserId, MemberDetails>,
    /// Members named by the request (bounded by [`MAX_MEMBERS`]).
    named: usize,
}

impl GroupDraft {
    /// A group as it is now.
    pub fn new(display_name: String, external_id: Option<String>, members: Vec<UserId>) -> Self {
        GroupDraft {
            display_name,
            external_id,
            members,
            details: HashMap::new(),
            named: 0,
        }
    }

    /// The group a POST or PUT body describes.
    pub fn from_body(body: &Value) -> Result<GroupDraft, ScimError> {
        let body = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a group is a JSON object"))?;
        let mut draft = GroupDraft::new(
            required_text("displayName", field(body, "displayName"))?,
            optional_text("externalId", field(body, "externalId"))?,
            Vec::new(),
        );
        if let Some(members) = field(body, "members").filter(|m| !m.is_null()) {
            let ids = draft.member_ids(members)?;
            draft.add(ids);
        }
        Ok(draft)
    }

    /// Applies PATCH `operations` in order.
    pub fn apply(&mut self, operations: &[Operation]) -> Result<(), ScimError> {
        for operation in operations {
            let value = operation.value.as_ref();
            match &operation.path {
                Some(path) => self.set(path, operation.op, value)?,
                None => {
                    let map = value.and_then(Value::as_object).ok_or_else(|| {
                        ScimError::invalid_syntax(
                            "an operation without a path needs an object value",
                        )
                    })?;
                    for (key, value) in map {
                        self.set(&Path::parse(key)?, operation.op, Some(value))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn set(&mut self, path: &Path, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
        match (path.attr.as_str(), &path.filter, path.sub.as_deref()) {
            ("displayname", None, None) => match op {
                Op::Remove => return Err(ScimError::mutability("`displayName` cannot be removed")),
                _ => self.display_name = required_text("displayName", value)?,
            },
            ("externalid", None, None) => {
                self.external_id = match op {
                    Op::Remove => None,
                    _ => optional_text("externalId", value)?,
                }
            }
            ("members", None, None) => match (op, value) {
                (Op::Add, Some(value)) => {
                    let ids = self.member_ids(value)?;
                    self.add(ids);
                }
                (Op::Replace, Some(value)) => {
                    let ids = self.member_ids(value)?;
                    self.members.clear();
                    self.details.clear();
                    self.add(ids);
                }
                (Op::Remove, Some(value)) => {
                    let ids: HashSet<UserId> = self
                        .member_ids(value)?
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect();
                    self.members.retain(|m| !ids.contains(m));
                    self.details.retain(|m, _| !ids.contains(m));
                }
                (_, None) => {
                    self.members.clear();
                    self.details.clear();
                }
            },
            ("members", Some((key, id)), None) if key == "value" && op == Op::Remove => {
                let id = parse_id(id)?;
                self.members.retain(|m| *m != id);
                self.details.remove(&id);
            }
            ("members", _, _) => {
                return Err(ScimError::invalid_path(
                    "members are added, replaced, or removed by `members[value eq \"id\"]`",
                ));
            }
            // Read-only and unknown attributes.
            _ => {}
        }
        Ok(())
    }

    fn add(&mut self, ids: Vec<(UserId, MemberDetails)>) {
        let mut present: HashSet<UserId> = self.members.iter().copied().collect();
        for (id, details) in ids {
            if present.insert(id) {
                self.members.push(id);
            }
            self.details.insert(id, details);
        }
    }

    /// The ids (and `type`, `display`) of `[{"value": "…"}, …]` (or one such object).
    fn member_ids(&mut self, value: &Value) -> Result<Vec<(UserId, MemberDetails)>, ScimError> {
        let list = match value {
            Value::Array(list) => list.as_slice(),
            single => std::slice::from_ref(single),
        };
        self.named += list.len();
        if self.named > MAX_MEMBERS {
            return Err(ScimError::invalid_value(format!(
                "at most {MAX_MEMBERS} members per request"
            )));
        }
        list.iter()
            .map(|member| {
                let member = member.as_object();
                let id = member
                    .and_then(|m| field(m, "value"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ScimError::invalid_value("each member is an object with a `value`")
                    })?;
                let text = |name: &str| optional_text(name, member.and_then(|m| field(m, name)));
                let details = MemberDetails {
                    member_type: text("type")?,
                    display: text("display")?,
                };
                Ok((parse_id(id)?, details))
            })
            .collect()
    }
}

fn parse_id(id: &str) -> Result<UserId, ScimError> {
    id.trim().parse().map_err(|_| {
        ScimError::invalid_value(format!(
            "`{}` is not a user of this organisation",
            super::patch::clip(id)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::operations;
    use serde_json::json;

    #[test]
    fn members_are_added_removed_and_replaced_as_okta_and_entra_send_them() {
        let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
        let mut draft = GroupDraft::from_body(&json!({
            "displayName": "Eng", "members": [{"value": a.to_string()}]
        }))
        .unwrap();
        let body = json!({"Operations": [
            {"op": "Add", "path": "members", "value": [{"value": b.to_string()}, {"value": c.to_string()}]},
            {"op": "Remove", "path": format!("members[value eq \"{a}\"]")},
            {"op": "remove", "path": "members", "value": [{"value": c.to_string()}]},
            {"op": "replace", "value": {"displayName": "Engineering"}},
        ]});
        draft.apply(&operations(&body).unwrap()).unwrap();
        assert_eq!(draft.members, [b]);
        assert_eq!(draft.display_name, "Engineering");
        let replace = json!({"Operations": [{"op": "replace", "path": "members", "value": [{"value": a.to_string()}]}]});
        draft.apply(&operations(&replace).unwrap()).unwrap();
        assert_eq!(draft.members, [a]);
    }

    #[test]
    fn bad_members_and_names_are_refused() {
        assert!(GroupDraft::from_body(&json!({"members": []})).is_err());
        assert!(
            GroupDraft::from_body(&json!({"displayName": "x", "members": [{"value": "nope"}]}))
                .is_err()
        );
        let many: Vec<_> = (0..=MAX_MEMBERS)
            .map(|_| json!({"value": UserId::new().to_string()}))
            .collect();
        assert!(GroupDraft::from_body(&json!({"displayName": "x", "members": many})).is_err());
    }
}
