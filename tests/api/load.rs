//! Users browse and edit their todos while Universal Logout revokes them, many times a second.
//! Nothing fails (no 5xx), no request started after a revocation's 204 succeeds with the revoked
//! session, and every todo the app acknowledged is there at the end.
//!
//! CI runs a short version; the documented run (README, "Load with revocations") sets
//! `UAL_LOAD_SECONDS=60 UAL_LOAD_USERS=200` and uses `--release`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;

use crate::helpers::{TestApp, email_subject, spawn_app_with, universal_logout_request};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A request a simulated user made, and whether the app let it through.
struct Request {
    user: usize,
    /// When the session it used finished signing in.
    session_since: Instant,
    started: Instant,
    succeeded: bool,
}

/// A revocation: when it was sent, when its 204 came back.
struct Revocation {
    user: usize,
    sent: Instant,
    answered: Instant,
}

#[derive(Default)]
struct Record {
    requests: Vec<Request>,
    revocations: Vec<Revocation>,
    acknowledged: Vec<String>,
    server_errors: Vec<String>,
}

async fn simulate_user(
    app: Arc<TestApp>,
    user: usize,
    password: String,
    until: Instant,
    record: Arc<Mutex<Record>>,
) {
    let email = format!("user{user}@load.test");
    let mut made = 0;
    while Instant::now() < until {
        let browser = app.browser();
        let login = browser.login(&email, &password).await;
        if login.status().is_server_error() {
            record
                .lock()
                .unwrap()
                .server_errors
                .push(format!("login {}", login.status()));
            continue;
        }
        let since = Instant::now();
        // Browse until the session is refused.
        while Instant::now() < until {
            let started = Instant::now();
            let page = browser.get("/todos").await;
            let status = page.status();
            let ok = status == StatusCode::OK;
            let record_request = |succeeded: bool, what: String, status: StatusCode| {
                let mut record = record.lock().unwrap();
                record.requests.push(Request {
                    user,
                    session_since: since,
                    started,
                    succeeded,
                });
                if status.is_server_error() {
                    record.server_errors.push(format!("{what} {status}"));
                }
            };
            record_request(ok, "GET /todos".into(), status);
            if !ok {
                break;
            }
            made += 1;
            let title = format!("u{user}-todo{made}");
            let started = Instant::now();
            let created = browser.post_form("/todos", &[("title", &title)]).await;
            let location = created
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            let acknowledged =
                created.status() == StatusCode::SEE_OTHER && location.as_deref() == Some("/todos");
            {
                let mut record = record.lock().unwrap();
                record.requests.push(Request {
                    user,
                    session_since: since,
                    started,
                    succeeded: acknowledged,
                });
                if acknowledged {
                    record.acknowledged.push(title);
                }
                if created.status().is_server_error() {
                    record
                        .server_errors
                        .push(format!("POST /todos {}", created.status()));
                }
            }
            if !acknowledged {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keep_working_while_they_are_revoked_and_nothing_is_lost() {
    let seconds = setting("UAL_LOAD_SECONDS", 5);
    let users = setting("UAL_LOAD_USERS", 30) as usize;
    let per_second = setting("UAL_LOAD_REVOCATIONS_PER_SECOND", 20);
    let app = Arc::new(
        spawn_app_with(|s| {
            s.workers = Some(2);
            s.database_pool_size = 16;
        })
        .await,
    );
    let org = app.create_org("load").await;
    let password = "load-test-password".to_owned();
    let hash = ual_todo::auth::password::hash(&password).unwrap();
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query(format!(
            "INSERT INTO users (org_id, email, password_hash) \
             SELECT '{}', 'user' || i || '@load.test', '{hash}' FROM generate_series(0, {}) AS i",
            org.id,
            users - 1
        ))
        .execute(&mut app.db.connect())
        .unwrap();
    }
    let key = app.api_key(org.id).await;
    let record = Arc::new(Mutex::new(Record::default()));
    let until = Instant::now() + Duration::from_secs(seconds);

    let browsing: Vec<_> = (0..users)
        .map(|user| {
            tokio::spawn(simulate_user(
                app.clone(),
                user,
                password.clone(),
                until,
                record.clone(),
            ))
        })
        .collect();
    // Open loop: a revocation leaves every tick whether or not the previous one was answered,
    // so a slow answer under load never lowers the rate.
    let revoker = {
        let (app, record) = (app.clone(), record.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_second));
            let mut sent_calls = tokio::task::JoinSet::new();
            let mut n: usize = 0;
            while Instant::now() < until {
                tick.tick().await;
                n += 1;
                let user = (n * 7919) % users;
                let (client, app, key, record) =
                    (client.clone(), app.clone(), key.clone(), record.clone());
                sent_calls.spawn(async move {
                    let sent = Instant::now();
                    let subject = email_subject(&format!("user{user}@load.test"));
                    let response = universal_logout_request(&client, &app.address, &key, &subject)
                        .send()
                        .await
                        .unwrap();
                    let mut record = record.lock().unwrap();
                    if response.status() == StatusCode::NO_CONTENT {
                        record.revocations.push(Revocation {
                            user,
                            sent,
                            answered: Instant::now(),
                        });
                    } else {
                        record
                            .server_errors
                            .push(format!("UAL {}", response.status()));
                    }
                });
            }
            while let Some(call) = sent_calls.join_next().await {
                call.unwrap();
            }
        })
    };
    for task in browsing {
        task.await.unwrap();
    }
    revoker.await.unwrap();

    let record = record.lock().unwrap();
    assert!(
        record.server_errors.is_empty(),
        "5xx answers: {:?}",
        record.server_errors
    );
    // A session revoked by a 204 can serve no request that started after that 204.
    let mut violations = 0;
    for request in record.requests.iter().filter(|r| r.succeeded) {
        violations += record
            .revocations
            .iter()
            .filter(|rev| {
                rev.user == request.user
                    && request.session_since < rev.sent
                    && rev.answered < request.started
            })
            .count();
    }
    assert_eq!(violations, 0, "requests succeeded with a revoked session");
    // Every acknowledged todo is there.
    let stored: HashSet<String> = {
        use diesel::prelude::*;
        use ual_todo::db::schema::todos;
        todos::table
            .select(todos::title)
            .load::<String>(&mut app.db.connect())
            .unwrap()
            .into_iter()
            .collect()
    };
    let lost: Vec<_> = record
        .acknowledged
        .iter()
        .filter(|t| !stored.contains(*t))
        .collect();
    assert!(lost.is_empty(), "acknowledged todos lost: {lost:?}");
    let ual_times: Vec<Duration> = record
        .revocations
        .iter()
        .map(|r| r.answered - r.sent)
        .collect();
    eprintln!(
        "load: {users} users, {seconds} s: {} requests ({} succeeded), {} revocations (answered in p50 {:?}, max {:?}), {} todos acknowledged, 0 errors, 0 violations",
        record.requests.len(),
        record.requests.iter().filter(|r| r.succeeded).count(),
        record.revocations.len(),
        percentile(&ual_times, 50),
        percentile(&ual_times, 100),
        record.acknowledged.len()
    );
    assert!(
        record.revocations.len() as u64 >= seconds * per_second * 9 / 10,
        "revocations arrived at {per_second} a second"
    );
    assert!(!record.acknowledged.is_empty());
}

/// The `p`th percentile (nearest rank) of some durations.
fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}
