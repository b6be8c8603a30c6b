//! `org set-ssf`, `org ssf-status`, `org ssf-verify` and `org remove-ssf`: the org's Shared
//! Signals stream at its transmitter.

use std::{io::Read as _, time::Duration};

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use secrecy::SecretString;
use serde_json::json;

use super::common::{CliError, find_org};
use crate::{
    auth::idp_http::{FetchPolicy, IdpHttp},
    config::{PublicUrl, Settings},
    db::models::{Delivery, SsfStream},
    routes::ssf::PATH,
    secret_box::SecretBox,
    ssf::manage::{self, Setup},
};

/// How long a call to a transmitter may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Subcommand)]
pub enum SsfCommand {
    /// Receive the org's security events (CAEP, RISC) from a Shared Signals transmitter: reads
    /// its configuration and creates a stream there; for the org's current transmitter, updates
    /// its stream in place (without --bearer-stdin, with the stored bearer); for another one,
    /// deletes the old stream there.
    SetSsf {
        /// The org's slug.
        slug: String,
        /// The transmitter's issuer URL (its `/.well-known/ssf-configuration` is read).
        #[arg(long)]
        transmitter: url::Url,
        /// push (the transmitter POSTs to PUBLIC_URL/ssf/events) or poll (the app polls).
        #[arg(long, default_value = "push", value_parser = ["push", "poll"])]
        delivery: String,
        /// Read the bearer token the transmitter requires from standard input.
        #[arg(long)]
        bearer_stdin: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the org's stream, its status read from the transmitter (and stored).
    SsfStatus {
        /// The org's slug.
        slug: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask the org's transmitter for a verification event (its arrival is recorded).
    SsfVerify {
        /// The org's slug.
        slug: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop receiving the org's security events: the stream is deleted at its transmitter.
    RemoveSsf {
        /// The org's slug.
        slug: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn public_url(settings: &Settings) -> Result<PublicUrl, CliError> {
    Ok(PublicUrl(match &settings.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://{}", settings.bind))
            .context("cannot build the public URL")?,
    }))
}

fn read_bearer() -> Result<SecretString, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("cannot read the bearer from standard input")?;
    let bearer = input.trim().to_owned();
    if bearer.is_empty() || bearer.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "the bearer on standard input must be one non-empty line".into(),
        ));
    }
    Ok(SecretString::from(bearer))
}

fn no_stream(slug: &str) -> CliError {
    CliError::Failed(anyhow::anyhow!(
        "the org `{slug}` has no Shared Signals stream (org set-ssf)"
    ))
}

/// Runs an SSF command.
pub(super) async fn run(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    command: SsfCommand,
) -> Result<(), CliError> {
    let http = IdpHttp::new(
        TIMEOUT,
        FetchPolicy {
            allow_insecure: settings.allow_insecure_idp,
        },
    );
    let (secrets, _) = SecretBox::load(conn, settings).await?;
    let failed = |e: manage::ManageError| CliError::Failed(anyhow::anyhow!(e));
    match command {
        SsfCommand::SetSsf {
            slug,
            transmitter,
            delivery,
            bearer_stdin,
            json,
        } => {
            let bearer = bearer_stdin.then(read_bearer).transpose()?;
            let org = find_org(conn, &slug).await?;
            let delivery = Delivery::parse(&delivery).expect("checked by clap");
            let public_url = public_url(settings)?;
            let transmitter = transmitter.as_str().trim_end_matches('/');
            let setup = Setup {
                org: &org,
                transmitter,
                delivery,
                bearer,
            };
            let stream = manage::configure(conn, &http, &secrets, &public_url, setup)
                .await
                .map_err(failed)?;
            let endpoint = public_url.join(PATH);
            if json {
                println!(
                    "{}",
                    json!({
                        "org": org.slug,
                        "transmitter": stream.transmitter,
                        "stream_id": stream.stream_id,
                        "delivery": stream.delivery.as_str(),
                        "audience": stream.audience,
                        "endpoint": (delivery == Delivery::Push).then_some(&endpoint),
                    })
                );
            } else {
                println!(
                    "{}: stream {} at {} ({}){}",
                    org.slug,
                    stream.stream_id.as_deref().unwrap_or("?"),
                    stream.transmitter,
                    stream.delivery,
                    match delivery {
                        Delivery::Push => format!(", pushed to {endpoint}"),
                        Delivery::Poll => String::new(),
                    }
                );
            }
            Ok(())
        }
        SsfCommand::SsfStatus { slug, json } => {
            let org = find_org(conn, &slug).await?;
            let mut stream = SsfStream::for_org(conn, org.id)
                .await
                .context("cannot read the stream")?
                .ok_or_else(|| no_stream(&slug))?;
            let remote = manage::read_status(&http, &secrets, &stream).await;
            if let Ok(remote) = &remote
                && remote.status != stream.status
            {
                SsfStream::set_status(conn, stream.id, remote.status)
                    .await
                    .context("cannot store the status")?;
                stream.status = remote.status;
            }
            let problem = remote.as_ref().err().map(ToString::to_string);
            let reason = remote.ok().and_then(|r| r.reason);
            let time = |t: Option<time::OffsetDateTime>| t.as_ref().map(crate::page::format_time);
            let rfc3339 = |t: Option<time::OffsetDateTime>| {
                t.and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
            };
            if json {
                println!(
                    "{}",
                    json!({
                        "org": org.slug,
                        "transmitter": stream.transmitter,
                        "stream_id": stream.stream_id,
                        "delivery": stream.delivery.as_str(),
                        "status": stream.status.as_str(),
                        "status_from_transmitter": problem.is_none(),
                        "reason": reason,
                        "verified_at": rfc3339(stream.verified_at),
                        "events_received": stream.events_received,
                        "last_event_at": rfc3339(stream.last_event_at),
                        "last_error": stream.last_error,
                    })
                );
            } else {
                println!(
                    "{}: stream {} at {} ({}), {}{}; verified: {}; {} events, last: {}; last error: {}",
                    org.slug,
                    stream.stream_id.as_deref().unwrap_or("?"),
                    stream.transmitter,
                    stream.delivery,
                    stream.status,
                    match (&problem, &reason) {
                        (Some(_), _) => " (last known)".to_owned(),
                        (None, Some(reason)) => format!(" ({reason})"),
                        (None, None) => String::new(),
                    },
                    time(stream.verified_at).unwrap_or_else(|| "not yet".into()),
                    stream.events_received,
                    time(stream.last_event_at).unwrap_or_else(|| "none".into()),
                    stream.last_error.as_deref().unwrap_or("none"),
                );
            }
            if let Some(problem) = problem {
                eprintln!("warning: cannot read the status from the transmitter: {problem}");
            }
            Ok(())
        }
        SsfCommand::SsfVerify { slug, json } => {
            let org = find_org(conn, &slug).await?;
            let stream = SsfStream::for_org(conn, org.id)
                .await
                .context("cannot read the stream")?
                .ok_or_else(|| no_stream(&slug))?;
            let state = manage::request_verification(conn, &http, &secrets, &stream)
                .await
                .map_err(failed)?;
            if json {
                println!("{}", json!({ "org": org.slug, "state": state }));
            } else {
                println!(
                    "{}: verification asked for (state {state}); its arrival shows on the Keys page",
                    org.slug
                );
            }
            Ok(())
        }
        SsfCommand::RemoveSsf { slug, json } => {
            let org = find_org(conn, &slug).await?;
            let problem = manage::remove(conn, &http, &secrets, &org)
                .await
                .map_err(failed)?;
            if let Some(problem) = &problem {
                eprintln!("warning: the stream could not be deleted at its transmitter: {problem}");
            }
            if json {
                println!("{}", json!({ "org": org.slug, "removed": true }));
            } else {
                println!("{}: no longer receives Shared Signals", org.slug);
            }
            Ok(())
        }
    }
}
