//! The generated parts of a C project: wit-bindgen's C bindings for the
//! project's world (`gen/`) and wasmtime's preview-1 reactor adapter
//! (`adapter/`), both made by this binary so a C author needs neither
//! `wit-bindgen-cli` (a 19-minute `cargo install`, no prebuilt package)
//! nor a matching adapter: the versions are the host's own.

use super::{File, Hook, wit};
use anyhow::anyhow;
use std::path::Path;
use wit_bindgen_core::wit_parser::{Resolve, SourceMap};

pub const ADAPTER: &str = "adapter/wasi_snapshot_preview1.reactor.wasm";

pub fn files(name: &str, hooks: &[Hook]) -> anyhow::Result<Vec<File>> {
    let mut resolve = Resolve::new();
    let mut host = SourceMap::new();
    for (file, text) in wit::HOST_WIT {
        host.push(Path::new(&format!("wit/deps/ferrymail-plugin/{file}")), text);
    }
    let host = host.parse().map_err(|(_, e)| anyhow!("the host's WIT: {e}"))?;
    resolve.push_group(host).map_err(|e| anyhow!("the host's WIT: {e}"))?;
    let mut world = SourceMap::new();
    world.push(Path::new("wit/world.wit"), wit::world(name, hooks));
    let world = world.parse().map_err(|(_, e)| anyhow!("wit/world.wit: {e}"))?;
    let package = resolve.push_group(world).map_err(|e| anyhow!("wit/world.wit: {e}"))?;
    let world = resolve.select_world(&[package], Some(wit::WORLD))?;

    let mut generated = wit_bindgen_core::Files::default();
    // Autodrop: the bindings end the DATA hook's borrow of the message when
    // the hook returns. Without it the author must call
    // `…_message_drop_borrow`, and forgetting fails every call at run time
    // ("borrow handles still remain"), which `plugin check` cannot see.
    let opts = wit_bindgen_c::Opts { autodrop_borrows: wit_bindgen_c::Enabled::Yes, ..Default::default() };
    opts.build().generate(&mut resolve, world, &mut generated)?;
    let mut files: Vec<File> = generated
        .iter()
        .map(|(path, contents)| File { path: format!("gen/{path}"), contents: contents.to_vec(), executable: false })
        .collect();
    files.push(File {
        path: ADAPTER.into(),
        contents: wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER.to_vec(),
        executable: false,
    });
    Ok(files)
}
