//! Validation: every misuse becomes a `syn::Error` pointing at the offending tokens.

use quote::ToTokens;

use crate::ast::{Domain, EventItem, Kind, ProjectionItem};
use crate::attr::Step;

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
    let per_variant = event.topic_per_variant();
    // Every topic and alias of the type, to find one given twice.
    let mut texts: Vec<&syn::LitStr> = Vec::new();
    if per_variant {
        if let Some(topic) = &event.args.topic {
            errors.push(
                topic,
                "this enum has topics per variant: give every variant its own `#[event(topic = \"...\")]` and none to the enum",
            );
        }
        if let Some(repr) = &event.serde_repr {
            errors.push(
                repr,
                "an enum with a topic per variant is stored in serde's default representation: the topic already says which variant it is",
            );
        }
        for variant in &event.variants {
            if let Some(skip) = &variant.serde_skip {
                errors.push(
                    skip,
                    "a variant of an enum with topics per variant is read by its position: serde may not skip it",
                );
            }
            match &variant.args {
                Some((args, _)) if args.topic.is_some() => {}
                Some((_, attr)) => errors.push(attr, "a variant's `#[event(...)]` needs `topic = \"...\"`"),
                None => errors.push(
                    &variant.ident,
                    "missing `#[event(topic = \"...\")]`: in an enum with topics per variant, every variant has one",
                ),
            }
            if let Some((args, _)) = &variant.args {
                texts.extend(args.topic.iter().chain(&args.aliases));
            }
        }
    } else {
        match &event.args.topic {
            Some(topic) => texts.push(topic),
            None => errors.push(
                &event.ident,
                "missing `topic = \"...\"`: an event needs a topic, the stable name it is stored under, unique in the program (`#[aett::event(topic = \"...\")]`)",
            ),
        }
    }
    texts.extend(&event.args.aliases);
    for (index, text) in texts.iter().enumerate() {
        check_text(&mut errors, text, "topic");
        if texts[..index]
            .iter()
            .any(|earlier| earlier.value() == text.value())
        {
            errors.push(
                text,
                format!(
                    "`{}` is already a topic or alias of this event",
                    text.value()
                ),
            );
        }
    }

    let version = match &event.args.version {
        None => 1,
        Some(literal) => match literal.base10_parse::<u32>() {
            Ok(version) if version >= 1 => version,
            _ => {
                errors.push(literal, "the version is a whole number from 1");
                return errors.finish();
            }
        },
    };
    let mut seen: Vec<u32> = Vec::new();
    let mut first_typed: Option<u32> = None;
    for upcast in &event.args.upcasts {
        let Ok(from) = upcast.version.base10_parse::<u32>() else {
            errors.push(
                &upcast.version,
                "an upcaster's version is a whole number from 1",
            );
            continue;
        };
        if from == 0 || from >= version {
            let older = match version {
                1 => "none: give the event `version = N` above 1 first".to_owned(),
                2 => "version 1".to_owned(),
                _ => format!("versions 1 to {}", version - 1),
            };
            errors.push(
                &upcast.version,
                format!("an upcaster reads a version older than the event's `version = {version}`: {older}"),
            );
            continue;
        }
        if seen.contains(&from) {
            errors.push(&upcast.version, format!("version {from} has two upcasters"));
        }
        seen.push(from);
        match &upcast.step {
            Step::Typed(ty) if per_variant => errors.push(
                ty,
                "an enum with topics per variant takes JSON upcasters only: `N = json(function)`",
            ),
            Step::Typed(_) => {
                first_typed = Some(first_typed.map_or(from, |first| first.min(from)));
            }
            Step::Json(_) => {}
        }
    }
    if let Some(first_typed) = first_typed {
        for upcast in &event.args.upcasts {
            if let (Step::Json(path), Ok(from)) =
                (&upcast.step, upcast.version.base10_parse::<u32>())
            {
                if from > first_typed && from < version {
                    errors.push(
                        path,
                        format!("a JSON upcaster cannot read a version newer than a typed one (version {first_typed}): typed upcasters hand on typed values"),
                    );
                }
            }
        }
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
    if let Some(version) = &domain.args.memento_version {
        if !matches!(version.base10_parse::<u32>(), Ok(1..)) {
            errors.push(version, "the memento version is a whole number from 1");
        }
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
