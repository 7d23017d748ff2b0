//! The workspace's members and their library and binary targets, from
//! `cargo metadata`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// What kind of target a root file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// A library (`lib` or `proc-macro`).
    Lib,
    /// A binary.
    Bin,
}

/// One library or binary target of a member.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) kind: TargetKind,
    pub(crate) root: PathBuf,
}

/// One workspace member.
#[derive(Clone, Debug)]
pub(crate) struct Package {
    pub(crate) name: String,
    /// Whether `cargo publish` would publish it (no `publish = false`).
    pub(crate) published: bool,
    pub(crate) targets: Vec<Target>,
}

/// The workspace members of the workspace at `root`, in name order.
pub(crate) fn members(root: &Path) -> Result<Vec<Package>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let mut members: Vec<Package> = packages.iter().filter_map(package).collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

fn package(value: &Value) -> Option<Package> {
    let name = value["name"].as_str()?.to_owned();
    // `publish` is null when the package may go to any registry and a list
    // of registries otherwise; `publish = false` is the empty list.
    let published = match &value["publish"] {
        Value::Array(registries) => !registries.is_empty(),
        _ => true,
    };
    let targets = value["targets"]
        .as_array()?
        .iter()
        .filter_map(|target| {
            let kinds = target["kind"].as_array()?;
            let kind = kinds.iter().find_map(|kind| match kind.as_str()? {
                "lib" | "rlib" | "proc-macro" => Some(TargetKind::Lib),
                "bin" => Some(TargetKind::Bin),
                _ => None,
            })?;
            let root = PathBuf::from(target["src_path"].as_str()?);
            Some(Target { kind, root })
        })
        .collect();
    Some(Package {
        name,
        published,
        targets,
    })
}
