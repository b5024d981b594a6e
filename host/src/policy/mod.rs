//! How the server obtains its `Policy`: the wasm plugin chain in production,
//! the native implementation as the test double.

pub mod native;

pub use native::NativePolicy;
