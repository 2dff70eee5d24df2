//! The wire format of Qinling's v1 API: serde structs for the request and response bodies,
//! shared by the server's HTTP edge (`qinling-api`, which renders and reads them) and the CLI
//! (`qinling-cli`, which sends them and reads the fields it needs), and the OpenAPI schema of
//! each, derived from the same declaration ([`Object::schema`]). Fields serialize in the order
//! they are declared, which is the order the server has always sent them. Nothing here knows
//! HTTP, the store or the engine, so the CLI can depend on it.

mod bodies;
mod schema;

pub use bodies::*;
pub use schema::{FieldSchema, Object, ts, ts_null};

/// The text fields of a form body ([`FunctionCreate`], [`FunctionUpdate`]) as a client sends
/// them: in declaration order, absent fields left out. The file part is the caller's.
pub fn form_fields<T: serde::Serialize>(body: &T) -> Vec<(String, String)> {
    match serde_json::to_value(body) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(text) => Some((k, text)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Declares a wire object: the struct (with serde) and its [`Object`] impl (schema and field
/// names). A field may give its schema explicitly (`=> expr`) where its type says too little
/// (an enum of strings, a timestamp example); `flatten` names one object whose fields follow
/// (serialized inline, and an `allOf` in the schema). `required` lists what the schema
/// requires; `closed` forbids other properties (request bodies); an optional
/// `min_properties` asks for at least that many (a body of changes that must change
/// something).
#[macro_export]
macro_rules! wire_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty $(=> $schema:expr)?
            ),* $(,)?
        }
        $(flatten $flat_field:ident : $flat:ty;)?
        required: [$($req:literal),* $(,)?];
        closed: $closed:literal;
        $(min_properties: $min_props:literal;)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
            $(
                #[serde(flatten)]
                pub $flat_field: $flat,
            )?
        }

        impl $crate::Object for $name {
            const NAME: &'static str = stringify!($name);

            fn fields() -> Vec<&'static str> {
                #[allow(unused_mut)]
                let mut out = vec![$(stringify!($field)),*];
                $(out.extend(<$flat as $crate::Object>::fields());)?
                out
            }

            fn schema() -> serde_json::Value {
                let mut props = serde_json::Map::new();
                $(
                    props.insert(
                        stringify!($field).to_string(),
                        $crate::wire_object!(@field $ty $(, $schema)?),
                    );
                )*
                let mut own = serde_json::Map::new();
                own.insert("type".into(), "object".into());
                let required: Vec<&str> = vec![$($req),*];
                if !required.is_empty() {
                    own.insert("required".into(), required.into());
                }
                if $closed {
                    own.insert("additionalProperties".into(), false.into());
                }
                $(own.insert("minProperties".into(), $min_props.into());)?
                own.insert("properties".into(), props.into());
                #[allow(unused_mut)]
                let mut schema = serde_json::Value::Object(own);
                $(
                    schema = serde_json::json!({"allOf": [
                        schema,
                        <$flat as $crate::FieldSchema>::field_schema(),
                    ]});
                )?
                schema
            }
        }

        impl $crate::FieldSchema for $name {
            fn field_schema() -> serde_json::Value {
                serde_json::json!({"$ref": format!("#/components/schemas/{}", stringify!($name))})
            }
        }
    };
    (@field $ty:ty) => { <$ty as $crate::FieldSchema>::field_schema() };
    (@field $ty:ty, $schema:expr) => { $schema };
}
