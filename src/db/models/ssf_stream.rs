//! An org's Shared Signals stream: where its security events come from, how they are delivered,
//! and what the app last heard. Holds no secret in clear: the push authorization header is kept
//! as a SHA-256 and a prefix, the bearer for the transmitter sealed.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::{
    db::{
        ids::OrgId,
        models::Org,
        schema::{orgs, ssf_streams},
    },
    secret_token::{self, Issued, Kind, Presented},
};

crate::db::ids::text_enum!(
    /// How SETs reach the app.
    Delivery {
        /// The transmitter POSTs each SET to `/ssf/events` (RFC 8935).
        Push = "push",
        /// The app polls the transmitter (RFC 8936).
        Poll = "poll",
    }
);

impl Delivery {
    /// The delivery method's URN, as SSF names it.
    pub fn urn(self) -> &'static str {
        match self {
            Self::Push => "urn:ietf:rfc:8935",
            Self::Poll => "urn:ietf:rfc:8936",
        }
    }
}

crate::db::ids::text_enum!(
    /// A stream's status at the transmitter (SSF §8.1.2).
    StreamStatus {
        Enabled = "enabled",
        Paused = "paused",
        Disabled = "disabled",
    }
);

/// A stream, as stored.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = ssf_streams, check_for_backend(diesel::pg::Pg))]
pub struct SsfStream {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    /// The transmitter's issuer as configured (where its configuration was read).
    pub transmitter: String,
    /// The `iss` its SETs carry.
    pub issuer: String,
    pub jwks_uri: String,
    pub configuration_endpoint: Option<String>,
    pub verification_endpoint: Option<String>,
    pub stream_id: Option<String>,
    /// The `aud` its SETs carry.
    pub audience: String,
    pub delivery: Delivery,
    pub poll_endpoint: Option<String>,
    pub push_prefix: Option<String>,
    pub push_hash: Option<Vec<u8>>,
    pub bearer_sealed: Option<Vec<u8>>,
    pub status: StreamStatus,
    pub verification_state: Option<String>,
    pub verification_requested_at: Option<OffsetDateTime>,
    pub verified_at: Option<OffsetDateTime>,
    pub events_received: i64,
    pub last_event_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Where the transmitter tells the stream's status (SSF §8.1.2.1).
    pub status_endpoint: Option<String>,
}

/// A stream to store for an org (replacing any it had).
#[derive(Clone, Debug)]
pub struct NewSsfStream<'a> {
    pub org_id: OrgId,
    pub transmitter: &'a str,
    pub issuer: &'a str,
    pub jwks_uri: &'a str,
    pub configuration_endpoint: Option<&'a str>,
    pub verification_endpoint: Option<&'a str>,
    pub status_endpoint: Option<&'a str>,
    pub stream_id: Option<&'a str>,
    pub audience: &'a str,
    pub delivery: Delivery,
    pub poll_endpoint: Option<&'a str>,
    pub bearer_sealed: Option<&'a [u8]>,
}

impl SsfStream {
    /// A new push authorization header (its secret is the only copy).
    pub fn issue_push_header() -> Issued {
        secret_token::issue(Kind::SsfPush)
    }

    /// Stores the org's stream, replacing the one it had; for push delivery with the
    /// authorization header `issued` (the old one stops working at once).
    pub async fn replace(
        conn: &mut AsyncPgConnection,
        new: &NewSsfStream<'_>,
        issued: Option<&Issued>,
    ) -> QueryResult<SsfStream> {
        let values = (
            ssf_streams::org_id.eq(new.org_id),
            ssf_streams::transmitter.eq(new.transmitter),
            ssf_streams::issuer.eq(new.issuer),
            ssf_streams::jwks_uri.eq(new.jwks_uri),
            ssf_streams::configuration_endpoint.eq(new.configuration_endpoint),
            ssf_streams::verification_endpoint.eq(new.verification_endpoint),
            ssf_streams::status_endpoint.eq(new.status_endpoint),
            ssf_streams::stream_id.eq(new.stream_id),
            ssf_streams::audience.eq(new.audience),
            ssf_streams::delivery.eq(new.delivery),
            ssf_streams::poll_endpoint.eq(new.poll_endpoint),
            ssf_streams::push_prefix.eq(issued.as_ref().map(|i| i.prefix.clone())),
            ssf_streams::push_hash.eq(issued.as_ref().map(|i| i.hash.to_vec())),
            ssf_streams::bearer_sealed.eq(new.bearer_sealed),
        );
        diesel::insert_into(ssf_streams::table)
            .values(values.clone())
            .on_conflict(ssf_streams::org_id)
            .do_update()
            .set((
                values,
                ssf_streams::status.eq(StreamStatus::Enabled),
                ssf_streams::verification_state.eq(None::<String>),
                ssf_streams::verification_requested_at.eq(None::<OffsetDateTime>),
                ssf_streams::verified_at.eq(None::<OffsetDateTime>),
                ssf_streams::last_error.eq(None::<String>),
                ssf_streams::last_error_at.eq(None::<OffsetDateTime>),
                ssf_streams::updated_at.eq(diesel::dsl::now),
            ))
            .returning(SsfStream::as_returning())
            .get_result(conn)
            .await
    }

    /// The stream whose push authorization header was presented, with its org (one query; the
    /// hash compared in constant time).
    pub async fn authenticate(
        conn: &mut AsyncPgConnection,
        presented: &Presented,
    ) -> QueryResult<Option<(SsfStream, Org)>> {
        let found: Option<(SsfStream, Org)> = ssf_streams::table
            .inner_join(orgs::table)
            .filter(ssf_streams::push_prefix.eq(&presented.prefix))
            .select((SsfStream::as_select(), Org::as_select()))
            .first(conn)
            .await
            .optional()?;
        Ok(found.filter(|(s, _)| {
            s.push_hash
                .as_deref()
                .is_some_and(|h| secret_token::matches(h, presented))
        }))
    }

    /// The stream with this id.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
    ) -> QueryResult<Option<SsfStream>> {
        ssf_streams::table
            .find(id)
            .select(SsfStream::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The org's stream, if it has one.
    pub async fn for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<Option<SsfStream>> {
        ssf_streams::table
            .filter(ssf_streams::org_id.eq(org))
            .select(SsfStream::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Every stream delivered by polling.
    pub async fn polled(conn: &mut AsyncPgConnection) -> QueryResult<Vec<SsfStream>> {
        ssf_streams::table
            .filter(ssf_streams::delivery.eq(Delivery::Poll))
            .filter(ssf_streams::status.ne(StreamStatus::Disabled))
            .select(SsfStream::as_select())
            .load(conn)
            .await
    }

    /// Forgets the org's stream; `true` when it had one.
    pub async fn delete_for_org(conn: &mut AsyncPgConnection, org: OrgId) -> QueryResult<bool> {
        diesel::delete(ssf_streams::table.filter(ssf_streams::org_id.eq(org)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Counts `n` SETs received (whatever their effect), the last at `at`.
    pub async fn record_events(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
        n: i64,
        at: OffsetDateTime,
    ) -> QueryResult<()> {
        diesel::update(ssf_streams::table.find(id))
            .set((
                ssf_streams::events_received.eq(ssf_streams::events_received + n),
                ssf_streams::last_event_at.eq(at),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Records a verification event (with the `state` it carried).
    pub async fn record_verified(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
        state: Option<&str>,
    ) -> QueryResult<()> {
        diesel::update(ssf_streams::table.find(id))
            .set((
                ssf_streams::verified_at.eq(diesel::dsl::now),
                ssf_streams::verification_state.eq(state),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Records that a verification was asked for, with the `state` to expect back.
    pub async fn record_verification_requested(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
        state: &str,
    ) -> QueryResult<()> {
        diesel::update(ssf_streams::table.find(id))
            .set((
                ssf_streams::verification_requested_at.eq(diesel::dsl::now),
                ssf_streams::verification_state.eq(state),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Sets the status the transmitter reports.
    pub async fn set_status(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
        status: StreamStatus,
    ) -> QueryResult<()> {
        diesel::update(ssf_streams::table.find(id))
            .set((
                ssf_streams::status.eq(status),
                ssf_streams::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Records the last thing that went wrong with the stream (cut to the column's size).
    pub async fn record_error(
        conn: &mut AsyncPgConnection,
        id: uuid::Uuid,
        error: &str,
    ) -> QueryResult<()> {
        let error: String = error.chars().take(1024).collect();
        diesel::update(ssf_streams::table.find(id))
            .set((
                ssf_streams::last_error.eq(error),
                ssf_streams::last_error_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}
