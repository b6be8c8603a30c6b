//! Stopping without failing requests behind a load balancer. On SIGTERM an instance first
//! drains for `SHUTDOWN_DRAIN`: `/healthz` answers 503 so the balancer stops choosing it, and
//! every response closes its connection, so no idle keep-alive connection is left for the
//! balancer to send a request on just as the instance closes it (nginx retries a GET on another
//! instance then, but not a POST). Then it stops as before.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::ConnectionType,
    middleware::Next,
    web,
};

/// Whether this instance is draining.
#[derive(Default)]
pub struct Draining(AtomicBool);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Closes each connection after its response while the instance drains.
pub async fn close_connections(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let draining = req
        .app_data::<web::Data<Draining>>()
        .is_some_and(|d| d.is_on());
    let mut response = next.call(req).await?;
    if draining {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}
