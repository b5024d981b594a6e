//! The one `bindgen!` site: host bindings for the world `full`, which
//! exports every hook. A plugin exports only some; the runtime looks each
//! hook up separately (`GuestIndices::new`) and never uses the world wrapper,
//! which would demand all of them.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "ferrymail:plugin/full",
    // Capability imports await the server (DNS, store, argon2); resource
    // look-ups may fail, which traps the guest rather than the host.
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "ferrymail:plugin/types.message": crate::message::MessageData,
    },
});

pub use exports::ferrymail::plugin as hooks;
pub use ferrymail::plugin::types as wit;
