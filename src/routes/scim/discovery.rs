//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`: static documents (nothing of any
//! org), so no credential is needed to read them.

use actix_web::{HttpResponse, Route, web};
use serde_json::Value;

use super::reply::{self, base, document};
use crate::{
    config::PublicUrl,
    scim::{error::ScimError, list, schemas},
};

pub fn config(cfg: &mut web::ServiceConfig) {
    // Read-only documents: any other method is 405 (RFC 7644 §3.12), not 404.
    let read_only = |path: &str, route: Route| {
        web::resource(path.to_owned())
            .route(route)
            .default_service(web::to(reply::method_not_allowed))
    };
    cfg.service(read_only(
        "/ServiceProviderConfig",
        web::get().to(service_provider_config),
    ))
    .service(read_only("/ResourceTypes", web::get().to(resource_types)))
    .service(read_only(
        "/ResourceTypes/{id}",
        web::get().to(resource_type),
    ))
    .service(read_only("/Schemas", web::get().to(all_schemas)))
    .service(read_only("/Schemas/{id}", web::get().to(schema)));
}

async fn service_provider_config(url: web::Data<PublicUrl>) -> HttpResponse {
    document(&schemas::service_provider_config(&base(&url)))
}

fn listed(resources: Vec<Value>) -> HttpResponse {
    let total = i64::try_from(resources.len()).unwrap_or_default();
    let page = list::Page {
        start_index: 1,
        count: total,
    };
    document(&list::response(resources, total, page))
}

fn by_id(resources: Vec<Value>, id: &str) -> Result<HttpResponse, ScimError> {
    resources
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
        .map(|r| document(&r))
        .ok_or_else(|| ScimError::not_found("no such resource type or schema"))
}

async fn resource_types(url: web::Data<PublicUrl>) -> HttpResponse {
    listed(schemas::resource_types(&base(&url)))
}

async fn resource_type(
    url: web::Data<PublicUrl>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    by_id(schemas::resource_types(&base(&url)), &id)
}

async fn all_schemas(url: web::Data<PublicUrl>) -> HttpResponse {
    listed(schemas::schemas(&base(&url)))
}

async fn schema(
    url: web::Data<PublicUrl>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    by_id(schemas::schemas(&base(&url)), &id)
}
