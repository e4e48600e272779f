//! The deterministic random numbers the built-in traces are generated from.
//!
//! SplitMix64 (Steele, Lea, Flood 2014), written out here rather than taken
//! from `rand`: the traces must be the same bytes in every build forever
//! (the results in docs/ quote them), ten lines cannot drift with a
//! dependency's version, and the traces need nothing but uniform and
//! Poisson draws.

/// SplitMix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson draw with mean `mean` (Knuth's product method in chunks
    /// of 500, so large means do not underflow).
    pub(crate) fn poisson(&mut self, mean: f64) -> u64 {
        let mut left = mean.max(0.0);
        let mut n = 0;
        while left > 0.0 {
            let m = left.min(500.0);
            left -= m;
            let limit = (-m).exp();
            let mut p = self.uniform();
            while p > limit {
                n += 1;
                p *= self.uniform();
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_numbers() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // SplitMix64's published first output for seed 0.
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut r = Rng::new(1);
        for mean in [0.3, 4.0, 900.0] {
            let n = 4000;
            let sum: u64 = (0..n).map(|_| r.poisson(mean)).sum();
            let got = sum as f64 / n as f64;
            assert!((got - mean).abs() < 0.05 * mean + 0.05, "mean {mean}: {got}");
        }
    }
}
