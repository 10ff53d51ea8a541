//! stats: a pirn knot module written in Rust with the pirn-pdk crate —
//! descriptive statistics over lists of floats, and a few text helpers.
//! See README.md for each knot; `make wasm` builds stats.wasm.

use pirn_pdk::prelude::*;

pirn_pdk::knots! {
    name = "stats";

    /// Returns the arithmetic mean of xs.
    fn mean(
        /// the numbers
        xs: Vec<f64>,
    ) -> Result<f64> {
        if xs.is_empty() {
            return Err(fail("ValueError", "mean of an empty list"));
        }
        Ok(xs.iter().sum::<f64>() / xs.len() as f64)
    }

    /// Returns n, min, max, mean and the population standard deviation std of xs.
    fn describe(
        /// the numbers
        xs: Vec<f64>,
    ) -> Result<BTreeMap<String, f64>> {
        if xs.is_empty() {
            return Err(fail("ValueError", "describe of an empty list"));
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let mut d = BTreeMap::new();
        d.insert("n".to_string(), n);
        d.insert("min".to_string(), xs.iter().cloned().fold(f64::INFINITY, f64::min));
        d.insert("max".to_string(), xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        d.insert("mean".to_string(), mean);
        d.insert("std".to_string(), var.sqrt());
        pirn_pdk::debug!("describe: {} values", xs.len());
        Ok(d)
    }

    /// Returns the p-th percentile of xs (0 ≤ p ≤ 100), interpolating linearly between ranks.
    fn percentile(
        /// the numbers; NaN is refused
        xs: Vec<f64>,
        /// the percentile, 0 to 100
        p: f64,
    ) -> Result<f64> {
        if xs.is_empty() {
            return Err(fail("ValueError", "percentile of an empty list"));
        }
        if !(0.0..=100.0).contains(&p) {
            return Err(Error::new("ValueError", format!("p = {}, want 0 ≤ p ≤ 100", p)).with_detail(p).into());
        }
        if let Some(i) = xs.iter().position(|x| x.is_nan()) {
            return Err(fail("ValueError", format!("xs[{}] is NaN", i)));
        }
        let mut s = xs;
        s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let rank = p / 100.0 * (s.len() - 1) as f64;
        let lo = rank.floor() as usize;
        let hi = rank.ceil() as usize;
        Ok(s[lo] + (s[hi] - s[lo]) * (rank - lo as f64))
    }

    /// Returns x · factor.
    fn scale(
        /// the value
        x: f64,
        /// the multiplier
        factor: f64,
    ) -> f64 {
        x * factor
    }

    /// Splits text into words at whitespace.
    fn words(
        /// the text
        text: String,
        /// lower-case the words (default false)
        lower: Option<bool>,
    ) -> Vec<String> {
        let lower = lower.unwrap_or(false);
        text.split_whitespace()
            .map(|w| if lower { w.to_lowercase() } else { w.to_string() })
            .collect()
    }

    /// Passes xs through; skips when it is empty, so that nothing downstream runs.
    fn nonempty(
        /// any list
        xs: Vec<Value>,
    ) -> Result<Vec<Value>> {
        if xs.is_empty() {
            return Err(skip("empty list"));
        }
        Ok(xs)
    }

    /// Returns the sum of every input, whatever its name (an aggregator).
    fn total(..terms: BTreeMap<String, f64>) -> f64 {
        terms.values().sum()
    }

    /// Returns the mean of the bytes of data (0 to 255).
    fn byte_mean(
        /// a byte string
        data: Vec<u8>,
    ) -> Result<f64> {
        if data.is_empty() {
            return Err(fail("ValueError", "byte_mean of no bytes"));
        }
        Ok(data.iter().map(|&b| b as f64).sum::<f64>() / data.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions() {
        assert_eq!(mean(vec![1.0, 2.0, 3.0, 4.0]), Ok(2.5));
        assert_eq!(scale(2.0, 1.5), 6.0 / 2.0);
        assert_eq!(words(" Hello  World ".to_string(), Some(true)), ["hello", "world"]);
        assert_eq!(percentile(vec![4.0, 1.0, 3.0, 2.0], 50.0), Ok(2.5));
        assert_eq!(percentile(vec![1.0, 2.0], 100.0), Ok(2.0));
        assert!(percentile(vec![1.0], 101.0).is_err());
        assert_eq!(byte_mean(vec![0, 255]), Ok(127.5));
        let d = describe(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((d["n"], d["min"], d["max"], d["mean"], d["std"]), (8.0, 2.0, 9.0, 5.0, 2.0));
    }

    #[test]
    fn module() {
        assert_eq!(PIRN_MODULE.call("mean", [("xs", vec![1i64, 2])]), Response::Ok(Value::Float(1.5)));
        assert_eq!(
            PIRN_MODULE.call("mean", [("xs", Vec::<f64>::new())]),
            Response::Err(Error::new("ValueError", "mean of an empty list"))
        );
        assert_eq!(PIRN_MODULE.call("nonempty", [("xs", Vec::<f64>::new())]), Response::Skip(Skip::new("empty list")));
        assert_eq!(PIRN_MODULE.call("total", [("a", 1.5), ("b", 2.0)]), Response::Ok(Value::Float(3.5)));
        // A value that does not convert (possible with validate_io: false).
        assert_eq!(
            PIRN_MODULE.call("mean", [("xs", Value::from(vec![Value::Float(1.5), Value::from("a")]))]),
            Response::Err(Error::new("InputError", r#"knot "mean": input "xs": at [1]: want float, got str "a""#))
        );
        let m = PIRN_MODULE.manifest();
        assert_eq!(m.name.as_deref(), Some("stats"));
        assert_eq!(m.knots.len(), 8);
    }
}
