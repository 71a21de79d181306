//! Names of custom settings (`app.tenant_id`, PostgreSQL docs "Customized Options") that
//! clients of this pooler may have set: Postgres lists them nowhere once set (pg_settings
//! leaves placeholders out), so a session capture reads each of these by name. Pooler-wide,
//! since a name one client set on a server must be cleared there before another client uses
//! it. Bounded: past `MAX_NAMES` new names are not tracked, and the log says so once.

use std::sync::{Arc, Mutex, PoisonError};

use super::exchange::quote_literal;

/// More distinct custom settings than any application uses; a bound against a client that
/// sends endless generated names.
const MAX_NAMES: usize = 1000;

#[derive(Debug, Default)]
pub(crate) struct CustomNames {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    names: Vec<String>,
    /// `ARRAY['a.b', ...]::text[]` for the capture query; "" while there are no names.
    array: Arc<str>,
    full_logged: bool,
}

impl CustomNames {
    /// Adds names not seen before, draining `names`.
    pub(crate) fn note(&self, names: &mut Vec<String>) {
        if names.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let before = inner.names.len();
        for name in names.drain(..) {
            if inner.names.contains(&name) {
                continue;
            }
            if inner.names.len() >= MAX_NAMES {
                if !inner.full_logged {
                    tracing::warn!(
                        limit = MAX_NAMES,
                        "too many distinct custom settings: new ones are not followed across servers"
                    );
                    inner.full_logged = true;
                }
                break;
            }
            inner.names.push(name);
        }
        if inner.names.len() != before {
            let quoted: Vec<String> = inner.names.iter().map(|n| quote_literal(n)).collect();
            inner.array = format!("ARRAY[{}]::text[]", quoted.join(", ")).into();
        }
    }

    /// The names as a SQL array expression; empty when none are known.
    pub(crate) fn sql_array(&self) -> Arc<str> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .array
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::CustomNames;

    #[test]
    fn names_are_kept_once_and_quoted() {
        let names = CustomNames::default();
        assert_eq!(&*names.sql_array(), "");
        names.note(&mut vec!["app.tenant_id".into(), "app.tenant_id".into()]);
        names.note(&mut vec!["o'k.x".into()]);
        assert_eq!(
            &*names.sql_array(),
            "ARRAY['app.tenant_id', 'o''k.x']::text[]"
        );
    }
}
