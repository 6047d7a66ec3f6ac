//! Where models live: the git-ignored cache that `scripts/fetch-models.sh` fills, and
//! the short names of the models Lanterna is tested on.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct KnownModel {
    pub name: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
}

pub const SMOLLM2: KnownModel = KnownModel {
    name: "smollm2",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};
pub const GEMMA3: KnownModel = KnownModel {
    name: "gemma3",
    file: "gemma-3-270m-q4_k_m.gguf",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
};
pub const KNOWN: [KnownModel; 2] = [SMOLLM2, GEMMA3];
/// The model `-m` defaults to.
pub const DEFAULT: KnownModel = SMOLLM2;

/// The repository root this binary was built from (where `scripts/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$LANTERNA_MODELS`, else `models/` in the repository.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LANTERNA_MODELS").map(PathBuf::from).unwrap_or_else(|| repo_root().join("models"))
}

pub fn known(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name == name)
}

/// Path of a known model in the cache, fetching it with the project's script if absent.
pub fn ensure(m: &KnownModel) -> Result<PathBuf> {
    let path = cache_dir().join(m.file);
    if path.is_file() {
        return Ok(path);
    }
    let script = repo_root().join("scripts/fetch-models.sh");
    eprintln!("lanterna: {} is not in {}; fetching it with {}", m.file, cache_dir().display(), script.display());
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(m.name)
        .env("LANTERNA_MODELS", cache_dir())
        .status()
        .map_err(|e| Error::Usage(format!("could not run {}: {e}", script.display())))?;
    if !status.success() || !path.is_file() {
        return Err(Error::Usage(format!(
            "fetching {} failed ({status}); run {} by hand to see why",
            m.name,
            script.display()
        )));
    }
    Ok(path)
}

/// `-m` as given: a path to a GGUF file or the short name of a known model.
pub fn resolve(arg: Option<&str>) -> Result<PathBuf> {
    match arg {
        None => ensure(&DEFAULT),
        Some(a) if Path::new(a).is_file() => Ok(PathBuf::from(a)),
        Some(a) => match known(a) {
            Some(m) => ensure(m),
            None => Err(Error::Usage(format!(
                "model '{a}' is neither a file nor a known model name ({})",
                KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}
