//! Parsing the macros' attribute arguments.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, LitStr, Path, Token, Type};

/// The arguments of `#[event(...)]`.
pub struct EventArgs {
    pub topic: Option<LitStr>,
    /// `crate = path`: where aett is, for crates that re-export it.
    pub krate: Option<Path>,
}

pub fn event_args(args: TokenStream) -> syn::Result<EventArgs> {
    let mut topic = None;
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            if krate.is_some() {
                return Err(meta.error("duplicate `crate` argument"));
            }
            krate = Some(parse_crate(&meta)?);
            Ok(())
        } else if meta.path.is_ident("topic") {
            if topic.is_some() {
                return Err(meta.error("duplicate `topic` argument"));
            }
            let value = meta.value()?;
            let lit: syn::Lit = value.parse()?;
            match lit {
                syn::Lit::Str(lit) => topic = Some(lit),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "the topic must be a string literal: `topic = \"...\"`",
                    ))
                }
            }
            Ok(())
        } else {
            Err(meta
                .error("unknown `event` argument; expected `topic = \"...\"` or `crate = path`"))
        }
    });
    parser.parse2(args)?;
    Ok(EventArgs { topic, krate })
}

/// `crate = path` or `crate = "path"`, as serde's `crate` attribute.
fn parse_crate(meta: &syn::meta::ParseNestedMeta) -> syn::Result<Path> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        lit.parse()
    } else {
        value.parse()
    }
}

/// `events(A, B, ...)`: the listed paths, and the span of the `events` keyword.
fn parse_events(meta: &syn::meta::ParseNestedMeta) -> syn::Result<(Span, Vec<Path>)> {
    let content;
    syn::parenthesized!(content in meta.input);
    let list = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
    let span = meta
        .path
        .get_ident()
        .map_or_else(Span::call_site, |ident| ident.span());
    Ok((span, list.into_iter().collect()))
}

/// `name = "..."`.
fn parse_name(meta: &syn::meta::ParseNestedMeta) -> syn::Result<LitStr> {
    match meta.value()?.parse()? {
        syn::Lit::Str(lit) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            "the name must be a string literal: `name = \"...\"`",
        )),
    }
}

/// The arguments of `#[aggregate(...)]` or `#[saga(...)]`, merged over every such attribute.
#[derive(Default)]
pub struct DomainArgs {
    /// The `events(...)` list and the span of the `events` keyword.
    pub events: Option<(Span, Vec<Path>)>,
    /// `memento = Type` (aggregates only).
    pub memento: Option<Type>,
    /// `crate = path`: where aett is, for crates that re-export it.
    pub krate: Option<Path>,
    /// `name = "..."`: the stream type (default: the type's name).
    pub name: Option<LitStr>,
    /// `correlated` (sagas only): run from the log, each event routed by its `Correlate` impl.
    pub correlated: bool,
    /// Whether any attribute of the macro's name was present.
    pub present: bool,
}

pub fn domain_args(
    attrs: &[Attribute],
    name: &str,
    allow_memento: bool,
) -> syn::Result<DomainArgs> {
    let mut args = DomainArgs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        args.present = true;
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                if args.krate.is_some() {
                    return Err(meta.error("duplicate `crate` argument"));
                }
                args.krate = Some(parse_crate(&meta)?);
                Ok(())
            } else if meta.path.is_ident("events") {
                if args.events.is_some() {
                    return Err(meta.error("duplicate `events(...)` list"));
                }
                args.events = Some(parse_events(&meta)?);
                Ok(())
            } else if meta.path.is_ident("name") {
                if args.name.is_some() {
                    return Err(meta.error("duplicate `name` argument"));
                }
                args.name = Some(parse_name(&meta)?);
                Ok(())
            } else if !allow_memento && meta.path.is_ident("correlated") {
                if args.correlated {
                    return Err(meta.error("duplicate `correlated` argument"));
                }
                args.correlated = true;
                Ok(())
            } else if allow_memento && meta.path.is_ident("memento") {
                if args.memento.is_some() {
                    return Err(meta.error("duplicate `memento` argument"));
                }
                args.memento = Some(meta.value()?.parse()?);
                Ok(())
            } else if allow_memento {
                Err(meta.error(format!(
                    "unknown `{name}` argument; expected `events(...)`, `name = \"...\"`, `memento = Type` or `crate = path`"
                )))
            } else {
                Err(meta.error(format!(
                    "unknown `{name}` argument; expected `events(...)`, `name = \"...\"`, `correlated` or `crate = path`"
                )))
            }
        })?;
    }
    Ok(args)
}

/// The arguments of `#[projection(...)]`, merged over every such attribute.
#[derive(Default)]
pub struct ProjectionArgs {
    /// The `events(...)` list and the span of the `events` keyword.
    pub events: Option<(Span, Vec<Path>)>,
    /// `name = "..."`: the checkpoint's key (default: the type's name).
    pub name: Option<LitStr>,
    /// `deletions` (its span): deleted-stream notices go to `Project<StreamDeleted>`.
    pub deletions: Option<Span>,
    /// `crate = path`: where aett is, for crates that re-export it.
    pub krate: Option<Path>,
}

pub fn projection_args(attrs: &[Attribute]) -> syn::Result<ProjectionArgs> {
    let mut args = ProjectionArgs::default();
    for attr in attrs
        .iter()
        .filter(|attr| attr.path().is_ident("projection"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                if args.krate.is_some() {
                    return Err(meta.error("duplicate `crate` argument"));
                }
                args.krate = Some(parse_crate(&meta)?);
                Ok(())
            } else if meta.path.is_ident("events") {
                if args.events.is_some() {
                    return Err(meta.error("duplicate `events(...)` list"));
                }
                args.events = Some(parse_events(&meta)?);
                Ok(())
            } else if meta.path.is_ident("name") {
                if args.name.is_some() {
                    return Err(meta.error("duplicate `name` argument"));
                }
                args.name = Some(parse_name(&meta)?);
                Ok(())
            } else if meta.path.is_ident("deletions") {
                if args.deletions.is_some() {
                    return Err(meta.error("duplicate `deletions` argument"));
                }
                args.deletions = Some(
                    meta.path
                        .get_ident()
                        .map_or_else(Span::call_site, |ident| ident.span()),
                );
                Ok(())
            } else {
                Err(meta.error(
                    "unknown `projection` argument; expected `events(...)`, `name = \"...\"`, `deletions` or `crate = path`",
                ))
            }
        })?;
    }
    Ok(args)
}
