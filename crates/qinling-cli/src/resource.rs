//! What every top-level collection of the v1 API (`/v1/<collection>`) has in common: list
//! (unwrapping the `{"<collection>": [...]}` envelope), show, delete-many with upstream's
//! messages, and resolving an "ID or name" argument the way python-qinlingclient does (a UUID
//! is used as is; anything else is looked up by exact `name` in the list).
//!
//! A resource module declares one [`Resource`] constant and writes only what is particular to
//! it. Nested collections (function versions) and name-addressed ones (aliases) use
//! [`Client`] directly.

use anyhow::bail;
use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::output::Column;

pub struct Resource {
    /// The noun in messages: `function`.
    pub kind: &'static str,
    /// The path segment under `/v1/` and the key of the list envelope: `functions`.
    pub collection: &'static str,
    /// Whether items have a `name` that arguments may use instead of the id.
    pub named: bool,
    /// The columns of `list` in table and value formats.
    pub columns: &'static [Column],
}

impl Resource {
    pub async fn list(
        &self,
        client: &Client,
        query: &[(String, String)],
    ) -> anyhow::Result<Vec<Value>> {
        let request = client.request_with_query(Method::GET, &["v1", self.collection], query);
        let mut body = client.json(request).await?;
        match body.get_mut(self.collection).map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => bail!(
                "the server's list of {} has no '{}' array: {body}",
                self.collection,
                self.collection
            ),
        }
    }

    pub async fn get(&self, client: &Client, id: &str) -> anyhow::Result<Value> {
        client
            .json(client.request(Method::GET, &["v1", self.collection, id]))
            .await
    }

    /// The id named by `id_or_name`.
    pub async fn resolve(&self, client: &Client, id_or_name: &str) -> anyhow::Result<String> {
        if !self.named || is_uuid(id_or_name) {
            return Ok(id_or_name.to_string());
        }
        let items = self.list(client, &[]).await?;
        find_by_name(self.kind, id_or_name, &items)
    }

    /// Deletes each (by id or name), reporting each outcome; fails if any failed.
    pub async fn delete(&self, client: &Client, ids_or_names: &[String]) -> anyhow::Result<()> {
        let mut failed = false;
        for id_or_name in ids_or_names {
            let outcome = async {
                let id = self.resolve(client, id_or_name).await?;
                client
                    .empty(client.request(Method::DELETE, &["v1", self.collection, &id]))
                    .await?;
                anyhow::Ok(id)
            };
            match outcome.await {
                Ok(id) => crate::output::emit(&format!(
                    "Request to delete {} {id} has been accepted.\n",
                    self.kind
                )),
                Err(error) => {
                    eprintln!("{error:#}");
                    failed = true;
                }
            }
        }
        if failed {
            bail!("Unable to delete the specified {}(s).", self.kind);
        }
        Ok(())
    }
}

/// A canonical hyphenated UUID (any case), as Qinling ids are.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The id of the one item whose `name` is exactly `name`.
pub fn find_by_name(kind: &str, name: &str, items: &[Value]) -> anyhow::Result<String> {
    let matches: Vec<&Value> = items
        .iter()
        .filter(|item| item.get("name").and_then(Value::as_str) == Some(name))
        .collect();
    match matches.as_slice() {
        [] => bail!("No {kind} with a name or ID of '{name}' exists."),
        [found] => match found.get("id").and_then(Value::as_str) {
            Some(id) => Ok(id.to_string()),
            None => bail!("the {kind} named '{name}' has no id: {found}"),
        },
        _ => bail!("More than one {kind} exists with the name '{name}'."),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::stub::{Stub, block_on};

    const FUNCTIONS: Resource = Resource {
        kind: "function",
        collection: "functions",
        named: true,
        columns: &[],
    };
    const ID: &str = "879d3625-5710-4ffa-b163-843b0e8bf4d6";

    #[test]
    fn uuids() {
        assert!(is_uuid(ID));
        assert!(is_uuid(&ID.to_uppercase()));
        assert!(!is_uuid("hello"));
        assert!(!is_uuid("879d3625571045ffab163843b0e8bf4d6"));
        assert!(!is_uuid("879d3625-5710-4ffa-b163-843b0e8bf4dg"));
        assert!(!is_uuid("879d3625-5710-4ffa-b163_843b0e8bf4d6"));
        assert!(!is_uuid("879d3625-5710-4ffa-b163-843b0e8bf4d6a"));
    }

    #[test]
    fn names_resolve_to_exactly_one_id() {
        let items = vec![
            json!({"id": "1", "name": "hello"}),
            json!({"id": "2", "name": "twin"}),
            json!({"id": "3", "name": "twin"}),
            json!({"id": "4", "name": null}),
            json!({"id": "5", "name": "Hello"}),
        ];
        assert_eq!(find_by_name("function", "hello", &items).unwrap(), "1");
        assert_eq!(
            find_by_name("function", "twin", &items)
                .unwrap_err()
                .to_string(),
            "More than one function exists with the name 'twin'."
        );
        assert_eq!(
            find_by_name("function", "x", &items)
                .unwrap_err()
                .to_string(),
            "No function with a name or ID of 'x' exists."
        );
        assert_eq!(
            find_by_name("runtime", "python3", &[])
                .unwrap_err()
                .to_string(),
            "No runtime with a name or ID of 'python3' exists."
        );
    }

    #[test]
    fn a_uuid_is_used_without_asking_the_server() {
        // No server at all: a request would fail.
        let client = Client::new("http://127.0.0.1:9", None).unwrap();
        assert_eq!(block_on(FUNCTIONS.resolve(&client, ID)).unwrap(), ID);
    }

    #[test]
    fn a_name_is_looked_up_in_the_list() {
        let list =
            json!({"functions": [{"id": ID, "name": "hello"}, {"id": "other", "name": "bye"}]});
        let stub = Stub::serve(vec![(200, "application/json", list.to_string())]);
        let client = Client::new(&stub.url, None).unwrap();
        assert_eq!(block_on(FUNCTIONS.resolve(&client, "hello")).unwrap(), ID);
        let requests = stub.requests();
        assert_eq!(requests.len(), 1);
        assert!(
            requests[0]
                .head
                .starts_with("GET /v1/functions HTTP/1.1\r\n"),
            "{}",
            requests[0].head
        );
    }

    #[test]
    fn list_forwards_filters_and_unwraps_the_envelope() {
        let stub = Stub::serve(vec![(
            200,
            "application/json",
            r#"{"executions": [{"id": "e"}]}"#.into(),
        )]);
        let client = Client::new(&stub.url, None).unwrap();
        let executions = Resource {
            kind: "execution",
            collection: "executions",
            named: false,
            columns: &[],
        };
        let query = vec![
            ("status".to_string(), "neq:success".to_string()),
            ("description".into(), "has:a b".into()),
        ];
        assert_eq!(
            block_on(executions.list(&client, &query)).unwrap(),
            vec![json!({"id": "e"})]
        );
        let head = &stub.requests()[0].head;
        assert!(
            head.starts_with(
                "GET /v1/executions?status=neq%3Asuccess&description=has%3Aa+b HTTP/1.1\r\n"
            ),
            "{head}"
        );
    }
}
