//! Names and descriptions as users send them: checked once, at every create and update,
//! so that no record holds text a client cannot display or a log line would be corrupted
//! by (a NUL cuts C strings short, an escape sequence rewrites a terminal).
//!
//! A name is at most [`MAX_NAME_CHARS`] characters without any control character; a
//! description at most [`MAX_DESCRIPTION_CHARS`], and may contain tabs and line breaks
//! but no other control character. Upstream's columns are `String(255)` for both.

use qinling_types::Error;

/// Longest name of any resource, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest description of any resource, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 255;

fn check(field: &str, value: &str, max: usize, allowed: &[char]) -> Result<(), Error> {
    let chars = value.chars().count();
    if chars > max {
        return Err(Error::input(format!(
            "Invalid {field}: it is {chars} characters long; at most {max} are allowed."
        )));
    }
    if let Some((at, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !allowed.contains(c))
    {
        return Err(Error::input(format!(
            "Invalid {field}: control character U+{:04X} at position {at}; control characters (such as NUL) are not allowed.",
            c as u32
        )));
    }
    Ok(())
}

/// A resource's `name`.
pub fn check_name(field: &str, value: Option<&str>) -> Result<(), Error> {
    value.map_or(Ok(()), |v| check(field, v, MAX_NAME_CHARS, &[]))
}

/// A resource's `description`.
pub fn check_description(field: &str, value: Option<&str>) -> Result<(), Error> {
    value.map_or(Ok(()), |v| {
        check(field, v, MAX_DESCRIPTION_CHARS, &['\t', '\n', '\r'])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        let long = "x".repeat(256);
        let max = "é".repeat(255);
        let cases: &[(&str, bool, Result<(), &str>)] = &[
            ("hello world", true, Ok(())),
            (&max, true, Ok(())),
            (
                &long,
                true,
                Err("Invalid name: it is 256 characters long; at most 255 are allowed."),
            ),
            (
                "a\0b",
                true,
                Err(
                    "Invalid name: control character U+0000 at position 1; control characters (such as NUL) are not allowed.",
                ),
            ),
            (
                "\u{1b}[2J",
                false,
                Err(
                    "Invalid description: control character U+001B at position 0; control characters (such as NUL) are not allowed.",
                ),
            ),
            ("line\nbreak\ttab", false, Ok(())),
            (
                "line\nbreak",
                true,
                Err(
                    "Invalid name: control character U+000A at position 4; control characters (such as NUL) are not allowed.",
                ),
            ),
            (
                "del\u{7f}",
                true,
                Err(
                    "Invalid name: control character U+007F at position 3; control characters (such as NUL) are not allowed.",
                ),
            ),
            (
                "c1\u{85}",
                false,
                Err(
                    "Invalid description: control character U+0085 at position 2; control characters (such as NUL) are not allowed.",
                ),
            ),
        ];
        for (value, name, want) in cases {
            let got = if *name {
                check_name("name", Some(value))
            } else {
                check_description("description", Some(value))
            };
            assert_eq!(
                got.map_err(|e| e.to_string()),
                want.map_err(str::to_string),
                "{value:?}"
            );
        }
        assert!(check_name("name", None).is_ok());
    }
}
