//! The intermediate representation the macros validate and expand.

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Field, Fields, Generics, Ident, Item, LitStr, Path, Type};

use crate::attr;

/// An `#[event]` item.
pub struct EventItem<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    /// The `topic = "..."` literal, when given.
    pub topic: Option<LitStr>,
    /// The path to aett in generated code.
    pub krate: Path,
}

impl<'a> EventItem<'a> {
    pub fn from_syn(args: TokenStream, item: &'a Item) -> syn::Result<Self> {
        let args = attr::event_args(args)?;
        let (ident, generics) = match item {
            Item::Struct(item) => (&item.ident, &item.generics),
            Item::Enum(item) => (&item.ident, &item.generics),
            other => {
                return Err(syn::Error::new_spanned(
                    item_keyword(other),
                    "`#[event]` goes on a struct or an enum",
                ))
            }
        };
        Ok(Self {
            ident,
            generics,
            topic: args.topic,
            krate: args.krate.unwrap_or_else(default_crate),
        })
    }

    /// The topic: the literal given, or the type's name.
    pub fn topic(&self) -> String {
        self.topic
            .as_ref()
            .map_or_else(|| self.ident.to_string(), LitStr::value)
    }
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
