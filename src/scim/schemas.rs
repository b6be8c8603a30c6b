//! The discovery documents (RFC 7644 §4): what this provider supports, its resource types,
//! and the User and Group schemas as far as it keeps them (RFC 7643 §7).

use serde_json::{Value, json};

use super::{
    limits::MAX_COUNT,
    resource::{GROUP_SCHEMA, USER_SCHEMA},
};

/// `/ServiceProviderConfig`; `base` is the absolute URL of the SCIM endpoints.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A SCIM token (`ual-todo scim-token create`) or an access token from /oauth/token, as `Authorization: Bearer`.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// The resource types, by id.
pub fn resource_types(base: &str) -> Vec<Value> {
    [("User", "/Users", USER_SCHEMA), ("Group", "/Groups", GROUP_SCHEMA)]
        .into_iter()
        .map(|(id, endpoint, schema)| {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": id,
                "name": id,
                "endpoint": endpoint,
                "schema": schema,
                "schemaExtensions": [],
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{id}")},
            })
        })
        .collect()
}

/// An attribute's definition.
struct Attr {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
    case_exact: bool,
    subs: Vec<Value>,
}

impl Attr {
    fn new(name: &'static str, kind: &'static str) -> Attr {
        Attr {
            name,
            kind,
            multi: false,
            required: false,
            mutability: "readWrite",
            returned: "default",
            uniqueness: "none",
            case_exact: false,
            subs: Vec::new(),
        }
    }

    fn to_json(&self) -> Value {
        let mut attr = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi,
            "description": self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        });
        if !self.subs.is_empty() {
            attr["subAttributes"] = self.subs.clone().into();
        }
        if self.kind == "reference" {
            attr["referenceTypes"] = json!(["User", "Group"]);
        }
        attr
    }
}

fn text(name: &'static str) -> Attr {
    Attr::new(name, "string")
}

fn read_only(mut attr: Attr) -> Attr {
    attr.mutability = "readOnly";
    attr
}

fn complex(name: &'static str, multi: bool, subs: Vec<Attr>) -> Attr {
    Attr {
        multi,
        subs: subs.iter().map(Attr::to_json).collect(),
        ..Attr::new(name, "complex")
    }
}

/// The User and Group schemas.
pub fn schemas(base: &str) -> Vec<Value> {
    let user_name = Attr {
        required: true,
        uniqueness: "server",
        ..text("userName")
    };
    let user = vec![
        user_name,
        complex(
            "name",
            false,
            vec![text("formatted"), text("familyName"), text("givenName")],
        ),
        text("displayName"),
        complex(
            "emails",
            true,
            vec![text("value"), text("type"), Attr::new("primary", "boolean")],
        ),
        Attr::new("active", "boolean"),
        read_only(complex(
            "groups",
            true,
            vec![
                read_only(text("value")),
                read_only(Attr::new("$ref", "reference")),
                read_only(text("display")),
            ],
        )),
    ];
    let group = vec![
        Attr {
            required: true,
            ..text("displayName")
        },
        complex(
            "members",
            true,
            vec![
                Attr {
                    mutability: "immutable",
                    ..text("value")
                },
                Attr {
                    mutability: "immutable",
                    ..Attr::new("$ref", "reference")
                },
                text("display"),
                Attr {
                    mutability: "immutable",
                    ..text("type")
                },
            ],
        ),
    ];
    [(USER_SCHEMA, "User", user), (GROUP_SCHEMA, "Group", group)]
        .into_iter()
        .map(|(id, name, attributes)| {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
                "id": id,
                "name": name,
                "description": name,
                "attributes": attributes.iter().map(Attr::to_json).collect::<Vec<_>>(),
                "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
            })
        })
        .collect()
}
