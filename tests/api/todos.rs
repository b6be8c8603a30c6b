//! The todo list: creation, validation, toggling, deletion, and isolation between users.

use reqwest::StatusCode;

use crate::helpers::{assert_is_redirect_to, count, spawn_app};

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in() {
    let app = spawn_app().await;
    let browser = app.browser();

    assert_is_redirect_to(&browser.get("/todos").await, "/login");
    assert_is_redirect_to(&browser.get("/").await, "/todos");
    assert_is_redirect_to(
        &browser.post_form("/todos", &[("title", "x")]).await,
        "/login",
    );
    let id = uuid::Uuid::new_v4();
    assert_is_redirect_to(
        &browser.post_form(&format!("/todos/{id}/toggle"), &[]).await,
        "/login",
    );
    assert_is_redirect_to(
        &browser.post_form(&format!("/todos/{id}/delete"), &[]).await,
        "/login",
    );
    assert_eq!(count(&app.db, "todos"), 0);
}

#[tokio::test]
async fn a_todo_is_added_completed_and_deleted() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    assert_is_redirect_to(
        &browser
            .post_form("/todos", &[("title", "  Buy milk  ")])
            .await,
        "/todos",
    );
    let page = browser.page("/todos").await;
    assert!(
        page.contains(r#"<span class="title">Buy milk</span>"#),
        "the title is trimmed"
    );
    assert!(page.contains("0 of 1 done"));

    let id: String = {
        use diesel::prelude::*;
        use ual_todo::db::schema::todos;
        todos::table
            .select(todos::id)
            .first::<uuid::Uuid>(&mut app.db.connect())
            .unwrap()
            .to_string()
    };
    assert_is_redirect_to(
        &browser.post_form(&format!("/todos/{id}/toggle"), &[]).await,
        &format!("/todos#todo-{id}"),
    );
    assert!(browser.page("/todos").await.contains("1 of 1 done"));
    assert_is_redirect_to(
        &browser.post_form(&format!("/todos/{id}/toggle"), &[]).await,
        &format!("/todos#todo-{id}"),
    );
    assert!(browser.page("/todos").await.contains("0 of 1 done"));

    assert_is_redirect_to(
        &browser.post_form(&format!("/todos/{id}/delete"), &[]).await,
        "/todos",
    );
    let page = browser.page("/todos").await;
    assert!(
        page.contains("Todo deleted."),
        "a flash message confirms it"
    );
    assert!(page.contains("Nothing to do yet."));
    assert!(
        !browser.page("/todos").await.contains("Todo deleted."),
        "the message shows once"
    );
    assert_eq!(count(&app.db, "todos"), 0);
}

#[tokio::test]
async fn empty_and_overlong_titles_are_refused_and_nothing_is_saved() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    for (title, message) in [
        ("", "the title is empty"),
        ("   \t ", "the title is empty"),
        (&"x".repeat(501), "keep it to 500 characters"),
    ] {
        let response = browser.post_form("/todos", &[("title", title)]).await;
        assert_is_redirect_to(&response, "/todos");
        let page = browser.page("/todos").await;
        assert!(page.contains(message), "the page says why: {message}");
        assert!(page.contains(r#"role="alert""#));
    }
    assert_eq!(count(&app.db, "todos"), 0);

    let exactly_500 = "é".repeat(500);
    browser
        .post_form("/todos", &[("title", &exactly_500)])
        .await;
    assert_eq!(
        count(&app.db, "todos"),
        1,
        "500 characters fit, whatever their bytes"
    );
}

#[tokio::test]
async fn a_form_without_a_title_field_is_a_bad_request() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let response = browser.post_form("/todos", &[("name", "x")]).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The form could not be read")
    );
    assert_eq!(count(&app.db, "todos"), 0);
}

#[tokio::test]
async fn another_users_todo_cannot_be_seen_toggled_or_deleted() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let org = alice.user.org_id;
    let bob = app.create_user(org, "bob@acme.test", false).await;
    let alice_browser = app.signed_in(&alice).await;
    let bob_browser = app.signed_in(&bob).await;
    alice_browser
        .post_form("/todos", &[("title", "Alice's secret plan")])
        .await;
    let id: String = {
        use diesel::prelude::*;
        use ual_todo::db::schema::todos;
        todos::table
            .select(todos::id)
            .first::<uuid::Uuid>(&mut app.db.connect())
            .unwrap()
            .to_string()
    };

    assert!(!bob_browser.page("/todos").await.contains("secret plan"));
    let toggle = bob_browser
        .post_form(&format!("/todos/{id}/toggle"), &[])
        .await;
    let delete = bob_browser
        .post_form(&format!("/todos/{id}/delete"), &[])
        .await;

    assert_eq!(toggle.status(), StatusCode::NOT_FOUND);
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    assert!(
        delete
            .text()
            .await
            .unwrap()
            .contains("There is no such todo")
    );
    assert_eq!(count(&app.db, "todos WHERE done = false"), 1, "unchanged");
}

#[tokio::test]
async fn a_malformed_or_unknown_todo_id_is_not_found() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let malformed = browser.post_form("/todos/not-a-uuid/toggle", &[]).await;
    let unknown = browser
        .post_form(&format!("/todos/{}/delete", uuid::Uuid::new_v4()), &[])
        .await;

    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_list_read_with_the_session_is_complete_in_order_and_unaltered() {
    use diesel::prelude::*;
    use ual_todo::db::schema::todos;

    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let same_time = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let titles = [
        r#"Quote "this" & <b>that</b>"#,
        "Backslash \\ and tab\u{2003}space",
        "Ünïcödé ✓ 😀",
    ];
    let mut ids: Vec<uuid::Uuid> = (0..titles.len()).map(|_| uuid::Uuid::new_v4()).collect();
    ids.sort();
    let mut conn = app.db.connect();
    for (id, title) in ids.iter().zip(titles).rev() {
        diesel::insert_into(todos::table)
            .values((
                todos::id.eq(id),
                todos::user_id.eq(alice.user.id),
                todos::title.eq(title),
                todos::created_at.eq(same_time),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    diesel::insert_into(todos::table)
        .values((
            todos::user_id.eq(bob.user.id),
            todos::title.eq("Bob's secret"),
        ))
        .execute(&mut conn)
        .unwrap();

    let page = app.signed_in(&alice).await.page("/todos").await;
    let shown: Vec<usize> = titles
        .iter()
        .map(|t| {
            let escaped = t
                .replace('&', "&#38;")
                .replace('<', "&#60;")
                .replace('>', "&#62;")
                .replace('"', "&#34;");
            page.find(&format!(r#"<span class="title">{escaped}</span>"#))
                .unwrap_or_else(|| panic!("{t} is listed as written: {page}"))
        })
        .collect();
    assert!(
        shown.windows(2).all(|w| w[0] < w[1]),
        "todos made at the same time are listed by id"
    );
    assert!(page.contains("0 of 3 done"));
    assert!(!page.contains("Bob's secret"));
}
