//! Comparisons of float outputs that cannot be fooled by NaN.
//!
//! `f32::max` drops NaN (`x.max(NaN) == x`), so a `max |a − b|` folded with it reports 0 for an
//! all-NaN output. Every check that compares a result against a reference (the GPU self-test
//! that gates `BackendKind::Auto`, the golden and decode tests) goes through [`compare`], which
//! fails on any non-finite value instead.

/// How two equally long float slices differ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diff {
    /// Largest `|a[i] − b[i]|`.
    pub max_abs: f32,
    /// Largest `|b[i]|` (the reference's scale).
    pub max_ref: f32,
}

impl Diff {
    /// `max_abs` relative to the reference's largest magnitude (floored at `1e-6`).
    pub fn relative(&self) -> f32 {
        self.max_abs / self.max_ref.max(1e-6)
    }
}

/// Why two slices could not be compared.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error("lengths differ: {0} vs {1}")]
    Length(usize, usize),
    #[error("non-finite value {value} at index {index} of the {which} output")]
    NonFinite {
        which: &'static str,
        index: usize,
        value: f32,
    },
    #[error("the output is constant ({0}) while the reference is not")]
    Constant(f32),
}

/// Compares `got` against the reference `want`: any NaN or infinity on either side is an error,
/// and so is a constant `got` (e.g. an all-zero readback) against a non-constant reference.
pub fn compare(got: &[f32], want: &[f32]) -> Result<Diff, CompareError> {
    if got.len() != want.len() {
        return Err(CompareError::Length(got.len(), want.len()));
    }
    for (which, v) in [("compared", got), ("reference", want)] {
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(CompareError::NonFinite {
                which,
                index,
                value,
            });
        }
    }
    if let Some(&first) = got.first()
        && got.iter().all(|&x| x == first)
        && want.iter().any(|&x| x != want[0])
    {
        return Err(CompareError::Constant(first));
    }
    let mut diff = Diff {
        max_abs: 0.0,
        max_ref: 0.0,
    };
    for (&a, &b) in got.iter().zip(want) {
        diff.max_abs = diff.max_abs.max((a - b).abs());
        diff.max_ref = diff.max_ref.max(b.abs());
    }
    Ok(diff)
}

/// Checks a row of logits before anything is sampled from it: NaN or infinity anywhere, or
/// every value equal (the signature of a GPU readback that silently returned zeros), means the
/// computation failed. Returns what was wrong.
pub fn check_logits(logits: &[f32]) -> Result<(), String> {
    if let Some((i, v)) = logits.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(format!("logit {i} is {v}"));
    }
    match logits.first() {
        Some(&first) if logits.len() > 1 && logits.iter().all(|&x| x == first) => {
            Err(format!("all {} logits equal {first}", logits.len()))
        }
        None => Err("no logits".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nan_inf_and_constant_outputs() {
        let want = [1.0, -2.0, 3.0];
        assert!(matches!(
            compare(&[f32::NAN; 3], &want),
            Err(CompareError::NonFinite { .. })
        ));
        assert!(matches!(
            compare(&[1.0, f32::INFINITY, 3.0], &want),
            Err(CompareError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            compare(&want, &[1.0, f32::NAN, 3.0]),
            Err(CompareError::NonFinite {
                which: "reference",
                ..
            })
        ));
        assert_eq!(compare(&[0.0; 3], &want), Err(CompareError::Constant(0.0)));
        assert_eq!(compare(&[0.0; 2], &want), Err(CompareError::Length(2, 3)));
    }

    #[test]
    fn bad_logits_are_caught() {
        assert!(check_logits(&[0.5, -1.0, 2.0]).is_ok());
        assert!(check_logits(&[0.5, f32::NAN, 2.0]).is_err());
        assert!(check_logits(&[f32::NEG_INFINITY, 1.0]).is_err());
        assert!(check_logits(&[0.0; 16]).is_err());
        assert!(check_logits(&[]).is_err());
    }

    #[test]
    fn measures_the_largest_difference() {
        let d = compare(&[1.0, -2.5, 3.0], &[1.0, -2.0, 4.0]).unwrap();
        assert_eq!(d.max_abs, 1.0);
        assert_eq!(d.max_ref, 4.0);
        assert_eq!(d.relative(), 0.25);
        // Equal constant slices are fine (nothing to tell apart).
        assert_eq!(compare(&[2.0; 4], &[2.0; 4]).unwrap().max_abs, 0.0);
    }
}
