//! The current serving configuration and its reload from a certificate directory.
//!
//! A pair is versioned by a hash of its *content*, not by file times or sizes: a rotation
//! that keeps the modification time (`cp -p`, `tar -x`, `rsync -t`) or the length (two keys
//! of the same curve have PEM texts of equal length) is still seen. A pair that fails to load
//! is never recorded as served, so the next tick tries it again: a half-written rotation is
//! picked up as soon as its second file lands, whatever that file's time stamp says.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::MissedTickBehavior;
#[allow(clippy::disallowed_types, reason = "the one accept path")]
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use super::pem::{parse_dir_pair, read_pair};
use super::{Alpn, CertSource, self_signed};
use crate::error::Result;

/// What identifies one version of a certificate directory: a hash of both files' bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Version(u64);

impl Version {
    fn of(cert: &[u8], key: &[u8]) -> Self {
        let mut hasher = DefaultHasher::new();
        cert.hash(&mut hasher);
        key.hash(&mut hasher);
        Version(hasher.finish())
    }
}

/// What one look at the directory found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// The served pair is still there.
    Unchanged,
    /// A new valid pair is now served.
    Reloaded,
    /// The directory holds no usable pair (missing, half-written, mismatched): the last good
    /// one stays, and the next look tries again. `repeated` when the previous look failed the
    /// same way (logged quietly, so a stuck rotation does not flood the log).
    Broken {
        /// Why the pair is unusable.
        error: String,
        /// Whether the previous look saw the same failure.
        repeated: bool,
    },
}

/// The serving configuration new connections use, replaced on reload.
pub struct Certificates {
    current: ArcSwap<ServerConfig>,
    /// The ALPN protocols every reloaded configuration offers: those of the first one.
    alpn_protocols: Vec<Vec<u8>>,
    /// The version of the directory's pair loaded at start, so the first reload check does not
    /// swap in the same pair again; `None` when the configuration came from elsewhere.
    loaded: Option<Version>,
}

impl Certificates {
    /// Serves `config` until replaced; reloads offer the same ALPN protocols as `config`.
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            alpn_protocols: config.alpn_protocols.clone(),
            current: ArcSwap::from_pointee(config),
            loaded: None,
        })
    }

    /// Loads the configuration once from `source`; an error here should stop startup.
    pub fn load(source: &CertSource, alpn: Alpn) -> Result<Arc<Self>> {
        let (config, loaded) = match source {
            CertSource::SelfSigned => (self_signed(alpn)?, None),
            CertSource::Dir { path, .. } => {
                let (cert, key) = read_pair(path)?;
                let config = parse_dir_pair(path, &cert, &key, alpn)?;
                (config, Some(Version::of(&cert, &key)))
            }
        };
        Ok(Arc::new(Self {
            alpn_protocols: config.alpn_protocols.clone(),
            current: ArcSwap::from_pointee(config),
            loaded,
        }))
    }

    /// Loads from `source` and, for a directory with a poll interval, spawns its reload
    /// (stopped by `cancel`).
    pub fn load_and_watch(
        source: &CertSource,
        alpn: Alpn,
        cancel: &CancellationToken,
    ) -> Result<Arc<Self>> {
        let certificates = Self::load(source, alpn)?;
        if let CertSource::Dir {
            path,
            poll: Some(poll),
        } = source
        {
            tokio::spawn(Arc::clone(&certificates).watch(path.clone(), *poll, cancel.clone()));
        }
        Ok(certificates)
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// An acceptor for the next handshake.
    #[allow(
        clippy::disallowed_types,
        reason = "the one accept path; clippy.toml sends every other TLS server here"
    )]
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current())
    }

    /// Re-reads `dir` every `poll` until cancelled, swapping in each new valid pair.
    pub async fn watch(self: Arc<Self>, dir: PathBuf, poll: Duration, cancel: CancellationToken) {
        let mut watcher = Watcher::following(&self);
        // The pair was just loaded: the first look is one interval away.
        let start = tokio::time::Instant::now() + poll;
        let mut ticker = tokio::time::interval_at(start, poll);
        // After a stall (a suspended pod, a busy runtime) one look is enough, not a burst.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match watcher.check(&self, &dir) {
                Check::Unchanged => {}
                Check::Reloaded => {
                    tracing::info!(dir = %dir.display(), "serving certificate reloaded");
                }
                Check::Broken {
                    error,
                    repeated: false,
                } => {
                    tracing::warn!(%error, "keeping the previous serving certificate; retrying");
                }
                Check::Broken {
                    error,
                    repeated: true,
                } => tracing::debug!(%error, "certificate pair still unusable"),
            }
        }
    }
}

/// What the reload loop remembers between ticks.
pub(super) struct Watcher {
    /// The version being served, when known.
    served: Option<Version>,
    /// The last failure seen, so one broken pair is reported once, not every tick.
    last_broken: Option<String>,
}

impl Watcher {
    /// A watcher of what `certificates` serves: the pair loaded at start when it came from the
    /// directory; otherwise unknown, and the first good look reloads.
    pub(super) fn following(certificates: &Certificates) -> Self {
        Self {
            served: certificates.loaded,
            last_broken: None,
        }
    }

    /// Looks at `dir` once and swaps `certificates` when it holds a new valid pair.
    pub(super) fn check(&mut self, certificates: &Certificates, dir: &Path) -> Check {
        let (cert, key) = match read_pair(dir) {
            Ok(pair) => pair,
            Err(err) => return self.broken(err.to_string()),
        };
        let version = Version::of(&cert, &key);
        if self.served == Some(version) {
            return Check::Unchanged;
        }
        // The protocols are set from the first configuration just below.
        match parse_dir_pair(dir, &cert, &key, Alpn::H2) {
            Ok(mut config) => {
                config.alpn_protocols = certificates.alpn_protocols.clone();
                certificates.current.store(Arc::new(config));
                self.served = Some(version);
                self.last_broken = None;
                Check::Reloaded
            }
            // Not recorded as served: the next tick parses again.
            Err(err) => self.broken(err.to_string()),
        }
    }

    fn broken(&mut self, error: String) -> Check {
        let repeated = self.last_broken.as_ref() == Some(&error);
        self.last_broken = Some(error.clone());
        Check::Broken { error, repeated }
    }
}
