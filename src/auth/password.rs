//! Password hashing with argon2id, all of it on a small fixed pool of threads that each reuse one
//! memory buffer. At most [`MAX_THREADS`] hashes run at once and their 19 MiB buffers are
//! allocated once: a flood of sign-ins can neither exhaust memory nor leave it scattered over
//! many threads' allocator arenas (a `web::block` per hash once kept 800 MiB after a soak).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, LazyLock, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use rand::{Rng, distr::Alphanumeric};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Longer passwords are refused before argon2 runs, so nobody can make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest a sign-in waits for a hashing thread before it is told to come back (long enough
/// for a burst of sign-ins on a busy two-core machine).
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Hashing threads at most, however many cores: each keeps a 19 MiB buffer.
const MAX_THREADS: usize = 4;
/// Sign-ins allowed to wait for a hashing thread; beyond, they are refused at once.
const MAX_WAITING: usize = 256;
/// The most argon2 memory a stored hash may ask for (64 MiB): its thread keeps it.
const MAX_BLOCKS: usize = 64 * 1024;
/// Hashed once, then verified in place of a real hash when the email is unknown (so both cases
/// take as long).
const DUMMY_PASSWORD: &str = "not a real password, only for timing";
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

/// Every hashing thread is taken and the queue is full or too slow: come back shortly.
#[derive(Debug)]
pub struct Busy;

/// Work for a hashing thread, given the thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Pool {
    jobs: mpsc::Sender<Job>,
    /// One per thread: a sign-in holds one from queueing its job until the job is done.
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..threads {
        let queue = queue.clone();
        thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                let mut memory = Vec::new();
                loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = job else { return };
                    // A panicking job drops its answer channel (its caller sees `Busy`); the
                    // thread lives on.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                }
            })
            .expect("cannot start a password hashing thread");
    }
    Pool {
        jobs,
        permits: Arc::new(Semaphore::new(threads)),
        waiting: AtomicUsize::new(0),
    }
});

impl Pool {
    fn send(&self, job: Job) {
        // The threads never stop, so the queue never closes.
        let _ = self.jobs.send(job);
    }

    /// A thread's turn, waited for at most [`QUEUE_WAIT`] behind at most [`MAX_WAITING`] others.
    async fn turn(&self) -> Result<OwnedSemaphorePermit, Busy> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            return Err(Busy);
        }
        match tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }
}

/// Runs `work` on a hashing thread once one is free, without blocking the caller.
async fn run<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, Busy> {
    let permit = POOL.turn().await?;
    let (answer, answered) = oneshot::channel();
    POOL.send(Box::new(move |memory| {
        let _ = answer.send(work(memory));
        drop(permit);
    }));
    answered.await.map_err(|_| Busy)
}

/// The argon2id PHC string of `password`, with a fresh random salt (OWASP's parameters).
/// Blocks the calling thread until a hashing thread has done it (the CLI, tests, or
/// `spawn_blocking`); sign-ins use [`verify_each`], which waits without blocking.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let (answer, answered) = mpsc::channel();
    let password = SecretString::from(password);
    POOL.send(Box::new(move |memory| {
        let _ = answer.send(hash_with(memory, password.expose_secret()));
    }));
    answered
        .recv()
        .map_err(|_| anyhow::anyhow!("cannot hash the password: the hashing thread failed"))?
}

/// Which of `hashes` `password` matches, one verification each. With no hash at all (unknown
/// email) or `None` (an SSO-only account) it still spends the time of a verification, then says
/// no. [`Busy`] when no hashing thread was free within [`QUEUE_WAIT`].
pub async fn verify_each(
    password: SecretString,
    hashes: Vec<Option<String>>,
) -> Result<Vec<bool>, Busy> {
    run(move |memory| {
        let password = password.expose_secret();
        let mut check = |phc: Option<&str>| match phc {
            Some(phc) => verify_with(memory, password, phc),
            None => {
                let dummy = DUMMY_HASH
                    .get_or_init(|| hash_with(memory, DUMMY_PASSWORD).unwrap_or_default());
                verify_with(memory, password, dummy);
                false
            }
        };
        if hashes.is_empty() {
            check(None);
        }
        hashes.iter().map(|h| check(h.as_deref())).collect()
    })
    .await
}

/// Verifications [`verify_each`] runs for `hashes` hashes.
pub fn checks(hashes: usize) -> u64 {
    hashes.max(1) as u64
}

/// Argon2 into `out`, in the thread's `memory` (grown once to the size the parameters need).
fn compute(
    memory: &mut Vec<Block>,
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = argon2.params().block_count();
    if blocks > MAX_BLOCKS {
        return Err(argon2::Error::MemoryTooMuch);
    }
    if memory.len() < blocks {
        *memory = vec![Block::default(); blocks];
    }
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> anyhow::Result<String> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot hash the password: {e}");
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    rand::rng().fill(&mut salt);
    let argon2 = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(memory, &argon2, password.as_bytes(), &salt, &mut out).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (compared in constant time).
fn verify_with(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str());
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    compute(
        memory,
        &Argon2::new(algorithm, version, params),
        password.as_bytes(),
        salt,
        &mut out,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Why a new password was refused.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

/// A random 20-character password (about 119 bits).
pub fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn verify(password: &str, hash: Option<&str>) -> bool {
        verify_each(password.into(), vec![hash.map(str::to_owned)])
            .await
            .unwrap()[0]
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", Some(&h)).await);
        assert!(!verify("wrong horse battery", Some(&h)).await);
        let library = Argon2::default();
        use argon2::password_hash::PasswordVerifier as _;
        assert!(
            library
                .verify_password(b"correct horse battery", &PasswordHash::new(&h).unwrap())
                .is_ok(),
            "the standard argon2 verifier agrees"
        );
    }

    #[tokio::test]
    async fn no_hash_never_verifies() {
        assert!(!verify(DUMMY_PASSWORD, None).await);
        assert!(!verify("anything", Some("not a phc string")).await);
        assert!(
            verify_each("anything".into(), Vec::new())
                .await
                .unwrap()
                .is_empty()
        );
        let dummy = PasswordHash::new(DUMMY_HASH.get().unwrap()).unwrap();
        assert_eq!(
            Params::try_from(&dummy).unwrap().block_count(),
            Params::default().block_count(),
            "the dummy costs what a real hash does"
        );
    }

    #[tokio::test]
    async fn a_hash_asking_for_too_much_memory_is_refused_not_computed() {
        let h = hash("correct horse battery").unwrap();
        let greedy = h.replace("m=19456", &format!("m={}", MAX_BLOCKS + 1));
        assert!(!verify("correct horse battery", Some(&greedy)).await);
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_new(&generate()).is_ok());
        assert_ne!(generate(), generate());
    }
}
