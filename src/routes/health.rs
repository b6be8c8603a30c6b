//! Operations endpoints.

use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl as _;

use crate::{db::Pool, error::ApiError};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz));
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "database": "ok" })))
}
