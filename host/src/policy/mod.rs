//! How the server obtains its `Policy`: the wasm plugin chain
//! (ferrymail-plugin-host) over [`StoreServices`] in production; the native
//! implementation is the test double.

pub mod native;
mod services;

pub use native::NativePolicy;
pub use services::StoreServices;
