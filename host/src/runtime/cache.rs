//! The on-disk cache of compiled components. Cranelift takes 11-15 s on a
//! JavaScript or Python component (tens of ms on Rust or C); the cache makes
//! every load after the first a read and a `Component::deserialize`.
//!
//! An entry is named by the SHA-256 of the component's bytes and a hash of
//! the engine's compatibility key (wasmtime version, compiler settings,
//! target features), so a changed component or engine simply misses. Its
//! file holds a magic line, the SHA-256 of the artifact and the artifact:
//! the checksum is verified before wasmtime sees the bytes, and wasmtime
//! checks its own header again. Anything that does not match is logged,
//! ignored and rebuilt, never trusted. Entries are written to a temporary
//! file and renamed into place; a per-entry file lock makes concurrent
//! servers (or tests) compile a component once. The least recently used
//! entries are removed when the cache grows past its size cap.

use super::Digest;
use sha2::{Digest as _, Sha256};
use std::hash::Hash;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"wasock1\n";
const HEADER: usize = MAGIC.len() + 32;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache.
    Cached,
    /// Compiled (and stored, if there is a cache).
    Compiled,
}

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl CompileCache {
    /// Size cap after which the least recently used entries go.
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), max_bytes: Self::DEFAULT_MAX_BYTES }
    }

    /// The default location: `$WASOCK_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/wasock`, else `$HOME/.cache/wasock`.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        var("WASOCK_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wasock")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("wasock")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component for `bytes`, from the cache if a matching entry is
    /// there, else compiled and stored. Cache trouble is logged, never fatal.
    /// `digest` is the SHA-256 of `bytes`.
    pub fn component(&self, engine: &Engine, bytes: &[u8], digest: &Digest) -> wasmtime::Result<(Component, Origin)> {
        let entry = self.dir.join(format!("{}.cwasm", key(engine, digest)));
        if let Some(component) = self.lookup(engine, &entry) {
            return Ok((component, Origin::Cached));
        }
        // One compiler per entry: whoever holds the lock compiles, the rest
        // wait and then find the entry.
        let _lock = self.lock(&entry);
        if let Some(component) = self.lookup(engine, &entry) {
            return Ok((component, Origin::Cached));
        }
        let started = Instant::now();
        let artifact = engine.precompile_component(bytes)?;
        tracing::debug!(elapsed = ?started.elapsed(), "compiled component");
        if let Err(err) = self.store(&entry, &artifact) {
            tracing::warn!(entry = %entry.display(), "cannot write the compile cache: {err}");
        } else {
            self.prune(&entry);
        }
        Ok((deserialize(engine, &artifact)?, Origin::Compiled))
    }

    fn lookup(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let data = match std::fs::read(entry) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "cannot read a compile cache entry: {e}");
                return None;
            }
        };
        let valid = data.len() > HEADER
            && &data[..MAGIC.len()] == MAGIC
            && Sha256::digest(&data[HEADER..])[..] == data[MAGIC.len()..HEADER];
        if !valid {
            tracing::warn!(entry = %entry.display(), "ignoring a corrupt compile cache entry; recompiling");
            return None;
        }
        match deserialize(engine, &data[HEADER..]) {
            Ok(component) => {
                // Touched on use: pruning removes the least recently used.
                let _ =
                    std::fs::File::options().append(true).open(entry).and_then(|f| f.set_modified(SystemTime::now()));
                Some(component)
            }
            Err(e) => {
                tracing::warn!(entry = %entry.display(), "ignoring a compile cache entry wasmtime refuses ({e}); recompiling");
                None
            }
        }
    }

    fn lock(&self, entry: &Path) -> Option<std::fs::File> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let file = std::fs::File::create(entry.with_extension("lock")).ok()?;
        file.lock().ok()?;
        Some(file)
    }

    fn store(&self, entry: &Path, artifact: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        let written = file
            .write_all(MAGIC)
            .and_then(|()| file.write_all(&Sha256::digest(artifact)))
            .and_then(|()| file.write_all(artifact))
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, entry));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Removes the least recently used entries (never `keep`) while the
    /// cache is over its cap.
    fn prune(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                let _ = std::fs::remove_file(path.with_extension("lock"));
                total -= len;
            }
        }
    }
}

/// The entry name: component digest and engine compatibility hash.
fn key(engine: &Engine, digest: &Digest) -> String {
    let mut hasher = Sha256Hasher::default();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_digest = Digest(hasher.0.finalize().into());
    format!("{}-{}", digest.hex(16), engine_digest.hex(8))
}

/// Feeds what a `Hash` impl writes into SHA-256: unlike std's
/// `DefaultHasher`, whose algorithm may change between Rust releases, the
/// same engine settings give the same on-disk key with any compiler.
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 of what was written is used")
    }
}

fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` runs the machine code in `artifact`.
    // It is only given bytes this process compiled a moment ago, or a cache
    // entry whose SHA-256 matched the digest stored when it was written by
    // `precompile_component`; wasmtime then checks its version and engine
    // settings itself. The cache directory is as trusted as the binary.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, artifact)
    }
}
