//! One connection for a worker's page reads, shared and pipelined: reads that overlap are sent
//! one behind the other without waiting for each other's answers, so one PostgreSQL backend
//! serves them in a row and sleeps once for several. With a pooled connection per read, every
//! page view woke a backend of its own, and on a busy machine each wakeup is a context switch
//! on both sides (measured with `perf`: a fifth of both processes' CPU). Reads only: a
//! transaction on a shared connection would take every read into it.
//!
//! Each read is still one statement in a transaction of its own, with its own snapshot: a read
//! sent after a revocation committed sees it, pipelined or not.

use std::{cell::RefCell, rc::Rc, time::Duration};

use anyhow::Context as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use crate::config::DatabaseUrl;

/// How long a read waits for a new connection, as a pool checkout would.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read may take, by default, before its connection is given up: the reads behind
/// it wait for it, so a connection that stopped answering must not hold them longer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A worker's shared read connection, opened on first use and again after a failed read.
/// Not `Send`: each worker has its own.
pub struct PipelinedConnection {
    url: DatabaseUrl,
    read_timeout: Duration,
    current: RefCell<Option<Rc<AsyncPgConnection>>>,
    /// Held while connecting: the reads that arrive meanwhile wait for that connection instead
    /// of each opening one.
    connecting: tokio::sync::Mutex<()>,
}

impl PipelinedConnection {
    pub fn new(url: DatabaseUrl) -> Self {
        PipelinedConnection {
            url,
            read_timeout: READ_TIMEOUT,
            current: RefCell::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The same, giving a read `timeout` instead of 10 s.
    pub fn with_read_timeout(self, timeout: Duration) -> Self {
        PipelinedConnection {
            read_timeout: timeout,
            ..self
        }
    }

    /// Runs `read` on the shared connection. A connection that died with its backend (the
    /// database restarted, or ended it) fails at once: the read is tried once more, on a new
    /// connection, so a restart costs no page view. A read that times out is not tried again, and
    /// its connection is given up.
    pub async fn read<T>(
        &self,
        read: impl AsyncFn(&AsyncPgConnection) -> diesel::QueryResult<T>,
    ) -> anyhow::Result<T> {
        match self.try_read(&read).await? {
            Ok(value) => Ok(value),
            Err(_) => Ok(self.try_read(&read).await??),
        }
    }

    /// One try. The connection is given up unless it succeeds (reads in flight on it finish or
    /// fail on their own), and the next read opens another. `Err`: no connection, or no answer
    /// in time.
    async fn try_read<T>(
        &self,
        read: &impl AsyncFn(&AsyncPgConnection) -> diesel::QueryResult<T>,
    ) -> anyhow::Result<diesel::QueryResult<T>> {
        let conn = self.get().await?;
        let result = tokio::time::timeout(self.read_timeout, read(&conn)).await;
        if !matches!(result, Ok(Ok(_))) {
            self.discard(&conn);
        }
        result.context("the database did not answer in time")
    }

    /// The shared connection, opened if there is none.
    async fn get(&self) -> anyhow::Result<Rc<AsyncPgConnection>> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            AsyncPgConnection::establish(self.url.expose()),
        )
        .await
        .context("timed out connecting to the database")?
        .context("cannot connect to the database")?;
        let conn = Rc::new(conn);
        *self.current.borrow_mut() = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets `conn`, unless it was replaced already.
    fn discard(&self, conn: &Rc<AsyncPgConnection>) {
        let mut current = self.current.borrow_mut();
        if current.as_ref().is_some_and(|c| Rc::ptr_eq(c, conn)) {
            *current = None;
        }
    }

    fn current(&self) -> Option<Rc<AsyncPgConnection>> {
        self.current.borrow().clone()
    }
}
