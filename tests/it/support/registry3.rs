//! Where the registry 3.x binaries come from: `REGISTRY3_BIN` (v3.1.1) / `REGISTRY30_BIN`
//! (v3.0.0), else `target/peers/registry-vX` (written by scripts/install-deps.sh), else
//! the nearest `shared/peers/registry-vX.gz` above the repository, unpacked into
//! target/peers once (sha256 checked). Nothing found is a loud failure, never a skip.
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::Digest as _;

/// The registry versions the end-to-end tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Debian's `docker-registry`.
    V2_8_2,
    V3_0_0,
    V3_1_1,
}

impl Version {
    pub fn tag(self) -> &'static str {
        match self {
            Version::V2_8_2 => "v2.8.2",
            Version::V3_0_0 => "v3.0.0",
            Version::V3_1_1 => "v3.1.1",
        }
    }

    /// The name its log files and messages carry.
    pub fn program_name(self) -> &'static str {
        match self {
            Version::V2_8_2 => "docker-registry",
            Version::V3_0_0 => "registry-v3.0.0",
            Version::V3_1_1 => "registry-v3.1.1",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Version::V3_0_0 => "REGISTRY30_BIN",
            _ => "REGISTRY3_BIN",
        }
    }

    /// sha256 of the unpacked binary, from shared/peers/README.md.
    fn sha256(self) -> &'static str {
        match self {
            Version::V3_0_0 => "5cd9684d1755daecbcb266bd89bbf37972fbd109e42b1a3edb00126994aecc14",
            _ => "5a6d9881332deb61675f4804eb4d03c94a3643f635b7542a52bdde3ef4c9d214",
        }
    }
}

/// The binary for a 3.x version; panics with what to do when none is available.
pub fn binary(version: Version) -> PathBuf {
    assert_ne!(version, Version::V2_8_2, "2.8.2 is Debian's docker-registry");
    static FOUND: OnceLock<Mutex<Vec<(Version, PathBuf)>>> = OnceLock::new();
    let mut found = FOUND.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = found.iter().find(|(v, _)| *v == version) {
        return path.clone();
    }
    let path = locate(version).unwrap_or_else(|why| {
        panic!(
            "no registry {} binary: {why}. Run scripts/install-deps.sh, or set {} to a registry {} binary",
            version.tag(),
            version.env_var(),
            version.tag()
        )
    });
    found.push((version, path.clone()));
    path
}

fn locate(version: Version) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(version.env_var()) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("{} names no file", version.env_var())) };
    }
    let target = peers_target().join(format!("registry-{}", version.tag()));
    if target.is_file() {
        return Ok(target);
    }
    let gz = shared_peers()
        .map(|dir| dir.join(format!("registry-{}.gz", version.tag())))
        .filter(|gz| gz.is_file())
        .ok_or_else(|| {
            format!(
                "neither {} nor a shared/peers/registry-{}.gz above the repository",
                target.display(),
                version.tag()
            )
        })?;
    unpack(&gz, &target, version.sha256())?;
    Ok(target)
}

fn peers_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from)
        .join("peers")
}

fn shared_peers() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().skip(1).map(|dir| dir.join("shared/peers")).find(|p| p.is_dir())
}

/// Unpacks into a temp file beside `target`, checks the sha256, then renames into place
/// (atomic, so a concurrent test process never runs a half-written binary).
fn unpack(gz: &Path, target: &Path, sha256: &str) -> Result<(), String> {
    let dir = target.parent().ok_or("no target dir")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = std::fs::File::open(gz).map_err(|e| format!("cannot open {}: {e}", gz.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot unpack {}: {e}", gz.display()))?;
    let actual = hex(&sha2::Sha256::digest(&bytes));
    if actual != sha256 {
        return Err(format!("{} unpacks to sha256 {actual}, expected {sha256}", gz.display()));
    }
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    std::fs::write(tmp.path(), &bytes).map_err(|e| e.to_string())?;
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    tmp.persist(target).map_err(|e| e.to_string())?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
