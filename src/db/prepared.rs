//! Raw SQL that is prepared once per connection. Diesel's `sql_query` is parsed, analysed and
//! planned by PostgreSQL on every call, because diesel cannot tell two raw texts apart by type.
//! A statement of fixed text can say who it is: [`Prepared`] gives it a type of its own (`Id`),
//! so diesel keeps the prepared statement in the connection's cache under that type, and
//! PostgreSQL only binds and executes it (choosing a plan per call when the values matter).

use std::marker::PhantomData;

use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
};

/// `query` (a `sql_query` of constant text with its binds), cached as statement `Id`. `Id` must
/// name one text only: two texts under one `Id` would run each other's statement.
pub struct Prepared<Q, Id> {
    query: Q,
    id: PhantomData<Id>,
}

impl<Q, Id> Prepared<Q, Id> {
    pub fn new(query: Q) -> Self {
        Prepared {
            query,
            id: PhantomData,
        }
    }
}

impl<Q, Id: 'static> QueryId for Prepared<Q, Id> {
    type QueryId = Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: QueryFragment<Pg>, Id> QueryFragment<Pg> for Prepared<Q, Id> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    /// The text is constant (see `Id`), so the statement may be kept.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query, Id> Query for Prepared<Q, Id> {
    type SqlType = Q::SqlType;
}
