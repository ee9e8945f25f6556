//! The intermediate representation the macros validate and expand.

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Field, Fields, Generics, Ident, Item, LitStr, Path, Type};

use crate::attr;

/// An `#[event]` item.
pub struct EventItem {
    /// The item as it is emitted: without the `#[event(...)]` attributes of its variants.
    pub item: Item,
    pub ident: Ident,
    pub generics: Generics,
    pub args: attr::EventArgs,
    /// For an enum, its variants with their own `#[event(...)]` arguments (empty for a struct).
    pub variants: Vec<EventVariant>,
    /// A `#[serde(...)]` argument on an enum that changes its representation (`tag`,
    /// `untagged`, `content`), which topics per variant cannot work with.
    pub serde_repr: Option<TokenStream>,
    /// The path to aett in generated code.
    pub krate: Path,
}

/// One variant of an enum event.
pub struct EventVariant {
    pub ident: Ident,
    /// `Self::Variant { .. }`, `Self::Variant(..)` or `Self::Variant`.
    pub pattern: TokenStream,
    /// Its `#[event(topic = "...", aliases(...))]`, with the attribute's tokens for errors.
    pub args: Option<(attr::EventArgs, TokenStream)>,
    /// A `#[serde(skip ...)]` or `#[serde(other)]` on it, which shifts serde's variant indices.
    pub serde_skip: Option<TokenStream>,
}

impl EventItem {
    pub fn from_syn(args: TokenStream, item: &Item) -> syn::Result<Self> {
        let args = attr::event_args(args, false)?;
        let mut item = item.clone();
        let mut variants = Vec::new();
        let mut serde_repr = None;
        let (ident, generics) = match &mut item {
            Item::Struct(item) => (item.ident.clone(), item.generics.clone()),
            Item::Enum(item) => {
                serde_repr = serde_args(&item.attrs, &["tag", "untagged", "content"]);
                for variant in &mut item.variants {
                    let mut variant_args = None;
                    let mut error: Option<syn::Error> = None;
                    variant.attrs.retain(|attr| {
                        if !attr.path().is_ident("event") {
                            return true;
                        }
                        let parsed = match &attr.meta {
                            syn::Meta::List(list) => attr::event_args(list.tokens.clone(), true),
                            other => Err(syn::Error::new_spanned(
                                other,
                                "expected `#[event(topic = \"...\")]` on a variant",
                            )),
                        };
                        match parsed {
                            Ok(parsed) if variant_args.is_none() => {
                                variant_args =
                                    Some((parsed, quote::ToTokens::to_token_stream(attr)))
                            }
                            Ok(_) => {
                                error = Some(syn::Error::new_spanned(
                                    attr,
                                    "duplicate `#[event(...)]` on a variant",
                                ))
                            }
                            Err(e) => error = Some(e),
                        }
                        false
                    });
                    if let Some(error) = error {
                        return Err(error);
                    }
                    let name = &variant.ident;
                    let pattern = match &variant.fields {
                        Fields::Named(_) => quote::quote!(Self::#name { .. }),
                        Fields::Unnamed(_) => quote::quote!(Self::#name(..)),
                        Fields::Unit => quote::quote!(Self::#name),
                    };
                    variants.push(EventVariant {
                        ident: name.clone(),
                        pattern,
                        args: variant_args,
                        serde_skip: serde_args(
                            &variant.attrs,
                            &["skip", "skip_deserializing", "skip_serializing", "other"],
                        ),
                    });
                }
                (item.ident.clone(), item.generics.clone())
            }
            other => {
                return Err(syn::Error::new_spanned(
                    item_keyword(other),
                    "`#[event]` goes on a struct or an enum",
                ))
            }
        };
        Ok(Self {
            item,
            ident,
            generics,
            krate: args.krate.clone().unwrap_or_else(default_crate),
            args,
            variants,
            serde_repr,
        })
    }

    /// Whether the variants carry the topics (an enum with `#[event(topic = ...)]` on variants).
    pub fn topic_per_variant(&self) -> bool {
        self.variants.iter().any(|variant| variant.args.is_some())
    }

    /// The type's main topic: the literal given, or its first variant's.
    pub fn topic(&self) -> Option<String> {
        match &self.args.topic {
            Some(topic) => Some(topic.value()),
            None => self
                .variants
                .iter()
                .find_map(|variant| variant.args.as_ref()?.0.topic.as_ref())
                .map(LitStr::value),
        }
    }

    /// The version, as the macro was given it (1 without it or when it does not parse).
    pub fn version(&self) -> u32 {
        self.args
            .version
            .as_ref()
            .and_then(|version| version.base10_parse().ok())
            .unwrap_or(1)
    }
}

/// The first `#[serde(...)]` attribute holding one of `names` as an argument.
fn serde_args(attrs: &[syn::Attribute], names: &[&str]) -> Option<TokenStream> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
        .find(|attr| {
            let syn::Meta::List(list) = &attr.meta else {
                return false;
            };
            list.tokens.clone().into_iter().any(|token| {
                matches!(&token, proc_macro2::TokenTree::Ident(ident) if names.iter().any(|name| ident == name))
            })
        })
        .map(quote::ToTokens::to_token_stream)
}

/// `::aett`, where generated code finds aett unless `crate = path` says otherwise.
pub fn default_crate() -> Path {
    syn::parse_quote!(::aett)
}

/// Points an error about a wrong kind of item at its leading keyword rather than its body.
fn item_keyword(item: &Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        Item::Fn(item) => item.sig.fn_token.to_token_stream(),
        Item::Union(item) => item.union_token.to_token_stream(),
        Item::Trait(item) => item.trait_token.to_token_stream(),
        Item::Type(item) => item.type_token.to_token_stream(),
        Item::Mod(item) => item.mod_token.to_token_stream(),
        Item::Impl(item) => item.impl_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// Which derive is running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aggregate,
    Saga,
}

impl Kind {
    /// The helper attribute's name.
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Aggregate => "aggregate",
            Kind::Saga => "saga",
        }
    }

    /// The derive's name.
    pub fn derive(self) -> &'static str {
        match self {
            Kind::Aggregate => "Aggregate",
            Kind::Saga => "Saga",
        }
    }

    /// The bookkeeping field's type name.
    pub fn state_type(self) -> &'static str {
        match self {
            Kind::Aggregate => "AggregateState",
            Kind::Saga => "SagaState",
        }
    }
}

/// A `#[derive(Aggregate)]` or `#[derive(Saga)]` input.
pub struct Domain<'a> {
    pub kind: Kind,
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    /// The named fields, or `None` for an enum, union, tuple or unit struct.
    pub fields: Option<Vec<&'a Field>>,
    pub args: attr::DomainArgs,
}

impl<'a> Domain<'a> {
    pub fn from_syn(input: &'a DeriveInput, kind: Kind) -> syn::Result<Self> {
        let args = attr::domain_args(&input.attrs, kind.attr(), kind == Kind::Aggregate)?;
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named.named.iter().collect()),
                _ => None,
            },
            _ => None,
        };
        Ok(Self {
            kind,
            ident: &input.ident,
            generics: &input.generics,
            fields,
            args,
        })
    }

    /// The path to aett in generated code.
    pub fn krate(&self) -> Path {
        self.args.krate.clone().unwrap_or_else(default_crate)
    }

    /// The listed events.
    pub fn events(&self) -> &[Path] {
        self.args.events.as_ref().map_or(&[], |(_, events)| events)
    }

    /// The fields whose type is the bookkeeping type (`AggregateState` or `SagaState`).
    pub fn state_fields(&self) -> Vec<&'a Field> {
        self.fields
            .iter()
            .flatten()
            .copied()
            .filter(|field| is_state_type(&field.ty, self.kind.state_type()))
            .collect()
    }
}

fn is_state_type(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == name && segment.arguments.is_none()),
        _ => false,
    }
}

/// A `#[derive(Projection)]` input.
pub struct ProjectionItem<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub args: attr::ProjectionArgs,
}

impl<'a> ProjectionItem<'a> {
    pub fn from_syn(input: &'a DeriveInput) -> syn::Result<Self> {
        Ok(Self {
            ident: &input.ident,
            generics: &input.generics,
            args: attr::projection_args(&input.attrs)?,
        })
    }

    /// The path to aett in generated code.
    pub fn krate(&self) -> Path {
        self.args.krate.clone().unwrap_or_else(default_crate)
    }

    /// The listed events.
    pub fn events(&self) -> &[Path] {
        self.args.events.as_ref().map_or(&[], |(_, events)| events)
    }

    /// The checkpoint's key: the name given, or the type's name.
    pub fn name(&self) -> String {
        self.args
            .name
            .as_ref()
            .map_or_else(|| self.ident.to_string(), LitStr::value)
    }
}
