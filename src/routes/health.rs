//! Operations endpoints: `GET /healthz` for load balancers, `GET /metrics` for Prometheus.

use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl as _;
use serde_json::json;

use crate::{db::Pool, drain::Draining, live::Hub, metrics::Metrics};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
}

/// 200 when the database answers and the instance is listening for revocations; 503 (with what
/// is wrong) otherwise, so a load balancer stops sending users to an instance that could not
/// log their tabs out live, or that is shutting down (draining).
async fn healthz(
    pool: web::Data<Pool>,
    hub: web::Data<Hub>,
    draining: web::Data<Draining>,
) -> HttpResponse {
    if draining.is_on() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "draining" }));
    }
    let database = match pool.get().await {
        Ok(mut conn) => diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    };
    let listening = hub.is_listening();
    let word = |ok: bool| if ok { "ok" } else { "down" };
    let body = json!({
        "status": word(database && listening),
        "database": word(database),
        "listener": word(listening),
    });
    if database && listening {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

async fn metrics(
    metrics: web::Data<Metrics>,
    hub: web::Data<Hub>,
    pool: web::Data<Pool>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&hub, &pool))
}
