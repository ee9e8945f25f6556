//! Code generation. Every path is absolute (`::aett::…`, `::core::…`) so the generated code
//! works whatever the user's module imports.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Item, LitStr};

use crate::ast::{Domain, EventItem, Kind};

pub fn event(event: &EventItem, item: &Item) -> TokenStream {
    let ident = event.ident;
    let topic = LitStr::new(
        &event.topic(),
        event
            .topic
            .as_ref()
            .map_or_else(|| ident.span(), LitStr::span),
    );
    quote! {
        #item

        impl ::aett::Event for #ident {
            const TOPIC: &'static str = #topic;
        }

        ::aett::__private::inventory::submit! {
            ::aett::__private::TopicRegistration::of::<#ident>()
        }
    }
}

pub fn domain(domain: &Domain) -> TokenStream {
    let ident = domain.ident;
    let name = ident.to_string();
    let state = domain.state_fields()[0]
        .ident
        .clone()
        .expect("validated: named fields");
    let events = domain.events();
    let (trait_path, state_type, handler_trait, handler_fn, dispatch_fn, body_fn) =
        match domain.kind {
            Kind::Aggregate => (
                quote!(::aett::Aggregate),
                quote!(::aett::AggregateState),
                quote!(::aett::Apply),
                format_ident!("apply"),
                format_ident!("apply_message"),
                format_ident!("apply_body"),
            ),
            Kind::Saga => (
                quote!(::aett::Saga),
                quote!(::aett::SagaState),
                quote!(::aett::Transition),
                format_ident!("transition"),
                format_ident!("transition_message"),
                format_ident!("transition_body"),
            ),
        };

    let topics = events
        .iter()
        .map(|event| quote_spanned!(event.span()=> <#event as ::aett::Event>::TOPIC));
    let arms = events.iter().enumerate().map(|(index, event)| {
        quote_spanned! {event.span()=>
            if topic == <Self as #trait_path>::TOPICS[#index] {
                let event: #event = ::aett::EventMessage::decode(message)
                    .map_err(|source| ::aett::__private::decode_error(topic, source))?;
                <Self as #handler_trait<#event>>::#handler_fn(self, &event);
                return ::core::result::Result::Ok(());
            }
        }
    });
    let body_arms = events.iter().enumerate().map(|(index, event)| {
        quote_spanned! {event.span()=>
            if topic == <Self as #trait_path>::TOPICS[#index] {
                let event: #event = ::aett::__private::serde::Deserialize::deserialize(body)?;
                <Self as #handler_trait<#event>>::#handler_fn(self, &event);
                return ::core::result::Result::Ok(true);
            }
        }
    });
    let declares = events
        .iter()
        .map(|event| quote_spanned!(event.span()=> impl ::aett::Declares<#event> for #ident {}));
    let unique_topics = events.iter().enumerate().skip(1).map(|(index, event)| {
        let message = format!(
            "`{}` has the same topic as an event listed before it by `{name}`",
            event.to_token_stream().to_string().replace(' ', "")
        );
        quote_spanned! {event.span()=>
            const _: () = ::core::assert!(
                !::aett::__private::repeats_earlier_topic(<#ident as #trait_path>::TOPICS, #index),
                #message
            );
        }
    });
    let memento = match domain.kind {
        Kind::Aggregate => memento(domain, &state),
        Kind::Saga => TokenStream::new(),
    };
    let create_span = ident.span();
    let create = quote_spanned! {create_span=>
        fn create(id: &str) -> Self {
            let mut this: Self = ::core::default::Default::default();
            this.#state.set_id(id);
            this
        }
    };

    quote! {
        impl #trait_path for #ident {
            const NAME: &'static str = #name;

            const TOPICS: &'static [&'static str] = &[#(#topics),*];

            #create

            fn state(&self) -> &#state_type {
                &self.#state
            }

            fn state_mut(&mut self) -> &mut #state_type {
                &mut self.#state
            }

            fn #dispatch_fn(
                &mut self,
                message: &::aett::EventMessage,
            ) -> ::core::result::Result<(), ::aett::ApplyError> {
                let topic = message.topic.as_str();
                #(#arms)*
                ::core::result::Result::Err(::aett::__private::unknown_topic(topic, #name))
            }

            fn #body_fn<'de, D: ::aett::__private::serde::Deserializer<'de>>(
                &mut self,
                topic: &str,
                body: D,
            ) -> ::core::result::Result<bool, D::Error> {
                #(#body_arms)*
                let _ = body;
                ::core::result::Result::Ok(false)
            }

            #memento
        }

        #(#declares)*

        #(#unique_topics)*
    }
}

fn memento(domain: &Domain, state: &syn::Ident) -> TokenStream {
    let json = quote!(::aett::__private::serde_json);
    match &domain.args.memento {
        None => quote_spanned! {domain.ident.span()=>
            fn to_memento(&self) -> ::core::result::Result<::std::boxed::Box<#json::value::RawValue>, #json::Error> {
                #json::value::to_raw_value(self)
            }

            fn restore_memento(&mut self, memento: &#json::value::RawValue) -> ::core::result::Result<(), #json::Error> {
                let mut restored: Self = #json::from_str(memento.get())?;
                ::core::mem::swap(&mut restored.#state, &mut self.#state);
                *self = restored;
                ::core::result::Result::Ok(())
            }
        },
        Some(memento) => quote_spanned! {memento.span()=>
            fn to_memento(&self) -> ::core::result::Result<::std::boxed::Box<#json::value::RawValue>, #json::Error> {
                #json::value::to_raw_value(&<Self as ::aett::Memento<#memento>>::get_memento(self))
            }

            fn restore_memento(&mut self, memento: &#json::value::RawValue) -> ::core::result::Result<(), #json::Error> {
                let memento: #memento = #json::from_str(memento.get())?;
                <Self as ::aett::Memento<#memento>>::apply_memento(self, memento);
                ::core::result::Result::Ok(())
            }
        },
    }
}
