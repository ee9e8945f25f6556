//! Store URLs as the tool shows them: never with a password.

/// Where a URL holds its password, if it holds one: in the user info (`user:PASSWORD@`) or as
/// a `password=` query parameter. Byte ranges into the URL.
fn password_ranges(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        let rest = &url[start..];
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                ranges.push(start + colon + 1..start + at);
            }
        }
    }
    if let Some(query) = url.find('?') {
        let mut offset = query + 1;
        for pair in url[query + 1..].split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if key.eq_ignore_ascii_case("password") {
                    let start = offset + key.len() + 1;
                    ranges.push(start..start + value.len());
                }
            }
            offset += pair.len() + 1;
        }
    }
    ranges.retain(|range| !range.is_empty());
    ranges
}

/// The URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    // From the back, so the earlier ranges stay where they are.
    for range in password_ranges(url).into_iter().rev() {
        shown.replace_range(range, "***");
    }
    shown
}

/// What must not appear in a message about this URL: the URL itself (a driver's error may quote
/// it) with its redacted form, and the password as written and percent-decoded, each in the
/// context it is written in (`:PASSWORD@`, `password=PASSWORD`), so that a password that also
/// names the user or the database does not blank those out.
pub fn secrets(url: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if !password_ranges(url).is_empty() {
        found.push((url.to_owned(), redact(url)));
    }
    for range in password_ranges(url) {
        let raw = &url[range.clone()];
        let mut forms = vec![raw.to_owned()];
        if let Some(decoded) = percent_decode(raw).filter(|d| d != raw) {
            forms.push(decoded);
        }
        for form in forms {
            found.push((format!(":{form}@"), ":***@".to_owned()));
            found.push((format!("password={form}"), "password=***".to_owned()));
            found.push((format!("password: {form}"), "password: ***".to_owned()));
        }
    }
    found
}

/// `message` with every secret replaced.
pub fn scrub(message: &str, secrets: &[(String, String)]) -> String {
    let mut message = message.to_owned();
    for (secret, shown) in secrets {
        message = message.replace(secret.as_str(), shown);
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
            redact("postgres://db/x?user=a&password=hunter2&sslmode=require"),
            "postgres://db/x?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact("sqlite://./bank.db"), "sqlite://./bank.db");
        // A password that is also the user's and the database's name leaves those be.
        assert_eq!(
            redact("postgres://aett:aett@127.0.0.1/aett"),
            "postgres://aett:***@127.0.0.1/aett"
        );
    }

    #[test]
    fn messages_lose_the_password() {
        let url = "mongodb://u:p%40ss@a:1,b:2/db";
        let hidden = secrets(url);
        assert_eq!(
            scrub(
                &format!("cannot reach {url}: auth as u:p@ss@a failed"),
                &hidden
            ),
            "cannot reach mongodb://u:***@a:1,b:2/db: auth as u:***@a failed"
        );
        assert!(secrets("sqlite://./x.db").is_empty());
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
