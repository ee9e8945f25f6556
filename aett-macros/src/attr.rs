//! Parsing the macros' attribute arguments.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, LitInt, LitStr, Path, Token, Type};

/// The arguments of `#[event(...)]`, on the item or on one enum variant.
#[derive(Default)]
pub struct EventArgs {
    pub topic: Option<LitStr>,
    /// `aliases("old", ...)`: topics still read as this type.
    pub aliases: Vec<LitStr>,
    /// `version = N`.
    pub version: Option<LitInt>,
    /// `upcast(N = Type, M = json(path), ...)`.
    pub upcasts: Vec<Upcast>,
    /// `crate = path`: where aett is, for crates that re-export it.
    pub krate: Option<Path>,
}

/// One upcaster: how a body stored at `version` becomes the next version's.
pub struct Upcast {
    pub version: LitInt,
    pub step: Step,
}

pub enum Step {
    /// Decode into this older type, then convert with `From`/`Into`.
    Typed(Type),
    /// Transform the stored JSON with this function.
    Json(Path),
}

impl syn::parse::Parse for Upcast {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        let expected = "expected `VERSION = OldType` or `VERSION = json(function)`";
        let version: LitInt = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        if input.peek(Token![=>]) {
            return Err(input.error(expected));
        }
        input
            .parse::<Token![=]>()
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        let fork = input.fork();
        let step = match fork.parse::<syn::Ident>() {
            Ok(ident) if ident == "json" && fork.peek(syn::token::Paren) => {
                input.parse::<syn::Ident>()?;
                let content;
                syn::parenthesized!(content in input);
                Step::Json(content.parse()?)
            }
            _ => Step::Typed(input.parse()?),
        };
        Ok(Self { version, step })
    }
}

/// Parses the arguments of `#[event(...)]`; `variant` says whether they sit on an enum variant,
/// where only `topic` and `aliases` belong.
pub fn event_args(args: TokenStream, variant: bool) -> syn::Result<EventArgs> {
    let mut parsed = EventArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("topic") {
            if parsed.topic.is_some() {
                return Err(meta.error("duplicate `topic` argument"));
            }
            let value = meta.value()?;
            let lit: syn::Lit = value.parse()?;
            match lit {
                syn::Lit::Str(lit) => parsed.topic = Some(lit),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "the topic must be a string literal: `topic = \"...\"`",
                    ))
                }
            }
            Ok(())
        } else if meta.path.is_ident("aliases") {
            if !parsed.aliases.is_empty() {
                return Err(meta.error("duplicate `aliases(...)` list"));
            }
            let content;
            syn::parenthesized!(content in meta.input);
            let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
            if list.is_empty() {
                return Err(meta.error("the `aliases(...)` list is empty"));
            }
            parsed.aliases = list.into_iter().collect();
            Ok(())
        } else if variant {
            Err(meta.error(
                "unknown argument on a variant; expected `topic = \"...\"` or `aliases(\"...\")`",
            ))
        } else if meta.path.is_ident("crate") {
            if parsed.krate.is_some() {
                return Err(meta.error("duplicate `crate` argument"));
            }
            parsed.krate = Some(parse_crate(&meta)?);
            Ok(())
        } else if meta.path.is_ident("version") {
            if parsed.version.is_some() {
                return Err(meta.error("duplicate `version` argument"));
            }
            parsed.version = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("upcast") {
            if !parsed.upcasts.is_empty() {
                return Err(meta.error("duplicate `upcast(...)` list"));
            }
            let content;
            syn::parenthesized!(content in meta.input);
            let list = Punctuated::<Upcast, Token![,]>::parse_terminated(&content)?;
            if list.is_empty() {
                return Err(meta.error("the `upcast(...)` list is empty"));
            }
            parsed.upcasts = list.into_iter().collect();
            Ok(())
        } else {
            Err(meta.error(
                "unknown `event` argument; expected `topic = \"...\"`, `aliases(...)`, `version = N`, `upcast(...)` or `crate = path`",
            ))
        }
    });
    parser.parse2(args)?;
    Ok(parsed)
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
    /// `memento_version = N` (aggregates only).
    pub memento_version: Option<LitInt>,
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
            } else if allow_memento && meta.path.is_ident("memento_version") {
                if args.memento_version.is_some() {
                    return Err(meta.error("duplicate `memento_version` argument"));
                }
                args.memento_version = Some(meta.value()?.parse()?);
                Ok(())
            } else if allow_memento && meta.path.is_ident("memento") {
                if args.memento.is_some() {
                    return Err(meta.error("duplicate `memento` argument"));
                }
                args.memento = Some(meta.value()?.parse()?);
                Ok(())
            } else if allow_memento {
                Err(meta.error(format!(
                    "unknown `{name}` argument; expected `events(...)`, `name = \"...\"`, `memento = Type`, `memento_version = N` or `crate = path`"
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
