//! Store URLs as the tool shows them: never with a password.

/// The URL with its password (`user:PASSWORD@`, `password=` in the query) replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    for secret in secrets(url) {
        shown = shown.replace(&secret, "***");
    }
    shown
}

/// The passwords a URL holds, as written and percent-decoded, so that they can be removed from
/// any message (a driver's error may quote the URL).
pub fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                found.push(password.to_owned());
            }
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if key.eq_ignore_ascii_case("password") {
                    found.push(value.to_owned());
                }
            }
        }
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|s| percent_decode(s).filter(|d| d != s))
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    // Longest first, so that a password containing another is removed whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found
}

/// `message` with every secret replaced by `***`.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_owned();
    for secret in secrets {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The path a `sqlite://` URL names, percent-decoded (`None` for another scheme).
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(percent_decode(path).unwrap_or_else(|| path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed() {
        assert_eq!(
            redact("postgres://aett:s3cr%40t@db:5432/x?sslmode=require"),
            "postgres://aett:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/x?user=a&password=hunter2"),
            "postgres://db/x?user=a&password=***"
        );
        assert_eq!(redact("sqlite://./bank.db"), "sqlite://./bank.db");
        let secrets = secrets("mongodb://u:p%40ss@a:1,b:2/db");
        assert_eq!(
            scrub("auth failed for p@ss and p%40ss", &secrets),
            "auth failed for *** and ***"
        );
    }

    #[test]
    fn sqlite_paths_decode() {
        assert_eq!(
            sqlite_path("sqlite://./my%20bank.db").as_deref(),
            Some("./my bank.db")
        );
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
