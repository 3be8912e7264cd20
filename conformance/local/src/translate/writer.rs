//! Writing a [`GatewayConfig`] where Envoy reads it.
//!
//! Envoy watches the directory for files moved into it and then re-reads its LDS, CDS and
//! RDS files. Each file is written to a temporary name in the same directory and renamed over
//! the old one, so Envoy never reads half a file. Clusters are written first: routes and
//! listeners that name a new cluster must not arrive before it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::GatewayConfig;
use super::envoy::{CDS_FILE, LDS_FILE, RDS_FILE};
use crate::error::{Error, Result};

/// The bootstrap's file name.
pub const BOOTSTRAP_FILE: &str = "envoy.json";

/// A directory holding Envoy's bootstrap and the files it watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigDir {
    dir: PathBuf,
}

// === impl ConfigDir ===

impl ConfigDir {
    /// Uses `dir` (created if missing; made absolute, since the bootstrap names files in it).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let dir =
            std::path::absolute(dir).map_err(Error::io(format!("resolving {}", dir.display())))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The bootstrap to start Envoy with (`envoy -c <this>`).
    pub fn bootstrap_path(&self) -> PathBuf {
        self.dir.join(BOOTSTRAP_FILE)
    }

    /// Writes everything: before Envoy starts, or to change a running Envoy's routes and
    /// clusters (the bootstrap is only read at start).
    pub fn write(&self, config: &GatewayConfig) -> Result<()> {
        self.replace(CDS_FILE, &config.cds())?;
        self.replace(RDS_FILE, &config.rds())?;
        self.replace(LDS_FILE, &config.lds(&self.dir))?;
        self.replace(BOOTSTRAP_FILE, &config.bootstrap(&self.dir))
    }

    /// Writes only the routes: weights and matches change, clusters stay.
    pub fn write_routes(&self, config: &GatewayConfig) -> Result<()> {
        self.replace(RDS_FILE, &config.rds())
    }

    /// Replaces `name` by writing a temporary file and renaming it over the old one.
    fn replace(&self, name: &str, value: &Value) -> Result<()> {
        let target = self.dir.join(name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
            context: format!("rendering {name}"),
            source,
        })?;
        let mut file = std::fs::File::create(&temp)
            .map_err(Error::io(format!("creating {}", temp.display())))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::io(format!("writing {}", temp.display())))?;
        std::fs::rename(&temp, &target).map_err(Error::io(format!(
            "renaming {} to {}",
            temp.display(),
            target.display()
        )))
    }
}
