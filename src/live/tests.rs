//! The hub, without a database: which streams hear what, and when they close.

use futures_util::StreamExt as _;

use super::*;
use crate::db::models::RevocationSource;

fn notice(org: OrgId, user: UserId, session: Option<SessionId>) -> Notice {
    Notice {
        revocation_id: 1,
        org_id: org,
        user_id: user,
        session_ids: session.into_iter().collect(),
        spared_session_id: None,
        source: RevocationSource::Ual,
        actor: "test".into(),
        sessions_ended: 1,
        at_ms: 0,
        action: Action::Revoke,
        reason: None,
    }
}

async fn next_event_name(sub: &mut Subscription) -> Option<String> {
    let event = tokio::time::timeout(Duration::from_millis(100), sub.next())
        .await
        .ok()??;
    match event {
        Event::Data(data) => Some(format!("{data:?}")),
        Event::Comment(_) => None,
    }
}

#[tokio::test]
async fn a_user_revocation_reaches_only_that_users_streams_and_closes_them() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, alice, bob) = (OrgId::new(), UserId::new(), UserId::new());
    let (laptop, phone, bobs) = (SessionId::new(), SessionId::new(), SessionId::new());
    let mut tab1 = hub.subscribe(laptop, alice, org, Feed::User);
    let mut tab2 = hub.subscribe(laptop, alice, org, Feed::User);
    let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);
    let mut bob_tab = hub.subscribe(bobs, bob, org, Feed::User);
    let mut dashboard = hub.subscribe(SessionId::new(), UserId::new(), org, Feed::Admin);

    hub.revoked(&notice(org, alice, None));

    for sub in [&mut tab1, &mut tab2, &mut on_phone] {
        assert!(next_event_name(sub).await.unwrap().contains("logout"));
        assert!(
            sub.next().await.is_none(),
            "the stream ends after the logout"
        );
    }
    assert!(next_event_name(&mut bob_tab).await.is_none());
    assert!(
        next_event_name(&mut dashboard)
            .await
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(hub.stream_count(), 2, "bob's tab and the dashboard remain");
}

#[tokio::test]
async fn a_session_revocation_leaves_the_users_other_sessions() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, alice) = (OrgId::new(), UserId::new());
    let (laptop, phone) = (SessionId::new(), SessionId::new());
    let mut on_laptop = hub.subscribe(laptop, alice, org, Feed::User);
    let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);

    hub.revoked(&notice(org, alice, Some(laptop)));

    assert!(
        next_event_name(&mut on_laptop)
            .await
            .unwrap()
            .contains("logout")
    );
    // The phone's list of sessions changed; it is not signed out.
    let heard = next_event_name(&mut on_phone).await.unwrap();
    assert!(
        heard.contains("sessions") && !heard.contains("logout"),
        "{heard}"
    );
    assert!(next_event_name(&mut on_phone).await.is_none());
    assert_eq!(hub.held_sessions(), vec![phone]);
}

#[tokio::test]
async fn ending_every_other_session_keeps_the_one_that_asked() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, alice) = (OrgId::new(), UserId::new());
    let (laptop, phone, tablet) = (SessionId::new(), SessionId::new(), SessionId::new());
    let mut on_laptop = hub.subscribe(laptop, alice, org, Feed::User);
    let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);
    let mut on_tablet = hub.subscribe(tablet, alice, org, Feed::User);
    let all_but_laptop = Notice {
        source: RevocationSource::SelfService,
        spared_session_id: Some(laptop),
        reason: Some(crate::revocation::FROM_ANOTHER_DEVICE.into()),
        ..notice(org, alice, None)
    };

    hub.revoked(&all_but_laptop);

    for ended in [&mut on_phone, &mut on_tablet] {
        let told = next_event_name(ended).await.unwrap();
        assert!(
            told.contains("logout") && told.contains("self_device"),
            "{told}"
        );
    }
    let heard = next_event_name(&mut on_laptop).await.unwrap();
    assert!(
        heard.contains("sessions") && !heard.contains("logout"),
        "{heard}"
    );
    assert_eq!(hub.held_sessions(), vec![laptop]);
}

#[tokio::test]
async fn a_sign_in_is_told_to_the_users_other_sessions_only() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, alice, bob) = (OrgId::new(), UserId::new(), UserId::new());
    let (laptop, phone, bobs) = (SessionId::new(), SessionId::new(), SessionId::new());
    let mut on_laptop = hub.subscribe(laptop, alice, org, Feed::User);
    let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);
    let mut on_bob = hub.subscribe(bobs, bob, org, Feed::User);

    hub.signed_in(&SignIn {
        org_id: org,
        user_id: alice,
        session_id: phone,
        user_agent: Some(
            "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
        ),
        ip: None,
        new_device: true,
        at_ms: 0,
    });

    let heard = next_event_name(&mut on_laptop).await.unwrap();
    assert!(
        heard.contains("New sign-in from Firefox on Windows"),
        "{heard}"
    );
    assert!(next_event_name(&mut on_phone).await.is_none(), "it knows");
    assert!(next_event_name(&mut on_bob).await.is_none());
}

#[tokio::test]
async fn a_sessions_stream_beyond_the_cap_closes_its_oldest() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, alice, laptop) = (OrgId::new(), UserId::new(), SessionId::new());
    let mut subs: Vec<Subscription> = (0..MAX_STREAMS_PER_SESSION)
        .map(|_| hub.subscribe(laptop, alice, org, Feed::User))
        .collect();
    let other = hub.subscribe(SessionId::new(), alice, org, Feed::User);

    let newest = hub.subscribe(laptop, alice, org, Feed::Admin);

    assert!(subs[0].next().await.is_none(), "the oldest stream ended");
    assert_eq!(hub.stream_count(), MAX_STREAMS_PER_SESSION + 1);
    assert_eq!(
        hub.lock().by_session[&laptop].len(),
        MAX_STREAMS_PER_SESSION
    );
    assert!(hub.lock().entries.contains_key(&newest.id));
    drop((subs, other));
}

#[tokio::test]
async fn losing_the_admin_role_closes_only_that_users_org_feeds() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, demoted, other) = (OrgId::new(), UserId::new(), UserId::new());
    let session = SessionId::new();
    let mut feed = hub.subscribe(session, demoted, org, Feed::Admin);
    let mut tab = hub.subscribe(session, demoted, org, Feed::User);
    let mut other_feed = hub.subscribe(SessionId::new(), other, org, Feed::Admin);

    hub.lost_admin(demoted);

    assert!(
        next_event_name(&mut feed)
            .await
            .unwrap()
            .contains("demoted")
    );
    assert!(feed.next().await.is_none(), "the feed ends");
    assert!(next_event_name(&mut tab).await.is_none(), "the tab stays");
    assert!(next_event_name(&mut other_feed).await.is_none());
    assert_eq!(hub.admin_users(), vec![other]);
    assert_eq!(hub.stream_count(), 2);
}

#[tokio::test]
async fn dropped_streams_unregister_and_other_orgs_hear_nothing() {
    let hub = Hub::new(Duration::from_secs(15));
    let (acme, globex, alice) = (OrgId::new(), OrgId::new(), UserId::new());
    let tab = hub.subscribe(SessionId::new(), alice, acme, Feed::User);
    let mut globex_admin = hub.subscribe(SessionId::new(), UserId::new(), globex, Feed::Admin);
    drop(tab);
    assert_eq!(hub.stream_count(), 1);

    hub.revoked(&notice(acme, alice, None));

    assert!(next_event_name(&mut globex_admin).await.is_none());
    assert!(!hub.lock().by_user.contains_key(&alice));
}

#[tokio::test]
async fn a_revocation_that_spares_a_session_leaves_that_sessions_streams_open() {
    let hub = Hub::new(Duration::from_secs(15));
    let (org, admin) = (OrgId::new(), UserId::new());
    let (here, elsewhere) = (SessionId::new(), SessionId::new());
    let mut dashboard = hub.subscribe(here, admin, org, Feed::Admin);
    let mut other_tab = hub.subscribe(elsewhere, admin, org, Feed::User);

    hub.revoked(&Notice {
        spared_session_id: Some(here),
        ..notice(org, admin, None)
    });

    assert!(
        next_event_name(&mut other_tab)
            .await
            .unwrap()
            .contains("logout")
    );
    let seen = next_event_name(&mut dashboard).await.unwrap();
    assert!(
        seen.contains("revoked"),
        "the dashboard hears of it: {seen}"
    );
    assert_eq!(hub.stream_count(), 1, "the spared session's stream remains");
}

#[tokio::test]
async fn every_open_stream_gets_a_keep_alive_comment_and_the_timer_stops_with_the_hub() {
    let hub = Hub::new(Duration::from_millis(50));
    let org = OrgId::new();
    let mut tabs: Vec<Subscription> = (0..KEEP_ALIVE_BATCH + 2)
        .map(|_| hub.subscribe(SessionId::new(), UserId::new(), org, Feed::User))
        .collect();
    let timer = tokio::spawn(Hub::keep_streams_alive(Arc::downgrade(&hub)));

    let last = tabs.len() - 1;
    for i in [0, last] {
        let tab = &mut tabs[i];
        let event = tokio::time::timeout(Duration::from_secs(2), tab.next())
            .await
            .expect("a keep-alive within two periods")
            .expect("the stream is open");
        assert!(matches!(event, Event::Comment(text) if text == "keep-alive"));
    }
    drop(tabs);
    drop(hub);

    tokio::time::timeout(Duration::from_secs(2), timer)
        .await
        .expect("the timer ends once the hub is gone")
        .unwrap();
}
