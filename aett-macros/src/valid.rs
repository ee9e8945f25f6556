//! Validation: every misuse becomes a `syn::Error` pointing at the offending tokens.

use quote::ToTokens;

use crate::ast::{Domain, EventItem, Kind, ProjectionItem};

/// Collects every error of a pass, so one compile shows them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        let error = syn::Error::new_spanned(tokens, message);
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn push_at(&mut self, span: proc_macro2::Span, message: impl std::fmt::Display) {
        let error = syn::Error::new(span, message);
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

pub fn event(event: &EventItem) -> syn::Result<()> {
    let mut errors = Errors::default();
    if !event.generics.params.is_empty() {
        errors.push(
            &event.generics.params,
            "an event type cannot be generic: its topic must name exactly one type",
        );
    }
    if let Some(topic) = &event.topic {
        check_text(&mut errors, topic, "topic");
    }
    errors.finish()
}

pub fn domain(domain: &Domain) -> syn::Result<()> {
    let mut errors = Errors::default();
    let derive = domain.kind.derive();
    let attr_name = domain.kind.attr();
    let what = match domain.kind {
        Kind::Aggregate => "an aggregate",
        Kind::Saga => "a saga",
    };

    if domain.fields.is_none() {
        errors.push(
            domain.ident,
            format!("`#[derive({derive})]` needs a struct with named fields"),
        );
        return errors.finish();
    }
    if !domain.generics.params.is_empty() {
        errors.push(&domain.generics.params, format!("{what} cannot be generic"));
    }

    match &domain.args.events {
        None => errors.push(
            domain.ident,
            format!("missing `#[{attr_name}(events(...))]`: list the events {what} handles"),
        ),
        Some((span, events)) => check_list(&mut errors, *span, events),
    }

    if let Some(name) = &domain.args.name {
        check_text(&mut errors, name, "name");
    }

    let state_type = domain.kind.state_type();
    let state_fields = domain.state_fields();
    match state_fields.as_slice() {
        [] => errors.push(
            domain.ident,
            format!("{what} needs one field of type `aett::{state_type}` for its id, version and uncommitted events"),
        ),
        [_] => {}
        [_, rest @ ..] => {
            for field in rest {
                errors.push(&field.ty, format!("only one field may be of type `{state_type}`"));
            }
        }
    }
    errors.finish()
}

pub fn projection(projection: &ProjectionItem) -> syn::Result<()> {
    let mut errors = Errors::default();
    if !projection.generics.params.is_empty() {
        errors.push(
            &projection.generics.params,
            "a projection cannot be generic: its name keys one checkpoint",
        );
    }
    if let Some(name) = &projection.args.name {
        check_text(&mut errors, name, "name");
    }
    match &projection.args.events {
        None => errors.push(
            projection.ident,
            "missing `#[projection(events(...))]`: list the events the projection handles",
        ),
        Some((span, events)) => check_list(&mut errors, *span, events),
    }
    errors.finish()
}

/// An `events(...)` list: not empty, no event twice.
fn check_list(errors: &mut Errors, span: proc_macro2::Span, events: &[syn::Path]) {
    if events.is_empty() {
        errors.push_at(span, "the `events(...)` list is empty");
    }
    for (index, event) in events.iter().enumerate() {
        let text = event.to_token_stream().to_string();
        if events[..index]
            .iter()
            .any(|earlier| earlier.to_token_stream().to_string() == text)
        {
            errors.push(
                event,
                format!("`{}` is listed twice", text.replace(' ', "")),
            );
        }
    }
}

/// A `topic = "..."` or `name = "..."`: not empty, no surrounding whitespace.
fn check_text(errors: &mut Errors, text: &syn::LitStr, what: &str) {
    let value = text.value();
    if value.trim().is_empty() {
        errors.push(text, format!("the {what} is empty"));
    } else if value.trim() != value {
        errors.push(
            text,
            format!("the {what} has leading or trailing whitespace"),
        );
    }
}
