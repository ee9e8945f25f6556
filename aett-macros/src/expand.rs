//! Code generation. Every path is absolute (`::aett::…` or the `crate = path` given,
//! `::core::…`) so the generated code works whatever the user's module imports, and every
//! generated item sits inside a `const _: () = { … };` so none of its names leak into the
//! user's module.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Generics, Ident, Item, LitStr, Path};

use crate::ast::{Domain, EventItem, Kind, ProjectionItem};

pub fn event(event: &EventItem) -> TokenStream {
    let ident = &event.ident;
    let item = &event.item;
    let krate = &event.krate;
    let serde = quote!(#krate::__private::serde);
    let per_variant = event.topic_per_variant();
    let main_topic = event.topic().unwrap_or_else(|| ident.to_string());
    let variant_topics: Vec<(&TokenStream, &LitStr, &[LitStr])> = event
        .variants
        .iter()
        .filter_map(|variant| {
            let (args, _) = variant.args.as_ref()?;
            Some((
                &variant.pattern,
                args.topic.as_ref()?,
                args.aliases.as_slice(),
            ))
        })
        .collect();
    let topics: Vec<&LitStr> = if per_variant {
        variant_topics.iter().map(|(_, topic, _)| *topic).collect()
    } else {
        event.args.topic.iter().collect()
    };
    let aliases: Vec<&LitStr> = event
        .args
        .aliases
        .iter()
        .chain(
            variant_topics
                .iter()
                .flat_map(|(_, _, aliases)| aliases.iter()),
        )
        .collect();
    let version = event.version();

    let per_variant_fns = per_variant.then(|| {
        let arms = variant_topics
            .iter()
            .map(|(pattern, topic, _)| quote!(#pattern => #topic,));
        quote! {
            fn topic(&self) -> &'static str {
                match self {
                    #(#arms)*
                }
            }

            fn write_body(
                &self,
            ) -> ::core::result::Result<
                ::std::boxed::Box<#krate::__private::serde_json::value::RawValue>,
                #krate::__private::serde_json::Error,
            > {
                #krate::__private::variant_body(self)
            }
        }
    });

    let read_body = (per_variant || !event.args.upcasts.is_empty()).then(|| {
        let custom = quote!(<D::Error as #serde::de::Error>::custom);
        let current = if per_variant {
            let choices = variant_topics
                .iter()
                .enumerate()
                .map(|(index, (_, topic, aliases))| {
                    let index = index as u32;
                    quote!(if topic == #topic #(|| topic == #aliases)* { #index } else)
                });
            let name = ident.to_string();
            quote! {{
                let index: u32 = #(#choices)* {
                    return ::core::result::Result::Err(#custom(::core::format_args!(
                        "topic `{}` names no variant of `{}`", topic, #name
                    )));
                };
                #krate::__private::read_variant(index, body)
            }}
        } else {
            quote!(<Self as #serde::Deserialize>::deserialize(body))
        };
        let steps: Vec<(u32, &crate::attr::Step)> = event
            .args
            .upcasts
            .iter()
            .filter_map(|upcast| Some((upcast.version.base10_parse().ok()?, &upcast.step)))
            .collect();
        let newest_step = steps.iter().map(|(from, _)| *from).max().unwrap_or(0);
        let arms = (1..version).filter_map(|from| {
            let step = steps.iter().find(|(version, _)| *version == from);
            match step {
                Some((_, crate::attr::Step::Json(function))) => {
                    let next = from + 1;
                    Some(quote! {
                        #from => {
                            let value: #krate::__private::serde_json::Value =
                                #serde::Deserialize::deserialize(body)?;
                            let value = #krate::__private::upcast_json(#function, value, #from)
                                .map_err(#custom)?;
                            <Self as #krate::Event>::read_body(topic, #next, value).map_err(#custom)
                        }
                    })
                }
                Some((_, crate::attr::Step::Typed(old))) => {
                    let later = steps.iter().filter_map(|(version, step)| match step {
                        crate::attr::Step::Typed(ty) if *version > from => Some((*version, ty)),
                        _ => None,
                    });
                    let mut later: Vec<_> = later.collect();
                    later.sort_by_key(|(version, _)| *version);
                    let conversions = later.iter().map(
                        |(_, ty)| quote!(let value: #ty = ::core::convert::Into::into(value);),
                    );
                    Some(quote! {
                        #from => {
                            let value: #old = #serde::Deserialize::deserialize(body)?;
                            #(#conversions)*
                            ::core::result::Result::Ok(::core::convert::Into::<Self>::into(value))
                        }
                    })
                }
                // No upcaster of its own: the shape is the next version's.
                None if from < newest_step => {
                    let next = from + 1;
                    Some(quote!(#from => <Self as #krate::Event>::read_body(topic, #next, body),))
                }
                None => None,
            }
        });
        quote! {
            fn read_body<'de, D: #serde::Deserializer<'de>>(
                topic: &str,
                version: u32,
                body: D,
            ) -> ::core::result::Result<Self, D::Error> {
                let _ = topic;
                match version {
                    #(#arms)*
                    _ => #current,
                }
            }
        }
    });

    quote! {
        #item

        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const TOPIC: &'static str = #main_topic;
                const TOPICS: &'static [&'static str] = &[#(#topics),*];
                const ALIASES: &'static [&'static str] = &[#(#aliases),*];
                const VERSION: u32 = #version;

                #per_variant_fns

                #read_body
            }

            #krate::__private::inventory::submit! {
                #krate::__private::TopicRegistration::of::<#ident>()
            }
        };
    }
}

/// After a validation error: the item and, when it can have one, an `Event` impl, so that one
/// mistake gives one error and not one more at every use of the type.
pub fn event_fallback(event: &EventItem) -> TokenStream {
    let item = &event.item;
    let fallback = event
        .generics
        .params
        .is_empty()
        .then(|| fallback_event_impl(&event.ident, &event.krate));
    quote!(#item #fallback)
}

/// After an error parsing the arguments: the item, with an `Event` impl if it is a plain
/// struct or enum (its variants' `#[event]` attributes removed).
pub fn event_fallback_of(item: &Item) -> TokenStream {
    let mut item = item.clone();
    let ident = match &mut item {
        Item::Struct(item) if item.generics.params.is_empty() => Some(item.ident.clone()),
        Item::Enum(item) => {
            for variant in &mut item.variants {
                variant.attrs.retain(|attr| !attr.path().is_ident("event"));
            }
            item.generics.params.is_empty().then(|| item.ident.clone())
        }
        _ => None,
    };
    let fallback = ident.map(|ident| fallback_event_impl(&ident, &crate::ast::default_crate()));
    quote!(#item #fallback)
}

fn fallback_event_impl(ident: &Ident, krate: &Path) -> TokenStream {
    let topic = ident.to_string();
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Event for #ident {
                const TOPIC: &'static str = #topic;
            }
        };
    }
}

/// The names that differ between the two derives.
struct Names {
    trait_path: TokenStream,
    state_type: TokenStream,
    handler_trait: TokenStream,
    handler_fn: Ident,
    dispatch_fn: Ident,
}

fn names(kind: Kind, krate: &Path) -> Names {
    let ident = |name: &str| Ident::new(name, proc_macro2::Span::call_site());
    match kind {
        Kind::Aggregate => Names {
            trait_path: quote!(#krate::Aggregate),
            state_type: quote!(#krate::AggregateState),
            handler_trait: quote!(#krate::Apply),
            handler_fn: ident("apply"),
            dispatch_fn: ident("apply_body"),
        },
        Kind::Saga => Names {
            trait_path: quote!(#krate::Saga),
            state_type: quote!(#krate::SagaState),
            handler_trait: quote!(#krate::Transition),
            handler_fn: ident("transition"),
            dispatch_fn: ident("transition_body"),
        },
    }
}

pub fn domain(domain: &Domain) -> TokenStream {
    let ident = domain.ident;
    let krate = domain.krate();
    let name = domain
        .args
        .name
        .as_ref()
        .map_or_else(|| ident.to_string(), LitStr::value);
    let state = domain.state_fields()[0]
        .ident
        .clone()
        .expect("validated: named fields");
    let events = domain.events();
    let Names {
        trait_path,
        state_type,
        handler_trait,
        handler_fn,
        dispatch_fn,
    } = names(domain.kind, &krate);

    let topics = read_topics(&krate, events);
    let dispatch = quote!(#krate::__private::Dispatch);
    let arms = events.iter().map(|event| {
        quote_spanned! {event.span()=>
            if <#event as #krate::Event>::reads(topic) {
                return match #krate::__private::read_event::<#event, D>(topic, version, body)? {
                    #dispatch::Done(event) => {
                        <Self as #handler_trait<#event>>::#handler_fn(self, &event);
                        ::core::result::Result::Ok(#dispatch::Done(()))
                    }
                    #dispatch::Newer { known } => ::core::result::Result::Ok(#dispatch::Newer { known }),
                    #dispatch::Unlisted => ::core::result::Result::Ok(#dispatch::Unlisted),
                };
            }
        }
    });
    let declares = declares(ident, &krate, events);
    let unlisted = unlisted(ident, &krate, &handler_trait, &handler_fn);
    let unique_topics = unique_topics(&krate, events, &name);
    let memento = match domain.kind {
        Kind::Aggregate => memento(domain, &state, &krate),
        Kind::Saga => TokenStream::new(),
    };
    let memento_version = domain
        .args
        .memento_version
        .as_ref()
        .map(|version| quote!(const MEMENTO_VERSION: u32 = #version;));
    let correlated = (domain.kind == Kind::Saga && domain.args.correlated)
        .then(|| correlated(ident, &krate, events));
    let create_span = ident.span();
    let create = quote_spanned! {create_span=>
        fn create(id: &str) -> Self {
            let mut this: Self = ::core::default::Default::default();
            this.#state.set_id(id);
            this
        }
    };

    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #trait_path for #ident {
                const NAME: &'static str = #name;

                const TOPICS: &'static [&'static str] = #topics;

                #memento_version

                #create

                fn state(&self) -> &#state_type {
                    &self.#state
                }

                fn state_mut(&mut self) -> &mut #state_type {
                    &mut self.#state
                }

                fn #dispatch_fn<'de, D: #krate::__private::serde::Deserializer<'de>>(
                    &mut self,
                    topic: &str,
                    version: u32,
                    body: D,
                ) -> ::core::result::Result<#dispatch, D::Error> {
                    #(#arms)*
                    let _ = (body, version);
                    ::core::result::Result::Ok(#dispatch::Unlisted)
                }

                #memento
            }

            #declares

            #unlisted

            #correlated

            #(#unique_topics)*
        };
    }
}

/// `CorrelatedSaga`: routes a stored message to the instance its event's `Correlate` impl names.
fn correlated(ident: &Ident, krate: &Path, events: &[Path]) -> TokenStream {
    let arms = events.iter().map(|event| {
        quote_spanned! {event.span()=>
            if let ::core::option::Option::Some(event) = message.decode_event::<#event>()? {
                return ::core::result::Result::Ok(
                    <Self as #krate::Correlate<#event>>::correlation_id(&event, context),
                );
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #krate::CorrelatedSaga for #ident {
            fn correlate_message(
                message: &#krate::EventMessage,
                context: &#krate::EventContext<'_>,
            ) -> ::core::result::Result<::core::option::Option<::std::string::String>, #krate::ApplyError> {
                #(#arms)*
                ::core::result::Result::Ok(::core::option::Option::None)
            }
        }
    }
}

pub fn projection(projection: &ProjectionItem) -> TokenStream {
    let ident = projection.ident;
    let krate = projection.krate();
    let name = projection.name();
    let events = projection.events();
    let future =
        quote!(#krate::__private::BoxFuture<'a, ::core::result::Result<(), #krate::BoxError>>);
    let topics = read_topics(&krate, events);
    let dispatch = quote!(#krate::__private::Dispatch);
    let decode_arms = events.iter().map(|event| {
        quote_spanned! {event.span()=>
            if <#event as #krate::Event>::reads(topic) {
                return match #krate::__private::read_event::<#event, D>(topic, version, body)? {
                    #dispatch::Done(event) => ::core::result::Result::Ok(#dispatch::Done(
                        ::std::boxed::Box::new(event),
                    )),
                    #dispatch::Newer { known } => ::core::result::Result::Ok(#dispatch::Newer { known }),
                    #dispatch::Unlisted => ::core::result::Result::Ok(#dispatch::Unlisted),
                };
            }
        }
    });
    let project_arms = events.iter().map(|event| {
        quote_spanned! {event.span()=>
            if <#event as #krate::Event>::reads(topic) {
                if let ::core::result::Result::Ok(event) = event.downcast::<#event>() {
                    return <Self as #krate::Project<#event>>::project(self, *event, context).await;
                }
                return ::core::result::Result::Err(#krate::BoxError::from(
                    "an event was handed to the handler of another type",
                ));
            }
        }
    });
    let deletions = projection.args.deletions.is_some();
    let deletion = if let Some(span) = projection.args.deletions {
        quote_spanned! {span=>
            ::core::option::Option::Some(::std::boxed::Box::pin(
                <Self as #krate::Project<#krate::StreamDeleted>>::project(
                    self,
                    ::core::clone::Clone::clone(deleted),
                    context,
                ),
            ))
        }
    } else {
        quote! {
            let _ = (deleted, context);
            ::core::option::Option::None
        }
    };
    let type_name = ident.to_string();
    let unique_topics = unique_topics(&krate, events, &type_name);
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #krate::Projection for #ident {
                const NAME: &'static str = #name;
                const TOPICS: &'static [&'static str] = #topics;
                const HANDLES_DELETIONS: bool = #deletions;

                fn decode_body<'de, D: #krate::__private::serde::Deserializer<'de>>(
                    topic: &str,
                    version: u32,
                    body: D,
                ) -> ::core::result::Result<
                    #dispatch<::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>>,
                    D::Error,
                > {
                    #(#decode_arms)*
                    let _ = (body, version);
                    ::core::result::Result::Ok(#dispatch::Unlisted)
                }

                fn project_decoded<'a>(
                    &'a mut self,
                    topic: &'a str,
                    event: ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>,
                    context: &'a #krate::EventContext<'a>,
                ) -> impl ::core::future::Future<Output = ::core::result::Result<(), #krate::BoxError>>
                       + ::core::marker::Send + 'a {
                    async move {
                        #(#project_arms)*
                        let _ = (event, context);
                        ::core::result::Result::Err(#krate::BoxError::from(
                            "an event of a topic the projection does not list",
                        ))
                    }
                }

                fn project_deletion<'a>(
                    &'a mut self,
                    deleted: &'a #krate::StreamDeleted,
                    context: &'a #krate::EventContext<'a>,
                ) -> ::core::option::Option<#future> {
                    #deletion
                }
            }

            #(#unique_topics)*
        };
    }
}

/// After a validation error: a `Projection` impl that never runs, so one mistake gives one
/// error.
pub fn projection_fallback(ident: &Ident, generics: &Generics, krate: &Path) -> TokenStream {
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = ident.to_string();
    let future =
        quote!(#krate::__private::BoxFuture<'a, ::core::result::Result<(), #krate::BoxError>>);
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause.predicates.push(syn::parse_quote!(
        Self: ::core::marker::Send + 'static
    ));
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::Projection for #ident #ty_generics #where_clause {
                const NAME: &'static str = #name;
                const TOPICS: &'static [&'static str] = &[];
                const HANDLES_DELETIONS: bool = false;

                fn decode_body<'de, D: #krate::__private::serde::Deserializer<'de>>(
                    _: &str,
                    _: u32,
                    _: D,
                ) -> ::core::result::Result<
                    #krate::__private::Dispatch<::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>>,
                    D::Error,
                > {
                    ::core::unimplemented!()
                }

                #[allow(unreachable_code)]
                fn project_decoded<'a>(
                    &'a mut self,
                    _: &'a str,
                    _: ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>,
                    _: &'a #krate::EventContext<'a>,
                ) -> impl ::core::future::Future<Output = ::core::result::Result<(), #krate::BoxError>>
                       + ::core::marker::Send + 'a {
                    ::core::unimplemented!();
                    async { ::core::result::Result::Ok(()) }
                }

                fn project_deletion<'a>(
                    &'a mut self,
                    _: &'a #krate::StreamDeleted,
                    _: &'a #krate::EventContext<'a>,
                ) -> ::core::option::Option<#future> {
                    ::core::unimplemented!()
                }
            }
        };
    }
}

/// A derive's `TOPICS`: every topic and alias of its listed events, computed at compile time.
fn read_topics(krate: &Path, events: &[Path]) -> TokenStream {
    let groups = events.iter().map(|event| {
        quote_spanned!(event.span()=> <#event as #krate::Event>::TOPICS, <#event as #krate::Event>::ALIASES)
    });
    let groups = quote!(&[#(#groups),*]);
    quote! {
        &#krate::__private::concat_topics::<{ #krate::__private::topic_count(#groups) }>(#groups)
    }
}

/// Compile-time checks that no listed event shares a topic or alias with one listed before it.
fn unique_topics<'a>(
    krate: &'a Path,
    events: &'a [Path],
    name: &'a str,
) -> impl Iterator<Item = TokenStream> + 'a {
    let group = move |event: &Path| quote_spanned!(event.span()=> <#event as #krate::Event>::TOPICS, <#event as #krate::Event>::ALIASES);
    events
        .iter()
        .enumerate()
        .skip(1)
        .map(move |(index, event)| {
            let message = format!(
                "`{}` has a topic or alias of an event listed before it by `{name}`",
                event.to_token_stream().to_string().replace(' ', "")
            );
            let this = group(event);
            let earlier = events[..index].iter().map(group);
            quote_spanned! {event.span()=>
                const _: () = ::core::assert!(
                    !#krate::__private::shares_topic(&[#this], &[#(#earlier),*]),
                    #message
                );
            }
        })
}

/// `Declares<E>` for each listed event.
fn declares(ident: &Ident, krate: &Path, events: &[Path]) -> TokenStream {
    let impls = events.iter().map(|event| {
        quote_spanned! {event.span()=>
            #[automatically_derived]
            impl #krate::Declares<#event> for #ident {}
        }
    });
    quote!(#(#impls)*)
}

/// A second impl of `Declares` and of the handler trait, for a type no one can raise. With
/// only one impl of each, rustc would infer `raise`'s event type from that impl and report
/// "mismatched types" for an unlisted event instead of saying that it is not listed.
fn unlisted(
    ident: &Ident,
    krate: &Path,
    handler_trait: &TokenStream,
    handler_fn: &Ident,
) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl #krate::Declares<#krate::__private::Unlisted> for #ident {}

        #[automatically_derived]
        impl #handler_trait<#krate::__private::Unlisted> for #ident {
            fn #handler_fn(&mut self, _: &#krate::__private::Unlisted) {}
        }
    }
}

fn memento(domain: &Domain, state: &syn::Ident, krate: &Path) -> TokenStream {
    let json = quote!(#krate::__private::serde_json);
    match &domain.args.memento {
        None => quote_spanned! {domain.ident.span()=>
            fn get_memento_json(&self) -> ::core::result::Result<::std::boxed::Box<#json::value::RawValue>, #json::Error> {
                #json::value::to_raw_value(self)
            }

            fn apply_memento_json(&mut self, memento: &[u8]) -> ::core::result::Result<(), #json::Error> {
                let mut restored: Self = #json::from_slice(memento)?;
                ::core::mem::swap(&mut restored.#state, &mut self.#state);
                *self = restored;
                ::core::result::Result::Ok(())
            }
        },
        Some(memento) => quote_spanned! {memento.span()=>
            fn get_memento_json(&self) -> ::core::result::Result<::std::boxed::Box<#json::value::RawValue>, #json::Error> {
                #json::value::to_raw_value(&<Self as #krate::Memento<#memento>>::get_memento(self))
            }

            fn apply_memento_json(&mut self, memento: &[u8]) -> ::core::result::Result<(), #json::Error> {
                let memento: #memento = #json::from_slice(memento)?;
                <Self as #krate::Memento<#memento>>::apply_memento(self, memento);
                ::core::result::Result::Ok(())
            }
        },
    }
}

/// After a validation error: an impl of the derive's trait that never runs (the program does
/// not compile) but lets every use of the type check, so one mistake gives one error, as
/// thiserror does.
pub fn domain_fallback(
    kind: Kind,
    ident: &Ident,
    generics: &Generics,
    krate: &Path,
    events: &[Path],
) -> TokenStream {
    let Names {
        trait_path,
        state_type,
        dispatch_fn,
        ..
    } = names(kind, krate);
    let name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause.predicates.push(syn::parse_quote!(
        Self: ::core::marker::Send + ::core::marker::Sync + 'static
    ));
    let json = quote!(#krate::__private::serde_json);
    let memento = (kind == Kind::Aggregate).then(|| {
        quote! {
            fn get_memento_json(&self) -> ::core::result::Result<::std::boxed::Box<#json::value::RawValue>, #json::Error> {
                ::core::unimplemented!()
            }

            fn apply_memento_json(&mut self, _: &[u8]) -> ::core::result::Result<(), #json::Error> {
                ::core::unimplemented!()
            }
        }
    });
    // Listed once each: a list with a repeated event is one of the mistakes this stands in for.
    let mut seen = std::collections::HashSet::new();
    let declares = events
        .iter()
        .filter(|event| seen.insert(event.to_token_stream().to_string()))
        .map(|event| {
            quote! {
                #[automatically_derived]
                impl #impl_generics #krate::Declares<#event> for #ident #ty_generics #where_clause {}
            }
        });
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #trait_path for #ident #ty_generics #where_clause {
                const NAME: &'static str = #name;
                const TOPICS: &'static [&'static str] = &[];

                fn create(_: &str) -> Self {
                    ::core::unimplemented!()
                }

                fn state(&self) -> &#state_type {
                    ::core::unimplemented!()
                }

                fn state_mut(&mut self) -> &mut #state_type {
                    ::core::unimplemented!()
                }

                fn #dispatch_fn<'de, D: #krate::__private::serde::Deserializer<'de>>(
                    &mut self,
                    _: &str,
                    _: u32,
                    _: D,
                ) -> ::core::result::Result<#krate::__private::Dispatch, D::Error> {
                    ::core::unimplemented!()
                }

                #memento
            }

            #(#declares)*
        };
    }
}
