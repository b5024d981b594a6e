//! `#[ferrymail_plugin_sdk::plugin]` on `impl Plugin for T { … }`.
//!
//! The host learns a plugin's hooks from the component's exports and calls
//! no others, so a component must export exactly the hooks its author wrote.
//! This attribute reads the method names of the impl block, builds a WIT
//! world that includes `ferrymail:plugin/imports` and exports one interface
//! per hook, runs `wit_bindgen::generate!` on it (types shared with the SDK
//! through `with`), and forwards each export to the trait method.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{ImplItem, ItemImpl, parse_macro_input};

/// The package version of the WIT this SDK was built against.
const WIT_VERSION: &str = "0.1.0";

/// Where the WIT package lives: this crate's own copy of the repository's
/// `wit/` (a test keeps it identical), so the macro works wherever the crate
/// is unpacked: a git checkout, the registry or a project's vendor/ folder.
fn wit_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/wit").to_string()
}

/// (method, interface, forwarding impl) for each hook a method can implement.
fn hook(method: &str) -> Option<(&'static str, Tokens)> {
    let sdk = quote!(::ferrymail_plugin_sdk);
    let t = quote!(#sdk::wit::ferrymail::plugin::types);
    Some(match method {
        "connect" => (
            "connect",
            quote! {
                fn on_connect(s: #t::Session) -> #t::Verdict { with(|p| p.connect(&s)) }
            },
        ),
        "helo" => (
            "helo",
            quote! {
                fn on_helo(s: #t::Session, name: String, ehlo: bool) -> #t::Verdict { with(|p| p.helo(&s, &name, ehlo)) }
            },
        ),
        "auth" => (
            "auth",
            quote! {
                fn on_auth(req: #t::AuthRequest) -> #t::AuthResult { with(|p| p.auth(&req)) }
            },
        ),
        "mail" => (
            "mail",
            quote! {
                fn on_mail(s: #t::Session, sender: String) -> #t::Verdict { with(|p| p.mail(&s, &sender)) }
            },
        ),
        "rcpt" => (
            "rcpt",
            quote! {
                fn on_rcpt(s: #t::Session, env: #t::Envelope, rcpt: String) -> #t::Verdict { with(|p| p.rcpt(&s, &env, &rcpt)) }
            },
        ),
        "data" => (
            "data",
            quote! {
                fn on_data(s: #t::Session, env: #t::Envelope, msg: &#t::Message) -> #t::DataResult { with(|p| p.data(&s, &env, msg)) }
            },
        ),
        "vrfy" => (
            "vrfy",
            quote! {
                fn on_vrfy(s: #t::Session, arg: String) -> Option<#t::Reply> { with(|p| p.vrfy(&s, &arg)) }
            },
        ),
        "expn" => (
            "expn",
            quote! {
                fn on_expn(s: #t::Session, arg: String) -> Option<#t::Reply> { with(|p| p.expn(&s, &arg)) }
            },
        ),
        "route" => (
            "route",
            quote! {
                fn on_route(ctx: #t::RouteContext) -> Option<#t::Destination> { with(|p| p.route(&ctx)) }
            },
        ),
        "retry" => (
            "retry",
            quote! {
                fn on_retry(ctx: #t::RetryContext) -> Option<#t::RetryDecision> { with(|p| p.retry(&ctx)) }
            },
        ),
        // Both event methods live in one interface; the other keeps its default.
        "delivered" | "bounced" => (
            "events",
            quote! {
                fn on_delivered(ev: #t::DeliveryEvent) { with(|p| p.delivered(&ev)) }
                fn on_bounced(ev: #t::DeliveryEvent) { with(|p| p.bounced(&ev)) }
            },
        ),
        _ => return None,
    })
}

/// Export the hooks this impl block defines. See the SDK's crate docs.
#[proc_macro_attribute]
pub fn plugin(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let imp = parse_macro_input!(item as ItemImpl);
    let ty = &imp.self_ty;
    let mut interfaces: Vec<&'static str> = Vec::new();
    let mut impls = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let Some((iface, body)) = hook(&f.sig.ident.to_string()) else {
            continue;
        };
        if interfaces.contains(&iface) {
            continue;
        }
        interfaces.push(iface);
        let module = format_ident!("{}", iface);
        impls.push(quote! {
            impl exports::ferrymail::plugin::#module::Guest for Export { #body }
        });
    }
    if interfaces.is_empty() {
        return syn::Error::new_spanned(&imp.self_ty, "a plugin must implement at least one hook method")
            .to_compile_error()
            .into();
    }
    let exports: String = interfaces.iter().map(|i| format!("export ferrymail:plugin/{i}@{WIT_VERSION};\n")).collect();
    let world = format!(
        "package ferrymail-guest:plugin;\nworld plugin {{\ninclude ferrymail:plugin/imports@{WIT_VERSION};\n{exports}}}\n"
    );
    let wit = wit_dir();
    let with_types = format!("ferrymail:plugin/types@{WIT_VERSION}");
    let with_host = format!("ferrymail:plugin/host@{WIT_VERSION}");
    let with_kv = format!("ferrymail:plugin/kv@{WIT_VERSION}");
    let with_dns = format!("ferrymail:plugin/dns@{WIT_VERSION}");
    let with_dir = format!("ferrymail:plugin/directory@{WIT_VERSION}");
    quote! {
        #imp

        #[doc(hidden)]
        #[allow(warnings, clippy::all)]
        mod __ferrymail_plugin_export {
            use ::ferrymail_plugin_sdk::Plugin as _;
            ::ferrymail_plugin_sdk::__private::wit_bindgen::generate!({
                inline: #world,
                path: #wit,
                world: "ferrymail-guest:plugin/plugin",
                with: {
                    #with_types: ::ferrymail_plugin_sdk::wit::ferrymail::plugin::types,
                    #with_host: ::ferrymail_plugin_sdk::wit::ferrymail::plugin::host,
                    #with_kv: ::ferrymail_plugin_sdk::wit::ferrymail::plugin::kv,
                    #with_dns: ::ferrymail_plugin_sdk::wit::ferrymail::plugin::dns,
                    #with_dir: ::ferrymail_plugin_sdk::wit::ferrymail::plugin::directory,
                },
                runtime_path: "::ferrymail_plugin_sdk::__private::wit_bindgen::rt",
            });

            // One plugin value per instance, built on first use (after the
            // host has set up config), never shared: wasm is single-threaded.
            ::std::thread_local! {
                static INSTANCE: ::std::cell::OnceCell<super::#ty> = const { ::std::cell::OnceCell::new() };
            }
            fn with<R>(f: impl FnOnce(&super::#ty) -> R) -> R {
                INSTANCE.with(|cell| f(cell.get_or_init(<super::#ty as ::ferrymail_plugin_sdk::Plugin>::new)))
            }

            struct Export;
            #(#impls)*
            export!(Export);
        }
    }
    .into()
}
