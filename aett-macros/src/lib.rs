//! Procedural macros for aett. Use them through the `aett` crate, which re-exports them and
//! documents them; the generated code refers to `::aett`.
//!
//! Each macro parses its input into an intermediate representation ([`ast`], [`attr`]),
//! validates it with spanned errors ([`valid`]), then generates code ([`expand`]).

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput, Item};

/// Declares an event (or command) type with its topic: `#[aett::event(topic = "bank.deposited")]`.
///
/// Implements `aett::Event` with the topic as a constant and registers the type in
/// `aett::TopicMap::global()`. Without `topic`, the type's name is the topic.
#[proc_macro_attribute]
pub fn event(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as Item);
    let args = proc_macro2::TokenStream::from(args);
    let expanded = match ast::EventItem::from_syn(args, &item) {
        Err(error) => {
            let error = error.into_compile_error();
            quote::quote!(#item #error)
        }
        Ok(event) => match valid::event(&event) {
            Ok(()) => expand::event(&event, &item),
            Err(error) => {
                let error = error.into_compile_error();
                let fallback = expand::event_fallback(&event, &item);
                quote::quote!(#fallback #error)
            }
        },
    };
    expanded.into()
}

/// Implements `aett::Aggregate`: `#[aggregate(events(A, B, C))]` lists the events, optionally
/// `memento = M` names a custom memento type.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input, ast::Kind::Aggregate)
}

/// Implements `aett::Saga`: `#[saga(events(A, B, C))]` lists the events the saga handles.
#[proc_macro_derive(Saga, attributes(saga))]
pub fn derive_saga(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input, ast::Kind::Saga)
}

fn derive(input: &DeriveInput, kind: ast::Kind) -> TokenStream {
    let expanded = match ast::Domain::from_syn(input, kind) {
        Err(error) => {
            let error = error.into_compile_error();
            let fallback = expand::domain_fallback(
                kind,
                &input.ident,
                &input.generics,
                &ast::default_crate(),
                &[],
            );
            quote::quote!(#error #fallback)
        }
        Ok(domain) => match valid::domain(&domain) {
            Ok(()) => expand::domain(&domain),
            Err(error) => {
                let error = error.into_compile_error();
                let fallback = expand::domain_fallback(
                    kind,
                    domain.ident,
                    domain.generics,
                    &domain.krate(),
                    domain.events(),
                );
                quote::quote!(#error #fallback)
            }
        },
    };
    expanded.into()
}
