//! Issue 16, end to end: the hardening properties, each proven by attacks written as a
//! hostile caller would (several per property) and by the compatibility case upstream's
//! CPU-limit function needs. Cases that need the jail skip with a printed reason under
//! `QINLING_TEST_INSECURE`.

use serde_json::json;

use crate::harness::{Server, result};

/// Upstream's CPU-limit test function in substance: 50,000 digits of pi as one integer,
/// printed whole (a 50,000-digit int-to-text conversion) and returned as its first digits.
const PI_DIGITS: &str = r#"
def pi_digits(n):
    # Machin's formula in fixed point, with guard digits.
    scale = 10 ** (n + 10)
    def arctan_inv(x):
        total = term = scale // x
        x2, k, sign = x * x, 1, -1
        while term:
            term //= x2
            k += 2
            total += sign * (term // k)
            sign = -sign
        return total
    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) // 10 ** 10

def main(number=50000, **kwargs):
    pi = pi_digits(number)
    print(pi)
    return str(pi)[:15]
"#;

/// Property 8: the python3 runtime runs a function that prints a 50,000-digit integer
/// (Python >= 3.11 refuses int-to-text conversions past 4,300 digits by default).
#[test]
fn python_prints_a_50000_digit_integer() {
    let s = Server::start();
    let f = s.create_function(
        "test_python_cpu_limit.py",
        PI_DIGITS,
        "test_python_cpu_limit.main",
        &[("cpu", "300"), ("timeout", "180")],
    );
    let e = s.execute(f["id"].as_str().unwrap(), None);
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("success"), json!("314159265358979")),
        "{e}\nlog: {}",
        s.log(id)
    );
    let log = s.log(id);
    assert!(log.contains("3141592653"), "{log}");
}
