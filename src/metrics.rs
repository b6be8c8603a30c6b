//! Operational metrics in the Prometheus text format, per instance: requests by route and status,
//! revocations by source and how long they took, open live-logout streams, the listening
//! connection, and database pool use.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};

use crate::{db::Pool, db::models::RevocationSource, live::Hub};

/// Upper bounds of the revocation-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(&'static str, String, u16), u64>,
    revocations: BTreeMap<&'static str, u64>,
    durations: Histogram,
    password_checks: u64,
    /// Shared Signals events accepted, by event and outcome (both closed sets).
    ssf_events: BTreeMap<(&'static str, &'static str), u64>,
}

/// This instance's counters.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request. Every label comes from a closed set, so no client can grow the series:
    /// the method is a standard one or `other`, the route is a pattern the app registered (never
    /// the raw path) or `unmatched`, and the status is a three-digit code.
    pub fn request(&self, method: &Method, route: Option<&str>, status: u16) {
        let route = route.unwrap_or("unmatched");
        let mut counters = self.lock();
        let key = (method_label(method), route.to_owned(), status);
        *counters.requests.entry(key).or_default() += 1;
    }

    /// Counts a revocation and how long its transaction took.
    pub fn revocation(&self, source: RevocationSource, took: Duration) {
        let mut counters = self.lock();
        *counters.revocations.entry(source.as_str()).or_default() += 1;
        let seconds = took.as_secs_f64();
        let histogram = &mut counters.durations;
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Counts a Shared Signals event accepted: `event` and `outcome` are labels from closed sets
    /// (`Signal::label`, `Outcome::label`), never text from the SET.
    pub fn ssf_event(&self, event: &'static str, outcome: &'static str) {
        *self.lock().ssf_events.entry((event, outcome)).or_default() += 1;
    }

    /// Counts password verifications (argon2 runs) made by sign-ins.
    pub fn password_checks(&self, n: u64) {
        self.lock().password_checks += n;
    }

    /// Runs a revocation, counting it.
    pub async fn timed<T>(
        &self,
        source: RevocationSource,
        revocation: impl Future<Output = T>,
    ) -> T {
        let started = Instant::now();
        let result = revocation.await;
        self.revocation(source, started.elapsed());
        result
    }

    /// The text exposition of every metric.
    pub fn render(&self, hub: &Hub, pool: &Pool) -> String {
        let counters = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ual_todo_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE ual_todo_http_requests_total counter");
        for ((method, route, status), n) in &counters.requests {
            let _ = writeln!(
                out,
                "ual_todo_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        let _ = writeln!(
            out,
            "# HELP ual_todo_revocations_total Revocations made by this instance, by source."
        );
        let _ = writeln!(out, "# TYPE ual_todo_revocations_total counter");
        for source in RevocationSource::ALL {
            let n = counters
                .revocations
                .get(source.as_str())
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "ual_todo_revocations_total{{source=\"{}\"}} {n}",
                source.as_str()
            );
        }
        let histogram = &counters.durations;
        let _ = writeln!(
            out,
            "# HELP ual_todo_revocation_duration_seconds Time to commit a revocation."
        );
        let _ = writeln!(out, "# TYPE ual_todo_revocation_duration_seconds histogram");
        for (bound, n) in BUCKETS.iter().zip(histogram.counts) {
            let _ = writeln!(
                out,
                "ual_todo_revocation_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "ual_todo_revocation_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(
            out,
            "ual_todo_revocation_duration_seconds_sum {}",
            histogram.sum
        );
        let _ = writeln!(
            out,
            "ual_todo_revocation_duration_seconds_count {}",
            histogram.count
        );
        let _ = writeln!(
            out,
            "# HELP ual_todo_ssf_events_total Shared Signals events accepted, by event and outcome."
        );
        let _ = writeln!(out, "# TYPE ual_todo_ssf_events_total counter");
        for ((event, outcome), n) in &counters.ssf_events {
            let _ = writeln!(
                out,
                "ual_todo_ssf_events_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let gauges = [
            (
                "ual_todo_sse_streams",
                "Open live-logout streams.",
                "gauge",
                hub.stream_count() as u64,
            ),
            (
                "ual_todo_listener_up",
                "1 while the LISTEN connection is up.",
                "gauge",
                u64::from(hub.is_listening()),
            ),
            (
                "ual_todo_listen_reconnects_total",
                "Times the LISTEN connection was re-established.",
                "counter",
                hub.reconnects(),
            ),
            (
                "ual_todo_password_checks_total",
                "Password verifications run by sign-ins.",
                "counter",
                counters.password_checks,
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let status = pool.status();
        let _ = writeln!(
            out,
            "# HELP ual_todo_db_pool_connections Database pool connections by state."
        );
        let _ = writeln!(out, "# TYPE ual_todo_db_pool_connections gauge");
        let idle = status.available;
        let _ = writeln!(
            out,
            "ual_todo_db_pool_connections{{state=\"in_use\"}} {}",
            status.size.saturating_sub(idle)
        );
        let _ = writeln!(out, "ual_todo_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            out,
            "ual_todo_db_pool_connections{{state=\"max\"}} {}",
            status.max_size
        );
        let _ = writeln!(out, "ual_todo_db_pool_waiting {}", status.waiting);
        out
    }
}

/// The label of a request method: any token is a valid method, so only the standard ones get
/// their own label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware: counts every answered request.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let route = req.match_pattern();
    let response = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &response {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        metrics.request(&method, route.as_deref(), status);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_fill_the_histogram_cumulatively() {
        let metrics = Metrics::default();
        metrics.revocation(RevocationSource::Ual, Duration::from_micros(1500));
        metrics.revocation(RevocationSource::Admin, Duration::from_millis(30));
        let counters = metrics.lock();
        assert_eq!(counters.durations.counts[0], 0); // ≤ 1 ms
        assert_eq!(counters.durations.counts[1], 1); // ≤ 2 ms
        assert_eq!(counters.durations.counts[5], 2); // ≤ 50 ms
        assert_eq!(counters.durations.count, 2);
        assert_eq!(counters.revocations["ual"], 1);
    }

    #[test]
    fn only_standard_methods_get_their_own_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
