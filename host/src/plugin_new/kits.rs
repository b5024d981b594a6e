//! The language kits (`plugins/kits/<lang>/`), embedded in the binary:
//! templates with `{{placeholders}}`, helpers copied verbatim, and for Rust
//! the SDK itself, vendored at this host's version.

use super::{File, Hook, Lang, transcript};

/// Everything a template may name.
pub struct Vars<'a> {
    pub name: &'a str,
    pub abs_dir: &'a str,
    pub hooks: &'a [Hook],
}

impl Vars<'_> {
    fn render(&self, template: &str, stubs: &str) -> String {
        let hook_list: Vec<&str> = self.hooks.iter().map(|h| h.interface()).collect();
        template
            .replace("{{name}}", self.name)
            .replace("{{crate}}", &self.name.replace('-', "_"))
            .replace("{{type}}", &type_name(self.name))
            .replace("{{abs_dir}}", self.abs_dir)
            .replace("{{version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{wit_version}}", ferrymail_plugin_host::WIT_VERSION)
            .replace("{{hook_list}}", &hook_list.join(", "))
            .replace("{{hooks}}", stubs)
    }
}

/// `no-spamtrap` -> `NoSpamtrap`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

macro_rules! kit {
    ($path:literal) => {
        include_str!(concat!("../../../plugins/kits/", $path))
    };
}

/// The Rust SDK and its macro crate, vendored into `vendor/` (each carries
/// its own copy of the WIT, so nothing points back into this repository).
const RUST_SDK: [(&str, &str); 13] = [
    ("vendor/sdk/Cargo.toml", include_str!("../../../plugins/sdk/Cargo.toml")),
    ("vendor/sdk/src/lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("vendor/sdk/src/reply.rs", include_str!("../../../plugins/sdk/src/reply.rs")),
    ("vendor/sdk/wit/types.wit", include_str!("../../../plugins/sdk/wit/types.wit")),
    ("vendor/sdk/wit/host.wit", include_str!("../../../plugins/sdk/wit/host.wit")),
    ("vendor/sdk/wit/hooks.wit", include_str!("../../../plugins/sdk/wit/hooks.wit")),
    ("vendor/sdk/wit/worlds.wit", include_str!("../../../plugins/sdk/wit/worlds.wit")),
    ("vendor/sdk-macros/Cargo.toml", include_str!("../../../plugins/sdk-macros/Cargo.toml")),
    ("vendor/sdk-macros/src/lib.rs", include_str!("../../../plugins/sdk-macros/src/lib.rs")),
    ("vendor/sdk-macros/wit/types.wit", include_str!("../../../plugins/sdk-macros/wit/types.wit")),
    ("vendor/sdk-macros/wit/host.wit", include_str!("../../../plugins/sdk-macros/wit/host.wit")),
    ("vendor/sdk-macros/wit/hooks.wit", include_str!("../../../plugins/sdk-macros/wit/hooks.wit")),
    ("vendor/sdk-macros/wit/worlds.wit", include_str!("../../../plugins/sdk-macros/wit/worlds.wit")),
];

pub fn files(vars: &Vars, lang: Lang) -> Vec<File> {
    let hooks = vars.hooks;
    let stubs = |f: fn(Hook) -> &'static str, sep: &str| hooks.iter().map(|h| f(*h)).collect::<Vec<_>>().join(sep);
    let t = |path: &str, template: &str, stubs: &str| File::text(path, vars.render(template, stubs));
    let mut files = vec![File::text(format!("{}.transcript", vars.name), transcript::sample(vars.name, hooks))];
    match lang {
        Lang::Rust => {
            files.push(t("Cargo.toml", kit!("rust/Cargo.toml.in"), ""));
            files.push(t("Makefile", kit!("rust/Makefile.in"), ""));
            files.push(t("README.md", kit!("rust/README.md.in"), ""));
            files.push(t(".gitignore", kit!("rust/gitignore.in"), ""));
            files.push(t("src/lib.rs", kit!("rust/lib.rs.in"), &stubs(Hook::rust_stub, "\n")));
            // The crate versions the kit was tested with.
            files.push(t("Cargo.lock", kit!("rust/Cargo.lock.in"), ""));
            files.extend(RUST_SDK.iter().map(|(path, text)| File::text(*path, *text)));
        }
        Lang::Python => {
            files.push(t("Makefile", kit!("python/Makefile.in"), ""));
            files.push(t("README.md", kit!("python/README.md.in"), ""));
            files.push(t(".gitignore", kit!("python/gitignore.in"), ""));
            files.push(t("app.py", kit!("python/app.py.in"), &stubs(Hook::python_stub, "\n\n")));
            files.push(File::text("ferrymail_plugin.py", kit!("python/ferrymail_plugin.py")));
        }
        Lang::Js => {
            files.push(t("Makefile", kit!("js/Makefile.in"), ""));
            files.push(t("README.md", kit!("js/README.md.in"), ""));
            files.push(t(".gitignore", kit!("js/gitignore.in"), ""));
            files.push(t("package.json", kit!("js/package.json.in"), ""));
            files.push(t("package-lock.json", kit!("js/package-lock.json.in"), ""));
            files.push(t("plugin.js", kit!("js/plugin.js.in"), &stubs(Hook::js_stub, "\n")));
            files.push(File::text("ferrymail.js", kit!("js/ferrymail.js")));
            files.push(File::text("build.mjs", kit!("js/build.mjs")));
        }
        Lang::C => {
            files.push(t("Makefile", kit!("c/Makefile.in"), ""));
            files.push(t("README.md", kit!("c/README.md.in"), ""));
            files.push(t(".gitignore", kit!("c/gitignore.in"), ""));
            files.push(t("plugin.c", kit!("c/plugin.c.in"), &stubs(Hook::c_stub, "\n")));
            files.push(File::text("MEMORY.md", kit!("c/MEMORY.md")));
        }
    }
    files
}

/// The SDK crates' copies of the WIT (a test compares them with the host's).
#[cfg(test)]
pub fn rust_sdk_wit() -> impl Iterator<Item = (&'static str, &'static str)> {
    RUST_SDK.into_iter().filter(|(path, _)| path.ends_with(".wit"))
}
