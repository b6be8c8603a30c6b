//! Builds the application: database, pool, shared secrets, background tasks, HTTP server.

use std::{
    net::{Shutdown, TcpListener},
    time::Duration,
};

use actix_identity::{IdentityMiddleware, config::LogoutBehavior};
use actix_session::{
    SessionMiddleware,
    config::{PersistentSession, TtlExtensionPolicy},
};
use actix_web::{
    App, HttpServer,
    cookie::{Key, SameSite, time::Duration as CookieDuration},
    dev::Server,
    middleware::from_fn,
    web,
};
use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret as _;
use tracing_actix_web::TracingLogger;
use url::Url;

use crate::{
    auth::{
        csrf,
        idp_http::{FetchPolicy, IdpHttp},
        jwks::JwksCache,
        sso::Sso,
    },
    config::{PublicUrl, Settings},
    db::{
        self,
        models::{InstanceSecret, User},
        pipelined::PipelinedConnection,
    },
    drain::{self, Draining},
    error::AppError,
    flash,
    live::{self, Hub},
    metrics::{self, Metrics},
    priority::{self, PageSlots, RevocationPool},
    rate_limit::Limits,
    routes,
    secret_box::SecretBox,
    session_expiry,
    session_store::PgSessionStore,
    signed_cookie::CookieSigner,
    sweeper,
    telemetry::RequestSpan,
};

/// How often each instance deletes expired sessions and JWT ids.
const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// How long start-up waits for the revocation listener before serving anyway.
const LISTENER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call to an identity provider may take: discovery, keys and the token exchange,
/// for Universal Logout JWTs, back-channel logout and SSO alike.
const IDP_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds in-flight requests get to finish at shutdown.
pub const SHUTDOWN_TIMEOUT: u64 = 10;
/// Largest form body accepted (sign-in, todos).
const FORM_LIMIT: usize = 16 * 1024;

/// A built, bound, not yet running application.
pub struct Application {
    port: u16,
    public_url: PublicUrl,
    hub: std::sync::Arc<Hub>,
    draining: web::Data<Draining>,
    drain_for: Duration,
    /// The listening socket (a second handle to it), to refuse new connections while draining.
    listener: TcpListener,
    server: Server,
}

impl Application {
    /// Prepares the database (create, migrate), loads the shared cookie key, binds the listener
    /// and starts the background tasks. Port 0 in `settings.bind` picks a free port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = settings.database_url.clone();
        tokio::task::spawn_blocking(move || db::prepare(&url))
            .await
            .context("database preparation stopped")??;
        let pool = db::pool(&settings.database_url, settings.database_pool_size)?;
        let revocation_pool = web::Data::new(RevocationPool::new(
            db::pool(
                &RevocationPool::database_url(&settings.database_url),
                settings.revocation_pool_size,
            )?,
            settings.time_slice_us,
            Duration::from_millis(settings.page_hold_ms),
        )?);
        let page_slots = web::Data::new(PageSlots::new(settings.page_concurrency));
        let draining = web::Data::new(Draining::default());
        let draining_data = draining.clone();
        let (key, secrets, has_users) = {
            let mut conn = pool.get().await.context("cannot connect to the database")?;
            let (secrets, from_env) = SecretBox::load(&mut conn, &settings).await?;
            if !from_env {
                tracing::warn!(
                    "SECRETS_KEY is not set: IdP client secrets are encrypted with a key kept in the \
                     database, so a database dump alone reveals them"
                );
            }
            (
                cookie_key(&mut conn, &settings).await?,
                secrets,
                User::count(&mut conn).await? > 0,
            )
        };

        let listener = TcpListener::bind(settings.bind).with_context(|| {
            format!(
                "cannot listen on {}: is another server using it?",
                settings.bind
            )
        })?;
        let address = listener.local_addr()?;
        let listener_handle = listener.try_clone()?;
        let public_url = PublicUrl(match &settings.public_url {
            Some(url) => url.clone(),
            None => {
                Url::parse(&format!("http://{address}")).context("cannot build the public URL")?
            }
        });

        tokio::spawn(session_expiry::run(pool.clone(), session_expiry::EVERY));
        tokio::spawn(sweeper::run(
            pool.clone(),
            SWEEP_EVERY,
            settings.deleted_user_retention,
        ));
        let hub = Hub::new(settings.sse_keep_alive);
        tokio::spawn(Hub::keep_streams_alive(std::sync::Arc::downgrade(&hub)));
        tokio::spawn(live::listen(
            hub.clone(),
            settings.database_url.clone(),
            pool.clone(),
        ));
        // Serve only once revocations can reach this instance's streams; if the listener is
        // slow, serve anyway (`/healthz` answers 503 until it is up).
        if !hub.wait_until_listening(LISTENER_START_TIMEOUT).await {
            tracing::warn!("not yet listening for revocations; live logout starts once it is");
        }
        tracing::info!("ual-todo is serving at {}", public_url.0);
        if !has_users {
            tracing::info!(
                "no accounts yet: run `cargo run --release -- demo` (or `ual-todo demo`) to create \
                 demo accounts, then sign in at {}",
                public_url.join("/login")
            );
        }

        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        // Each worker reads sessions through connections of its own, driven on its own thread:
        // a shared connection is driven by the worker that opened it, so the other's queries
        // would cross threads twice each.
        let store_pool_size = settings.database_pool_size.div_ceil(workers).max(2);
        let store_pool = {
            let url = settings.database_url.clone();
            move || db::pool(&url, store_pool_size)
        };
        store_pool().context("cannot build the session store's pool")?;
        let page_url = settings.database_url.clone();
        let (idle_timeout, lifetime_limit) =
            (settings.session_idle_timeout, settings.session_lifetime);
        let secure = public_url.0.scheme() == "https";
        let lifetime = CookieDuration::seconds(
            i64::try_from(settings.session_lifetime.as_secs()).unwrap_or(i64::MAX),
        );
        let pool_data = web::Data::new(pool);
        let url_data = web::Data::new(public_url.clone());
        let cookie_signer = web::Data::new(CookieSigner {
            key: key.clone(),
            secure: public_url.0.scheme() == "https",
        });
        let idp_http = IdpHttp::new(
            IDP_TIMEOUT,
            FetchPolicy {
                allow_insecure: settings.allow_insecure_idp,
            },
        );
        let jwks = web::Data::new(JwksCache::new(idp_http.clone(), settings.jwks_min_refetch));
        let hub_data = web::Data::from(hub.clone());
        let sso = web::Data::new(Sso::new(idp_http.clone(), settings.jwks_min_refetch));
        let idp_http = web::Data::new(idp_http);
        let secrets = web::Data::new(secrets);
        let metrics = web::Data::new(Metrics::default());
        let limits = web::Data::new(Limits::new(settings.trust_proxy_headers));
        let ssf_counts = web::Data::new(crate::ssf::counts::EventCounts::default());
        tokio::spawn(crate::ssf::counts::EventCounts::run(
            ssf_counts.clone().into_inner(),
            pool_data.get_ref().clone(),
        ));
        tokio::spawn(crate::ssf::poller::run(crate::ssf::poller::Poller {
            database_url: settings.database_url.clone(),
            pool: pool_data.get_ref().clone(),
            http: idp_http.get_ref().clone(),
            jwks: jwks.clone().into_inner(),
            secrets: secrets.get_ref().clone(),
            metrics: metrics.clone().into_inner(),
            counts: ssf_counts.clone().into_inner(),
        }));

        let time_slice_us = settings.time_slice_us;
        let page_hold = revocation_pool.page_hold();
        let known_keys = web::Data::new(
            crate::routes::global_token_revocation::known_keys::KnownKeys::default(),
        );
        let server = HttpServer::new(move || {
            // Called on each worker's thread, as it starts.
            crate::time_slice::shorten_for_this_thread(time_slice_us);
            let store = PgSessionStore::new(
                store_pool().expect("the pool's settings were checked at start-up"),
                idle_timeout,
                lifetime_limit,
            )
            .with_page_reads(PipelinedConnection::new(page_url.clone()))
            .with_page_hold(page_hold.clone());
            let sessions = SessionMiddleware::builder(store, key.clone())
                // `__Host-` makes browsers refuse the cookie from any other host or path.
                .cookie_name(if secure {
                    "__Host-ual_todo".into()
                } else {
                    "ual_todo".into()
                })
                .cookie_secure(secure)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .session_lifecycle(
                    PersistentSession::default()
                        .session_ttl(lifetime)
                        .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                )
                .build();
            App::new()
                .app_data(pool_data.clone())
                .app_data(revocation_pool.clone())
                .app_data(page_slots.clone())
                .app_data(draining_data.clone())
                .app_data(url_data.clone())
                .app_data(cookie_signer.clone())
                .app_data(jwks.clone())
                .app_data(hub_data.clone())
                .app_data(sso.clone())
                .app_data(idp_http.clone())
                .app_data(secrets.clone())
                .app_data(metrics.clone())
                .app_data(limits.clone())
                .app_data(known_keys.clone())
                .app_data(ssf_counts.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(FORM_LIMIT)
                        .error_handler(|e, _| {
                            AppError::BadRequest(format!("The form could not be read: {e}")).into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    AppError::BadRequest(format!("The address has a malformed query: {e}")).into()
                }))
                .configure(routes::machine)
                .service(
                    // Everything else: pages with the user's session, behind the CSRF guard.
                    web::scope("")
                        .configure(routes::browser)
                        .default_service(web::to(routes::not_found))
                        .wrap(from_fn(flash::clear_shown))
                        .wrap(
                            IdentityMiddleware::builder()
                                .logout_behavior(LogoutBehavior::PurgeSession)
                                .build(),
                        )
                        .wrap(sessions)
                        .wrap(from_fn(crate::prefetch::todo_list))
                        .wrap(from_fn(crate::error::storage_failures_are_unavailable))
                        .wrap(from_fn(csrf::reject_cross_origin))
                        .wrap(from_fn(priority::admit_pages)),
                )
                .default_service(web::to(routes::not_found))
                .wrap(crate::page::security_headers())
                .wrap(from_fn(metrics::count_requests))
                .wrap(from_fn(drain::close_connections))
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .workers(workers)
        .shutdown_timeout(SHUTDOWN_TIMEOUT)
        .disable_signals()
        .listen(listener)?
        .run();

        Ok(Self {
            port: address.port(),
            public_url,
            hub,
            draining,
            drain_for: settings.shutdown_drain,
            listener: listener_handle,
            server,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance's live-logout hub (open streams, listening state).
    pub fn hub(&self) -> std::sync::Arc<Hub> {
        self.hub.clone()
    }

    /// Where the app is reached.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully: refuses new connections,
    /// closes the live streams (browsers reconnect to another instance), after SIGTERM drains
    /// open connections for `SHUTDOWN_DRAIN` (see [`crate::drain`]), and lets in-flight requests
    /// finish for up to [`SHUTDOWN_TIMEOUT`] seconds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        tokio::select! {
            result = &mut server => result,
            terminated = shutdown_signal() => {
                let drain_for = if terminated { self.drain_for } else { Duration::ZERO };
                tracing::info!(drain = ?drain_for, "shutting down: closing live streams, draining");
                // Draining first: a tab whose stream closes reconnects and is told to go elsewhere.
                self.draining.start();
                self.hub.close_all();
                // Refuse new connections at once: a balancer then tries another instance, even
                // for a POST (nothing was sent). Requests on open connections are still served.
                // (The server future must be polled for the pause to take effect.)
                tokio::select! {
                    () = handle.pause() => {}
                    result = &mut server => return result,
                }
                if let Err(e) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read) {
                    tracing::warn!(error = %e, "could not close the listening socket");
                }
                // Serve on while draining; a server that ends meanwhile ends the wait.
                if let Ok(result) = tokio::time::timeout(drain_for, &mut server).await {
                    return result;
                }
                tracing::info!("drained: finishing requests and stopping");
                // The server future must keep running for the stop to complete.
                let (_, result) = tokio::join!(handle.stop(true), server);
                result
            }
        }
    }
}

/// The cookie-signing key: the operator's, or the one in `settings`, created by the first
/// instance to start, so all instances on a database accept each other's cookies.
async fn cookie_key(conn: &mut AsyncPgConnection, settings: &Settings) -> anyhow::Result<Key> {
    let hex_key = match &settings.cookie_key {
        Some(key) => key.0.expose_secret().to_owned(),
        None => InstanceSecret::get_or_create(conn, "cookie_key", || {
            hex::encode(Key::generate().master())
        })
        .await
        .context("cannot read the cookie key")?,
    };
    let bytes = hex::decode(hex_key.trim()).context("the stored cookie key is not hex")?;
    Key::try_from(bytes.as_slice()).context("the cookie key is shorter than 64 bytes")
}

/// Resolves at SIGTERM or Ctrl-C.
/// Waits for Ctrl-C or SIGTERM; `true` for SIGTERM (what orchestrators and `scripts/cluster`
/// send), which drains first, while Ctrl-C at a terminal stops without the wait.
async fn shutdown_signal() -> bool {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = ctrl_c => false,
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        false
    }
}
