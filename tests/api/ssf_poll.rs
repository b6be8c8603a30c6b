//! Poll delivery (RFC 8936) from a real transmitter process: polled SETs take effect, are
//! acknowledged only after commit, refused ones are reported in `setErrs`, and with two
//! instances (separate processes) and a restart no effect is lost or repeated.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use ual_todo::db::{
    ids::ManagedBy,
    models::{Delivery, NewOrg, NewUser, Org, User},
};

use crate::{
    helpers::{TestDb, count, spawn_app},
    ssf_transmitter::{Transmitter, configure, configure_on, known_at_idp},
};

fn acked(state: &Value, jti: &Value) -> bool {
    state["acks"].as_array().unwrap().contains(jti)
}

#[tokio::test]
async fn polled_sets_take_effect_and_are_acknowledged_after_commit() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let alice = app.alice().await;
    let org = Org::find(&mut *app.conn().await, alice.user.org_id)
        .await
        .unwrap()
        .unwrap();
    configure(&app, &tx, &org, Delivery::Poll).await;
    let who = known_at_idp(&mut *app.conn().await, org.id, alice.user.id, "00u-alice").await;
    let browser = app.signed_in(&alice).await;

    let queued = tx.example("okta-session-revoked", who).await;
    assert_eq!(queued["queued"], true);

    let jti = queued["jti"].clone();
    tx.wait_for("the acknowledgement", |s| acked(s, &jti)).await;
    assert!(
        !browser.is_signed_in().await,
        "committed before acknowledged"
    );
    assert_eq!(count(&app.db, "revocations"), 1);

    // The transmitter sends it again (as if the acknowledgement was lost): acknowledged again,
    // no second effect.
    tx.requeue(jti.as_str().unwrap(), queued["token"].as_str().unwrap())
        .await;
    tx.wait_for("the second acknowledgement", |s| {
        s["acks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| **a == jti)
            .count()
            == 2
    })
    .await;
    assert_eq!(count(&app.db, "revocations"), 1);
}

#[tokio::test]
async fn a_refused_polled_set_is_reported_in_set_errs_and_changes_nothing() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let alice = app.alice().await;
    let org = Org::find(&mut *app.conn().await, alice.user.org_id)
        .await
        .unwrap()
        .unwrap();
    configure(&app, &tx, &org, Delivery::Poll).await;
    let browser = app.signed_in(&alice).await;

    let queued = tx
        .event(json!({
            "event_type": "https://schemas.openid.net/secevent/caep/event-type/credential-change",
            "sub_id": { "format": "email", "email": "alice@acme.test" },
            "claims": { "aud": "urn:someone-else" },
        }))
        .await;

    let jti = queued["jti"].as_str().unwrap().to_owned();
    let state = tx
        .wait_for("the setErrs", |s| s["setErrs"].get(&jti).is_some())
        .await;
    assert_eq!(state["setErrs"][&jti]["err"], "invalid_audience");
    assert!(browser.is_signed_in().await);
    assert_eq!(count(&app.db, "revocations"), 0);
}

/// An instance of the app as its own process, on `db`, allowed to reach loopback transmitters.
fn instance(db: &TestDb) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
        .env("DATABASE_URL", db.url.expose())
        .env("BIND", "127.0.0.1:0")
        .env("ALLOW_INSECURE_IDP", "true")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the server starts").unwrap();
        if line.contains("serving at ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

#[tokio::test]
async fn two_instances_and_a_restart_neither_lose_nor_repeat_an_effect() {
    // No app in this process: only the two instances below poll.
    let db = TestDb::new();
    let pool = ual_todo::db::pool(&db.url, 2).unwrap();
    let tx = Transmitter::start(json!({}));
    let mut conn = pool.get().await.unwrap();
    let org = Org::create(
        &mut conn,
        &NewOrg {
            name: "acme",
            slug: "acme",
        },
    )
    .await
    .unwrap();
    let alice = User::create(
        &mut conn,
        &NewUser {
            org_id: org.id,
            email: "alice@acme.test",
            password_hash: None,
            is_admin: false,
            managed_by: ManagedBy::Local,
        },
    )
    .await
    .unwrap();
    let who = known_at_idp(&mut conn, org.id, alice.id, "00u-alice").await;
    drop(conn);
    configure_on(
        &pool,
        &db.url,
        "http://127.0.0.1:9",
        &tx,
        &org,
        Delivery::Poll,
    )
    .await;
    let mut a = instance(&db);
    let mut b = instance(&db);

    let mut jtis = Vec::new();
    for _ in 0..10 {
        let queued = tx.example("okta-credential-change", who.clone()).await;
        jtis.push(queued["jti"].clone());
    }
    tx.wait_for("ten acknowledgements", |s| jtis.iter().all(|j| acked(s, j)))
        .await;

    // Whichever instance polls stops; the other (or the restarted one) goes on.
    a.kill().unwrap();
    a.wait().unwrap();
    for _ in 0..10 {
        let queued = tx.example("okta-credential-change", who.clone()).await;
        jtis.push(queued["jti"].clone());
    }
    let a = instance(&db);
    b.kill().unwrap();
    b.wait().unwrap();
    for _ in 0..10 {
        let queued = tx.example("okta-credential-change", who.clone()).await;
        jtis.push(queued["jti"].clone());
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let state = tx.state().await;
        if jtis.iter().all(|j| acked(&state, j)) {
            break;
        }
    }
    let state = tx
        .wait_for("thirty acknowledgements", |s| {
            jtis.iter().all(|j| acked(s, j))
        })
        .await;

    // Every SET once: one audit row each, whoever polled it.
    assert_eq!(count(&db, "revocations WHERE source = 'caep'"), 30);
    assert_eq!(state["setErrs"], json!({}));
    let mut a = a;
    a.kill().unwrap();
    a.wait().unwrap();
}
