//! Function resource limits (`cpu`, `memory_size`, `timeout`) and the ranges they must fall in
//! (reference §4, configurable). The text a request gives is parsed once, at the engine's
//! edge, into [`LimitChanges`] (typed, in range), which then applies to [`ResourceLimits`].

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

/// One of the three limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Cpu,
    Memory,
    Timeout,
}

impl Limit {
    /// The name upstream's messages use: `cpu`, `memory`, `timeout`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Cpu => "cpu",
            Limit::Memory => "memory",
            Limit::Timeout => "timeout",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Limit::Cpu => "millicpu",
            Limit::Memory => "bytes",
            Limit::Timeout => "seconds",
        }
    }
}

impl std::str::FromStr for Limit {
    type Err = Error;

    /// A limit by name; an unknown name is an error, never a guess.
    fn from_str(name: &str) -> Result<Limit, Error> {
        match name {
            "cpu" => Ok(Limit::Cpu),
            "memory" => Ok(Limit::Memory),
            "timeout" => Ok(Limit::Timeout),
            other => Err(Error::input(format!(
                "Unknown resource limit '{other}': use cpu, memory or timeout."
            ))),
        }
    }
}

/// Limits a request sets, parsed and checked against the ranges; `None` leaves one as it is
/// (the default on create, the current value on update).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitChanges {
    pub cpu: Option<u32>,
    pub memory_size: Option<u64>,
    pub timeout: Option<u32>,
}

impl LimitChanges {
    /// `base` with these changes applied.
    pub fn apply(self, base: ResourceLimits) -> ResourceLimits {
        ResourceLimits {
            cpu: self.cpu.unwrap_or(base.cpu),
            memory_size: self.memory_size.unwrap_or(base.memory_size),
            timeout: self.timeout.unwrap_or(base.timeout),
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

    /// Checks one limit named `what` (`cpu`, `memory` or `timeout`, as in upstream's
    /// messages) given as text; an unknown name is an error.
    pub fn parse(&self, what: &str, raw: &str) -> Result<u64, Error> {
        self.parse_limit(what.parse()?, raw)
    }

    /// The limits a request gives as text (form fields, or JSON numbers rendered as text),
    /// parsed once. Checked in upstream's order — timeout, cpu, memory — so the first bad one
    /// is the one reported.
    pub fn parse_changes(
        &self,
        cpu: Option<&str>,
        memory_size: Option<&str>,
        timeout: Option<&str>,
    ) -> Result<LimitChanges, Error> {
        let get = |limit, raw: Option<&str>| raw.map(|r| self.parse_limit(limit, r)).transpose();
        let timeout = get(Limit::Timeout, timeout)?;
        let cpu = get(Limit::Cpu, cpu)?;
        let memory_size = get(Limit::Memory, memory_size)?;
        Ok(LimitChanges {
            cpu: cpu.map(|v| v as u32),
            memory_size,
            timeout: timeout.map(|v| v as u32),
        })
    }

    /// Checks one limit given as text.
    pub fn parse_limit(&self, limit: Limit, raw: &str) -> Result<u64, Error> {
        let range = match limit {
            Limit::Cpu => self.cpu,
            Limit::Memory => self.memory,
            Limit::Timeout => self.timeout,
        };
        let (what, unit) = (limit.name(), limit.unit());
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

    #[test]
    fn an_unknown_limit_name_is_an_error_not_a_timeout() {
        let r = LimitRanges::default();
        // Used to be read as `timeout`: 7 would have passed as 7 seconds.
        let err = r.parse("memory_size", "7").unwrap_err().to_string();
        assert_eq!(
            err,
            "Unknown resource limit 'memory_size': use cpu, memory or timeout."
        );
        assert!(r.parse("", "7").is_err());
        assert_eq!("cpu".parse::<Limit>().unwrap(), Limit::Cpu);
    }

    #[test]
    fn changes_are_parsed_once_in_upstreams_order() {
        let r = LimitRanges::default();
        let c = r
            .parse_changes(Some("200"), None, Some(" 9 "))
            .expect("in range");
        assert_eq!(
            c,
            LimitChanges {
                cpu: Some(200),
                memory_size: None,
                timeout: Some(9),
            }
        );
        let applied = c.apply(r.defaults());
        assert_eq!(
            (applied.cpu, applied.memory_size, applied.timeout),
            (200, 33_554_432, 9)
        );
        // Both cpu and timeout are bad: timeout is reported, as upstream checks it first.
        let err = r
            .parse_changes(Some("1"), Some("1"), Some("0"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("timeout resource limitation"), "{err}");
    }
}
