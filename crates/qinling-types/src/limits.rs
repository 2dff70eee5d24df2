//! Function resource limits (`cpu`, `memory_size`, `timeout`) and the ranges they must fall in
//! (reference §4, configurable). Parsed once at the edge into [`ResourceLimits`].

use crate::Error;

/// An inclusive range with a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

/// The configured ranges of the three limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LimitRanges {
    /// millicpu
    pub cpu: Range,
    /// bytes
    pub memory: Range,
    /// seconds
    pub timeout: Range,
}

impl Default for LimitRanges {
    fn default() -> Self {
        Self {
            cpu: Range {
                min: 100,
                max: 300,
                default: 100,
            },
            memory: Range {
                min: 33_554_432,
                max: 134_217_728,
                default: 33_554_432,
            },
            timeout: Range {
                min: 1,
                max: 300,
                default: 5,
            },
        }
    }
}

/// Validated limits of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    pub cpu: u32,
    pub memory_size: u64,
    pub timeout: u32,
}

impl LimitRanges {
    pub fn defaults(&self) -> ResourceLimits {
        ResourceLimits {
            cpu: self.cpu.default as u32,
            memory_size: self.memory.default,
            timeout: self.timeout.default as u32,
        }
    }

    /// Checks one limit given as text (a form field or JSON number rendered as text).
    /// `what` is `cpu`, `memory` or `timeout`, as in upstream's messages.
    pub fn parse(&self, what: &'static str, raw: &str) -> Result<u64, Error> {
        let (range, unit) = match what {
            "cpu" => (self.cpu, "millicpu"),
            "memory" => (self.memory, "bytes"),
            _ => (self.timeout, "seconds"),
        };
        let value: i64 = raw.trim().parse().map_err(|_| {
            Error::input(format!(
                "Invalid {what} resource specified. An integer is required."
            ))
        })?;
        if value < range.min as i64 || value > range.max as i64 {
            return Err(Error::input(format!(
                "{what} resource limitation not within the allowable range: {} ~ {}({unit}).",
                range.min, range.max
            )));
        }
        Ok(value as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_upstream_messages() {
        let r = LimitRanges::default();
        let cases: &[(&str, &str, Result<u64, &str>)] = &[
            ("cpu", "100", Ok(100)),
            ("cpu", "300", Ok(300)),
            (
                "cpu",
                "99",
                Err("cpu resource limitation not within the allowable range: 100 ~ 300(millicpu)."),
            ),
            (
                "memory",
                "134217729",
                Err(
                    "memory resource limitation not within the allowable range: 33554432 ~ 134217728(bytes).",
                ),
            ),
            (
                "timeout",
                "0",
                Err(
                    "timeout resource limitation not within the allowable range: 1 ~ 300(seconds).",
                ),
            ),
            (
                "timeout",
                "abc",
                Err("Invalid timeout resource specified. An integer is required."),
            ),
            ("timeout", " 7 ", Ok(7)),
        ];
        for (what, raw, expect) in cases {
            let got = r.parse(what, raw).map_err(|e| e.to_string());
            assert_eq!(got, expect.map_err(str::to_string), "{what}={raw}");
        }
    }
}
