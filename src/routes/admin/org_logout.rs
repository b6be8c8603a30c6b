//! "Sign out everyone in the org" on the dashboard: confirmed by typing the org's slug, run in
//! the background on this instance batch by batch ([`crate::revocation::org`]), its progress
//! kept in the database so every instance's dashboard shows it. The admin's own session here is
//! spared; their other sessions and tokens end like everyone else's.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use tracing_actix_web::RequestId;

use super::{
    dashboard::actor,
    run_view::{RunView, summary},
};
use crate::{
    auth::AdminUser,
    db::{
        Pool,
        models::{Org, OrgLogout, RevocationSource},
    },
    error::AppError,
    flash::{self, Flash},
    revocation::{
        Requester,
        org::{BATCH_USERS, OrgLogoutError, finish, next_batch, rest_after, start},
    },
};

/// The dashboard's form posts here; its progress is read from here.
pub const PATH: &str = "/admin/org-logout";

#[derive(Deserialize)]
pub struct ConfirmForm {
    /// The org's slug, typed by the admin to confirm.
    slug: String,
}

/// `POST /admin/org-logout`: starts signing out everyone in the admin's org, if the typed slug
/// is the org's and no run is going; the dashboard then shows its progress.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn sign_out_everyone(
    req: HttpRequest,
    admin: AdminUser,
    form: web::Form<ConfirmForm>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.0.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    if form.slug.trim() != org.slug {
        let message = format!(
            "Nobody was signed out: to sign out everyone in {}, type its slug, {}, exactly.",
            org.name, org.slug
        );
        return Ok(flash::redirect(&req, "/admin", Flash::error(message)));
    }
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let run = match start(&mut conn, org.id, Some(admin.0.session_id), by).await {
        Ok(run) => run,
        Err(OrgLogoutError::AlreadyRunning(run)) => {
            let message = format!(
                "A sign-out of everyone in {} is already running ({}): wait for it to finish.",
                org.name,
                summary(&run)
            );
            return Ok(flash::redirect(&req, "/admin", Flash::error(message)));
        }
        Err(OrgLogoutError::Database(e)) => return Err(e.into()),
    };
    drop(conn);
    let message = format!(
        "Signing out everyone in {} ({} user{}); your session here is kept.",
        org.name,
        run.users_total,
        if run.users_total == 1 { "" } else { "s" }
    );
    let pool = pool.into_inner();
    tokio::spawn(async move {
        let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
        run_in_background(&pool, run, by).await;
    });
    Ok(flash::redirect(&req, "/admin", Flash::info(message)))
}

/// Runs batches until the org is done, a connection from the pool for each (so a run holds
/// none between batches), resting between them, then records how it ended.
async fn run_in_background(pool: &Pool, mut run: OrgLogout, by: Requester<'_>) {
    let error = loop {
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(e) => break Some(e.to_string()),
        };
        let started = std::time::Instant::now();
        match next_batch(&mut conn, &mut run, by, BATCH_USERS).await {
            Ok(batch) if batch.users == 0 => break None,
            Ok(_) => {}
            Err(e) => break Some(e.to_string()),
        }
        drop(conn);
        rest_after(started.elapsed()).await;
    };
    let recorded = match pool.get().await {
        Ok(mut conn) => finish(&mut conn, &run, error.as_deref())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = recorded {
        // The run goes stale in a few minutes and then no longer blocks a new one.
        tracing::error!(run = run.id, error = %e, "cannot record the end of a sign-out of everyone");
    }
}

/// `GET /admin/org-logout`: the org's latest run, for the dashboard's progress row.
pub async fn progress(admin: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let run = OrgLogout::latest(&mut conn, admin.0.org_id).await?;
    let body = match run.as_ref().map(RunView::new) {
        None => json!({ "running": false }),
        Some(view) => json!({
            "running": view.running,
            "users_total": view.users_total,
            "users_done": view.users_done,
            "summary": view.summary,
            "status": view.status,
            "failed": view.failed,
        }),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
