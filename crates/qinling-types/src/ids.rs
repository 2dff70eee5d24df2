//! Resource ids as types: a function's id cannot be passed where an execution's is expected.
//! Each is the id text (a UUID for ids this server makes; whatever the path held for ids a
//! request names, which the store then does not find), serialized as the bare string, and
//! reads as a `&str` (`Deref`) where the text is needed (SQL binds, messages).

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
            #[serde(transparent)]
            pub struct $name(String);

            impl $name {
                pub fn new(id: impl Into<String>) -> Self {
                    $name(id.into())
                }

                pub fn as_str(&self) -> &str {
                    &self.0
                }

                pub fn into_string(self) -> String {
                    self.0
                }
            }

            impl std::ops::Deref for $name {
                type Target = str;

                fn deref(&self) -> &str {
                    &self.0
                }
            }

            /// Ids hash and compare as their text, so a map keyed by ids is looked up by `&str`.
            impl std::borrow::Borrow<str> for $name {
                fn borrow(&self) -> &str {
                    &self.0
                }
            }

            impl AsRef<str> for $name {
                fn as_ref(&self) -> &str {
                    &self.0
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(&self.0)
                }
            }

            impl From<String> for $name {
                fn from(id: String) -> Self {
                    $name(id)
                }
            }

            impl From<&str> for $name {
                fn from(id: &str) -> Self {
                    $name(id.to_string())
                }
            }

            impl PartialEq<str> for $name {
                fn eq(&self, other: &str) -> bool {
                    self.0 == other
                }
            }
        )*
    };
}

id_type!(
    /// A function's id.
    FunctionId,
    /// An execution's id.
    ExecutionId,
    /// A runtime's id.
    RuntimeId,
    /// A job's id.
    JobId,
    /// A webhook's id.
    WebhookId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_text_on_the_wire_and_in_messages() {
        let id = FunctionId::new("f-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"f-1\"");
        assert_eq!(serde_json::from_str::<FunctionId>("\"f-1\"").unwrap(), id);
        assert_eq!(format!("{id}"), "f-1");
        let text: &str = &id;
        assert_eq!(text, "f-1");
        assert!(id == *"f-1");
    }
}
