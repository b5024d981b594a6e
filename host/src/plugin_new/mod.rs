//! `ferrymail plugin new NAME --lang L --hooks a,b`: a ready plugin project.
//!
//! Everything the project needs comes from this binary, so it always
//! matches the host that will load it: the WIT (embedded from the
//! repository's `wit/`), the kit of the language (`plugins/kits/<lang>/`:
//! build file, helpers, README), and for Rust the SDK itself. The project
//! builds with one command (`make`) and passes `ferrymail plugin check`
//! without edits; every hook it names is stubbed to "no opinion".

mod c_bindings;
mod hooks;
mod kits;
mod transcript;
mod wit;

pub use hooks::Hook;

use anyhow::{Context, bail, ensure};
use std::path::{Path, PathBuf};

/// The languages with a kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

/// One file of a new project: path relative to the project, contents.
#[derive(Debug)]
pub struct File {
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

impl File {
    fn text(path: impl Into<String>, contents: impl Into<String>) -> File {
        File { path: path.into(), contents: contents.into().into_bytes(), executable: false }
    }
}

/// The project's name: it becomes a directory, a crate or package name, a
/// WIT package name and a file name, so only what all of them accept.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
        // WIT identifiers: a part after '-' may not start with a digit.
        && name.split('-').all(|part| !part.starts_with(|c: char| c.is_ascii_digit()));
    ensure!(
        ok,
        "{name:?} is not a plugin name: use lowercase letters, digits and single hyphens, starting with a letter \
         (e.g. no-spamtrap)"
    );
    Ok(())
}

/// The files of a new project in `abs_dir`, without touching the disk.
pub fn project_files(name: &str, abs_dir: &str, lang: Lang, hooks: &[Hook]) -> anyhow::Result<Vec<File>> {
    validate_name(name)?;
    ensure!(!hooks.is_empty(), "name at least one hook (--hooks rcpt,data)");
    let mut hooks = hooks.to_vec();
    hooks.sort();
    hooks.dedup();
    let mut files = wit::files(name, &hooks);
    files.extend(kits::files(&kits::Vars { name, abs_dir, hooks: &hooks }, lang));
    if lang == Lang::C {
        files.extend(c_bindings::files(name, &hooks)?);
    }
    Ok(files)
}

/// Writes the project into `dir` (created; it must not exist or be empty).
pub fn create(dir: &Path, name: &str, lang: Lang, hooks: &[Hook]) -> anyhow::Result<PathBuf> {
    let abs_dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    let files = project_files(name, &abs_dir.to_string_lossy(), lang, hooks)?;
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))?.next().is_none();
        if !empty {
            bail!("{} already exists and is not empty; choose another name or remove it", dir.display());
        }
    }
    for f in &files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.contents).with_context(|| format!("writing {}", path.display()))?;
        if f.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_language() {
        for good in ["x", "no-spamtrap", "kit2", "a-b-c"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "No", "-x", "x-", "a--b", "a_b", "2x", "a-2b", "a.b", "a/b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_world_exports_exactly_the_chosen_hooks_and_includes_the_imports() {
        let world = wit::world("demo", &[Hook::Rcpt, Hook::Data]);
        let exports: Vec<&str> = world.lines().filter(|l| l.trim_start().starts_with("export ")).collect();
        assert_eq!(exports, ["    export ferrymail:plugin/rcpt@0.1.0;", "    export ferrymail:plugin/data@0.1.0;"]);
        assert!(world.contains("include ferrymail:plugin/imports@0.1.0;"));
        assert!(world.contains("package local:demo;"));
    }

    #[test]
    fn the_sdk_copies_of_the_wit_are_the_hosts() {
        // The SDK and its macro carry their own WIT so they work outside this
        // repository; a change to wit/ must be copied to both.
        let sdk: Vec<_> = kits::rust_sdk_wit().collect();
        assert_eq!(sdk.len(), 2 * wit::HOST_WIT.len());
        for (path, text) in sdk {
            let file = path.rsplit('/').next().unwrap();
            let (_, host) = wit::HOST_WIT.iter().find(|(f, _)| *f == file).unwrap();
            assert_eq!(text, *host, "{path} differs from wit/{file}: copy wit/*.wit to plugins/sdk*/wit/");
        }
    }

    #[test]
    fn every_language_gets_the_same_project_shape() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            let files = project_files("demo", "/tmp/demo", lang, &[Hook::Data, Hook::Rcpt, Hook::Rcpt]).unwrap();
            let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            for needed in
                ["Makefile", "README.md", "demo.transcript", "wit/world.wit", "wit/deps/ferrymail-plugin/types.wit"]
            {
                assert!(paths.contains(&needed), "{lang:?} lacks {needed}: {paths:?}");
            }
            // The vendored SDK is copied verbatim (its own `{{` are format strings).
            for f in files.iter().filter(|f| !f.path.starts_with("vendor/")) {
                // Binary files (the C kit's adapter and component-type object)
                // are not templates; the adapter holds `{{` bytes by chance.
                let Ok(text) = std::str::from_utf8(&f.contents) else { continue };
                assert!(!text.contains("{{"), "{lang:?} {} has an unfilled placeholder", f.path);
            }
        }
    }

    #[test]
    fn a_c_project_gets_bindings_for_its_world_and_the_adapter() {
        let files = project_files("demo", "/tmp/demo", Lang::C, &[Hook::Rcpt]).unwrap();
        let file = |p: &str| files.iter().find(|f| f.path == p).unwrap_or_else(|| panic!("no {p}"));
        let header = String::from_utf8_lossy(&file("gen/plugin.h").contents).into_owned();
        assert!(header.contains("exports_ferrymail_plugin_rcpt_on_rcpt("), "rcpt export missing");
        assert!(!header.contains("exports_ferrymail_plugin_data_on_data("), "data is not in this world");
        assert!(!file("gen/plugin_component_type.o").contents.is_empty());
        // A core module (magic, version 1) exporting the preview-1 functions.
        assert_eq!(&file(c_bindings::ADAPTER).contents[..8], b"\0asm\x01\0\0\0");

        // The bindings end the DATA hook's message borrow themselves
        // (autodrop), so there is no drop function for the author to forget.
        let files = project_files("demo", "/tmp/demo", Lang::C, &[Hook::Data]).unwrap();
        let header = files.iter().find(|f| f.path == "gen/plugin.h").unwrap();
        let header = String::from_utf8_lossy(&header.contents);
        assert!(header.contains("exports_ferrymail_plugin_data_on_data("), "data export missing");
        assert!(!header.contains("message_drop_borrow"), "borrows are not autodropped");
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), "x").unwrap();
        let err = create(dir.path(), "demo", Lang::Python, &[Hook::Rcpt]).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert!(!dir.path().join("Makefile").exists());
    }
}
