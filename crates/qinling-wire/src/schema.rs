//! OpenAPI 3.0 schemas from Rust types: [`FieldSchema`] for the types a field may have
//! (strings, numbers, booleans, options as `nullable`, vectors, other objects by `$ref`) and
//! [`Object`] for a whole body, implemented by `wire_object!`.

use serde_json::{Value, json};

/// The schema of a field of this type.
pub trait FieldSchema {
    fn field_schema() -> Value;
}

/// A wire object: its name in `components/schemas`, its fields in order, and its schema.
pub trait Object {
    const NAME: &'static str;

    /// The wire names of its fields, in serialization order (flattened ones included).
    fn fields() -> Vec<&'static str>;

    fn schema() -> Value;
}

macro_rules! scalar {
    ($($ty:ty => $kind:literal),* $(,)?) => {
        $(impl FieldSchema for $ty {
            fn field_schema() -> Value {
                json!({"type": $kind})
            }
        })*
    };
}

scalar!(
    String => "string",
    bool => "boolean",
    i32 => "integer",
    i64 => "integer",
    u32 => "integer",
    u64 => "integer",
    f64 => "number",
);

impl<T: FieldSchema> FieldSchema for Option<T> {
    fn field_schema() -> Value {
        let mut schema = T::field_schema();
        if let Some(fields) = schema.as_object_mut()
            && !fields.contains_key("$ref")
        {
            fields.insert("nullable".into(), true.into());
        }
        schema
    }
}

impl<T: FieldSchema> FieldSchema for Vec<T> {
    fn field_schema() -> Value {
        json!({"type": "array", "items": T::field_schema()})
    }
}

impl FieldSchema for Value {
    fn field_schema() -> Value {
        json!({"type": "object"})
    }
}

/// A timestamp as the API shows it (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn ts() -> Value {
    json!({"type": "string", "example": "2026-11-28T06:45:29Z"})
}

/// A timestamp that may be null.
pub fn ts_null() -> Value {
    json!({"type": "string", "nullable": true, "example": "2026-11-28T06:45:29Z"})
}
